use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use lattice_catalog::settings::Settings;
use lattice_data::write::ParquetFile;
use lattice_features::history::TS_US;
use lattice_features::sql::aggregates_query;
use lattice_features::{FeatureContext, History, feature_frame, load_profiles};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (see docs/data-contract.md).
    #[arg(long)]
    data: PathBuf,
    /// Point in time (YYYY-MM-DD = end of that day UTC, or RFC 3339); default: the last event.
    #[arg(long, value_parser = super::parse_instant)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Output Parquet file: customer_id, then one f64 column per feature.
    #[arg(long, required_unless_present_any = ["print_sql", "query_only"])]
    out: Option<PathBuf>,
    /// Print the aggregation SQL for this as_of and category vocabulary, in the given dialect
    /// (over a table or view named `events` in the contract's schema), and exit. Used by
    /// scripts/bench_features.py to run the very same aggregation on DuckDB.
    #[arg(long, value_enum, conflicts_with_all = ["out", "query_only"])]
    print_sql: Option<Dialect>,
    /// Run only the aggregation query (materialised in memory as Arrow batches) and print its
    /// timing; no feature matrix, nothing written. For benchmarks.
    #[arg(long, conflicts_with = "out")]
    query_only: bool,
    /// Run the aggregation and label queries on a cluster: `df://HOST:PORT` (a `lattice
    /// cluster scheduler`) or `standalone` (a scheduler and executor in this process). Every
    /// node must see --data at the same path (docs/scale-out.md).
    #[arg(long, value_name = "df://HOST:PORT|standalone")]
    cluster: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Dialect {
    /// DataFusion, as Lattice runs it: `ts` as `arrow_cast(ts, 'Int64')`.
    Datafusion,
    /// DuckDB: `ts` as `epoch_us(ts)`.
    Duckdb,
}

impl Dialect {
    fn ts_us(self) -> &'static str {
        match self {
            Dialect::Datafusion => TS_US,
            Dialect::Duckdb => "epoch_us(ts)",
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load_or_default(&args.data.join("lattice.toml"))?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let started = Instant::now();
    let cluster = rt.block_on(super::cluster::session(args.cluster.as_deref()))?;
    let history = rt.block_on(History::open_on(&args.data, cluster))?;
    let open_secs = started.elapsed().as_secs_f64();
    let as_of = args
        .as_of
        .map_or(history.last_event_us, |t| t.timestamp_micros());
    let t = Instant::now();
    let categories = rt.block_on(history.categories(as_of))?;
    let categories_secs = t.elapsed().as_secs_f64();

    if let Some(dialect) = args.print_sql {
        println!(
            "{};",
            aggregates_query(as_of, &categories, dialect.ts_us(), 1.0)
        );
        return Ok(ExitCode::SUCCESS);
    }

    if args.query_only {
        let (t, cpu) = (Instant::now(), cpu_secs());
        let batches = rt.block_on(history.aggregate_batches(as_of, &categories, 1.0))?;
        let query_secs = t.elapsed().as_secs_f64();
        let cpu = match (cpu, cpu_secs()) {
            (Some(a), Some(b)) => format!(", {:.3} s CPU", b - a),
            _ => String::new(),
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let columns = batches.first().map_or(0, RecordBatch::num_columns);
        println!(
            "aggregation query: {rows} rows × {columns} columns from {} events in {query_secs:.3} s{cpu} \
             ({:.0} events/s; validation pass {open_secs:.3} s, categories {categories_secs:.3} s)",
            history.events,
            history.events as f64 / query_secs,
        );
        return Ok(ExitCode::SUCCESS);
    }

    let out = args.out.context("--out is required")?;
    let t = Instant::now();
    let ctx = FeatureContext {
        categories,
        tiers: settings.tiers.clone(),
    };
    let profiles = load_profiles(&args.data)?;
    let profiles_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let frame = rt.block_on(feature_frame(&history, &profiles, &ctx, as_of))?;
    let aggregation_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    fields.extend(
        frame
            .names
            .iter()
            .map(|n| Field::new(n, DataType::Float64, false)),
    );
    let schema = Arc::new(Schema::new(fields));
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(frame.customer_ids.clone()))];
    for j in 0..frame.names.len() {
        let v: Vec<f64> = (0..frame.rows()).map(|i| frame.row(i)[j]).collect();
        cols.push(Arc::new(Float64Array::from(v)));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let mut file = ParquetFile::create(&out, schema)?;
    file.write(&batch)?;
    file.finish()?;
    let write_secs = t.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    println!(
        "{} customers × {} features from {} events in {total:.2} s (validation pass {open_secs:.2} s, \
         categories {categories_secs:.2} s, profiles {profiles_secs:.2} s, aggregation and features \
         {aggregation_secs:.2} s, write {write_secs:.2} s) → {}",
        frame.rows(),
        frame.names.len(),
        history.events,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// CPU time (user + system, all threads) of this process so far, where `/proc` tells it
/// (Linux, assuming the usual 100 clock ticks a second).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
