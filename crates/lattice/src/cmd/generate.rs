use std::path::PathBuf;
use std::process::ExitCode;

use lattice_data::synth::{GenerateOptions, generate};

#[derive(clap::Args)]
pub struct Args {
    /// Number of customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output data directory (an earlier generated one is replaced; anything else is refused
    /// without --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out even when it is not a generated data directory.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = GenerateOptions {
        customers: args.customers,
        seed: args.seed,
        force: args.force,
        ..Default::default()
    };
    let s = generate(&opts, &args.out)?;
    println!(
        "generated {} customers, {} events ({} orders, {:.0} revenue; {} alive at {}) into {}",
        s.customers,
        s.events,
        s.orders,
        s.revenue,
        s.alive_at_end,
        opts.end,
        args.out.display()
    );
    for (t, n) in &s.event_types {
        println!("  {t:<12} {n:>12}");
    }
    Ok(ExitCode::SUCCESS)
}
