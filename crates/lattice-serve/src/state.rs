//! What every request shares: the model behind an atomic pointer (swapped whole on reload, so
//! in-flight requests finish on the model they started with), the keys, the metrics.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::Ordering;

use lattice_events::{Event, EventStore, StoreError};

use crate::auth::ApiKeys;
use crate::metrics::Metrics;
use crate::model::LoadedModel;

/// The events database: one writer, behind a lock that also orders batches against replays.
/// A batch takes `apply` before it lets go of `store`, so the next batch is written while this
/// one is applied, and batches still reach online state in the order they were stored.
pub struct Events {
    pub store: std::sync::Mutex<EventStore>,
    pub apply: std::sync::Mutex<()>,
    pub path: PathBuf,
}

/// Events replayed per call of [`crate::online::OnlineState::apply`].
const REPLAY_CHUNK: usize = 10_000;

/// Applies the stored events newer than the model's as_of to its (empty) online state.
pub fn replay(store: &EventStore, model: &LoadedModel) -> Result<u64, StoreError> {
    let mut chunk: Vec<Event> = Vec::with_capacity(REPLAY_CHUNK);
    let flush = |chunk: &mut Vec<Event>| {
        let refs: Vec<&Event> = chunk.iter().collect();
        model.online.apply(model, &refs);
        chunk.clear();
    };
    let n = store.replay(model.as_of_us(), |e| {
        chunk.push(e);
        if chunk.len() == REPLAY_CHUNK {
            flush(&mut chunk);
        }
    })?;
    flush(&mut chunk);
    Ok(n)
}

#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub model: ArcSwap<LoadedModel>,
    /// Empty: authentication is off (a warning is logged at start).
    pub keys: ApiKeys,
    pub metrics: Metrics,
    /// `None`: the server takes no events (in-process tests of the read routes).
    pub events: Option<Events>,
    /// Reloads run one at a time; requests never wait for them.
    reload: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(model: LoadedModel, keys: ApiKeys) -> Self {
        Self::build(model, keys, None)
    }

    /// A state that takes events into `store`, after replaying the stored events newer than
    /// the model's as_of into its online state.
    pub fn with_events(
        model: LoadedModel,
        keys: ApiKeys,
        store: EventStore,
    ) -> Result<Self, StoreError> {
        let replayed = replay(&store, &model)?;
        let path = store.path().to_path_buf();
        let state = Self::build(
            model,
            keys,
            Some(Events {
                store: std::sync::Mutex::new(store),
                apply: std::sync::Mutex::new(()),
                path,
            }),
        );
        state
            .0
            .metrics
            .events_replayed
            .fetch_add(replayed, Ordering::Relaxed);
        if replayed > 0 {
            tracing::info!(
                events = replayed,
                "replayed stored events into online state"
            );
        }
        Ok(state)
    }

    fn build(model: LoadedModel, keys: ApiKeys, events: Option<Events>) -> Self {
        AppState(Arc::new(Shared {
            model: ArcSwap::from_pointee(model),
            keys,
            metrics: Metrics::default(),
            events,
            reload: tokio::sync::Mutex::new(()),
        }))
    }

    /// The model for this request: a cheap, lock-free snapshot of the pointer.
    pub fn model(&self) -> arc_swap::Guard<Arc<LoadedModel>> {
        self.0.model.load()
    }

    /// Loads `dir` (default: the served directory) off the async threads, verifies it, and
    /// swaps it in. On error the old model keeps serving and the error says why.
    pub async fn reload(
        &self,
        dir: Option<PathBuf>,
        actions: Option<PathBuf>,
    ) -> Result<Arc<LoadedModel>, String> {
        let _one_at_a_time = self.0.reload.lock().await;
        let current = self.model();
        let dir = dir.unwrap_or_else(|| current.dir.clone());
        let actions = actions.or_else(|| current.actions_override.clone());
        drop(current);
        let shared = self.0.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let m = Arc::new(LoadedModel::load(&dir, actions.as_deref())?);
            let Some(events) = &shared.events else {
                shared.model.store(m.clone());
                return Ok(m);
            };
            // Under the store's lock no batch lands between the replay and the swap: each one
            // is either in the database before the replay or applied to the new model after.
            let store = events.store.lock().unwrap_or_else(|p| p.into_inner());
            let applying = events.apply.lock().unwrap_or_else(|p| p.into_inner());
            let n = replay(&store, &m).map_err(|e| e.to_string())?;
            shared.model.store(m.clone());
            drop((applying, store));
            shared
                .metrics
                .events_replayed
                .fetch_add(n, Ordering::Relaxed);
            Ok(m)
        })
        .await
        .map_err(|e| format!("reload task failed: {e}"))?;
        match loaded {
            Ok(m) => {
                self.0.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(model = %m.manifest.name, as_of = %m.manifest.as_of, "model reloaded");
                Ok(m)
            }
            Err(e) => {
                self.0
                    .metrics
                    .reloads_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reload refused; the previous model keeps serving");
                Err(e)
            }
        }
    }
}
