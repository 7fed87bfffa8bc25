//! The `events` table: value checks and the strict streaming reader.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};

use crate::error::{DataError, Result};
use crate::issues::{Issue, Issues, Rule};
use crate::schema::{EVENT_COLUMNS, ev, events_schema};
use crate::table::{TableReader, table_files};

/// Locates the events table in a data directory: `events.parquet` or `events/`.
pub fn events_location(data_dir: &Path) -> PathBuf {
    let file = data_dir.join("events.parquet");
    if file.exists() {
        file
    } else {
        data_dir.join("events")
    }
}

/// The Parquet files of the events table at `path` (a file or a directory).
pub fn event_files(path: &Path) -> Result<Vec<PathBuf>> {
    table_files(path, "events table (events.parquet or events/)")
}

/// Opens one events file, checking its schema.
pub fn open_events_file(path: &Path) -> Result<TableReader> {
    TableReader::open(path, EVENT_COLUMNS, events_schema())
}

/// The contract columns `path` holds if every one already has its canonical type, so a query
/// engine can read the file as it is; `None` if some column needs normalising first.
pub fn canonical_columns(path: &Path) -> Result<Option<Vec<&'static str>>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let builder =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| DataError::NotParquet {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
    let schema = builder.schema();
    crate::normalize::plan_columns(path, schema, EVENT_COLUMNS)?;
    let mut present = Vec::new();
    for spec in EVENT_COLUMNS {
        if let Ok(f) = schema.field_with_name(spec.name) {
            if *f.data_type() != spec.kind.canonical() {
                return Ok(None);
            }
            present.push(spec.name);
        }
    }
    Ok(Some(present))
}

/// Runs the contract's per-row checks on a canonical events batch.
///
/// `as_of_us`, when given, makes any event after that instant an error (a history handed in
/// "as of" a date cannot contain the future).
pub fn check_events_batch(
    path: &Path,
    batch: &RecordBatch,
    first_row: u64,
    as_of_us: Option<i64>,
    issues: &mut Issues,
) {
    let ids = batch.column(ev::CUSTOMER_ID).as_string::<i32>();
    let ts = batch
        .column(ev::TS)
        .as_primitive::<TimestampMicrosecondType>();
    let types = batch.column(ev::EVENT_TYPE).as_string::<i32>();
    let amount = batch.column(ev::AMOUNT).as_primitive::<Float64Type>();
    let quantity = batch.column(ev::QUANTITY).as_primitive::<Float64Type>();
    let sentiment = batch.column(ev::SENTIMENT).as_primitive::<Float64Type>();
    let at = |i: usize| Some(first_row + i as u64);

    for i in 0..batch.num_rows() {
        if ids.is_null(i) || ids.value(i).trim().is_empty() {
            issues.push(
                Issue::error(
                    Rule::NullCustomerId,
                    path,
                    "customer id is null or empty (expected a non-empty string or integer)",
                )
                .at("customer_id", at(i)),
            );
        }
        if let (Some(limit), false) = (as_of_us, ts.is_null(i))
            && ts.value(i) > limit
        {
            issues.push(
                Issue::error(
                    Rule::TimestampAfterAsOf,
                    path,
                    format!(
                        "timestamp {} is later than --as-of {}",
                        fmt_us(ts.value(i)),
                        fmt_us(limit)
                    ),
                )
                .at("ts", at(i)),
            );
        }
        let is_purchase = !types.is_null(i) && types.value(i) == "purchase";
        if types.is_null(i) || types.value(i).trim().is_empty() {
            issues.push(
                Issue::error(
                    Rule::NullEventType,
                    path,
                    "event type is null or empty (expected e.g. purchase, view, support)",
                )
                .at("event_type", at(i)),
            );
        }
        if !sentiment.is_null(i) {
            let s = sentiment.value(i);
            if !(-1.0..=1.0).contains(&s) {
                issues.push(
                    Issue::error(
                        Rule::SentimentRange,
                        path,
                        format!("sentiment {s} is outside [-1, 1]"),
                    )
                    .at("sentiment", at(i)),
                );
            }
        }
        if !quantity.is_null(i) {
            let q = quantity.value(i);
            if !q.is_finite() {
                issues.push(
                    Issue::error(
                        Rule::NonFiniteNumber,
                        path,
                        format!("quantity {q} is not a finite number"),
                    )
                    .at("quantity", at(i)),
                );
            } else if is_purchase && q < 0.0 {
                issues.push(
                    Issue::error(
                        Rule::NegativeQuantity,
                        path,
                        format!(
                            "negative quantity {q} on a purchase (record returns as \
                             event_type = \"return\" with a positive quantity)"
                        ),
                    )
                    .at("quantity", at(i)),
                );
            }
        }
        if !amount.is_null(i) && !amount.value(i).is_finite() {
            issues.push(
                Issue::error(
                    Rule::NonFiniteNumber,
                    path,
                    format!("amount {} is not a finite number", amount.value(i)),
                )
                .at("amount", at(i)),
            );
        }
    }
}

pub(crate) fn fmt_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{us}µs"))
}

/// Streams the canonical events of a table (a file or a directory of files), failing with a
/// located error at the first row that breaks the contract.
pub fn read_events(path: &Path, mut f: impl FnMut(&RecordBatch) -> Result<()>) -> Result<()> {
    for file in event_files(path)? {
        let mut reader = open_events_file(&file)?;
        let mut issues = Issues::new(1);
        while let Some((batch, first)) = reader.next_batch(&mut issues)? {
            check_events_batch(&file, &batch, first, None, &mut issues);
            issues.check()?;
            f(&batch)?;
        }
    }
    Ok(())
}
