//! The time-split backtest on the committed synthetic sample and on real CDNOW data, and the
//! errors a user gets when the history cannot support it.

use std::path::PathBuf;

use lattice_catalog::settings::Settings;
use lattice_data::write::{EventRow, EventsWriter};
use lattice_features::{History, load_profiles};
use lattice_models::pipeline::{Backtest, RepeatCount, TrainConfig, backtest};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../training-data")
        .join(rel)
}

fn run(dir: &std::path::Path, cfg: &TrainConfig) -> Result<Backtest, String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let history = History::open(dir).await.map_err(|e| e.to_string())?;
        let profiles = load_profiles(dir).map_err(|e| e.to_string())?;
        let settings = Settings::load_or_default(&dir.join("lattice.toml")).unwrap();
        backtest(&history, &profiles, &settings, cfg, None)
            .await
            .map(|(_, b)| b)
            .map_err(|e| e.to_string())
    })
}

#[test]
fn synthetic_sample_backtest_is_accurate_and_calibrated() {
    let b = run(&data("sample"), &TrainConfig::default()).unwrap();
    let churn_auc = b.churn.auc.unwrap();
    assert!(churn_auc > 0.8, "churn AUC {churn_auc}");
    assert!(b.churn.ece < 0.03, "churn ECE {}", b.churn.ece);
    // The synthetic world buys by a BG/NBD-like process, so BG/NBD alone is close to the best
    // possible ranking there: the churn model must not lose to it by more than noise.
    let bg = b.churn_auc_bgnbd_only.unwrap();
    assert!(
        churn_auc >= bg - 0.005,
        "the churn model should not lose to BG/NBD alone: {churn_auc} vs {bg}"
    );
    // The stored ROC curve (for report.html) is thinned but keeps the AUC.
    let roc = &b.churn.roc;
    assert!(roc.len() > 20 && roc.len() <= lattice_models::metrics::ROC_POINTS);
    let area: f64 = roc
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum();
    assert!(
        (area - churn_auc).abs() < 0.005,
        "ROC area {area} vs AUC {churn_auc}"
    );
    assert_eq!(b.affinity.len(), 8);
    let mean = b.affinity_mean_auc.unwrap();
    assert!(mean > 0.85, "affinity mean AUC {mean}");
    for a in &b.affinity {
        assert!(a.metrics.ece < 0.03, "{} ECE {}", a.category, a.metrics.ece);
    }
    let st = b.send_time.expect("the sample has opens and clicks");
    let (m, pop) = (&st.comparison.model, &st.comparison.baseline);
    println!(
        "send time: {}",
        serde_json::to_string(&st.comparison).unwrap()
    );
    assert!(
        m.hour_of_week_hit_at_3 > pop.hour_of_week_hit_at_3,
        "send time hit@3 {} vs population {}",
        m.hour_of_week_hit_at_3,
        pop.hour_of_week_hit_at_3
    );
    // What `top3_hours_of_day` serves, with the smoothing chosen on the validation window,
    // beats the customers' own raw best hours on the test window too.
    let own = &st.comparison.own;
    assert!(
        m.hour_of_day_hit_at_3 > own.hour_of_day_hit_at_3.max(pop.hour_of_day_hit_at_3),
        "hour-of-day hit@3 {} vs own {} and population {}",
        m.hour_of_day_hit_at_3,
        own.hour_of_day_hit_at_3,
        pop.hour_of_day_hit_at_3
    );
    assert!(b.send_time_selection.is_some());
}

#[test]
fn cdnow_backtest_beats_bgnbd_alone() {
    let cfg = TrainConfig {
        horizon_days: 90,
        ..Default::default()
    };
    let b = run(&data("cdnow"), &cfg).unwrap();
    let (auc, bg) = (b.churn.auc.unwrap(), b.churn_auc_bgnbd_only.unwrap());
    assert!(
        auc > 0.8 && auc >= bg - 0.005,
        "churn AUC {auc} vs BG/NBD {bg}"
    );
    assert!(b.churn.ece < 0.03, "ECE {}", b.churn.ece);
    assert!(b.affinity.is_empty(), "CDNOW has no categories");
    let ratio = b.clv.predicted_orders / b.clv.actual_orders;
    assert!(
        (0.8..1.25).contains(&ratio),
        "predicted/actual purchases {ratio}"
    );
}

