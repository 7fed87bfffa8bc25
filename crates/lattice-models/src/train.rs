//! `lattice train`: backtest, fit at the end of the data, score every customer and write the
//! model directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lattice_data::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use lattice_data::arrow::datatypes::{DataType, Field, Schema};
use lattice_data::settings::Settings;
use lattice_data::write::ParquetFile;
use lattice_features::features::slug;
use lattice_features::history::fmt_day;
use lattice_features::{History, TimeZones, load_profiles};

use crate::ModelError;
use crate::artifact::{
    DataFingerprint, FeatureSpec, METRICS, Manifest, ModelWriter, SNAPSHOT, WEIGHTS, sha256_bytes,
};
use crate::pipeline::{Backtest, TrainConfig, backtest, engagements, fit, snapshot};
use crate::score::Models;
use crate::sendtime::{Channel, SendTimeCounts, SendTimeModel};

const DAY_US: i64 = lattice_features::aggregates::DAY_US;

pub struct TrainOptions {
    pub name: String,
    pub config: TrainConfig,
    /// Fit with data up to here; default: the end of the data.
    pub as_of_us: Option<i64>,
    /// Run the backtest first (metrics.json and the send-time hyper-parameters).
    pub backtest: bool,
}

pub struct Trained {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub backtest: Option<Backtest>,
}

fn err<E: std::fmt::Display>(e: E) -> ModelError {
    ModelError::Data(e.to_string())
}

fn fingerprint(history: &History, data_dir: &Path) -> DataFingerprint {
    let mut listing = String::new();
    let loc = lattice_data::events::events_location(data_dir);
    for f in lattice_data::events::event_files(&loc).unwrap_or_default() {
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        listing.push_str(&format!(
            "{}:{size}\n",
            f.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
    }
    DataFingerprint {
        events: history.events,
        first_event: fmt_day(history.first_event_us),
        last_event: fmt_day(history.last_event_us),
        files_sha256: sha256_bytes(listing.as_bytes()),
    }
}

pub async fn train(
    data_dir: &Path,
    out: &Path,
    opts: &TrainOptions,
) -> Result<Trained, ModelError> {
    let settings = Settings::load_or_default(&data_dir.join("lattice.toml")).map_err(err)?;
    let history = History::open(data_dir).await.map_err(err)?;
    let profiles = load_profiles(data_dir).map_err(err)?;
    let cfg = &opts.config;
    let report = if opts.backtest {
        Some(backtest(&history, &profiles, &settings, cfg).await?.1)
    } else {
        None
    };
    let end = (history.last_event_us.div_euclid(DAY_US) + 1) * DAY_US - 1;
    let cutoff = opts.as_of_us.unwrap_or(end).min(end);
    let fitted = fit(&history, &profiles, settings.tiers.clone(), cfg, cutoff).await?;
    let (snap, _) = snapshot(
        &history,
        &profiles,
        &fitted.context,
        cutoff,
        cfg.horizon_days,
        Some(&fitted.clv),
    )
    .await?;

    let zones = TimeZones::new(&profiles, &settings.default_timezone).map_err(err)?;
    let index: HashMap<String, u32> = snap
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i as u32))
        .collect();
    let (eng, _) = engagements(&history, &zones, &index, cutoff, cutoff).await?;
    let counts = SendTimeCounts::from_engagements(snap.ids.len(), &eng).map_err(err)?;
    let (kappa, beta) = report
        .as_ref()
        .and_then(|r| r.send_time.as_ref())
        .map_or((16.0, 0.5), |s| (s.kappa, s.beta));
    let send_time = SendTimeModel::fit(&counts, kappa, beta).map_err(err)?;
    let models = Models { fitted, send_time };

    let writer = ModelWriter::create(out).map_err(err)?;
    write_snapshot(&writer.path(SNAPSHOT), &models, &snap, &counts)?;
    writer.write_json(WEIGHTS, &models).map_err(err)?;
    let mut metrics = BTreeMap::new();
    if let Some(r) = &report {
        writer.write_json(METRICS, r).map_err(err)?;
        if let Some(v) = r.churn.auc {
            metrics.insert("churn_auc".into(), v);
        }
        metrics.insert("churn_ece".into(), r.churn.ece);
        metrics.insert("churn_brier".into(), r.churn.brier);
        if let Some(v) = r.affinity_mean_auc {
            metrics.insert("affinity_mean_auc".into(), v);
        }
        if let Some(s) = &r.send_time {
            metrics.insert("send_time_hit_at_3".into(), s.model.hour_of_week_hit_at_3);
            metrics.insert(
                "send_time_population_hit_at_3".into(),
                s.baseline.hour_of_week_hit_at_3,
            );
        }
    }
    let churn = &models.fitted.churn;
    let manifest = Manifest {
        format_version: crate::artifact::FORMAT_VERSION,
        lattice_version: env!("CARGO_PKG_VERSION").into(),
        name: opts.name.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        as_of: chrono::DateTime::from_timestamp_micros(cutoff)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        as_of_us: cutoff,
        horizon_days: cfg.horizon_days,
        affinity_days: cfg.affinity_days,
        customers: snap.ids.len() as u64,
        categories: models.fitted.context.categories.clone(),
        data: fingerprint(&history, data_dir),
        feature_transform: "z = (sign(x)*ln(1+|x|) - mean) / std".into(),
        feature_schema: churn
            .features
            .iter()
            .enumerate()
            .map(|(j, n)| FeatureSpec {
                name: n.clone(),
                mean: churn.scaler.mean[j],
                std: churn.scaler.std[j],
            })
            .collect(),
        files: BTreeMap::new(),
        metrics,
        training_config: cfg.clone(),
    };
    let dir = writer.commit(manifest.clone()).map_err(err)?;
    Ok(Trained {
        dir,
        manifest,
        backtest: report,
    })
}

