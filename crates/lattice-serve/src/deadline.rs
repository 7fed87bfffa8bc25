//! Truthful timeouts. A request that answers 503 at its deadline must not store anything
//! afterwards, so the decision "stored or not" is taken once, in one place: the worker claims
//! the commit just before it makes it, or the deadline (or a client that went away) abandons
//! it first, whichever comes first. A deadline that finds the commit claimed waits for it and
//! answers what happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

use crate::problem::Problem;

const PENDING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

/// How long a request that reads a body may take (`--timeout-secs`), as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// How long a streamed answer may wait for the client (`--write-timeout-secs`).
#[derive(Debug, Clone, Copy)]
pub struct WriteTimeout(pub Duration);

/// A timeout for routes that store nothing: a problem+json 503 (documented), unlike
/// tower-http's empty one.
pub async fn timeout_layer(
    axum::Extension(RequestTimeout(timeout)): axum::Extension<RequestTimeout>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request did not finish within {} s; it stores nothing, so a retry is safe",
                timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

#[derive(Debug, Default)]
pub struct CommitGate(AtomicU8);

impl CommitGate {
    /// For the worker: `committing == false` asks whether it may still start; `true` claims
    /// the commit (final). `false` once the request was abandoned.
    pub fn proceed(&self, committing: bool) -> bool {
        if committing {
            self.0
                .compare_exchange(PENDING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        } else {
            self.0.load(Ordering::Acquire) == PENDING
        }
    }

    /// For the request: gives up unless the commit is already claimed. `true`: nothing will be
    /// stored.
    pub fn abandon(&self) -> bool {
        self.0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self.0.load(Ordering::Acquire) == ABANDONED
    }
}

/// Abandons the gate when dropped: the request's future was dropped (the client went away)
/// before it had its answer.
pub struct AbandonOnDrop(pub Arc<CommitGate>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// Runs `work` on a blocking thread with `gate`, answering its result, or a 503 if `timeout`
/// passes before the worker claims its commit (then nothing was stored).
pub async fn run_gated<T: Send + 'static>(
    timeout: Duration,
    what: &'static str,
    work: impl FnOnce(&CommitGate) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let gate = Arc::new(CommitGate::default());
    let _abandon = AbandonOnDrop(gate.clone());
    let g = gate.clone();
    let mut task = tokio::task::spawn_blocking(move || work(&g));
    let joined = tokio::select! {
        r = &mut task => r,
        _ = tokio::time::sleep(timeout) => {
            if gate.abandon() {
                return Err(timed_out(what, timeout));
            }
            // The commit is under way: wait for it and tell the truth.
            task.await
        }
    };
    joined.map_err(|e| Problem::internal(what, &e))?
}

/// Receives a request's body (as `T`, e.g. `Bytes` or `ApiJson<_>`) within `timeout`, for the
/// routes that decide their deadline with their commit ([`run_gated`]) and so have no outer
/// timer: without it a client that sends its body slowly, or never finishes it, would hold its
/// slot of `--concurrency` forever. Returns the value and what is left of the deadline, or the
/// 503 of a request given up before anything was done.
pub async fn receive<T>(
    req: axum::extract::Request,
    timeout: Duration,
    what: &'static str,
) -> Result<(T, Duration), Problem>
where
    T: axum::extract::FromRequest<()>,
    T::Rejection: Into<Problem>,
{
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, T::from_request(req, &())).await {
        Err(_) => Err(timed_out(what, timeout)),
        Ok(Err(rejection)) => Err(rejection.into()),
        Ok(Ok(v)) => Ok((v, timeout.saturating_sub(started.elapsed()))),
    }
}

/// The 503 of a request abandoned at its deadline.
pub fn timed_out(what: &str, timeout: Duration) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        format!(
            "{what} did not finish within {} s; nothing of this request was stored or changed; \
             retry (with the same event ids, a retry can never store anything twice)",
            timeout.as_secs_f64()
        ),
    )
}
