use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Number of customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output data directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = (&args.customers, &args.seed, &args.out);
    anyhow::bail!("generate: not wired yet")
}
