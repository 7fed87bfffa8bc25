//! Model artifacts: the contract between `lattice train` and the server.
//!
//! ```text
//! models/<name>/
//!   manifest.json     format version, as_of, horizon, data fingerprint, feature schema with
//!                     standardisation, SHA-256 of every other file, metrics summary, config
//!   weights.json      every fitted model, readable from a notebook
//!   snapshot.parquet  per customer: features at as_of, scores, send times
//!   metrics.json      the backtest report (when one was run)
//!   report.html       the model and its backtest for people: tables and SVG plots
//! ```
//!
//! A model directory is written under a temporary name beside its destination and renamed
//! into place, so a crash never leaves a half-written model; readers verify the checksums.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use lattice_data::output::{MODEL_DIR, OutputDir};

use crate::pipeline::TrainConfig;
use crate::score::Models;

/// 2: the snapshot carries each customer's aggregates (`agg_*` columns) for online events.
/// 3: per-category rhythm features, affinity input sets, calibration choice.
/// 4: purchase days and the first day's spend in the aggregates; BG/NBD's repeat count
/// (`training_config.clv_frequency`, `clv.repeat` in weights.json).
/// 5: send time smoothed per channel (`send_time.hyper`: κ, β and circular smoothing).
pub const FORMAT_VERSION: u32 = 5;
pub const MANIFEST: &str = "manifest.json";
pub const WEIGHTS: &str = "weights.json";
pub const SNAPSHOT: &str = "snapshot.parquet";
pub const METRICS: &str = "metrics.json";
pub const REPORT: &str = "report.html";
/// Copied from the data directory when present: the action catalog and program settings.
pub const ACTIONS: &str = "actions.toml";
pub const SETTINGS: &str = "lattice.toml";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}", path = .path.display())]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> ArtifactError {
    ArtifactError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// One feature of the schema, with the standardisation the churn model applies to it
/// (absent for the per-category features only the affinity models read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
}

/// What the history looked like: enough to tell two trainings' data apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    pub events: u64,
    pub first_event: String,
    pub last_event: String,
    /// SHA-256 over the names and sizes of the input files.
    pub files_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub lattice_version: String,
    pub name: String,
    pub created_at: String,
    pub as_of: String,
    pub as_of_us: i64,
    pub horizon_days: i64,
    pub affinity_days: i64,
    pub customers: u64,
    pub categories: Vec<String>,
    pub data: DataFingerprint,
    /// How `feature_schema`'s mean and std apply: `z = (sign(x)·ln(1+|x|) − mean) / std`.
    pub feature_transform: String,
    pub feature_schema: Vec<FeatureSpec>,
    /// SHA-256 (hex) of every other file in the directory.
    pub files: BTreeMap<String, String>,
    /// Headline backtest figures (the full report is metrics.json).
    pub metrics: BTreeMap<String, f64>,
    pub training_config: TrainConfig,
}

/// A JSON error without the file's values (a server reads these at a client's request).
fn json_error(e: &serde_json::Error) -> String {
    lattice_catalog::redact(&e.to_string())
}

pub fn sha256_file(path: &Path) -> Result<String, ArtifactError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A model directory being written: files go to a temporary sibling directory until
/// [`ModelWriter::commit`] checksums them, writes the manifest and renames it into place
/// (`lattice_data::output`: an existing path is replaced only when it is a model directory,
/// empty, or `force`).
pub struct ModelWriter {
    out: OutputDir,
}

fn data_err(e: lattice_data::DataError) -> ArtifactError {
    match e {
        lattice_data::DataError::Io { path, source } => ArtifactError::Io { path, source },
        other => ArtifactError::Invalid {
            path: PathBuf::new(),
            message: other.to_string(),
        },
    }
}

impl ModelWriter {
    pub fn create(dest: &Path, force: bool) -> Result<Self, ArtifactError> {
        if dest.file_name().is_none() {
            return Err(invalid(dest, "a model directory needs a name"));
        }
        let out = OutputDir::create(dest, MODEL_DIR, force).map_err(data_err)?;
        Ok(ModelWriter { out })
    }

    /// Where to write a file of the model before it is committed.
    pub fn path(&self, file: &str) -> PathBuf {
        self.out.path().join(file)
    }

    pub fn write_json<T: Serialize>(&self, file: &str, value: &T) -> Result<(), ArtifactError> {
        let path = self.path(file);
        let text = serde_json::to_vec_pretty(value).map_err(|e| invalid(&path, e.to_string()))?;
        std::fs::write(&path, text).map_err(io(&path))
    }

    pub fn write_text(&self, file: &str, text: &str) -> Result<(), ArtifactError> {
        let path = self.path(file);
        std::fs::write(&path, text).map_err(io(&path))
    }

    /// Checksums every file, writes the manifest and swaps the directory into place.
    pub fn commit(self, mut manifest: Manifest) -> Result<PathBuf, ArtifactError> {
        manifest.files.clear();
        let tmp = self.out.path().to_path_buf();
        for entry in std::fs::read_dir(&tmp).map_err(io(&tmp))? {
            let p = entry.map_err(io(&tmp))?.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name != MANIFEST {
                manifest.files.insert(name, sha256_file(&p)?);
            }
        }
        self.write_json(MANIFEST, &manifest)?;
        self.out.commit().map_err(data_err)
    }
}

/// Reads a model directory's manifest and checks its format version and every checksum.
pub fn verify(dir: &Path) -> Result<Manifest, ArtifactError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| invalid(&path, json_error(&e)))?;
    if m.format_version != FORMAT_VERSION {
        return Err(invalid(
            &path,
            format!(
                "format version {} is not supported (this lattice reads version {FORMAT_VERSION}); retrain the model",
                m.format_version
            ),
        ));
    }
    for required in [WEIGHTS, SNAPSHOT] {
        if !m.files.contains_key(required) {
            return Err(invalid(&path, format!("the manifest lists no {required}")));
        }
    }
    for (file, expected) in &m.files {
        let p = dir.join(file);
        let got = sha256_file(&p)?;
        if &got != expected {
            return Err(invalid(
                &p,
                format!(
                    "checksum mismatch: manifest says {expected}, file has {got}; the model was modified or corrupted"
                ),
            ));
        }
    }
    Ok(m)
}

/// Verifies and loads a model's manifest and weights.
pub fn load(dir: &Path) -> Result<(Manifest, Models), ArtifactError> {
    let m = verify(dir)?;
    let path = dir.join(WEIGHTS);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let models: Models = serde_json::from_str(&text).map_err(|e| invalid(&path, json_error(&e)))?;
    let schema = m.feature_schema.iter().map(|f| &f.name);
    if !models.fitted.feature_names.iter().eq(schema) {
        return Err(invalid(
            &path,
            format!(
                "the weights' {} features are not the manifest schema's {} features in the same order",
                models.fitted.feature_names.len(),
                m.feature_schema.len()
            ),
        ));
    }
    Ok((m, models))
}
