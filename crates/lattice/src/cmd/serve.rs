//! `lattice serve`: the HTTP scoring server over a model directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lattice_runtime::LoadedModel;
use lattice_serve::auth::ApiKeys;
use lattice_serve::{Limits, ServeOptions, serve};

#[derive(clap::Args)]
pub struct Args {
    /// Model directory written by `lattice train`.
    #[arg(long, default_value = "models/demo")]
    pub model: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Action catalog to use instead of the model directory's own actions.toml.
    #[arg(long)]
    pub actions: Option<PathBuf>,
    /// API keys file: `[[key]]` tables with name, sha256 (of the key) and scopes. Keys from
    /// the LATTICE_API_KEYS environment variable (name:sha256:scope+scope,…) are added.
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// Log as JSON lines (level filter from LATTICE_LOG, e.g. `info` or `lattice_serve=debug`).
    #[arg(long)]
    pub log_json: bool,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 32)]
    pub max_body_mib: usize,
    /// Requests that read a body (batch scores, in-context decisions, audiences, events,
    /// reload) and take longer, receiving the body included, are answered 503; a 503 at the
    /// deadline means nothing was stored or changed. Fractions allowed (0.5).
    #[arg(long, default_value_t = 10.0)]
    pub timeout_secs: f64,
    /// A streamed download (audiences) whose client takes no data for this long is cut off,
    /// releasing its thread.
    #[arg(long, default_value_t = 30.0)]
    pub write_timeout_secs: f64,
    /// Requests in flight at once; more are answered 503 at once (retry shortly).
    #[arg(long, default_value_t = 1024)]
    pub concurrency: usize,
    /// The events database (SQLite) for POST /v1/events and the decision log. Default:
    /// runs/<model directory name>/events.db; never inside the model directory.
    #[arg(long)]
    pub events_db: Option<PathBuf>,
    /// Refuse event writes (503) once the events database reaches this size, in MiB.
    #[arg(long)]
    pub events_max_mib: Option<u64>,
    /// Serve a non-loopback --addr with no API keys, every endpoint open to the network.
    #[arg(long)]
    pub insecure_open: bool,
    /// A directory POST /v1/admin/reload may load models and catalogs from (repeatable).
    /// Default: the parent directories of --model and --actions.
    #[arg(long)]
    pub reload_root: Vec<PathBuf>,
    /// Most customers kept in online state; events of further new customers are stored but
    /// not applied (they are answered from the snapshot or cold start; see /metrics).
    #[arg(long, default_value_t = lattice_runtime::DEFAULT_MAX_ONLINE_CUSTOMERS)]
    pub max_online_customers: usize,
    /// Most decisions in the decision log (record=true); past it, record=true answers 429.
    #[arg(long, default_value_t = lattice_serve::state::DEFAULT_MAX_DECISIONS)]
    pub max_decisions: u64,
    /// A challenger model directory served beside --model to --challenger-share of customers
    /// (by hash of the customer id); `POST /v1/admin/promote` makes it the champion.
    #[arg(long)]
    pub challenger: Option<PathBuf>,
    /// The challenger's action catalog, instead of its directory's own.
    #[arg(long, requires = "challenger")]
    pub challenger_actions: Option<PathBuf>,
    /// Share of customers (0 to 1) the challenger decides for.
    #[arg(long, default_value_t = 0.1, value_parser = share)]
    pub challenger_share: f64,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

/// Where the events database goes: `--events-db`, else `runs/<model name>/events.db`. Refused
/// inside the model directory, which a retrain replaces whole.
pub fn events_db(model: &Path, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let name = model
                .canonicalize()
                .ok()
                .and_then(|m| m.file_name().map(|n| n.to_os_string()))
                .unwrap_or_else(|| "default".into());
            Path::new("runs").join(name).join("events.db")
        }
    };
    let inside = |p: &Path| -> Option<bool> {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = dir.canonicalize().ok()?;
        Some(dir.starts_with(model.canonicalize().ok()?))
    };
    if inside(&path) == Some(true) {
        anyhow::bail!(
            "--events-db {} is inside the model directory {}: a retrain replaces that directory \
             whole; keep events elsewhere (default runs/<model>/events.db)",
            path.display(),
            model.display()
        );
    }
    Ok(path)
}

/// Logs to stderr, never customer attributes (the server logs route templates, not paths).
pub fn init_logging(json: bool) {
    let filter: tracing_subscriber::filter::Targets = std::env::var("LATTICE_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| "info".parse().expect("a valid default filter"));
    use tracing_subscriber::prelude::*;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

pub fn keys(file: Option<&PathBuf>) -> anyhow::Result<ApiKeys> {
    let mut keys = match file {
        Some(f) => ApiKeys::from_file(f).map_err(anyhow::Error::msg)?,
        None => ApiKeys::default(),
    };
    if let Ok(v) = std::env::var("LATTICE_API_KEYS") {
        keys.extend(ApiKeys::from_env_value(&v).map_err(anyhow::Error::msg)?);
    }
    Ok(keys)
}

fn secs(flag: &str, v: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero() && v <= 86_400.0)
        .with_context(|| format!("{flag} {v}: expected a number of seconds above 0, at most 86400"))
}

pub fn run_with(
    args: Args,
    keys: ApiKeys,
    on_ready: impl FnOnce(SocketAddr, &LoadedModel),
) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let events_db = events_db(&args.model, args.events_db.as_deref())?;
    let challenger = args
        .challenger
        .clone()
        .map(|dir| (dir, args.challenger_actions.clone(), args.challenger_share));
    let opts = ServeOptions {
        model: args.model,
        actions: args.actions,
        addr: args.addr,
        keys,
        limits: Limits {
            body_bytes: args.max_body_mib * 1024 * 1024,
            timeout: secs("--timeout-secs", args.timeout_secs)?,
            write_timeout: secs("--write-timeout-secs", args.write_timeout_secs)?,
            concurrency: args.concurrency,
        },
        events_db: Some(events_db),
        events_max_bytes: args.events_max_mib.map(|m| m * 1024 * 1024),
        insecure_open: args.insecure_open,
        reload_roots: args.reload_root,
        bounds: lattice_serve::state::Bounds {
            max_online_customers: args.max_online_customers,
            max_decisions: args.max_decisions,
        },
        challenger,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(serve(opts, on_ready))
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let keys = keys(args.api_keys.as_ref())?;
    run_with(args, keys, |addr, m| {
        println!(
            "serving model {} (as of {}, {} customers, {} actions) on http://{addr}",
            m.manifest.name,
            m.manifest.as_of,
            m.customers(),
            m.catalog.len()
        );
    })
}
