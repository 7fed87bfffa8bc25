use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_data::output::{OutputFile, TABLE_FILE, check_file};
use lattice_data::write::ParquetFile;
use lattice_models::artifact::{SNAPSHOT, verify};
use lattice_models::snapshot::is_score_column;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Parquet,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// Model directory written by `lattice train`.
    #[arg(long)]
    model: PathBuf,
    /// Output file (an earlier CSV/Parquet/JSON output is replaced; anything else is refused
    /// without --force). With --cluster, a directory of Parquet part files and `_SUCCESS`.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out even when it does not look like an earlier output.
    #[arg(long)]
    force: bool,
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
    /// With --cluster: the data directory to score every customer from, at the model's as_of.
    #[arg(long, requires = "cluster")]
    data: Option<PathBuf>,
    /// Compute every customer's aggregates on a cluster (`df://HOST:PORT` or `standalone`)
    /// from --data, score them here batch by batch, and write --out as a directory of Parquet
    /// part files with `_SUCCESS` (docs/scale-out.md). Every node must see --data at the same
    /// path.
    #[arg(long, requires = "data", value_name = "df://HOST:PORT|standalone")]
    cluster: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &args.cluster {
        if matches!(args.format, Format::Csv) {
            anyhow::bail!(
                "--cluster writes Parquet part files: --format csv is not supported with it"
            );
        }
        let data = args.data.as_deref().context("--cluster needs --data")?;
        return on_cluster(&args.model, data, &args.out, args.force, spec);
    }
    check_file(&args.out, TABLE_FILE, args.force)?;
    let manifest = verify(&args.model)?;
    let path = args.model.join(SNAPSHOT);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let keep: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| is_score_column(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = datafusion::parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), keep);
    let reader = builder.with_projection(mask).build()?;
    let mut rows = 0usize;
    match args.format {
        Format::Parquet => {
            let mut out: Option<ParquetFile> = None;
            for batch in reader {
                let batch = batch?;
                let w = match &mut out {
                    Some(w) => w,
                    None => out.insert(ParquetFile::create(&args.out, batch.schema())?),
                };
                rows += batch.num_rows();
                w.write(&batch)?;
            }
            if let Some(w) = out {
                w.finish()?;
            }
        }
        Format::Csv => {
            let mut w =
                std::io::BufWriter::new(OutputFile::create(&args.out, TABLE_FILE, args.force)?);
            let mut header = false;
            for batch in reader {
                let batch = batch?;
                if !header {
                    let names: Vec<&str> = batch
                        .schema_ref()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect();
                    writeln!(w, "{}", names.join(","))?;
                    header = true;
                }
                rows += batch.num_rows();
                write_csv(&mut w, &batch)?;
            }
            w.into_inner().map_err(|e| e.into_error())?.commit()?;
        }
    }
    println!(
        "scored {rows} customers with model {} (as of {}) → {}",
        manifest.name,
        manifest.as_of,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// CSV cells: numbers as is, lists joined with ';' (quoted), strings quoted when needed.
fn write_csv(w: &mut impl Write, b: &RecordBatch) -> anyhow::Result<()> {
    for r in 0..b.num_rows() {
        let mut cells = Vec::with_capacity(b.num_columns());
        for c in b.columns() {
            if c.is_null(r) {
                cells.push(String::new());
                continue;
            }
            cells.push(match c.data_type() {
                DataType::Utf8 => quote(c.as_string::<i32>().value(r)),
                DataType::Float64 => c.as_primitive::<Float64Type>().value(r).to_string(),
                DataType::Int32 => c.as_primitive::<Int32Type>().value(r).to_string(),
                DataType::List(_) => {
                    let v = c.as_list::<i32>().value(r);
                    let items: Vec<String> = match v.data_type() {
                        DataType::Int32 => v
                            .as_primitive::<Int32Type>()
                            .iter()
                            .flatten()
                            .map(|x| x.to_string())
                            .collect(),
                        _ => v
                            .as_string::<i32>()
                            .iter()
                            .flatten()
                            .map(str::to_string)
                            .collect(),
                    };
                    quote(&items.join(";"))
                }
                other => anyhow::bail!("unexpected column type {other} in the snapshot"),
            });
        }
        writeln!(w, "{}", cells.join(","))?;
    }
    Ok(())
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', ';']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(feature = "cluster")]
fn on_cluster(
    model: &std::path::Path,
    data: &std::path::Path,
    out: &std::path::Path,
    force: bool,
    spec: &str,
) -> anyhow::Result<ExitCode> {
    super::score_cluster::run(model, data, out, force, spec)
}

#[cfg(not(feature = "cluster"))]
fn on_cluster(
    _model: &std::path::Path,
    _data: &std::path::Path,
    _out: &std::path::Path,
    _force: bool,
    spec: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("--cluster {spec}: this lattice was built without the `cluster` feature")
}
