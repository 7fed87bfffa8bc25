//! What a retailer configures: the action catalog (`actions.toml`), the program settings
//! (`lattice.toml`) and the channel vocabulary they share. A crate of its own, light (serde and
//! toml), so that decisioning compiles without the columnar stack the data layer needs.

pub mod actions;
pub mod settings;

use std::path::{Path, PathBuf};

/// The channels an action is sent on and consent is recorded for.
pub const CHANNELS: &[&str] = &["email", "sms", "push"];

/// A configuration file that cannot be read or does not hold what is expected. Both variants
/// name the file; `Invalid` says which action or field is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {message}", path = .path.display())]
    Invalid { path: PathBuf, message: String },
}

/// True if `name` is an IANA time zone name known to chrono-tz.
pub fn is_valid_timezone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl ConfigError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn invalid(path: &Path, message: String) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        }
    }
}
