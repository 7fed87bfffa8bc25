//! `lattice cluster scheduler|executor`, and the `--cluster` option of the commands that query
//! history (docs/scale-out.md).

use lattice_features::SessionContext;

/// The session `--cluster SPEC` names (`df://HOST:PORT` or `standalone`), connected; `None`
/// without the option.
#[cfg(feature = "cluster")]
pub async fn session(spec: Option<&str>) -> anyhow::Result<Option<SessionContext>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let cluster: lattice_cluster::Cluster = spec.parse()?;
    Ok(Some(lattice_cluster::connect(&cluster).await?))
}

#[cfg(not(feature = "cluster"))]
pub async fn session(spec: Option<&str>) -> anyhow::Result<Option<SessionContext>> {
    match spec {
        None => Ok(None),
        Some(s) => anyhow::bail!(
            "--cluster {s}: this lattice was built without the `cluster` feature (cargo build \
             --release -p lattice --features cluster)"
        ),
    }
}

#[cfg(feature = "cluster")]
pub use run::{Cluster, run};

#[cfg(feature = "cluster")]
mod run {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::process::ExitCode;

    use anyhow::Context;
    use lattice_cluster::{ExecutorOptions, SchedulerOptions, parse_bytes};

    #[derive(clap::Subcommand)]
    pub enum Cluster {
        /// Run a Ballista scheduler that knows Lattice's SQL functions. Prints `listening on
        /// ADDR` once it accepts connections; stops on SIGTERM or ctrl-c.
        Scheduler(SchedulerArgs),
        /// Run a Ballista executor that knows Lattice's SQL functions, registered with a
        /// scheduler. Stops on SIGTERM or ctrl-c, letting running tasks finish.
        Executor(ExecutorArgs),
    }

    #[derive(clap::Args)]
    pub struct SchedulerArgs {
        /// Address to listen on (clients use df://HOST:PORT; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
        /// Host name executors and clients reach this scheduler at (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// An executor silent for this many seconds is dead; its tasks run again elsewhere.
        /// Keep it above the executors' --heartbeat-seconds.
        #[arg(long, default_value_t = 60)]
        executor_timeout_seconds: u64,
        /// Attempts of one task before its job fails.
        #[arg(long, default_value_t = 4)]
        task_max_failures: usize,
    }

    #[derive(clap::Args)]
    pub struct ExecutorArgs {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// Host to bind the executor's two ports to.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Arrow Flight port: shuffle data and results are fetched from it.
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port: the scheduler sends tasks to it.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Host name the scheduler and the other executors reach this one at (default: the
        /// address the scheduler sees it connect from).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// Memory for query execution (e.g. 4GiB), shared by the running tasks; past it,
        /// sorts and aggregations spill to --work-dir. Default: a share of the host's memory.
        #[arg(long, value_parser = parse_bytes)]
        memory_limit: Option<u64>,
        /// Directory for shuffle files and spills (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 15)]
        heartbeat_seconds: u64,
        /// Seconds to keep trying to reach the scheduler at start.
        #[arg(long, default_value_t = 10)]
        scheduler_connect_timeout_seconds: u16,
    }

    /// Deep plans decode recursively: Ballista's own binaries run on 32 MiB stacks.
    fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(32 * 1024 * 1024)
            .build()
            .context("starting the runtime")
    }

    pub fn run(cmd: Cluster) -> anyhow::Result<ExitCode> {
        match cmd {
            Cluster::Scheduler(a) => scheduler(a),
            Cluster::Executor(a) => executor(a),
        }
    }

    fn scheduler(a: SchedulerArgs) -> anyhow::Result<ExitCode> {
        let opts = SchedulerOptions {
            bind: a.bind,
            external_host: a.external_host,
            executor_timeout_seconds: a.executor_timeout_seconds,
            // Look for dead executors a few times per timeout.
            expire_dead_executor_interval_seconds: (a.executor_timeout_seconds / 4).max(1),
            task_max_failures: a.task_max_failures,
        };
        runtime()?.block_on(lattice_cluster::run_scheduler(opts, |addr| {
            // Tests and scripts wait for this line (with port 0 it is the only way to learn
            // the port).
            println!("lattice cluster scheduler listening on {addr}");
            let _ = std::io::stdout().flush();
        }))?;
        eprintln!("lattice cluster scheduler: stopped");
        Ok(ExitCode::SUCCESS)
    }

    fn executor(a: ExecutorArgs) -> anyhow::Result<ExitCode> {
        let (host, port) = a
            .scheduler
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--scheduler {:?}: expected HOST:PORT", a.scheduler))?;
        if let Some(dir) = &a.work_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--work-dir {}: creating it", dir.display()))?;
        }
        let work_dir = match &a.work_dir {
            Some(d) => Some(
                d.to_str()
                    .with_context(|| format!("--work-dir {}: not UTF-8", d.display()))?
                    .to_string(),
            ),
            None => None,
        };
        let opts = ExecutorOptions {
            bind_host: a.bind_host,
            port: a.port,
            grpc_port: a.grpc_port,
            external_host: a.external_host,
            scheduler_host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            scheduler_port: port,
            scheduler_connect_timeout_seconds: a.scheduler_connect_timeout_seconds,
            concurrent_tasks: a.concurrent_tasks,
            memory_limit: a.memory_limit,
            work_dir,
            heartbeat_seconds: a.heartbeat_seconds,
        };
        eprintln!(
            "lattice cluster executor: flight port {}, grpc port {}, scheduler {}",
            opts.port, opts.grpc_port, a.scheduler
        );
        runtime()?.block_on(lattice_cluster::run_executor(opts))?;
        eprintln!("lattice cluster executor: stopped");
        Ok(ExitCode::SUCCESS)
    }
}
