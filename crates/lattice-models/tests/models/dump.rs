//! The backtest feature dump (`lattice evaluate --dump-features`): three Parquet files with the
//! documented columns, at the backtest's cutoffs, holding the very rows and predictions the
//! backtest measured.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

use lattice_catalog::settings::Settings;
use lattice_data::arrow::array::{Array, AsArray, RecordBatch};
use lattice_data::arrow::datatypes::{DataType, Float64Type};
use lattice_data::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_features::features::slug;
use lattice_features::{History, load_profiles};
use lattice_models::dump::write_backtest_features;
use lattice_models::metrics::auc;
use lattice_models::pipeline::{TrainConfig, backtest};

const DAY_US: i64 = 86_400_000_000;

fn read(path: &std::path::Path) -> RecordBatch {
    let file = File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    lattice_data::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn f64s(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"));
    let c = c.as_primitive::<Float64Type>();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i)))
        .collect()
}

fn bools(b: &RecordBatch, name: &str) -> Vec<Option<bool>> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .as_boolean();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i)))
        .collect()
}

#[test]
fn dump_holds_the_rows_the_backtest_measured() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample");
    let out = tempfile::tempdir().unwrap();
    let cfg = TrainConfig::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (fitted, report, meta) = rt.block_on(async {
        let history = History::open(&dir).await.unwrap();
        let profiles = load_profiles(&dir).unwrap();
        let settings = Settings::load_or_default(&dir.join("lattice.toml")).unwrap();
        let (fitted, report) = backtest(&history, &profiles, &settings, &cfg, None)
            .await
            .unwrap();
        let meta = write_backtest_features(out.path(), &history, &profiles, &fitted)
            .await
            .unwrap();
        (fitted, report, meta)
    });

    // The cutoffs of the time-split protocol.
    let h = cfg.horizon_days.max(cfg.affinity_days);
    let cutoffs: HashMap<&str, i64> = meta
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.as_of_us))
        .collect();
    assert_eq!(cutoffs["test"], fitted.cutoff_us);
    assert_eq!(cutoffs["valid"], fitted.cutoff_us - h * DAY_US);
    assert_eq!(cutoffs["train"], fitted.cutoff_us - 2 * h * DAY_US);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("meta.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "lattice-backtest-features/1");
    assert_eq!(json["horizon_days"], cfg.horizon_days);
    assert_eq!(json["categories"].as_array().unwrap().len(), 8);

    let slugs: Vec<String> = fitted.context.categories.iter().map(|c| slug(c)).collect();
    for split in ["train", "valid", "test"] {
        let b = read(&out.path().join(format!("{split}.parquet")));
        let s = meta.splits.iter().find(|s| s.name == split).unwrap();
        assert_eq!(b.num_rows(), s.rows, "{split}");
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[0], "customer_id");
        // Every feature, in the models' order, as f64.
        assert_eq!(
            &names[1..=fitted.feature_names.len()],
            fitted
                .feature_names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
        );
        for f in &fitted.feature_names {
            assert_eq!(
                schema.field_with_name(f).unwrap().data_type(),
                &DataType::Float64
            );
        }
        let mut expected = vec![
            "churn_label".to_string(),
            "purchases_in_horizon".into(),
            "orders_in_horizon".into(),
        ];
        expected.extend(slugs.iter().map(|s| format!("affinity_{s}")));
        expected.extend(
            [
                "rfm_frequency",
                "rfm_recency",
                "rfm_T",
                "rfm_monetary_value",
            ]
            .map(String::from),
        );
        if split == "test" {
            expected.push("lattice_churn_probability".into());
            expected.extend(slugs.iter().map(|s| format!("lattice_affinity_{s}")));
        } else {
            expected.push("in_fit_sample".into());
        }
        assert_eq!(
            &names[1 + fitted.feature_names.len()..],
            expected
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
            "{split}"
        );

        // The churn population is the customers with a purchase, and only they have an RFM
        // summary; frequency is repeat purchase days: at most the repeat orders.
        let churn = bools(&b, "churn_label");
        let has_purchase = f64s(&b, "has_purchase");
        let freq = f64s(&b, "rfm_frequency");
        let orders = f64s(&b, "frequency");
        for i in 0..b.num_rows() {
            let bought = has_purchase[i] == Some(1.0);
            assert_eq!(churn[i].is_some(), bought, "{split} row {i}");
            assert_eq!(freq[i].is_some(), bought, "{split} row {i}");
            if let (Some(x), Some(n)) = (freq[i], orders[i]) {
                assert!(
                    x >= 0.0 && x <= n - 1.0,
                    "{split} row {i}: {x} of {n} orders"
                );
            }
        }
        assert_eq!(churn.iter().flatten().count(), s.churn_population);
        // A churned customer has no order in the horizon, and vice versa.
        let orders_h = f64s(&b, "orders_in_horizon");
        for i in 0..b.num_rows() {
            if let Some(c) = churn[i] {
                assert_eq!(c, orders_h[i] == Some(0.0), "{split} row {i}");
            }
        }

        if split == "test" {
            // The dump's predictions and labels give back the backtest's own metrics.
            let (mut p, mut y) = (Vec::new(), Vec::new());
            for (pi, yi) in f64s(&b, "lattice_churn_probability").iter().zip(&churn) {
                assert_eq!(pi.is_some(), yi.is_some());
                if let (Some(pi), Some(yi)) = (pi, yi) {
                    p.push(*pi);
                    y.push(*yi);
                }
            }
            assert_eq!(p.len(), report.churn.n);
            assert_eq!(auc(&p, &y), report.churn.auc);
            let bg: Vec<f64> = f64s(&b, "bgnbd_p_no_purchase")
                .iter()
                .zip(&churn)
                .filter(|(_, c)| c.is_some())
                .map(|(v, _)| v.unwrap())
                .collect();
            assert_eq!(auc(&bg, &y), report.churn_auc_bgnbd_only);
            for (c, s) in slugs.iter().enumerate() {
                let p: Vec<f64> = f64s(&b, &format!("lattice_affinity_{s}"))
                    .into_iter()
                    .map(Option::unwrap)
                    .collect();
                let y: Vec<bool> = bools(&b, &format!("affinity_{s}"))
                    .into_iter()
                    .map(Option::unwrap)
                    .collect();
                assert_eq!(auc(&p, &y), report.affinity[c].metrics.auc, "{s}");
                assert_eq!(
                    y.iter().filter(|&&v| v).count(),
                    report.affinity[c].positives
                );
            }
        }
    }
}
