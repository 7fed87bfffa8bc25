//! What every request shares: the model behind an atomic pointer (swapped whole on reload, so
//! in-flight requests finish on the model they started with), the keys, the metrics.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::Ordering;

use crate::auth::ApiKeys;
use crate::metrics::Metrics;
use crate::model::LoadedModel;

#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub model: ArcSwap<LoadedModel>,
    /// Empty: authentication is off (a warning is logged at start).
    pub keys: ApiKeys,
    pub metrics: Metrics,
    /// Reloads run one at a time; requests never wait for them.
    reload: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(model: LoadedModel, keys: ApiKeys) -> Self {
        AppState(Arc::new(Shared {
            model: ArcSwap::from_pointee(model),
            keys,
            metrics: Metrics::default(),
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
        let loaded =
            tokio::task::spawn_blocking(move || LoadedModel::load(&dir, actions.as_deref()))
                .await
                .map_err(|e| format!("reload task failed: {e}"))?;
        match loaded {
            Ok(m) => {
                let m = Arc::new(m);
                self.0.model.store(m.clone());
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
