use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Import {
    /// CDNOW purchase file (CDNOW_master.txt or CDNOW_sample.txt) to events.parquet.
    Cdnow {
        /// The CDNOW text file.
        file: PathBuf,
        /// Output data directory.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: Import) -> anyhow::Result<ExitCode> {
    match cmd {
        Import::Cdnow { file, out } => {
            let s = lattice_data::cdnow::import_cdnow(&file, &out)?;
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
