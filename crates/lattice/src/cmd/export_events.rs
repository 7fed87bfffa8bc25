//! `lattice export-events`: what the server stored, back to the data contract's Parquet.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The server's events database (`lattice serve --events-db`, default runs/<model>/events.db).
    #[arg(long)]
    pub db: PathBuf,
    /// Directory to write events.parquet and decisions.parquet into.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out even when it is not an earlier export.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let done = lattice_events::export(&args.db, &args.out, args.force)
        .with_context(|| format!("exporting {}", args.db.display()))?;
    println!(
        "wrote {} events to {} and {} decisions ({} ranked actions) to {}",
        done.events,
        args.out.join("events.parquet").display(),
        done.decisions,
        done.decision_rows,
        args.out.join("decisions.parquet").display()
    );
    println!(
        "to retrain on history plus these events, put both events files in one events/ \
         directory of a data directory (see docs/events.md)"
    );
    Ok(ExitCode::SUCCESS)
}
