//! `lattice`: the command-line front of Lattice. Thin glue over the library crates.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: the server's request path (hyper, axum and the
/// answer) allocates a few dozen small blocks per request, and glibc's malloc/free were ~9% of
/// a next-best-actions request (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lattice",
    version,
    about = "Predict and decide the next micro-moment for retail loyalty and CRM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a data directory against the data contract and summarise it.
    Validate(cmd::validate::Args),
    /// Generate a synthetic retail world with planted truth.
    Generate(cmd::generate::Args),
    /// Compute point-in-time features at --as-of and write them to Parquet.
    Features(cmd::features::Args),
    /// Backtest, fit at the end of the data, and write a model directory.
    Train(cmd::train::Args),
    /// Write every customer's scores from a model directory (Parquet or CSV).
    Score(cmd::score::Args),
    /// Backtest the models: fit at end − horizon, measure on the window after it.
    Evaluate(cmd::evaluate::Args),
    /// A ranked, consent-clean audience with expected conversions, to CSV, Parquet or JSON.
    Audience(Box<cmd::audience::Args>),
    /// Conversion of an audience's contacted customers against its held-out control group.
    Uplift(cmd::uplift::Args),
    /// Serve scores, next-best actions, send times, audiences and the audience builder.
    Serve(cmd::serve::Args),
    /// Train the demo model if needed, serve it, and print requests to try.
    Quickstart(cmd::quickstart::Args),
    /// Write the events (and decisions) a server stored back to the data contract's Parquet.
    ExportEvents(cmd::export_events::Args),
    /// Run static, greedy and Thompson-sampling policies in a world with planted response
    /// rates: regret, learned rates against the truth, off-policy estimates against reality.
    Simulate(cmd::simulate::Args),
    /// Per action: recorded decisions, responses and learned response rates, from an events
    /// database and the model that served it.
    Performance(cmd::performance::Args),
    /// Estimate another policy's reward per decision from logged decisions (IPS, SNIPS,
    /// doubly robust, bootstrap intervals), or refuse when the logs cannot support it.
    PolicyEval(cmd::policy_eval::Args),
    /// Every recorded decision with its attributed outcome and reward, to Parquet (usable as
    /// `policy-eval --logs`).
    ExportDecisions(cmd::export_decisions::Args),
    /// Convert external datasets into the data contract.
    #[command(subcommand)]
    Import(cmd::import::Import),
    /// Run a scheduler or an executor of an Apache DataFusion Ballista cluster that knows
    /// Lattice's SQL functions, for `--cluster df://HOST:PORT` (docs/scale-out.md).
    #[cfg(feature = "cluster")]
    #[command(subcommand)]
    Cluster(cmd::cluster::Cluster),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(a) => cmd::validate::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Evaluate(a) => cmd::evaluate::run(a),
        Command::Features(a) => cmd::features::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Score(a) => cmd::score::run(a),
        Command::Audience(a) => cmd::audience::run(*a),
        Command::Uplift(a) => cmd::uplift::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Quickstart(a) => cmd::quickstart::run(a),
        Command::ExportEvents(a) => cmd::export_events::run(a),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Performance(a) => cmd::performance::run(a),
        Command::PolicyEval(a) => cmd::policy_eval::run(a),
        Command::ExportDecisions(a) => cmd::export_decisions::run(a),
        #[cfg(feature = "cluster")]
        Command::Cluster(c) => cmd::cluster::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
