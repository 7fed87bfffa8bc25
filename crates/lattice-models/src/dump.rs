//! The exact rows a backtest fitted, validated and measured on, written to Parquet so that
//! outside baselines (`scripts/baselines.py`) run on the *same* split with the *same* features.
//!
//! [`write_backtest_features`] recomputes the three snapshots of [`crate::pipeline::fit`] with
//! the public helpers of [`crate::pipeline`]: features at `T − 2h` (training) and `T − h`
//! (validation), each with BG/NBD fitted at its own cutoff as the pipeline does, and at `T`
//! (test) with the purchase model fitted at `T`. It writes `train.parquet`, `valid.parquet`,
//! `test.parquet` and `meta.json` into a directory. Columns, in order:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `customer_id` | string | |
//! | every feature of `Fitted::feature_names` | f64 | as the models saw it |
//! | `churn_label` | bool, nullable | no purchase in `(as_of, as_of + horizon]`; null outside the churn population (no purchase by `as_of`) |
//! | `purchases_in_horizon` | f64 | purchase events (lines) in `(as_of, as_of + horizon]`, as `lattice evaluate`'s CLV check counts them |
//! | `orders_in_horizon` | f64 | distinct orders in `(as_of, as_of + horizon]`, as the features and BG/NBD count purchases |
//! | `affinity_<slug>` | bool | a purchase of the category in `(as_of, as_of + affinity_days]` |
//! | `rfm_frequency`, `rfm_recency`, `rfm_T`, `rfm_monetary_value` | f64, nullable | the BG/NBD summary at `as_of` in weeks, `lifetimes`' names behind an `rfm_` prefix (the features already have a `frequency`): as `clv.repeat` counts them (repeat purchase days by default: first to last purchase day, first day to the cutoff day, mean spend of the repeat days, 0 without); null without purchases |
//! | `in_fit_sample` | bool | train and valid only: the row is in the deterministic sample the models were fitted on |
//! | `lattice_churn_probability` | f64, nullable | test only: the churn model's calibrated probability; null outside the churn population |
//! | `lattice_affinity_<slug>` | f64 | test only: the category model's probability |
//!
//! Rows are sorted by `customer_id`. Nothing after `T` reaches a feature or a fitted model;
//! labels of the test rows come from `(T, end]`, which fitting never saw.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use lattice_data::arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use lattice_data::arrow::compute::{sort_to_indices, take_record_batch};
use lattice_data::arrow::datatypes::{DataType, Field, Schema};
use lattice_data::write::ParquetFile;
use lattice_features::features::slug;
use lattice_features::history::fmt_day;
use lattice_features::{History, Profile};
use serde::Serialize;

use crate::ModelError;
use crate::pipeline::{
    AffinityModel, ClvModels, Fitted, affinity_labels, churn_examples, fit_fraction, id_unit,
    labels, rfm, snapshot,
};

const DAY_US: i64 = lattice_features::aggregates::DAY_US;

/// Identifies the layout of the dump in `meta.json`.
pub const DUMP_FORMAT: &str = "lattice-backtest-features/1";

/// One of the three snapshots of a backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitMeta {
    pub name: String,
    pub file: String,
    /// The snapshot's cutoff: features use events up to and including it.
    pub as_of: String,
    pub as_of_us: i64,
    /// `(as_of, as_of + horizon]` as inclusive days.
    pub churn_label_window: String,
    pub affinity_label_window: String,
    pub rows: usize,
    /// Rows with a purchase by `as_of` (non-null `churn_label`).
    pub churn_population: usize,
    pub churn_positives: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryMeta {
    pub name: String,
    pub slug: String,
    /// `logistic` or `smoothed` (the own-history fallback for categories with few positives).
    pub lattice_model: String,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DumpMeta {
    pub format: String,
    pub lattice_version: String,
    pub horizon_days: i64,
    pub affinity_days: i64,
    /// `max(horizon_days, affinity_days)`: the spacing of the three cutoffs.
    pub window_days: i64,
    /// The last day of data: test labels come from `(test.as_of, data_end]`.
    pub data_end: String,
    pub splits: Vec<SplitMeta>,
    pub feature_names: Vec<String>,
    pub categories: Vec<CategoryMeta>,
    /// Unit of `rfm_recency` and `rfm_T`.
    pub rfm_unit: String,
    pub churn_alpha: f64,
    pub max_fit_rows: usize,
    /// BG/NBD and Gamma-Gamma fitted at the test cutoff (weeks): the source of the test rows'
    /// `bgnbd_*` features.
    pub clv_at_test_cutoff: ClvModels,
}

/// Columns of one file, built up in order.
#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
}

