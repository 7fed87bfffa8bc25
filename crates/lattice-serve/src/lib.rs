//! `lattice-serve`: the scoring server. It loads a model directory written by `lattice train`,
//! keeps its snapshot in memory, and answers scores, next-best actions and send times over
//! HTTP. The handlers hold no model logic: scores come from the snapshot (or
//! `lattice-models` for inline records), decisions from `lattice-decide`.
//!
//! Hot reload swaps the whole loaded model behind an `ArcSwap`; a request keeps the model it
//! started with, so a reload never fails one.

pub mod api;
pub mod audience;
pub mod auth;
pub mod deadline;
pub mod error;
pub mod events;
mod extract;
mod guard;
pub mod metrics;
mod page;
pub mod problem;
pub mod routes;
pub mod state;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lattice_runtime::LoadedModel;
use utoipa::OpenApi;

pub use crate::error::{ReloadError, ServeError};
pub use crate::state::AppState;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub timeout: Duration,
    pub concurrency: usize,
    /// How long a streamed answer (an audience download) may wait for the client to take the
    /// next chunk; past it the stream is cut and its thread released.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // 10,000 inline records of ~60 features fit; anything bigger is a mistake.
            body_bytes: 32 * 1024 * 1024,
            timeout: Duration::from_secs(10),
            concurrency: 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lattice",
        description = "Scores, next-best actions, send times and predicted audiences for retail loyalty and CRM. \
                       Errors are application/problem+json."
    ),
    paths(
        routes::scores,
        routes::next_best_actions,
        routes::next_best_actions_in_context,
        routes::send_time,
        routes::score_batch,
        routes::models,
        routes::reload,
        events::post_events,
        events::features,
        events::decision,
        routes::performance,
        routes::promote,
        audience::audiences,
        audience::audience_options,
        routes::healthz,
        routes::readyz,
        routes::metrics,
    ),
    modifiers(&SecurityAddon, &ProblemResponses)
)]
pub struct ApiDoc;

/// Makes the document say what the server sends: every error as `application/problem+json`,
/// and the answers every route can give without its handler (the load gate's and timeouts'
/// 503, authentication, body extraction's 400/413/415/422, query 400, unknown customer 404)
/// listed on every operation they apply to. Done on the JSON once, so no route can forget one.
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Ok(mut doc) = serde_json::to_value(&*openapi) else {
            return;
        };
        document_problems(&mut doc);
        if let Ok(done) = serde_json::from_value(doc) {
            *openapi = done;
        }
    }
}

fn document_problems(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem = |what: &str| {
        json!({
            "description": what,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let has_body = op.contains_key("requestBody");
            let secured = op.contains_key("security");
            let has_query = op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (code, r) in responses.iter_mut() {
                if code.as_str() < "400" {
                    continue;
                }
                if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut)
                    && let Some(json) = content.remove("application/json")
                {
                    content.insert("application/problem+json".into(), json);
                }
            }
            let mut add = |code: &str, what: &str| {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| problem(what));
            };
            add(
                "503",
                "Overloaded (more requests in flight than --concurrency) or past the request \
                 timeout; nothing was stored, retry",
            );
            if secured {
                add("401", "No valid API key");
                add("403", "The API key lacks the scope");
            }
            if has_body {
                add("400", "The body is not JSON");
                add("413", "The body is larger than --max-body-mib");
                add("415", "The body is not sent as application/json");
                add(
                    "422",
                    "The body does not hold what is expected; the field is named",
                );
            }
            if has_query {
                add("400", "A query parameter is malformed; it is named");
            }
            if path.contains("/customers/{id}") {
                add("404", "The customer is not in the model's snapshot");
            }
        }
    }
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `Authorization: Bearer <key>` (or `X-API-Key: <key>`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description, rendered once.
async fn openapi_json() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}

/// The one middleware on every request: sheds load over the concurrency limit (503 at once,
/// rather than queueing behind a semaphore) and records latency and status per route template
/// (never the path itself: it holds customer ids). One layer instead of three keeps the
/// microsecond routes cheap; a plain tower service rather than `from_fn`, which cloned the
/// inner service and boxed a future on every request.
#[derive(Clone)]
struct Gate(Arc<GateShared>);

struct GateShared {
    state: AppState,
    limit: usize,
    in_flight: AtomicUsize,
}

impl<S> tower::Layer<S> for Gate {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> GateService<S> {
        GateService {
            inner,
            gate: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct GateService<S> {
    inner: S,
    gate: Arc<GateShared>,
}

impl<S> tower::Service<Request> for GateService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let route = metrics::route_index(
            req.extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        );
        let g = &self.gate;
        let before = g.in_flight.fetch_add(1, Ordering::Relaxed);
        let run = if before >= g.limit {
            Run::Overloaded(Some(
                problem::Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!("more than {} requests in flight: retry shortly", g.limit),
                )
                .into_response(),
            ))
        } else {
            Run::Inner(self.inner.call(req))
        };
        GateFuture {
            run,
            start,
            route,
            gate: g.clone(),
        }
    }
}

enum Run<F> {
    Inner(F),
    Overloaded(Option<Response>),
}

/// The response future; counts the request in flight until dropped (also when the client goes
/// away mid-request).
struct GateFuture<F> {
    run: Run<F>,
    start: Instant,
    route: usize,
    gate: Arc<GateShared>,
}

impl<F> Drop for GateFuture<F> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<F> Future for GateFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let res = match &mut this.run {
            Run::Inner(f) => match Pin::new(f).poll(cx) {
                Poll::Ready(Ok(res)) => res,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
            Run::Overloaded(res) => res.take().unwrap_or_default(),
        };
        let elapsed = this.start.elapsed();
        let status = res.status().as_u16();
        this.gate
            .state
            .0
            .metrics
            .observe(this.route, status, elapsed);
        tracing::debug!(
            route = metrics::ROUTES[this.route],
            status,
            micros = elapsed.as_micros() as u64,
            "request"
        );
        Poll::Ready(Ok(res))
    }
}

