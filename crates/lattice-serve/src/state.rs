//! What every request shares: the model behind an atomic pointer (swapped whole on reload, so
//! in-flight requests finish on the model they started with), the keys, the metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::Ordering;

use lattice_events::{EventStore, StoreError};
use lattice_runtime::{LoadedModel, Runtime};

use crate::auth::ApiKeys;
use crate::deadline::{AbandonOnDrop, CommitGate};
use crate::error::ReloadError;
use crate::metrics::Metrics;

/// The events database: one writer, behind a lock that also orders batches against replays.
/// A batch takes `apply` before it lets go of `store`, so the next batch is written while this
/// one is applied, and batches still reach online state in the order they were stored.
pub struct Events {
    pub store: std::sync::Mutex<EventStore>,
    pub apply: std::sync::Mutex<()>,
    pub path: PathBuf,
    /// Decisions in the log, and the most it may hold (`record=true` has its own quota, so a
    /// `score` key cannot fill the database the events need).
    pub decisions: std::sync::atomic::AtomicU64,
    pub max_decisions: u64,
}

/// Memory and disk bounds that hold whatever clients send.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most customers in online state (`--max-online-customers`).
    pub max_online_customers: usize,
    /// Most decisions in the decision log (`--max-decisions`).
    pub max_decisions: u64,
}

