//! Errors that name the file, column and row at fault, and say what was expected.

use std::path::{Path, PathBuf};

/// A problem with user-supplied data. Every variant names the file; most name the column and
/// row, so a user can find the offending value without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {what} not found", path = .path.display())]
    Missing { path: PathBuf, what: String },

    #[error("{path}: not a Parquet file ({detail})", path = .path.display())]
    NotParquet { path: PathBuf, detail: String },

    #[error("{path}: missing required column `{column}` (expected {expected})", path = .path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        expected: String,
    },

    #[error("{path}: column `{column}` has type {found}, expected {expected}", path = .path.display())]
    WrongType {
        path: PathBuf,
        column: String,
        found: String,
        expected: String,
    },

    #[error("{path}: column `{column}`, row {row}: {message}", path = .path.display())]
    BadValue {
        path: PathBuf,
        column: String,
        /// 0-based row index within the file, as `pandas.read_parquet(f).iloc[row]`.
        row: u64,
        message: String,
    },

    #[error("{path}: {message}", path = .path.display())]
    Invalid { path: PathBuf, message: String },

    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {source}", path = .path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },

    #[error("{path}: {source}", path = .path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: datafusion::parquet::errors::ParquetError,
    },
}

impl From<lattice_catalog::ConfigError> for DataError {
    fn from(e: lattice_catalog::ConfigError) -> Self {
        match e {
            lattice_catalog::ConfigError::Io { path, source } => DataError::Io { path, source },
            lattice_catalog::ConfigError::Invalid { path, message } => {
                DataError::Invalid { path, message }
            }
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn arrow(path: &Path, source: datafusion::arrow::error::ArrowError) -> Self {
        DataError::Arrow {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn parquet(path: &Path, source: datafusion::parquet::errors::ParquetError) -> Self {
        DataError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