#[test]
fn too_short_a_history_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventsWriter::create(&dir.path().join("events.parquet")).unwrap();
    let day = 86_400_000_000i64;
    for d in 0..40 {
        let id = format!("c{}", d % 7);
        w.push(&EventRow {
            customer_id: &id,
            ts_us: 1_704_067_200_000_000 + d * day,
            event_type: "purchase",
            amount: Some(5.0),
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
    let err = run(dir.path(), &TrainConfig::default()).unwrap_err();
    assert!(err.contains("too short for a 60-day horizon"), "{err}");
    assert!(err.contains("at least 121 days"), "{err}");
}

#[test]
fn categories_without_enough_positives_fall_back_to_smoothed_history() {
    // No category of the sample has 10,000 positives: every one must fall back, and the
    // fallback must still rank customers by their own category history.
    let cfg = TrainConfig {
        min_positives: 10_000,
        ..Default::default()
    };
    let b = run(&data("sample"), &cfg).unwrap();
    assert_eq!(b.affinity.len(), 8);
    for a in &b.affinity {
        assert_eq!(a.model, "smoothed", "{}", a.category);
        let auc = a.metrics.auc.unwrap();
        assert!(
            auc > 0.7 && a.metrics.log_loss.is_finite(),
            "{} AUC {auc}",
            a.category
        );
    }
}

/// `lattice train --as-of T` backtests before T: the result must be the one on a copy of the
/// data that ends at T.
#[test]
fn a_backtest_ending_early_reads_nothing_after_its_end() {
    let src = data("sample");
    let dir = tempfile::tempdir().unwrap();
    // 2025-05-31T23:59:59.999999Z: a month before the sample's last day.
    let end_us: i64 = 1_748_735_999_999_999;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = datafusion::prelude::SessionContext::new();
        let events = src.join("events.parquet");
        ctx.register_parquet("e", events.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let out = dir.path().join("events.parquet");
        ctx.sql(&format!(
            "COPY (SELECT * FROM e WHERE arrow_cast(ts, 'Int64') <= {end_us}) TO '{}' \
             STORED AS PARQUET",
            out.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    });
    for f in ["customers.parquet", "lattice.toml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let cfg = TrainConfig::default();
    let early = rt.block_on(async {
        let history = History::open(&src).await.unwrap();
        let profiles = load_profiles(&src).unwrap();
        let settings = Settings::load_or_default(&src.join("lattice.toml")).unwrap();
        backtest(&history, &profiles, &settings, &cfg, Some(end_us))
            .await
            .unwrap()
            .1
    });
    let cut = run(dir.path(), &cfg).unwrap();
    assert_eq!(early.test_window, cut.test_window);
    assert_eq!(early.test_window, "2025-04-02 .. 2025-05-31");
    assert_eq!(early.churn.n, cut.churn.n);
    assert!((early.churn.auc.unwrap() - cut.churn.auc.unwrap()).abs() < 1e-9);
    assert!((early.churn.log_loss - cut.churn.log_loss).abs() < 1e-9);
}

/// The purchase and spend models fitted through the feature pipeline (SQL aggregates, repeat
/// purchase days) on the CDNOW 1/10 sample at the end of the calibration period give the
/// paper's BG/NBD parameters (Fader, Hardie and Lee 2005, table 1) and the `lifetimes`
/// quickstart's Gamma-Gamma parameters, within 1%.
#[test]
fn cdnow_clv_models_through_the_pipeline_match_the_paper_and_lifetimes() {
    let dir = data("cdnow-sample");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clv = rt.block_on(async {
        let history = History::open(&dir).await.unwrap();
        // 1997-09-30T23:59:59.999999Z
        let as_of: i64 = 875_663_999_999_999;
        let aggs = history.aggregates(as_of, &[]).await.unwrap();
        let refs: Vec<_> = aggs.iter().map(|(i, a)| (i.as_str(), a)).collect();
        lattice_models::pipeline::ClvModels::fit(&refs, as_of, 50_000, RepeatCount::PurchaseDays)
            .unwrap()
    });
    let b = &clv.bgnbd;
    for (got, want, name) in [
        (b.r, 0.243, "r"),
        (b.alpha, 4.414, "alpha"),
        (b.a, 0.793, "a"),
        (b.b, 2.426, "b"),
    ] {
        assert!(
            (got / want - 1.0).abs() < 0.01,
            "{name} = {got}, the paper {want}"
        );
    }
    let g = clv.gamma_gamma.expect("CDNOW has repeat buyers");
    for (got, want, name) in [(g.p, 6.25, "p"), (g.q, 3.74, "q"), (g.v, 15.45, "v")] {
        assert!(
            (got / want - 1.0).abs() < 0.01,
            "{name} = {got}, lifetimes {want}"
        );
    }
}
