use std::path::PathBuf;
use std::process::ExitCode;

use lattice_data::issues::Severity;
use lattice_data::validate::{ValidateOptions, validate_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory: events.parquet or events/, and optionally customers.parquet,
    /// actions.toml, lattice.toml.
    #[arg(long)]
    data: PathBuf,
    /// Fail if any event is later than this (YYYY-MM-DD = end of that day UTC, or RFC 3339).
    #[arg(long, value_parser = super::parse_instant)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let v = validate_dir(&args.data, &ValidateOptions { as_of: args.as_of });
    print!("{}", v.summary);
    for issue in v.issues.iter() {
        if issue.severity == Severity::Error {
            eprintln!("{issue}");
        } else {
            println!("{issue}");
        }
    }
    for (sev, rule, more) in v.issues.overflow() {
        eprintln!("... and {more} more {sev:?} [{}]", rule.code());
    }
    let (e, w) = (v.issues.error_count(), v.issues.warning_count());
    if v.is_ok() {
        println!("ok: {} is valid ({w} warning(s))", args.data.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "invalid: {} has {e} error(s), {w} warning(s)",
            args.data.display()
        );
        Ok(ExitCode::FAILURE)
    }
}
