//! Typed errors at the server's edge, and the answer each one becomes: a refused model is the
//! caller's to fix (422), a fault of the server is logged and answered 500.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use lattice_events::StoreError;
use lattice_runtime::LoadError;

use crate::problem::Problem;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "refusing to serve on {addr} with no API keys: every endpoint (events, reload, audiences) \
         would be open to the network; configure keys (--api-keys or LATTICE_API_KEYS), bind a \
         loopback address (127.0.0.1), or pass --insecure-open if that is really intended"
    )]
    OpenToNetwork { addr: SocketAddr },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the events database {path}: {source}", path = .path.display())]
    OpenEvents {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("replaying stored events: {0}")]
    Replay(#[source] StoreError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("a start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a reload swapped nothing in. Either way the previous model keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The directory or catalog is not a servable model.
    #[error(transparent)]
    Refused(#[from] LoadError),
    /// Replaying the stored events onto the new model failed.
    #[error("replaying stored events onto the new model: {0}")]
    Replay(#[source] StoreError),
    #[error("the reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A path outside the reload roots, or one that does not exist (the same answer, so the
    /// API cannot be used to find out what is on the server's disk).
    #[error("`{field}` is not an existing path under the reload roots")]
    OutsideRoots { field: &'static str },
    /// Another reload is running.
    #[error("another reload is running")]
    Busy,
    /// The deadline passed before the new model was swapped in; nothing changed.
    #[error("the reload was abandoned at its deadline before anything changed")]
    Abandoned,
}

impl From<ReloadError> for Problem {
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::Refused(e) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "model-refused",
                format!("{e} (the previous model keeps serving)"),
            ),
            ReloadError::OutsideRoots { field } => Problem::new(
                StatusCode::FORBIDDEN,
                "reload-path-refused",
                format!(
                    "`{field}` must name an existing path under the reload roots (the served \
                     model's parent directory unless the server was started with \
                     --reload-root); nothing was read and the previous model keeps serving"
                ),
            )
            .with_field(field),
            ReloadError::Busy => Problem::new(
                StatusCode::CONFLICT,
                "reload-in-progress",
                "another reload is running; nothing was changed by this request; retry when it \
                 has finished",
            ),
            ReloadError::Abandoned => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the reload did not finish within the request timeout and was abandoned; \
                 nothing changed and the previous model keeps serving",
            ),
            // Logged where it happened (`AppState::reload`), with its cause.
            _ => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the reload failed on the server's side (logged); the previous model keeps \
                 serving",
            ),
        }
    }
}
