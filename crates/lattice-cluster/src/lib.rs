//! Lattice on an Apache DataFusion Ballista cluster.
//!
//! Stock Ballista binaries do not know Lattice's SQL function `lattice_unit` (the deterministic
//! customer sample, [`lattice_features::sample`]), so a plan that uses it cannot be decoded
//! there. This crate runs Ballista's scheduler and executor with the function registered
//! wherever plans are planned and decoded ([`run_scheduler`], [`run_executor`]: `lattice
//! cluster scheduler|executor`), and opens client sessions whose queries go to such a cluster
//! ([`connect`]: `--cluster df://HOST:PORT`, or `--cluster standalone` for a scheduler and an
//! executor inside this process).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::{FunctionRegistry, SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use lattice_features::sample::{UNIT_FN, unit_udf};

/// How long [`connect`] waits for a scheduler to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The scheduler's port when a `df://` address names none (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(String);

impl ClusterError {
    fn new(msg: impl Into<String>) -> Self {
        ClusterError(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, ClusterError>;

/// Where `--cluster` sends the aggregation and label queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    /// A Ballista scheduler and one executor inside this process (for tests and trials).
    Standalone,
    /// A `lattice cluster scheduler` at `df://HOST:PORT`.
    Remote { host: String, port: u16 },
}

impl FromStr for Cluster {
    type Err = ClusterError;

    fn from_str(s: &str) -> Result<Self> {
        if s == "standalone" {
            return Ok(Cluster::Standalone);
        }
        let bad = |why: &str| {
            ClusterError::new(format!(
                "--cluster {s:?}: {why} (expected df://HOST:PORT or standalone)"
            ))
        };
        let rest = s
            .strip_prefix("df://")
            .ok_or_else(|| bad("not a df:// address"))?
            .trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal without a port ends in `]`.
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad(&format!("port {p:?} is not a number from 0 to 65535")))?,
            ),
            _ => (rest, DEFAULT_SCHEDULER_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(bad("no host name"));
        }
        Ok(Cluster::Remote {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Standalone => f.write_str("standalone"),
            Cluster::Remote { host, port } if host.contains(':') => {
                write!(f, "df://[{host}]:{port}")
            }
            Cluster::Remote { host, port } => write!(f, "df://{host}:{port}"),
        }
    }
}

/// A client session whose queries run on `cluster`, with Lattice's functions registered.
///
/// A remote scheduler that does not accept a connection within [`CONNECT_TIMEOUT`] is an
/// error naming its address: Ballista itself would only find out at the first query, after its
/// own, longer, retries.
pub async fn connect(cluster: &Cluster) -> Result<SessionContext> {
    let ctx = match cluster {
        Cluster::Standalone => SessionContext::standalone_with_state(lattice_state(
            SessionConfig::new_with_ballista(),
        )?)
        .await
        .map_err(|e| ClusterError::new(format!("starting the standalone cluster: {e}")))?,
        Cluster::Remote { host, port } => {
            probe(cluster, host, *port).await?;
            SessionContext::remote_with_state(
                &cluster.to_string(),
                lattice_state(SessionConfig::new_with_ballista())?,
            )
            .await
            .map_err(|e| ClusterError::new(format!("connecting to {cluster}: {e}")))?
        }
    };
    // Ballista's upgrade of the state puts back its own function list: register ours again,
    // for the client's planner.
    ctx.register_udf(unit_udf());
    Ok(ctx)
}

/// Fails unless `host:port` accepts a TCP connection within [`CONNECT_TIMEOUT`].
async fn probe(cluster: &Cluster, host: &str, port: u16) -> Result<()> {
    let unreachable = |why: String| {
        ClusterError::new(format!(
            "cannot reach the cluster's scheduler at {cluster}: {why} (is `lattice cluster \
             scheduler` running there, and is the port open?)"
        ))
    };
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// DataFusion's default session with Lattice's functions, on `config`.
fn lattice_state(config: SessionConfig) -> Result<SessionState> {
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    register(&mut state)?;
    Ok(state)
}

fn register(state: &mut SessionState) -> Result<()> {
    state
        .register_udf(Arc::new(unit_udf()))
        .map_err(|e| ClusterError::new(format!("registering {UNIT_FN}: {e}")))?;
    Ok(())
}

/// The scheduler's session for each client session: Ballista's, plus Lattice's functions, so
/// the logical plans clients send decode and plan.
fn scheduler_session(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state = ballista_core::utils::default_session_builder(config)?;
    state.register_udf(Arc::new(unit_udf()))?;
    Ok(state)
}

/// The executor's function registry: Ballista's, plus Lattice's, so the stages it is sent
/// decode.
fn executor_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    registry
        .scalar_functions
        .insert(UNIT_FN.to_string(), Arc::new(unit_udf()));
    registry
}

/// `lattice cluster scheduler`.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (port 0: any free port, printed once bound).
    pub bind: SocketAddr,
    /// Host name executors and clients are told to reach this scheduler at.
    pub external_host: Option<String>,
    /// An executor that has not sent a heartbeat for this long is dead: its tasks run again
    /// elsewhere.
    pub executor_timeout_seconds: u64,
    /// How often to look for dead executors.
    pub expire_dead_executor_interval_seconds: u64,
    /// Attempts of one task before its job fails.
    pub task_max_failures: usize,
}