/// The whole HTTP API over `state`.
pub fn router(state: AppState, limits: Limits) -> Router {
    // A timeout where a request reads a body or does work that grows with it; the
    // per-customer GETs are microseconds of CPU and no I/O, and a timer per request was a
    // measurable share of their cost.
    let timeout = || axum::middleware::from_fn(deadline::timeout_layer);
    let api = Router::new()
        .route("/v1/customers/{id}/scores", get(routes::scores))
        .route(
            "/v1/customers/{id}/next-best-actions",
            // No outer timer: with record=true the handler keeps its own deadline, decided
            // with the commit (`deadline::run_gated`); without, it is microseconds of CPU.
            get(routes::next_best_actions).post(routes::next_best_actions_in_context),
        )
        .route("/v1/customers/{id}/send-time", get(routes::send_time))
        .route("/v1/customers/{id}/features", get(events::features))
        // Events and reload keep their own deadline (`deadline::run_gated`): a timeout there
        // must decide, with the worker, whether anything was stored.
        .route("/v1/events", post(events::post_events))
        .route("/v1/decisions/{id}", get(events::decision))
        .route("/v1/actions/performance", get(routes::performance))
        .route("/v1/score", post(routes::score_batch.layer(timeout())))
        .route("/v1/models", get(routes::models))
        .route("/v1/admin/reload", post(routes::reload))
        .route("/v1/admin/promote", post(routes::promote))
        .route("/v1/audiences", post(audience::audiences.layer(timeout())))
        .route("/v1/audiences/options", get(audience::audience_options));
    let open = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/", get(page::index))
        .route("/assets/audience.js", get(page::script))
        .route("/assets/audience.css", get(page::stylesheet));
    Router::new()
        .merge(api)
        .merge(open)
        .fallback(routes::not_found)
        .layer(Gate(Arc::new(GateShared {
            state: state.clone(),
            limit: limits.concurrency,
            in_flight: AtomicUsize::new(0),
        })))
        // Checked by the body extractors (413 problem+json), at no cost to body-less requests.
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::Extension(deadline::RequestTimeout(limits.timeout)))
        .layer(axum::Extension(deadline::WriteTimeout(
            limits.write_timeout,
        )))
        .with_state(state)
}

/// How to run the server.
pub struct ServeOptions {
    pub model: PathBuf,
    pub actions: Option<PathBuf>,
    pub addr: SocketAddr,
    pub keys: auth::ApiKeys,
    pub limits: Limits,
    /// The events database (created if missing); `None`: no `POST /v1/events`.
    pub events_db: Option<PathBuf>,
    /// Refuse writes (503) once the events database reaches this size.
    pub events_max_bytes: Option<u64>,
    /// Serve a non-loopback address with no API keys (refused otherwise).
    pub insecure_open: bool,
    /// Directories `POST /v1/admin/reload` may read from; empty: the served model's and
    /// catalog's parent directories.
    pub reload_roots: Vec<PathBuf>,
    /// Online state and decision log bounds.
    pub bounds: state::Bounds,
    /// A challenger model directory (and catalog) served to a share of customers.
    pub challenger: Option<(PathBuf, Option<PathBuf>, f64)>,
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Reloads the served model on SIGHUP.
#[cfg(unix)]
fn reload_on_sighup(state: AppState) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = state.reload(None, None, None).await;
        }
    });
}

/// Binds `addr`, serves until SIGTERM or Ctrl-C, and finishes in-flight requests. `on_ready`
/// gets the bound address (port 0 picks a free one).
pub async fn serve(
    opts: ServeOptions,
    on_ready: impl FnOnce(SocketAddr, &LoadedModel),
) -> Result<(), ServeError> {
    // Safe by default: no keys means every endpoint is open, which is only acceptable on
    // loopback unless the operator says otherwise.
    if opts.keys.is_empty() && !opts.addr.ip().is_loopback() && !opts.insecure_open {
        return Err(ServeError::OpenToNetwork { addr: opts.addr });
    }
    let (dir, actions) = (opts.model.clone(), opts.actions.clone());
    let model =
        tokio::task::spawn_blocking(move || LoadedModel::load(&dir, actions.as_deref())).await??;
    if opts.keys.is_empty() {
        tracing::warn!(
            "no API keys configured: every endpoint is open (set LATTICE_API_KEYS or --api-keys)"
        );
    }
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    let state = match opts.events_db.clone() {
        None => AppState::new(model, opts.keys),
        Some(path) => {
            let max = opts.events_max_bytes;
            tokio::task::spawn_blocking(move || {
                let store = lattice_events::EventStore::open(&path, max).map_err(|source| {
                    ServeError::OpenEvents {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(path = %path.display(), "events database open");
                AppState::with_events_bounded(model, opts.keys, store, opts.bounds)
                    .map_err(ServeError::Replay)
            })
            .await??
        }
    };
    if !opts.reload_roots.is_empty() {
        state.set_reload_roots(&opts.reload_roots)?;
    }
    if let Some((dir, actions, share)) = opts.challenger.clone() {
        let st = state.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ServeError> {
            let model = LoadedModel::load(&dir, actions.as_deref())?;
            st.set_challenger(model, share)
                .map_err(ServeError::Replay)?;
            tracing::info!(dir = %dir.display(), share, "challenger served");
            Ok(())
        })
        .await??;
    }
    on_ready(addr, &state.model());
    #[cfg(unix)]
    reload_on_sighup(state.clone());
    axum::serve(listener, router(state, opts.limits))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
