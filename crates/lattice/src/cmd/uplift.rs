//! `lattice uplift`: after a campaign, conversion of the contacted customers against the
//! held-out control group, with a 95% interval of the difference.

use std::path::PathBuf;
use std::process::ExitCode;

use lattice_audience::uplift::{UpliftOptions, measure, read_audience};

#[derive(clap::Args)]
pub struct Args {
    /// The audience file (CSV or Parquet from `lattice audience --holdout S --include-holdout`
    /// or POST /v1/audiences with "holdout": {"share": S, "include": true}).
    #[arg(long)]
    audience: PathBuf,
    /// Data directory with the events since the audience started (events.parquet or events/).
    #[arg(long)]
    events: PathBuf,
    /// Days after the audience's starts_at in which a purchase counts.
    #[arg(long, default_value_t = 28)]
    window_days: u32,
    /// Count purchases in this category (default: the audience's category, if it has one).
    #[arg(long, conflicts_with = "any_purchase")]
    category: Option<String>,
    /// Count any purchase, whatever the audience's category.
    #[arg(long)]
    any_purchase: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let audience = read_audience(&args.audience)?;
    let r = measure(
        &audience,
        &args.events,
        &UpliftOptions {
            window_days: args.window_days,
            category: args.category,
            any_purchase: args.any_purchase,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "audience {}: {} from {} to {}",
        r.audience_id, r.conversion, r.starts_at, r.window_end
    );
    println!(
        "{:<10} {:>10} {:>10} {:>9}  95% interval",
        "group", "customers", "converted", "rate"
    );
    for (name, g) in [("treated", &r.treated), ("control", &r.control)] {
        println!(
            "{name:<10} {:>10} {:>10} {:>8.2}%  {:.2}% to {:.2}%",
            g.customers,
            g.converted,
            g.rate * 100.0,
            g.low * 100.0,
            g.high * 100.0
        );
    }
    println!(
        "difference: {:+.2} points (95% interval {:+.2} to {:+.2}; {}){}\n\
         incremental conversions: {:.1}\n\
         method: {}",
        r.difference * 100.0,
        r.difference_low * 100.0,
        r.difference_high * 100.0,
        if r.significant {
            "excludes 0"
        } else {
            "includes 0: not distinguishable from no effect"
        },
        r.relative_lift.map_or(String::new(), |l| format!(
            ", relative lift {:+.1}%",
            l * 100.0
        )),
        r.incremental_conversions,
        r.method
    );
    if !r.window_complete {
        println!(
            "warning: the events end at {}, before the window closes at {}: conversions so far",
            r.events_end.as_deref().unwrap_or("(no events)"),
            r.window_end
        );
    }
    Ok(ExitCode::SUCCESS)
}
