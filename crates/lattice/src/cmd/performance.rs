//! `lattice performance`: what learning knows, from an events database and the model that
//! served it (the same figures as `GET /v1/actions/performance`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use lattice_events::EventStore;
use lattice_runtime::{Learning, LoadedModel};

#[derive(clap::Args)]
pub struct Args {
    /// The events database the server recorded decisions and events in.
    #[arg(long)]
    db: PathBuf,
    /// The model directory that served (its catalog says each action's response rule).
    #[arg(long)]
    model: PathBuf,
    /// An action catalog instead of the model directory's own (as given to `serve --actions`).
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Also list every segment of each action.
    #[arg(long)]
    segments: bool,
    /// The challenger arm's decisions (served with `--challenger`) instead of the champion's.
    #[arg(long)]
    challenger: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = LoadedModel::load(&args.model, args.actions.as_deref())
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let store = EventStore::open_read_only(&args.db)?;
    let learning = Learning::new(&model.catalog, &model.settings);
    let arm = args.challenger.then_some(lattice_runtime::CHALLENGER);
    let replayed = learning.replay(&model.catalog, &store, arm, Utc::now())?;
    let (perf, open) = learning.performance(&model.catalog, Utc::now());
    println!(
        "{replayed} recorded decisions with learning fields; {open} still in their response window"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>26} {:>12} {:>14} {:>28}",
        "action",
        "decisions",
        "responses",
        "response rate [95%]",
        "value/dec.",
        "control (r/n)",
        "lift [95%]"
    );
    let infos: Vec<_> = model.catalog.actions().collect();
    for p in &perf {
        let a = &infos[p.index];
        let rate = p.rate.map_or("-".to_string(), |(r, lo, hi)| {
            format!("{:.4} [{:.4}, {:.4}]", r, lo, hi)
        });
        let value = p
            .value_per_decision
            .map_or("-".to_string(), |v| format!("{v:.3}"));
        let control = format!("{}/{}", p.control.1, p.control.0);
        let lift = p.lift.map_or("-".to_string(), |(d, lo, hi)| {
            format!("{d:+.4} [{lo:+.4}, {hi:+.4}]")
        });
        println!(
            "{:<28} {:>10} {:>10} {:>26} {:>12} {:>14} {:>28}",
            a.id, p.decisions, p.responses, rate, value, control, lift
        );
        if args.segments {
            for c in &p.segments {
                println!(
                    "  {:<26} {:>10} {:>10} {:>26} {:>12}",
                    c.segment,
                    c.decisions,
                    c.responses,
                    format!("{:.4} [{:.4}, {:.4}]", c.rate, c.low, c.high),
                    format!("prior {:.3}", c.prior)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
