//! The report rendered from small fitted models: every plot present, text escaped.

use std::collections::BTreeMap;

use lattice_features::FeatureContext;

use lattice_models::artifact::Manifest;
use lattice_models::pipeline::{AffinityModel, Backtest};
use lattice_models::score::Models;
use plotters::style::RGBColor;

use crate::charts::{TOP_COEFFICIENTS, ramp, top_coefficients};
use crate::format::{count, escape};
use crate::page::render;
use lattice_models::artifact::{DataFingerprint, FORMAT_VERSION, FeatureSpec};
use lattice_models::calibration::Calibration;
use lattice_models::clv::BgNbd;
use lattice_models::logistic::{LogisticModel, Standardizer};
use lattice_models::metrics::BinaryMetrics;
use lattice_models::pipeline::{
    CategoryMetrics, CategoryModel, ClvMetrics, ClvModels, Fitted, RepeatCount, TrainConfig,
};
use lattice_models::sendtime::{
    BacktestReport, Channel, ChannelReport, Comparison, Engagement, HeldOut, HitRates, Hyper,
    SendTimeCounts, SendTimeModel,
};

const ODD: &str = "Toys <&> \"Games\"";

fn models() -> Models {
    let features: Vec<String> = (0..20).map(|j| format!("feature_{j}")).collect();
    let churn = LogisticModel {
        features: features.clone(),
        scaler: Standardizer {
            mean: vec![0.0; 20],
            std: vec![1.0; 20],
        },
        weights: (0..20).map(|j| (j as f64 - 9.5) / 10.0).collect(),
        intercept: -0.3,
        alpha: 1.0,
        calibration: Calibration::IDENTITY,
        calibration_choice: None,
        typical: Vec::new(),
        reason_groups: Default::default(),
    };
    let eng: Vec<Engagement> = (0..300)
        .map(|i| Engagement {
            customer: i % 3,
            channel: Channel::Email,
            how: (i % 168) as u8,
        })
        .collect();
    let counts = SendTimeCounts::from_engagements(3, &eng).unwrap();
    Models {
        fitted: Fitted {
            cutoff_us: 0,
            config: TrainConfig::default(),
            context: FeatureContext {
                categories: vec![ODD.into()],
                tiers: vec![],
            },
            feature_names: features,
            churn,
            affinity: vec![CategoryModel {
                category: ODD.into(),
                model: AffinityModel::Smoothed {
                    base_rate: 0.1,
                    population_share: 1.0,
                    strength: 5.0,
                },
            }],
            clv: ClvModels {
                bgnbd: BgNbd {
                    r: 0.24,
                    alpha: 4.4,
                    a: 0.79,
                    b: 2.4,
                },
                gamma_gamma: None,
                repeat: RepeatCount::PurchaseDays,
            },
        },
        send_time: SendTimeModel::fit(&counts, [Hyper::DEFAULT; 4]).unwrap(),
    }
}

fn manifest() -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        lattice_version: "0.1.0".into(),
        name: "demo <script>".into(),
        created_at: "2025-07-01T00:00:00Z".into(),
        as_of: "2025-06-30T23:59:59Z".into(),
        as_of_us: 0,
        horizon_days: 60,
        affinity_days: 28,
        customers: 12345,
        categories: vec![ODD.into()],
        data: DataFingerprint {
            events: 1_000_000,
            first_event: "2024-01-01".into(),
            last_event: "2025-06-30".into(),
            files_sha256: "ab".repeat(32),
        },
        feature_transform: "z = (sign(x)*ln(1+|x|) - mean) / std".into(),
        feature_schema: vec![FeatureSpec {
            name: "feature_0".into(),
            mean: Some(0.0),
            std: Some(1.0),
        }],
        files: BTreeMap::new(),
        metrics: BTreeMap::new(),
        training_config: TrainConfig::default(),
    }
}