/// Default most decisions in the log (about 1 GB of SQLite at five actions each).
pub const DEFAULT_MAX_DECISIONS: u64 = 1_000_000;

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_online_customers: lattice_runtime::DEFAULT_MAX_ONLINE_CUSTOMERS,
            max_decisions: DEFAULT_MAX_DECISIONS,
        }
    }
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
    pub bounds: Bounds,
    /// Reloads run one at a time: a second one while one runs is answered 409 at once. The
    /// guard travels with the loading thread, so a reload abandoned at its deadline still
    /// holds it until that thread is done.
    reload: Arc<tokio::sync::Mutex<()>>,
    /// Directories `POST /v1/admin/reload` may read from (canonical paths).
    reload_roots: std::sync::RwLock<Vec<PathBuf>>,
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
        Self::build(Runtime::new(model), keys, None, Bounds::default())
    }

    /// A state that takes events into `store`, after replaying the stored events newer than
    /// the model's as_of into its online state.
    pub fn with_events(
        model: LoadedModel,
        keys: ApiKeys,
        store: EventStore,
    ) -> Result<Self, StoreError> {
        Self::with_events_bounded(model, keys, store, Bounds::default())
    }

    /// [`AppState::with_events`] with explicit bounds.
    pub fn with_events_bounded(
        model: LoadedModel,
        keys: ApiKeys,
        store: EventStore,
        bounds: Bounds,
    ) -> Result<Self, StoreError> {
        let runtime = Runtime::with_online_limit(model, bounds.max_online_customers);
        let replayed = runtime.replay(&store)?;
        let path = store.path().to_path_buf();
        let decisions = store.decision_count()?;
        let state = Self::build(
            runtime,
            keys,
            Some(Events {
                store: std::sync::Mutex::new(store),
                apply: std::sync::Mutex::new(()),
                path,
                decisions: decisions.into(),
                max_decisions: bounds.max_decisions,
            }),
            bounds,
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

    fn build(runtime: Runtime, keys: ApiKeys, events: Option<Events>, bounds: Bounds) -> Self {
        // Default roots: where the served model and catalog live (a retrain writes the next
        // model beside the current one).
        let roots = [Some(&runtime.dir), runtime.actions_override.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|p| p.canonicalize().ok()?.parent().map(Path::to_path_buf))
            .collect();
        AppState(Arc::new(Shared {
            model: ArcSwap::from_pointee(runtime),
            keys,
            metrics: Metrics::default(),
            events,
            bounds,
            reload: Arc::new(tokio::sync::Mutex::new(())),
            reload_roots: std::sync::RwLock::new(roots),
            challenger: arc_swap::ArcSwapOption::empty(),
            challenger_share: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Confines `POST /v1/admin/reload` to these directories (`--reload-root`), instead of the
    /// served model's and catalog's parent directories.
    pub fn set_reload_roots(&self, roots: &[PathBuf]) -> std::io::Result<()> {
        let canonical = roots
            .iter()
            .map(|r| {
                r.canonicalize().map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--reload-root {}: {e}", r.display()))
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        *self
            .0
            .reload_roots
            .write()
            .unwrap_or_else(|p| p.into_inner()) = canonical;
        Ok(())
    }

    /// `path` resolved (symlinks and `..` included) if it exists under a reload root. The
    /// same refusal whether it is missing or elsewhere: the API must not tell what exists on
    /// the server's disk.
    fn confine(&self, field: &'static str, path: &Path) -> Result<PathBuf, ReloadError> {
        let roots = self
            .0
            .reload_roots
            .read()
            .unwrap_or_else(|p| p.into_inner());
        match path.canonicalize() {
            Ok(p) if roots.iter().any(|r| p.starts_with(r)) => Ok(p),
            _ => Err(ReloadError::OutsideRoots { field }),
        }
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
    /// swaps it in. On error the old model keeps serving and the error says why. A path given
    /// must lie under the reload roots. With a `deadline`, a reload not swapped in by then is
    /// abandoned (nothing changes) and answered [`ReloadError::Abandoned`].
    pub async fn reload(
        &self,
        dir: Option<PathBuf>,
        actions: Option<PathBuf>,
        deadline: Option<std::time::Duration>,
    ) -> Result<Arc<Runtime>, ReloadError> {
        let result = self.reload_inner(dir, actions, deadline).await;
        match &result {
            Ok(m) => {
                self.0.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(model = %m.manifest.name, as_of = %m.manifest.as_of, "model reloaded");
            }
            Err(e) => {
                self.0
                    .metrics
                    .reloads_failed
                    .fetch_add(1, Ordering::Relaxed);
                match e {
                    ReloadError::Replay(_) | ReloadError::Task(_) => {
                        tracing::error!(error = %e, "reload failed; the previous model keeps serving")
                    }
                    _ => {
                        tracing::warn!(error = %e, "reload refused; the previous model keeps serving")
                    }
                }
            }
        }
        result
    }

    async fn reload_inner(
        &self,
        dir: Option<PathBuf>,
        actions: Option<PathBuf>,
        deadline: Option<std::time::Duration>,
    ) -> Result<Arc<Runtime>, ReloadError> {
        let one_at_a_time = self
            .0
            .reload
            .clone()
            .try_lock_owned()
            .map_err(|_| ReloadError::Busy)?;
        let dir = dir.map(|d| self.confine("model", &d)).transpose()?;
        let actions = actions.map(|a| self.confine("actions", &a)).transpose()?;
        let current = self.model();
        let dir = dir.unwrap_or_else(|| current.dir.clone());
        let actions = actions.or_else(|| current.actions_override.clone());
        drop(current);
        let shared = self.0.clone();
        let gate = Arc::new(CommitGate::default());
        let _abandon = AbandonOnDrop(gate.clone());
        let g = gate.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = one_at_a_time;
            let m = Arc::new(Runtime::with_online_limit(
                LoadedModel::load(&dir, actions.as_deref())?,
                shared.bounds.max_online_customers,
            ));
            let Some(events) = &shared.events else {
                if !g.proceed(true) {
                    return Err(ReloadError::Abandoned);
                }
                shared.model.store(m.clone());
                return Ok(m);
            };
            // Under the store's lock no batch lands between the replay and the swap: each one
            // is either in the database before the replay or applied to the new model after.
            let store = events.store.lock().unwrap_or_else(|p| p.into_inner());
            let applying = events.apply.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.replay(&store).map_err(ReloadError::Replay)?;
            // The swap happens only if the request has not been answered 503 already.
            if !g.proceed(true) {
                return Err(ReloadError::Abandoned);
            }
            shared.model.store(m.clone());
            drop((applying, store));
            shared
                .metrics
                .events_replayed
                .fetch_add(n, Ordering::Relaxed);
            Ok(m)
        });
        let joined = match deadline {
            None => task.await,
            Some(d) => tokio::select! {
                r = &mut task => r,
                _ = tokio::time::sleep(d) => {
                    if gate.abandon() {
                        return Err(ReloadError::Abandoned);
                    }
                    task.await
                }
            },
        };
        joined.unwrap_or_else(|e| Err(ReloadError::Task(e)))
    }
}
