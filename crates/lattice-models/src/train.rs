//! `lattice train`: backtest, fit at the end of the data, score every customer and write the
//! model directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lattice_catalog::settings::Settings;
use lattice_features::history::fmt_day;
use lattice_features::{History, TimeZones, load_profiles};

use crate::ModelError;
use crate::artifact::{
    DataFingerprint, FeatureSpec, METRICS, Manifest, ModelWriter, SNAPSHOT, WEIGHTS, sha256_bytes,
};
use crate::pipeline::{Backtest, TrainConfig, backtest, data_end, engagements, fit_with, snapshot};
use crate::score::Models;
use crate::sendtime::{SendTimeCounts, SendTimeModel};
use crate::snapshot::{CONTACT_DAYS, SnapshotInputs};

const DAY_US: i64 = lattice_features::aggregates::DAY_US;

pub struct TrainOptions {
    pub name: String,
    pub config: TrainConfig,
    /// Fit with data up to here; default: the end of the data.
    pub as_of_us: Option<i64>,
    /// Run the backtest first (metrics.json and the send-time hyper-parameters).
    pub backtest: bool,
    /// Writes `report.html` into the directory (checksummed like every other file); `None`:
    /// no report. The renderer lives in `lattice-report`, so this crate does not build plots.
    pub report: Option<RenderReport>,
    /// Replace `out` even when it is not a model directory (`--force`).
    pub force: bool,
    /// Run the aggregation and label queries on this cluster session (`--cluster`); the fits
    /// stay in this process, on the aggregated rows.
    pub cluster: Option<lattice_features::SessionContext>,
}

/// Renders a model and its backtest as one HTML page (`lattice_report::render`).
pub type RenderReport = fn(&Manifest, &Models, Option<&Backtest>) -> String;

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
    train_with_progress(data_dir, out, opts, &|_| {}).await
}

/// The steps of [`train`], in order, as reported to a progress callback.
pub const TRAIN_STEPS: [&str; 6] = [
    "reading and validating the history",
    "backtest (fit at end - horizon, measure after it)",
    "fitting at the end of the data",
    "scoring every customer",
    "send-time profiles and recent contacts",
    "writing the model directory",
];

/// [`train`], calling `step(i)` as step `TRAIN_STEPS[i]` starts (for progress bars).
pub async fn train_with_progress(
    data_dir: &Path,
    out: &Path,
    opts: &TrainOptions,
    step: &(dyn Fn(usize) + Sync),
) -> Result<Trained, ModelError> {
    step(0);
    // Refuse before the work, not after it.
    lattice_data::output::check_dir(out, lattice_data::output::MODEL_DIR, opts.force)
        .map_err(err)?;
    let settings = Settings::load_or_default(&data_dir.join("lattice.toml")).map_err(err)?;
    let history = History::open_on(data_dir, opts.cluster.clone())
        .await
        .map_err(err)?;
    let profiles = load_profiles(data_dir).map_err(err)?;
    let cfg = &opts.config;
    let end = data_end(&history);
    let cutoff = opts.as_of_us.unwrap_or(end).min(end);
    let (earlier, report) = if opts.backtest {
        step(1);
        // Measured before the cutoff, so `--as-of` never reads what came after it.
        let (f, b) = backtest(&history, &profiles, &settings, cfg, Some(cutoff)).await?;
        (Some(f), Some(b))
    } else {
        (None, None)
    };
    step(2);
    let fitted = fit_with(
        &history,
        &profiles,
        settings.tiers.clone(),
        cfg,
        cutoff,
        earlier.as_ref(),
    )
    .await?;
    step(3);
    let (snap, _) = snapshot(
        &history,
        &profiles,
        &fitted.context,
        cutoff,
        cfg.horizon_days,
        Ok(&fitted.clv),
    )
    .await?;

    let zones = TimeZones::new(&profiles, &settings.default_timezone).map_err(err)?;
    step(4);
    let (eng, _) = engagements(&history, &zones, &snap.index(), 1.0, cutoff, cutoff).await?;
    let counts = SendTimeCounts::from_engagements(snap.len(), &eng).map_err(err)?;
    let (kappa, beta) = report
        .as_ref()
        .and_then(|r| r.send_time.as_ref())
        .map_or((16.0, 0.5), |s| (s.kappa, s.beta));
    let send_time = SendTimeModel::fit(&counts, kappa, beta).map_err(err)?;
    let models = Models { fitted, send_time };

    let contacts = history
        .contacts(cutoff - CONTACT_DAYS * DAY_US, cutoff)
        .await
        .map_err(err)?;
    let tier_names: Vec<String> = settings.tiers.iter().map(|t| t.name.clone()).collect();
    step(5);
    let writer = ModelWriter::create(out, opts.force).map_err(err)?;
    crate::snapshot::write(
        &writer.path(SNAPSHOT),
        &SnapshotInputs {
            models: &models,
            snap: &snap,
            counts: &counts,
            profiles: &profiles,
            contacts: &contacts,
            tier_names: &tier_names,
            default_timezone: &settings.default_timezone,
        },
    )?;
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
        customers: snap.len() as u64,
        categories: models.fitted.context.categories.clone(),
        data: fingerprint(&history, data_dir),
        feature_transform: "z = (sign(x)*ln(1+|x|) - mean) / std".into(),
        feature_schema: models
            .fitted
            .feature_names
            .iter()
            .map(|n| {
                let j = churn.features.iter().position(|c| c == n);
                FeatureSpec {
                    name: n.clone(),
                    mean: j.map(|j| churn.scaler.mean[j]),
                    std: j.map(|j| churn.scaler.std[j]),
                }
            })
            .collect(),
        files: BTreeMap::new(),
        metrics,
        training_config: cfg.clone(),
    };
    if let Some(render) = opts.report {
        let html = render(&manifest, &models, report.as_ref());
        writer
            .write_text(crate::artifact::REPORT, &html)
            .map_err(err)?;
    }
    // The action catalog and program settings travel with the model, so the server loads
    // (and reloads) a consistent set. A broken catalog fails here, not at serving time.
    for file in [crate::artifact::ACTIONS, crate::artifact::SETTINGS] {
        let path = data_dir.join(file);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?;
            if file == crate::artifact::ACTIONS {
                lattice_catalog::actions::ActionCatalog::parse(&text)
                    .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?;
            }
            writer.write_text(file, &text).map_err(err)?;
        }
    }
    let dir = writer.commit(manifest.clone()).map_err(err)?;
    Ok(Trained {
        dir,
        manifest,
        backtest: report,
    })
}