impl Columns {
    fn push(&mut self, field: Field, col: ArrayRef) {
        self.fields.push(field);
        self.cols.push(col);
    }

    /// Nullable in the schema only when a value is missing.
    fn f64(&mut self, name: &str, v: Vec<Option<f64>>) {
        let nullable = v.iter().any(Option::is_none);
        self.push(
            Field::new(name, DataType::Float64, nullable),
            Arc::new(Float64Array::from(v)),
        );
    }

    fn bool(&mut self, name: &str, v: Vec<Option<bool>>) {
        let nullable = v.iter().any(Option::is_none);
        self.push(
            Field::new(name, DataType::Boolean, nullable),
            Arc::new(BooleanArray::from(v)),
        );
    }
}

fn arrow_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Data(format!("building the feature dump: {e}"))
}

/// Writes the training, validation and test rows of the backtest whose models are `fitted`
/// into `dir` (created if missing). See the module docs for the columns.
pub async fn write_backtest_features(
    dir: &Path,
    history: &History,
    profiles: &HashMap<String, Profile>,
    fitted: &Fitted,
) -> Result<DumpMeta, ModelError> {
    let cfg = &fitted.config;
    let ctx = &fitted.context;
    let h = cfg.horizon_days.max(cfg.affinity_days);
    let t = fitted.cutoff_us;
    let end = t + h * DAY_US;
    std::fs::create_dir_all(dir)
        .map_err(|e| ModelError::Data(format!("creating {}: {e}", dir.display())))?;
    let slugs: Vec<String> = ctx.categories.iter().map(|c| slug(c)).collect();
    let mut splits = Vec::new();
    for (name, as_of, is_test) in [
        ("train", t - 2 * h * DAY_US, false),
        ("valid", t - h * DAY_US, false),
        ("test", t, true),
    ] {
        let clv = if is_test {
            Ok(&fitted.clv)
        } else {
            Err(fitted.clv.repeat)
        };
        let (snap, _) = snapshot(history, profiles, ctx, as_of, cfg.horizon_days, clv).await?;
        let lab = labels(history, as_of, cfg, ctx, 1.0).await?;
        let n = snap.len();

        let mut t_cols = Columns::default();
        t_cols.push(
            Field::new("customer_id", DataType::Utf8, false),
            Arc::new(StringArray::from_iter_values(snap.ids())),
        );
        for (j, fname) in fitted.feature_names.iter().enumerate() {
            t_cols.f64(fname, (0..n).map(|i| Some(snap.row(i)[j])).collect());
        }
        // Churn labels, aligned to snapshot rows; null outside the population.
        let (cx, cy, crows) = churn_examples(&snap, &lab);
        let mut churn: Vec<Option<bool>> = vec![None; n];
        for (&i, &y) in crows.iter().zip(&cy) {
            churn[i] = Some(y);
        }
        t_cols.bool("churn_label", churn);
        t_cols.f64(
            "purchases_in_horizon",
            snap.ids()
                .map(|id| Some(lab.get(id).map_or(0.0, |l| l.purchases_in_horizon)))
                .collect(),
        );
        // Distinct orders, as the features and BG/NBD count them: orders by the end of the
        // horizon less orders by `as_of`.
        let later: HashMap<String, f64> = history
            .aggregates(as_of + cfg.horizon_days * DAY_US, &ctx.categories)
            .await
            .map_err(|e| ModelError::Data(e.to_string()))?
            .iter()
            .map(|(id, a)| (id.clone(), a.orders))
            .collect();
        t_cols.f64(
            "orders_in_horizon",
            snap.customers
                .iter()
                .map(|(id, a)| Some(later.get(id).map_or(0.0, |o| (o - a.orders).max(0.0))))
                .collect(),
        );
        for (c, s) in slugs.iter().enumerate() {
            let y = affinity_labels(&snap, &lab, c);
            t_cols.bool(&format!("affinity_{s}"), y.into_iter().map(Some).collect());
        }
        let rfms: Vec<_> = snap
            .aggregates()
            .map(|a| rfm(a, as_of, fitted.clv.repeat))
            .collect();
        t_cols.f64(
            "rfm_frequency",
            rfms.iter().map(|r| r.map(|r| r.frequency)).collect(),
        );
        t_cols.f64(
            "rfm_recency",
            rfms.iter().map(|r| r.map(|r| r.recency)).collect(),
        );
        t_cols.f64("rfm_T", rfms.iter().map(|r| r.map(|r| r.age)).collect());
        t_cols.f64(
            "rfm_monetary_value",
            rfms.iter().map(|r| r.map(|r| r.monetary)).collect(),
        );
        if is_test {
            let p = fitted.churn.predict_all(&cx);
            let mut churn_p: Vec<Option<f64>> = vec![None; n];
            for (&i, &p) in crows.iter().zip(&p) {
                churn_p[i] = Some(p);
            }
            t_cols.f64("lattice_churn_probability", churn_p);
            for (c, m) in fitted.affinity.iter().enumerate() {
                let v = (0..n)
                    .map(|i| Some(m.predict(snap.row(i), snap.aggregate(i), c)))
                    .collect();
                t_cols.f64(&format!("lattice_affinity_{}", slugs[c]), v);
            }
        } else {
            let keep = fit_fraction(history, cfg.max_fit_rows).await?;
            t_cols.bool(
                "in_fit_sample",
                snap.ids().map(|id| Some(id_unit(id) < keep)).collect(),
            );
        }
        let Columns { fields, cols } = t_cols;
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name().as_str())) {
            return Err(ModelError::Data(format!(
                "the feature dump would have two columns named {:?}: a feature or category \
                 name collides with a label or summary column",
                dup.name()
            )));
        }

        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(arrow_err)?;
        // Rows by customer id, so the files do not depend on the query engine's row order.
        let order = sort_to_indices(batch.column(0), None, None).map_err(arrow_err)?;
        let batch = take_record_batch(&batch, &order).map_err(arrow_err)?;
        let file = format!("{name}.parquet");
        let path = dir.join(&file);
        let mut w = ParquetFile::create(&path, schema).map_err(arrow_err)?;
        w.write(&batch).map_err(arrow_err)?;
        w.finish().map_err(arrow_err)?;

        let window = |days: i64| {
            format!(
                "{} .. {}",
                fmt_day(as_of + DAY_US),
                fmt_day(as_of + days * DAY_US)
            )
        };
        splits.push(SplitMeta {
            name: name.into(),
            file,
            as_of: fmt_day(as_of),
            as_of_us: as_of,
            churn_label_window: window(cfg.horizon_days),
            affinity_label_window: window(cfg.affinity_days),
            rows: n,
            churn_population: cy.len(),
            churn_positives: cy.iter().filter(|&&y| y).count(),
        });
    }
    let meta = DumpMeta {
        format: DUMP_FORMAT.into(),
        lattice_version: env!("CARGO_PKG_VERSION").into(),
        horizon_days: cfg.horizon_days,
        affinity_days: cfg.affinity_days,
        window_days: h,
        data_end: fmt_day(end),
        splits,
        feature_names: fitted.feature_names.clone(),
        categories: fitted
            .affinity
            .iter()
            .zip(&slugs)
            .map(|(m, s)| CategoryMeta {
                name: m.category.clone(),
                slug: s.clone(),
                lattice_model: match m.model {
                    AffinityModel::Logistic(_) => "logistic".into(),
                    AffinityModel::Smoothed { .. } => "smoothed".into(),
                },
            })
            .collect(),
        rfm_unit: "weeks".into(),
        churn_alpha: fitted.churn.alpha,
        max_fit_rows: cfg.max_fit_rows,
        clv_at_test_cutoff: fitted.clv.clone(),
    };
    let path = dir.join("meta.json");
    let text = serde_json::to_string_pretty(&meta).map_err(arrow_err)?;
    let tmp = dir.join("meta.json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| ModelError::Data(format!("writing {}: {e}", path.display())))?;
    Ok(meta)
}
