//! Handlers: thin glue from HTTP to the loaded model and `lattice-decide`.
//!
//! One room per concern: [`customers`] (scores, send times, batches), [`decisions`] (next-best
//! actions, recorded or not), [`performance`], [`admin`] (models, reload, promote) and
//! [`operations`] (health, metrics, unknown paths). The handlers are re-exported here, with
//! the `__path_*` items utoipa generates, so `lib.rs` names them as `routes::<handler>`.

use lattice_runtime::Runtime;

use crate::problem::Problem;

mod admin;
mod customers;
mod decisions;
mod operations;
mod performance;

pub use admin::*;
pub use customers::*;
pub use decisions::*;
pub use operations::*;
pub use performance::*;

pub(crate) fn customer_index(m: &Runtime, id: &str) -> Result<usize, Problem> {
    m.snapshot
        .get(id)
        .ok_or_else(|| Problem::unknown_customer(id))
}

pub(crate) fn parse_channel(
    field: &str,
    v: Option<&str>,
) -> Result<Option<lattice_decide::Channel>, Problem> {
    match v {
        None => Ok(None),
        Some(s) => lattice_decide::Channel::parse(s).map(Some).ok_or_else(|| {
            Problem::bad_request(
                field,
                format!("unknown channel {s:?} (expected email, sms or push)"),
            )
        }),
    }
}
