//! What the server and the command line hold in memory to decide for customers: a verified
//! model directory laid out for decisioning ([`LoadedModel`]), and what events posted since its
//! as_of changed ([`OnlineState`], with the rules that turn an event into state changes).
//! No HTTP here: `lattice-serve` maps these types to routes and `problem+json`, the CLI uses
//! them directly (`lattice audience`, `quickstart`).

pub mod learning;
pub mod model;
pub mod online;

use std::ops::Deref;
use std::path::Path;

/// The learning crate, for callers of [`Learning`] (segments, posteriors).
pub use lattice_learn as learn;
pub use learning::{ActionPerformance, CACHED_SETS, CellPerformance, Chosen, Learning, Recorded};
pub use model::{LoadError, LoadedModel, Profiles, Scratch, send_channel};
pub use online::{
    Applied, DEFAULT_MAX_ONLINE_CUSTOMERS, OnlineCustomer, OnlineState, withdrawn_consent,
};

use lattice_events::{Event, EventStore, StoreError};

/// The arm name of a challenger's decisions.
pub const CHALLENGER: &str = "challenger";

/// Events replayed per call of [`OnlineState::apply`].
const REPLAY_CHUNK: usize = 10_000;

/// A loaded model and the online state events built on it. Swapped whole on reload: a new
/// model starts from its own snapshot and the stored events replayed onto it.
pub struct Runtime {
    pub model: LoadedModel,
    /// Customers changed by events since the model's as_of (filled by replay, then by each
    /// batch).
    pub online: OnlineState,
    /// Response rates learned from recorded decisions and the events after them.
    pub learning: Learning,
    /// `Some("challenger")` for a model served as a challenger: its recorded decisions carry
    /// the arm, and its learning replays only them. `None`: the champion.
    pub arm: Option<String>,
}

impl Runtime {
    /// Loads and checks `dir` (see [`LoadedModel::load`]) with empty online state.
    pub fn load(dir: &Path, actions: Option<&Path>) -> Result<Self, LoadError> {
        Ok(Runtime::new(LoadedModel::load(dir, actions)?))
    }

    pub fn new(model: LoadedModel) -> Self {
        Runtime::with_online_limit(model, DEFAULT_MAX_ONLINE_CUSTOMERS)
    }

    /// A runtime whose online state keeps at most `limit` customers.
    pub fn with_online_limit(model: LoadedModel, limit: usize) -> Self {
        let learning = Learning::new(&model.catalog, &model.settings);
        Runtime {
            model,
            online: OnlineState::with_limit(limit),
            learning,
            arm: None,
        }
    }

    /// A runtime serving `model` as the challenger arm.
    pub fn challenger(model: LoadedModel) -> Self {
        Runtime {
            arm: Some(CHALLENGER.to_owned()),
            ..Runtime::new(model)
        }
    }

    /// Applies the stored events newer than the model's as_of to the online state (empty for a
    /// new runtime: its state starts from its snapshot), in chunks, and rebuilds what learning
    /// knows from the decision log and every stored event. Returns how many events were
    /// applied to online state.
    pub fn replay(&self, store: &EventStore) -> Result<u64, StoreError> {
        self.learning.replay(
            &self.model.catalog,
            store,
            self.arm.as_deref(),
            chrono::Utc::now(),
        )?;
        let mut chunk: Vec<Event> = Vec::with_capacity(REPLAY_CHUNK);
        let flush = |chunk: &mut Vec<Event>| {
            let refs: Vec<&Event> = chunk.iter().collect();
            self.online.apply(&self.model, &refs);
            chunk.clear();
        };
        let n = store.replay(self.model.as_of_us(), |e| {
            chunk.push(e);
            if chunk.len() == REPLAY_CHUNK {
                flush(&mut chunk);
            }
        })?;
        flush(&mut chunk);
        Ok(n)
    }
}

/// A runtime is its model plus what events changed since: read the model's parts through it.
impl Deref for Runtime {
    type Target = LoadedModel;

    fn deref(&self) -> &LoadedModel {
        &self.model
    }
}
