//! Importer for the CDNOW purchase files (Fader & Hardie), as shipped in the `lifetimes` package.
//!
//! The master file has four whitespace-separated columns (customer id, date `YYYYMMDD`, number
//! of CDs, dollars) after a header line; the 1/10 sample has five (master customer id, a
//! sample-level sequence number, then the same three). Both become `purchase` events: one row
//! per line, at midnight UTC of the date, `quantity` = CDs, `amount` = dollars, and
//! `order_id` = `<customer>-<date>` so that distinct orders are distinct purchase days, the
//! convention of the BG/NBD literature.

use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::NaiveDate;

use crate::error::{DataError, Result};
use crate::output::{EVENTS_TABLE, check_file};
use crate::write::{EventRow, EventsWriter};

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    pub customers: u64,
}

fn bad(path: &Path, line: usize, msg: String) -> DataError {
    DataError::invalid(path, format!("line {line}: {msg}"))
}

/// Converts a CDNOW text file into `out_dir/events.parquet`. The directory may hold other
/// files (a `lattice.toml`, the text file itself); only `events.parquet` is replaced, and only
/// if Lattice wrote it, unless `force` (see [`crate::output::check_file`]).
pub fn import_cdnow(input: &Path, out_dir: &Path, force: bool) -> Result<ImportSummary> {
    let out = out_dir.join("events.parquet");
    check_file(&out, EVENTS_TABLE, force)?;
    let file = std::fs::File::open(input).map_err(|e| DataError::io(input, e))?;
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    let mut writer = EventsWriter::create(&out)?;
    let mut customers = std::collections::HashSet::new();
    let mut rows = 0u64;
    let mut width = None;
    let mut order_id = String::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| DataError::io(input, e))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        // A header line (non-numeric first field) is allowed only at the top.
        if !fields[0].bytes().all(|b| b.is_ascii_digit()) {
            if rows == 0 && width.is_none() {
                continue;
            }
            return Err(bad(
                input,
                lineno,
                format!("expected a numeric customer id, found {:?}", fields[0]),
            ));
        }
        let w = *width.get_or_insert(fields.len());
        if !(w == 4 || w == 5) || fields.len() != w {
            return Err(bad(
                input,
                lineno,
                format!(
                    "expected 4 columns (id, YYYYMMDD, CDs, dollars) or 5 (sample file), found {}",
                    fields.len()
                ),
            ));
        }
        let (id, date, cds, dollars) = if w == 4 {
            (fields[0], fields[1], fields[2], fields[3])
        } else {
            (fields[0], fields[2], fields[3], fields[4])
        };
        let id = id.trim_start_matches('0');
        let id = if id.is_empty() { "0" } else { id };
        let day = NaiveDate::parse_from_str(date, "%Y%m%d")
            .map_err(|_| bad(input, lineno, format!("date {date:?} is not YYYYMMDD")))?;
        let cds: f64 = cds.parse().map_err(|_| {
            bad(
                input,
                lineno,
                format!("number of CDs {cds:?} is not a number"),
            )
        })?;
        let dollars: f64 = dollars.parse().map_err(|_| {
            bad(
                input,
                lineno,
                format!("dollar value {dollars:?} is not a number"),
            )
        })?;
        if cds < 0.0 || !dollars.is_finite() {
            return Err(bad(
                input,
                lineno,
                format!("negative CDs or invalid dollars: {cds}, {dollars}"),
            ));
        }
        order_id.clear();
        order_id.push_str(id);
        order_id.push('-');
        order_id.push_str(date);
        let ts_us = day
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_micros();
        writer.push(&EventRow {
            customer_id: id,
            ts_us,
            event_type: "purchase",
            amount: Some(dollars),
            quantity: Some(cds),
            order_id: Some(&order_id),
            ..Default::default()
        })?;
        if !customers.contains(id) {
            customers.insert(id.to_string());
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::invalid(input, "no purchase rows found"));
    }
    writer.finish()?;
    Ok(ImportSummary {
        rows,
        customers: customers.len() as u64,
    })
}
