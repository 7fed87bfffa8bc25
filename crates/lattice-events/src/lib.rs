//! Online events for the scoring server: posted batches are parsed and checked with the data
//! contract's rules ([`event`]), stored durably in SQLite before they are acknowledged
//! ([`store`]), replayed into online state after a restart, and exported back to the data
//! contract's Parquet for retraining ([`export`]). The decision log lives in the same database.

pub mod event;
pub mod export;
pub mod store;

pub use event::{BatchError, Event, FieldError, MAX_ERRORS, RESERVED_ID_PREFIX, parse_batch};
pub use export::{Exported, export};
pub use store::{Appended, Conflict, DecidedAction, Decision, EventStore, StoreError};