/// Runs a scheduler until SIGTERM or ctrl-c. `ready` is called with the bound address once it
/// accepts connections.
pub async fn run_scheduler(opts: SchedulerOptions, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .map_err(|e| ClusterError::new(format!("scheduler: binding {}: {e}", opts.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ClusterError::new(format!("scheduler: bound address: {e}")))?;
    let config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: opts
            .external_host
            .clone()
            .unwrap_or_else(|| addr.ip().to_string()),
        executor_timeout_seconds: opts.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: opts.expire_dead_executor_interval_seconds,
        no_executors_grace_period_seconds: opts.executor_timeout_seconds,
        task_max_failures: opts.task_max_failures,
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(Arc::new(scheduler_session));
    config
        .validate()
        .map_err(|e| ClusterError::new(format!("scheduler: {e}")))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| ClusterError::new(format!("scheduler: {e}")))?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(|e| ClusterError::new(format!("scheduler: {e}")))?;
    ready(addr);
    tokio::select! {
        served = start_grpc_service_with_listener(listener, scheduler) => {
            served.map_err(|e| ClusterError::new(format!("scheduler on {addr}: {e}")))
        }
        _ = shutdown_signal() => Ok(()),
    }
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// `lattice cluster executor`.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Host to bind the executor's services to.
    pub bind_host: String,
    /// Arrow Flight port (shuffle and results are fetched from it).
    pub port: u16,
    /// gRPC port (the scheduler pushes tasks to it).
    pub grpc_port: u16,
    /// Host name the scheduler and other executors are told to reach this executor at.
    pub external_host: Option<String>,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// How long to keep trying to reach the scheduler at start.
    pub scheduler_connect_timeout_seconds: u16,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Memory for query execution, shared by the running tasks; past it, sorts and
    /// aggregations spill to `work_dir`. `None`: Ballista's default share of the host's memory.
    pub memory_limit: Option<u64>,
    /// Where shuffle files and spills go (default: a temporary directory).
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

/// Runs an executor until SIGTERM or ctrl-c (Ballista's own handling: it tells the scheduler
/// it is leaving and lets its running tasks finish).
pub async fn run_executor(opts: ExecutorOptions) -> Result<()> {
    let scheduler = format!("{}:{}", opts.scheduler_host, opts.scheduler_port);
    // Ballista's own default work directory is a temporary directory it drops at once: keep
    // ours for the life of the process, and remove it after.
    let own_dir = match &opts.work_dir {
        Some(_) => None,
        None => {
            let d = std::env::temp_dir().join(format!("lattice-executor-{}", std::process::id()));
            std::fs::create_dir_all(&d).map_err(|e| {
                ClusterError::new(format!("executor: creating {}: {e}", d.display()))
            })?;
            Some(d)
        }
    };
    let work_dir = match (&opts.work_dir, &own_dir) {
        (Some(w), _) => Some(w.clone()),
        (None, Some(d)) => d.to_str().map(str::to_string),
        (None, None) => None,
    };
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        port: opts.port,
        grpc_port: opts.grpc_port,
        external_host: opts.external_host.clone(),
        scheduler_host: opts.scheduler_host.clone(),
        scheduler_port: opts.scheduler_port,
        scheduler_connect_timeout_seconds: opts.scheduler_connect_timeout_seconds,
        vcores: opts.concurrent_tasks,
        memory_pool_size: opts.memory_limit,
        work_dir,
        executor_heartbeat_interval_seconds: opts.heartbeat_seconds,
        override_function_registry: Some(Arc::new(executor_registry())),
        ..ExecutorProcessConfig::default()
    };
    let ran = start_executor_process(Arc::new(config))
        .await
        .map_err(|e| ClusterError::new(format!("executor (scheduler {scheduler}): {e}")));
    if let Some(d) = own_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    ran
}

/// Parses a byte size: a number with an optional unit (B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
/// T/TB/TiB; powers of 1024).
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4GiB, 512MiB, 1073741824)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (B, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let bytes = n * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as u64)
}