fn list_i32(values: &[u8]) -> Vec<Option<i32>> {
    values.iter().map(|&v| Some(i32::from(v))).collect()
}

/// Writes one row per customer: features at as_of, then the score columns of `lattice score`.
fn write_snapshot(
    path: &Path,
    models: &Models,
    snap: &crate::pipeline::Snapshot,
    counts: &SendTimeCounts,
) -> Result<(), ModelError> {
    let f = &models.fitted;
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    fields.extend(
        f.feature_names
            .iter()
            .map(|n| Field::new(n, DataType::Float64, false)),
    );
    let score_names = ["churn_probability", "p_alive", "expected_purchases", "clv"];
    fields.extend(
        score_names
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, false)),
    );
    let cats: Vec<String> = f
        .context
        .categories
        .iter()
        .map(|c| format!("affinity_{}", slug(c)))
        .collect();
    fields.extend(cats.iter().map(|n| Field::new(n, DataType::Float64, false)));
    let list = |n: &str| {
        Field::new(
            n,
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        )
    };
    fields.push(Field::new(
        "churn_reasons",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        false,
    ));
    // Overall send times (all channels pooled, via the "any" profile), then per channel where
    // the channel has the customer's own data (null otherwise).
    let mut send_cols = vec![];
    for suffix in ["", "_email", "_sms", "_push"] {
        send_cols.push(format!("best_hour_of_day{suffix}"));
        send_cols.push(format!("top3_hours_of_day{suffix}"));
        send_cols.push(format!("best_hour_of_week{suffix}"));
        send_cols.push(format!("top3_hours_of_week{suffix}"));
    }
    for (i, n) in send_cols.iter().enumerate() {
        fields.push(if i % 2 == 0 {
            Field::new(n, DataType::Int32, true)
        } else {
            list(n)
        });
    }
    let schema = Arc::new(Schema::new(fields));

    let n = snap.ids.len();
    let width = snap.width;
    let mut ids = StringBuilder::new();
    let mut feat: Vec<Float64Builder> = (0..width)
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut scores: Vec<Float64Builder> = (0..score_names.len() + cats.len())
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut reasons = ListBuilder::new(StringBuilder::new());
    let mut ints: Vec<Int32Builder> = (0..8).map(|_| Int32Builder::with_capacity(n)).collect();
    let mut lists: Vec<ListBuilder<Int32Builder>> = (0..8)
        .map(|_| ListBuilder::new(Int32Builder::new()))
        .collect();
    let mut scratch = vec![0.0; width];
    let channels = [Channel::Any, Channel::Email, Channel::Sms, Channel::Push];
    for i in 0..n {
        ids.append_value(&snap.ids[i]);
        let row = snap.row(i);
        for (b, v) in feat.iter_mut().zip(row) {
            b.append_value(*v);
        }
        let s = models.score(row, &snap.aggregates[i], &mut scratch);
        let vals = [s.churn_probability, s.p_alive, s.expected_purchases, s.clv];
        for (b, v) in scores.iter_mut().zip(vals.iter().chain(&s.affinity)) {
            b.append_value(*v);
        }
        for r in &s.churn_reasons {
            reasons.values().append_value(&r.feature);
        }
        reasons.append(true);
        let cc = counts
            .customer(i)
            .unwrap_or(crate::sendtime::CustomerCounts::EMPTY);
        for (k, ch) in channels.iter().enumerate() {
            let rec = models.send_time.recommend(&cc, *ch);
            // Per-channel columns only when the customer has data on that channel.
            let own = k == 0 || rec.source == crate::sendtime::ProfileSource::Channel;
            let (d, w) = (2 * k, 2 * k + 1);
            if own {
                ints[d].append_value(i32::from(rec.best_hour_of_day()));
                lists[d].append_value(list_i32(&rec.top3_hours_of_day()));
                ints[w].append_value(i32::from(rec.best_hour_of_week()));
                lists[w].append_value(list_i32(&rec.top3_hours_of_week()));
            } else {
                ints[d].append_null();
                lists[d].append_null();
                ints[w].append_null();
                lists[w].append_null();
            }
        }
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(ids.finish())];
    cols.extend(feat.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.extend(scores.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.push(Arc::new(reasons.finish()));
    for k in 0..4 {
        let (d, w) = (2 * k, 2 * k + 1);
        cols.push(Arc::new(ints[d].finish()));
        cols.push(Arc::new(lists[d].finish()));
        cols.push(Arc::new(ints[w].finish()));
        cols.push(Arc::new(lists[w].finish()));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(err)?;
    let mut file = ParquetFile::create(path, schema).map_err(err)?;
    file.write(&batch).map_err(err)?;
    file.finish().map_err(err)?;
    Ok(())
}
