//! What every request shares: the model behind an atomic pointer (swapped whole on reload, so
//! in-flight requests finish on the model they started with), the keys, the metrics.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::Ordering;

use lattice_events::{EventStore, StoreError};
use lattice_runtime::{LoadedModel, Runtime};

use crate::auth::ApiKeys;
use crate::error::ReloadError;
use crate::metrics::Metrics;

/// The events database: one writer, behind a lock that also orders batches against replays.
/// A batch takes `apply` before it lets go of `store`, so the next batch is written while this
/// one is applied, and batches still reach online state in the order they were stored.
pub struct Events {
    pub store: std::sync::Mutex<EventStore>,
    pub apply: std::sync::Mutex<()>,
    pub path: PathBuf,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub model: ArcSwap<Runtime>,
    /// Empty: authentication is off (a warning is logged at start).
    pub keys: ApiKeys,
    pub metrics: Metrics,
    /// `None`: the server takes no events (in-process tests of the read routes).
    pub events: Option<Events>,
    /// Reloads run one at a time; requests never wait for them.
    reload: tokio::sync::Mutex<()>,
    /// A challenger model served beside the champion to a share of customers (by hash of the
    /// customer id); `POST /v1/admin/promote` makes it the champion.
    pub challenger: arc_swap::ArcSwapOption<Runtime>,
    /// The challenger's share of customers, as `f64` bits.
    challenger_share: std::sync::atomic::AtomicU64,
}

/// Where a customer's decisions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// No challenger is served.
    Only,
    Champion,
    Challenger,
}

impl Arm {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Arm::Only => None,
            Arm::Champion => Some("champion"),
            Arm::Challenger => Some(lattice_runtime::CHALLENGER),
        }
    }
}

impl AppState {
    pub fn new(model: LoadedModel, keys: ApiKeys) -> Self {
        Self::build(Runtime::new(model), keys, None)
    }

    /// A state that takes events into `store`, after replaying the stored events newer than
    /// the model's as_of into its online state.
    pub fn with_events(
        model: LoadedModel,
        keys: ApiKeys,
        store: EventStore,
    ) -> Result<Self, StoreError> {
        let runtime = Runtime::new(model);
        let replayed = runtime.replay(&store)?;
        let path = store.path().to_path_buf();
        let state = Self::build(
            runtime,
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

    fn build(runtime: Runtime, keys: ApiKeys, events: Option<Events>) -> Self {
        AppState(Arc::new(Shared {
            model: ArcSwap::from_pointee(runtime),
            keys,
            metrics: Metrics::default(),
            events,
            reload: tokio::sync::Mutex::new(()),
            challenger: arc_swap::ArcSwapOption::empty(),
            challenger_share: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Serves `model` as the challenger to `share` of customers, after replaying its own
    /// recorded decisions and the stored events.
    pub fn set_challenger(&self, model: LoadedModel, share: f64) -> Result<(), StoreError> {
        let runtime = Runtime::challenger(model);
        if let Some(events) = &self.0.events {
            let store = events.store.lock().unwrap_or_else(|p| p.into_inner());
            let applying = events.apply.lock().unwrap_or_else(|p| p.into_inner());
            runtime.replay(&store)?;
            self.0.challenger.store(Some(Arc::new(runtime)));
            drop((applying, store));
        } else {
            self.0.challenger.store(Some(Arc::new(runtime)));
        }
        self.0
            .challenger_share
            .store(share.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The runtime that decides for this customer, and its arm: the challenger for its share
    /// of customers (a stable hash of the id), else the champion.
    pub fn for_customer(&self, customer_id: &str) -> (Arm, Arc<Runtime>) {
        let challenger = self.0.challenger.load();
        match &*challenger {
            None => (Arm::Only, self.0.model.load_full()),
            Some(c) => {
                let share = f64::from_bits(self.0.challenger_share.load(Ordering::Relaxed));
                let h = lattice_runtime::learn::hash::hash64(&["lattice/arm", customer_id]);
                if lattice_runtime::learn::hash::unit(h) < share {
                    (Arm::Challenger, c.clone())
                } else {
                    (Arm::Champion, self.0.model.load_full())
                }
            }
        }
    }

    /// Makes the challenger the champion: one atomic swap, as a reload's, so requests in
    /// flight finish on the model they started with and none fails. `None` without one.
    pub async fn promote(&self) -> Option<Arc<Runtime>> {
        let _one_at_a_time = self.0.reload.lock().await;
        let challenger = self.0.challenger.swap(None)?;
        self.0.model.store(challenger.clone());
        tracing::info!(model = %challenger.manifest.name, "challenger promoted to champion");
        Some(challenger)
    }

    /// The model (and its online state) for this request: a cheap, lock-free snapshot of the
    /// pointer.
    pub fn model(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.0.model.load()
    }

    /// Loads `dir` (default: the served directory) off the async threads, verifies it, and
    /// swaps it in. On error the old model keeps serving and the error says why.
    pub async fn reload(
        &self,
        dir: Option<PathBuf>,
        actions: Option<PathBuf>,
    ) -> Result<Arc<Runtime>, ReloadError> {
        let _one_at_a_time = self.0.reload.lock().await;
        let current = self.model();
        let dir = dir.unwrap_or_else(|| current.dir.clone());
        let actions = actions.or_else(|| current.actions_override.clone());
        drop(current);
        let shared = self.0.clone();
        let loaded: Result<Arc<Runtime>, ReloadError> = tokio::task::spawn_blocking(move || {
            let m = Arc::new(Runtime::load(&dir, actions.as_deref())?);
            let Some(events) = &shared.events else {
                shared.model.store(m.clone());
                return Ok(m);
            };
            // Under the store's lock no batch lands between the replay and the swap: each one
            // is either in the database before the replay or applied to the new model after.
            let store = events.store.lock().unwrap_or_else(|p| p.into_inner());
            let applying = events.apply.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.replay(&store).map_err(ReloadError::Replay)?;
            shared.model.store(m.clone());
            drop((applying, store));
            shared
                .metrics
                .events_replayed
                .fetch_add(n, Ordering::Relaxed);
            Ok(m)
        })
        .await
        .unwrap_or_else(|e| Err(ReloadError::Task(e)));
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
                match &e {
                    ReloadError::Refused(_) => {
                        tracing::warn!(error = %e, "reload refused; the previous model keeps serving")
                    }
                    _ => {
                        tracing::error!(error = %e, "reload failed; the previous model keeps serving")
                    }
                }
                Err(e)
            }
        }
    }
}
