use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use lattice_models::pipeline::TrainConfig;
use lattice_models::train::{TRAIN_STEPS, TrainOptions, train_with_progress};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (see docs/data-contract.md).
    #[arg(long)]
    data: PathBuf,
    /// Model directory to write, e.g. models/NAME (an existing model directory is replaced
    /// atomically; anything else is refused without --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out even when it is not a model directory.
    #[arg(long)]
    force: bool,
    /// Fit with data up to this instant (YYYY-MM-DD = end of that day UTC); default: the end of
    /// the data.
    #[arg(long, value_parser = super::parse_instant)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Churn horizon in days: churn = no purchase in the next N days.
    #[arg(long, default_value_t = 60)]
    horizon_days: i64,
    /// Affinity window in days.
    #[arg(long, default_value_t = 28)]
    affinity_days: i64,
    /// What BG/NBD counts as a repeat purchase: `purchase-days` (distinct UTC days after the
    /// first, as Fader, Hardie and Lee and `lifetimes` count) or `orders`.
    #[arg(long, default_value = "purchase-days")]
    clv_frequency: lattice_models::pipeline::RepeatCount,
    /// Skip the backtest (no metrics.json; send-time smoothing takes its defaults).
    #[arg(long)]
    no_backtest: bool,
    /// Run the aggregation and label queries on a cluster: `df://HOST:PORT` (a `lattice
    /// cluster scheduler`) or `standalone` (a scheduler and executor in this process). Every
    /// node must see --data at the same path (docs/scale-out.md).
    #[arg(long, value_name = "df://HOST:PORT|standalone")]
    cluster: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .context("--out needs a directory name")?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let cluster = rt.block_on(super::cluster::session(args.cluster.as_deref()))?;
    let opts = TrainOptions {
        name,
        config: TrainConfig {
            horizon_days: args.horizon_days,
            affinity_days: args.affinity_days,
            clv_frequency: args.clv_frequency,
            ..Default::default()
        },
        as_of_us: args.as_of.map(|t| t.timestamp_micros()),
        backtest: !args.no_backtest,
        report: Some(lattice_report::render),
        force: args.force,
        cluster,
    };
    let started = Instant::now();
    let steps = super::progress::Steps::new(&TRAIN_STEPS);
    let t = rt.block_on(train_with_progress(&args.data, &args.out, &opts, &|i| {
        steps.start(i)
    }));
    steps.finish();
    let t = t?;
    let m = &t.manifest;
    println!(
        "trained {} at {} on {} events: {} customers, {} features, {} categories, in {:.1} s",
        t.dir.display(),
        m.as_of,
        m.data.events,
        m.customers,
        m.feature_schema.len(),
        m.categories.len(),
        started.elapsed().as_secs_f64()
    );
    for (k, v) in &m.metrics {
        println!("  {k:<32} {v:.4}");
    }
    Ok(ExitCode::SUCCESS)
}
