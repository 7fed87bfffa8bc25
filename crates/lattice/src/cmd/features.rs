use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use lattice_data::settings::Settings;
use lattice_data::write::ParquetFile;
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
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load_or_default(&args.data.join("lattice.toml"))?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let started = Instant::now();
    let (frame, events, open_secs) = rt.block_on(async {
        let history = History::open(&args.data).await?;
        let open_secs = started.elapsed().as_secs_f64();
        let as_of = args
            .as_of
            .map_or(history.last_event_us, |t| t.timestamp_micros());
        let categories = history.categories(as_of).await?;
        let ctx = FeatureContext {
            categories,
            tiers: settings.tiers.clone(),
        };
        let profiles = load_profiles(&args.data)?;
        anyhow::Ok((
            feature_frame(&history, &profiles, &ctx, as_of).await?,
            history.events,
            open_secs,
        ))
    })?;
    let total = started.elapsed().as_secs_f64();
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
    let mut file = ParquetFile::create(&args.out, schema)?;
    file.write(&batch)?;
    file.finish()?;
    println!(
        "{} customers × {} features from {} events in {:.2} s (validation pass {:.2} s, aggregation {:.2} s) → {}",
        frame.rows(),
        frame.names.len(),
        events,
        total,
        open_secs,
        total - open_secs,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