fn backtest() -> Backtest {
    let p: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
    let y: Vec<bool> = (0..1000).map(|i| (i * 7919) % 1000 < i).collect();
    let metrics = BinaryMetrics::compute(&p, &y);
    let hits = HitRates {
        hour_of_week_hit_at_1: 0.05,
        hour_of_week_hit_at_3: 0.12,
        hour_of_day_hit_at_1: 0.2,
        hour_of_day_hit_at_3: 0.45,
    };
    let cmp = Comparison {
        n_heldout: 500,
        model: hits,
        baseline: HitRates::default(),
        own: HitRates::default(),
    };
    Backtest {
        fit_cutoff: "2025-03-01".into(),
        test_window: "2025-03-02 .. 2025-06-30".into(),
        churn: metrics.clone(),
        churn_auc_bgnbd_only: Some(0.7),
        churn_alpha: 1.0,
        churn_calibration: "platt".into(),
        affinity: vec![CategoryMetrics {
            category: ODD.into(),
            model: "smoothed".into(),
            calibration: None,
            positives: 42,
            metrics,
        }],
        affinity_mean_auc: Some(0.8),
        clv: ClvMetrics {
            customers: 900,
            predicted_orders: 1234.5,
            actual_orders: 1200.0,
            mean_absolute_error: 0.8,
            correlation: f64::NAN,
        },
        send_time: Some(BacktestReport {
            hyper: [Hyper::DEFAULT; 4],
            heldout: HeldOut::Engagements,
            comparison: cmp,
            with_history: cmp,
            per_channel: vec![ChannelReport {
                channel: Channel::Email,
                hyper: Hyper::DEFAULT,
                comparison: cmp,
                with_history: cmp,
                grid: vec![],
            }],
        }),
        send_time_selection: None,
    }
}

#[test]
fn full_report_has_every_plot_and_escapes_text() {
    let b = backtest();
    let html = render(&manifest(), &models(), Some(&b));
    // ROC, reliability, lift, coefficients, heatmap.
    assert_eq!(html.matches("<svg").count(), 5, "{html}");
    assert_eq!(html.matches("</svg>").count(), 5);
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert!(html.contains("Toys &lt;&amp;&gt; &quot;Games&quot;"));
    assert!(!html.contains(ODD) && !html.contains("<script"));
    assert!(html.contains("demo &lt;script&gt;"));
    // Self-contained: no scripts, no external resources.
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
    assert!(!html.contains("could not be drawn"));
    assert!(!html.contains("Metrics were not computed"));
    // The calibration chosen for churn, and every category's reliability table.
    assert!(html.contains("churn (L2 α = 1, platt)"), "{html}");
    assert!(html.contains("Reliability tables by category"));
    assert!(html.contains("<th>churn calibration</th><td>Platt, a = 1"));
    for heading in [
        "AUC",
        "log loss",
        "Brier",
        "ECE",
        "top-decile lift",
        "hit@3",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(html.contains("n/a"), "a NaN correlation reads as n/a");
    // Top 15 coefficients, strongest first: feature_0 and feature_19 (|w| = 0.95).
    let top = top_coefficients(&models(), TOP_COEFFICIENTS);
    assert_eq!(top.len(), 15);
    assert_eq!(top[0].0, "feature_0");
    assert!(top.windows(2).all(|w| w[0].1.abs() >= w[1].1.abs()));
    assert!(html.contains(">\nfeature_0\n<") || html.contains(">feature_0<"));
}

#[test]
fn report_without_backtest_says_so() {
    let html = render(&manifest(), &models(), None);
    assert!(html.contains("Metrics were not computed"));
    // Coefficients and heatmap only.
    assert_eq!(html.matches("<svg").count(), 2, "{html}");
    assert!(html.contains("Toys &lt;&amp;&gt; &quot;Games&quot;</td><td class=\"l\">smoothed"));
    assert!(!html.contains("could not be drawn"));
}

#[test]
fn old_metrics_without_roc_render_a_note() {
    let mut b = backtest();
    b.churn.roc.clear();
    let html = render(&manifest(), &models(), Some(&b));
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("no ROC points"));
}

#[test]
fn helpers() {
    assert_eq!(count(1234567), "1,234,567");
    assert_eq!(count(999), "999");
    assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
    assert_eq!(ramp(0.0), RGBColor(68, 1, 84));
    assert_eq!(ramp(1.0), RGBColor(253, 231, 37));
}
