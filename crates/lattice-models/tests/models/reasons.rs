//! Churn reason codes on the committed sample: grouped, measured against the typical customer,
//! and true to the model (setting the top reason's features to the typical customer's values
//! lowers the score by exactly the stated contribution).

use std::path::PathBuf;

use lattice_catalog::settings::Settings;
use lattice_features::{History, load_profiles};
use lattice_models::logistic::compress;
use lattice_models::pipeline::{TrainConfig, backtest, snapshot};
use lattice_models::reasons::group;

#[test]
fn correlated_features_share_one_reason() {
    assert_eq!(group("monetary_total"), group("spend_365d"));
    assert_eq!(group("frequency"), group("orders_90d"));
    assert_eq!(group("recency_days"), group("bgnbd_p_alive"));
    assert_eq!(group("share_shoes"), group("view_share_bags"));
    assert_eq!(group("days_to_birthday"), "days_to_birthday");
}

#[test]
fn the_top_churn_reason_moves_the_score_the_way_it_says() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = TrainConfig::default();
    let (fitted, snap) = rt.block_on(async {
        let history = History::open(&dir).await.unwrap();
        let profiles = load_profiles(&dir).unwrap();
        let settings = Settings::load_or_default(&dir.join("lattice.toml")).unwrap();
        let (fitted, _) = backtest(&history, &profiles, &settings, &cfg, None)
            .await
            .unwrap();
        let (snap, _) = snapshot(
            &history,
            &profiles,
            &fitted.context,
            fitted.cutoff_us,
            cfg.horizon_days,
            Ok(&fitted.clv),
        )
        .await
        .unwrap();
        (fitted, snap)
    });
    let m = &fitted.churn;
    let k = m.features.len();
    assert_eq!(m.typical.len(), k);
    let (mut checked, mut spend_named_for_low_risk) = (0, 0);
    for row in snap.x.chunks_exact(snap.width) {
        let row = &row[..k];
        let compressed: Vec<f64> = row.iter().map(|&x| compress(x)).collect();
        let reasons = m.reasons_compressed(&compressed, 3);
        for pair in reasons.windows(2) {
            assert!(pair[0].contribution >= pair[1].contribution);
        }
        let Some(top) = reasons.first() else {
            continue;
        };
        assert!(top.contribution > 0.0);
        let mut typical = compressed.clone();
        for (j, value) in typical.iter_mut().enumerate() {
            if group(&m.features[j]) == top.feature {
                *value = m.typical[j] * m.scaler.std[j] + m.scaler.mean[j];
            }
        }
        let (before, after) = (
            m.logit_compressed(&compressed),
            m.logit_compressed(&typical),
        );
        let said = top.contribution / m.calibration.slope();
        assert!(
            (before - after - said).abs() < 1e-9 * said.abs().max(1.0),
            "{}: logit fell {} but the reason says {said}",
            top.feature,
            before - after
        );
        assert!(m.calibration.apply(after) <= m.calibration.apply(before) + 1e-12);
        let p = m.calibration.apply(before);
        if p < 0.1 && top.feature == "spend" {
            spend_named_for_low_risk += 1;
        }
        checked += 1;
    }
    assert!(checked > 1_000, "only {checked} customers had a reason");
    eprintln!(
        "{checked} customers checked; spend the top reason for {spend_named_for_low_risk} with p < 0.1"
    );
}
