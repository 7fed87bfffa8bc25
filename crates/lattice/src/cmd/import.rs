use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Import {
    /// CDNOW purchase file (CDNOW_master.txt or CDNOW_sample.txt) to events.parquet.
    Cdnow {
        /// The CDNOW text file.
        file: PathBuf,
        /// Output data directory: `events.parquet` is written into it (an earlier import or
        /// other Lattice-written events table is replaced; anything else is refused without
        /// --force).
        #[arg(long)]
        out: PathBuf,
        /// Replace `events.parquet` even when Lattice did not write it.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: Import) -> anyhow::Result<ExitCode> {
    match cmd {
        Import::Cdnow { file, out, force } => {
            let s = lattice_data::cdnow::import_cdnow(&file, &out, force)?;
            println!(
                "imported {} purchase rows of {} customers into {}",
                s.rows,
                s.customers,
                out.join("events.parquet").display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
