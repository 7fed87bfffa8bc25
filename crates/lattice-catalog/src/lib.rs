//! What a retailer configures: the action catalog (`actions.toml`), the program settings
//! (`lattice.toml`) and the channel vocabulary they share. A crate of its own, light (serde and
//! toml), so that decisioning compiles without the columnar stack the data layer needs.

pub mod actions;
pub mod settings;

use std::path::{Path, PathBuf};

/// Days of contact history a model keeps per customer (snapshot and online state): the
/// longest `cooldown_days` a catalog may ask for.
pub const CONTACT_HISTORY_DAYS: u32 = 90;

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

/// A TOML error as "line L, column C: what was expected", without the file's line that
/// `toml`'s own rendering quotes: a server that reads a file at a client's request (reload)
/// must never echo its content.
pub fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {column}: ")
    });
    format!("{}{}", at.unwrap_or_default(), redact(e.message().trim()))
}

/// A parser's message with the file's own values taken out: quoted strings and the names of
/// unknown fields or variants (which come from the file) become `…`; what was expected and
/// the names of missing fields (ours) stay.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[i] as char;
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let Some(end) = tail[1..].find(quote) else {
            out.push_str(tail);
            return out;
        };
        let inner = &tail[1..1 + end];
        let theirs =
            quote == '"' || out.ends_with("unknown field ") || out.ends_with("unknown variant ");
        out.push(quote);
        out.push_str(if theirs { "…" } else { inner });
        out.push(quote);
        rest = &tail[end + 2..];
    }
    out.push_str(rest);
    out
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
