//! The optional `customers` table: value checks and reader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::Float64Type;

use lattice_catalog::is_valid_timezone;

use crate::error::{DataError, Result};
use crate::issues::{Issue, Issues, Rule};
use crate::schema::{CUSTOMER_COLUMNS, cu, customers_schema};
use crate::table::TableReader;

/// `customers.parquet` in a data directory.
pub fn customers_location(data_dir: &Path) -> PathBuf {
    data_dir.join("customers.parquet")
}

pub fn open_customers_file(path: &Path) -> Result<TableReader> {
    TableReader::open(path, CUSTOMER_COLUMNS, customers_schema())
}

/// Per-row checks for the customers table. `seen` maps customer ids to the row they were
/// first seen in, across batches, to find duplicates.
pub fn check_customers_batch(
    path: &Path,
    batch: &RecordBatch,
    first_row: u64,
    seen: &mut HashMap<String, u64>,
    issues: &mut Issues,
) {
    let ids = batch.column(cu::CUSTOMER_ID).as_string::<i32>();
    let tz = batch.column(cu::TIMEZONE).as_string::<i32>();
    let points = batch
        .column(cu::POINTS_BALANCE)
        .as_primitive::<Float64Type>();
    for i in 0..batch.num_rows() {
        let row = first_row + i as u64;
        if ids.is_null(i) || ids.value(i).trim().is_empty() {
            issues.push(
                Issue::error(
                    Rule::NullCustomerId,
                    path,
                    "customer id is null or empty (expected a non-empty string or integer)",
                )
                .at("customer_id", Some(row)),
            );
        } else if let Some(first) = seen.get(ids.value(i)) {
            issues.push(
                Issue::error(
                    Rule::DuplicateCustomer,
                    path,
                    format!(
                        "customer {:?} already appeared in row {first} (expected one row per customer)",
                        ids.value(i)
                    ),
                )
                .at("customer_id", Some(row)),
            );
        } else {
            seen.insert(ids.value(i).to_string(), row);
        }
        if !tz.is_null(i) && !is_valid_timezone(tz.value(i)) {
            issues.push(
                Issue::error(
                    Rule::UnknownTimezone,
                    path,
                    format!(
                        "unknown time zone {:?} (expected an IANA name such as \"Europe/Paris\")",
                        tz.value(i)
                    ),
                )
                .at("timezone", Some(row)),
            );
        }
        if !points.is_null(i) && !points.value(i).is_finite() {
            issues.push(
                Issue::error(
                    Rule::NonFiniteNumber,
                    path,
                    format!("points balance {} is not a finite number", points.value(i)),
                )
                .at("points_balance", Some(row)),
            );
        }
    }
}

/// Reads the whole customers table (one row per customer; it is small next to events),
/// failing with a located error at the first row that breaks the contract.
pub fn read_customers(path: &Path) -> Result<RecordBatch> {
    let mut reader = open_customers_file(path)?;
    let mut issues = Issues::new(1);
    let mut seen = HashMap::new();
    let mut batches = Vec::new();
    while let Some((batch, first)) = reader.next_batch(&mut issues)? {
        check_customers_batch(path, &batch, first, &mut seen, &mut issues);
        issues.check()?;
        batches.push(batch);
    }
    concat_batches(&customers_schema(), &batches).map_err(|e| DataError::arrow(path, e))
}
