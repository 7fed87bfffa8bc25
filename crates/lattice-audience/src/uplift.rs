//! Measuring an audience after the campaign: conversion in the treated group (contacted) and
//! in the control group (held out), and the difference with a 95% confidence interval.
//!
//! A conversion is a purchase event after the audience's `starts_at`, within the window — in
//! the audience's category when it has one (a category target, or an action with a category),
//! otherwise any purchase (churn / win-back audiences: the customer came back).
//!
//! The interval of the difference of two proportions is Newcombe's hybrid score interval
//! (Newcombe 1998, method 10), built from each group's Wilson score interval: it stays inside
//! [−1, 1] and behaves with small counts and rates near 0, where the Wald interval does not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lattice_data::arrow::array::{Array, AsArray};
use lattice_data::arrow::datatypes::TimestampMicrosecondType;
use lattice_data::events::{events_location, read_events};
use lattice_data::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, thiserror::Error)]
pub enum UpliftError {
    #[error("{path}: {message}", path = .path.display())]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Events(#[from] lattice_data::DataError),
}

fn file_err(path: &Path, message: impl Into<String>) -> UpliftError {
    UpliftError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// An audience file read back: its members and what defines a conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceFile {
    pub audience_id: String,
    pub starts_at: DateTime<Utc>,
    /// The category a conversion is a purchase in (none: any purchase).
    pub category: Option<String>,
    /// (customer id, held out).
    pub members: Vec<(String, bool)>,
}

/// Reads an audience written by `lattice audience` or `POST /v1/audiences` as CSV or Parquet.
pub fn read_audience(path: &Path) -> Result<AudienceFile, UpliftError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let rows = match ext.as_str() {
        "csv" => read_csv(path)?,
        "parquet" => read_parquet(path)?,
        _ => {
            return Err(file_err(
                path,
                "expected an audience as .csv or .parquet (written by `lattice audience` or \
                 POST /v1/audiences with format=csv or parquet)",
            ));
        }
    };
    assemble(path, rows)
}

/// One row: id, holdout, audience id, category, starts_at.
type RawRow = (String, bool, String, Option<String>, DateTime<Utc>);

fn read_csv(path: &Path) -> Result<Vec<RawRow>, UpliftError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| file_err(path, e.to_string()))?;
    let headers = r
        .headers()
        .map_err(|e| file_err(path, e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            file_err(
                path,
                format!("no {name} column (an audience file has customer_id, holdout, audience_id, category and starts_at)"),
            )
        })
    };
    let (id, hold, aud, cat, start) = (
        col("customer_id")?,
        col("holdout")?,
        col("audience_id")?,
        col("category")?,
        col("starts_at")?,
    );
    let mut rows = Vec::new();
    for (k, rec) in r.records().enumerate() {
        let line = k + 2;
        let rec = rec.map_err(|e| file_err(path, format!("line {line}: {e}")))?;
        let get = |c: usize| rec.get(c).unwrap_or("");
        let holdout = match get(hold) {
            "true" | "TRUE" | "True" | "1" => true,
            "false" | "FALSE" | "False" | "0" => false,
            other => {
                return Err(file_err(
                    path,
                    format!("line {line}: holdout is {other:?} (expected true or false)"),
                ));
            }
        };
        let starts = DateTime::parse_from_rfc3339(get(start))
            .map_err(|e| {
                file_err(
                    path,
                    format!(
                        "line {line}: starts_at {:?}: {e} (expected RFC 3339)",
                        get(start)
                    ),
                )
            })?
            .with_timezone(&Utc);
        if get(id).is_empty() {
            return Err(file_err(path, format!("line {line}: customer_id is empty")));
        }
        let category = Some(get(cat).to_string()).filter(|c| !c.is_empty());
        rows.push((
            get(id).to_string(),
            holdout,
            get(aud).to_string(),
            category,
            starts,
        ));
    }
    Ok(rows)
}

fn read_parquet(path: &Path) -> Result<Vec<RawRow>, UpliftError> {
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| file_err(path, e.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.map_err(|e| file_err(path, e.to_string()))?;
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| file_err(path, format!("no {name} column")))
        };
        let strs = |name: &str| {
            col(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| file_err(path, format!("column {name} is not a string")))
        };
        let ids = strs("customer_id")?;
        let auds = strs("audience_id")?;
        let cats = strs("category")?;
        let hold = col("holdout")?
            .as_boolean_opt()
            .ok_or_else(|| file_err(path, "column holdout is not boolean"))?;
        let starts = col("starts_at")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| file_err(path, "column starts_at is not a timestamp"))?;
        for r in 0..b.num_rows() {
            if ids.is_null(r) || hold.is_null(r) || starts.is_null(r) {
                return Err(file_err(
                    path,
                    format!(
                        "row {}: customer_id, holdout and starts_at may not be null",
                        rows.len()
                    ),
                ));
            }
            let at = DateTime::from_timestamp_micros(starts.value(r))
                .ok_or_else(|| file_err(path, "starts_at out of range"))?;
            rows.push((
                ids.value(r).to_string(),
                hold.value(r),
                if auds.is_null(r) {
                    String::new()
                } else {
                    auds.value(r).to_string()
                },
                (!cats.is_null(r))
                    .then(|| cats.value(r).to_string())
                    .filter(|c| !c.is_empty()),
                at,
            ));
        }
    }
    Ok(rows)
}

fn assemble(path: &Path, rows: Vec<RawRow>) -> Result<AudienceFile, UpliftError> {
    let Some(first) = rows.first() else {
        return Err(file_err(path, "the audience has no rows"));
    };
    let (audience_id, category, starts_at) = (first.2.clone(), first.3.clone(), first.4);
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (k, r) in rows.iter().enumerate() {
        if r.2 != audience_id || r.3 != category || r.4 != starts_at {
            return Err(file_err(
                path,
                format!(
                    "row {}: audience_id, category or starts_at differs from the first row's: a \
                     file holds one audience",
                    k + 1
                ),
            ));
        }
        if let Some(j) = seen.insert(&r.0, k) {
            return Err(file_err(
                path,
                format!(
                    "customer {:?} is listed twice (rows {} and {})",
                    r.0,
                    j + 1,
                    k + 1
                ),
            ));
        }
    }
    let members: Vec<(String, bool)> = rows.into_iter().map(|r| (r.0, r.1)).collect();
    let control = members.iter().filter(|m| m.1).count();
    if control == 0 {
        return Err(file_err(
            path,
            "no held-out rows (holdout = true): measuring needs the control group; build the \
             audience with a holdout share and include it (`lattice audience --holdout 0.1 \
             --include-holdout`, or \"holdout\": {\"share\": 0.1, \"include\": true})",
        ));
    }
    if control == members.len() {
        return Err(file_err(path, "every row is held out: nobody was treated"));
    }
    Ok(AudienceFile {
        audience_id,
        starts_at,
        category,
        members,
    })
}

/// What counts as a conversion.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpliftOptions {
    /// Days after `starts_at` a purchase counts.
    pub window_days: u32,
    /// Count purchases in this category (default: the audience's category).
    pub category: Option<String>,
    /// Count any purchase, whatever the audience's category.
    pub any_purchase: bool,
}

/// Conversion in one group, with its Wilson 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub customers: usize,
    pub converted: usize,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

impl Group {
    fn new(customers: usize, converted: usize) -> Self {
        let (low, high) = wilson(converted, customers);
        Group {
            customers,
            converted,
            rate: converted as f64 / customers.max(1) as f64,
            low,
            high,
        }
    }
}

/// Treated against control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpliftReport {
    pub audience_id: String,
    pub starts_at: String,
    pub window_end: String,
    /// What a conversion is.
    pub conversion: String,
    pub treated: Group,
    pub control: Group,
    /// Treated rate − control rate.
    pub difference: f64,
    pub difference_low: f64,
    pub difference_high: f64,
    /// The difference over the control rate (none when the control never converted).
    pub relative_lift: Option<f64>,
    /// The difference × treated customers: conversions the campaign added.
    pub incremental_conversions: f64,
    /// The interval excludes 0.
    pub significant: bool,
    pub method: String,
    /// The latest event read; before `window_end`, the window is not over.
    pub events_end: Option<String>,
    pub window_complete: bool,
}

/// Wilson score 95% interval of `k` successes in `n` trials ((0, 1) when n = 0).
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score 95% interval for p1 − p2 from Wilson intervals.
pub fn newcombe(k1: usize, n1: usize, k2: usize, n2: usize) -> (f64, f64, f64) {
    let p1 = k1 as f64 / n1.max(1) as f64;
    let p2 = k2 as f64 / n2.max(1) as f64;
    let (l1, u1) = wilson(k1, n1);
    let (l2, u2) = wilson(k2, n2);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    (d, low, high)
}

/// Counts conversions of the audience's members in the events of `data_dir` (a data directory
/// with `events.parquet` or `events/`).
pub fn measure(
    audience: &AudienceFile,
    data_dir: &Path,
    opts: &UpliftOptions,
) -> Result<UpliftReport, UpliftError> {
    let start_us = audience.starts_at.timestamp_micros();
    let end = audience.starts_at + TimeDelta::days(i64::from(opts.window_days));
    let end_us = end.timestamp_micros();
    let category = if opts.any_purchase {
        None
    } else {
        opts.category.clone().or_else(|| audience.category.clone())
    };
    let slug = category.as_deref().map(lattice_decide::slug);
    let index: HashMap<&str, usize> = audience
        .members
        .iter()
        .enumerate()
        .map(|(k, m)| (m.0.as_str(), k))
        .collect();
    let mut converted = vec![false; audience.members.len()];
    let mut latest = i64::MIN;
    read_events(&events_location(data_dir), |b| {
        let ids = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
        let kind = b.column(2).as_string::<i32>();
        let cat = b.column(4).as_string::<i32>();
        for r in 0..b.num_rows() {
            let t = ts.value(r);
            latest = latest.max(t);
            if t <= start_us || t > end_us || kind.value(r) != "purchase" {
                continue;
            }
            if let Some(want) = &slug
                && (cat.is_null(r) || lattice_decide::slug(cat.value(r)) != *want)
            {
                continue;
            }
            if let Some(&k) = index.get(ids.value(r)) {
                converted[k] = true;
            }
        }
        Ok(())
    })?;
    let count = |control: bool| {
        let members = audience
            .members
            .iter()
            .zip(&converted)
            .filter(|(m, _)| m.1 == control);
        let n = members.clone().count();
        let k = members.filter(|(_, c)| **c).count();
        (k, n)
    };
    let (kt, nt) = count(false);
    let (kc, nc) = count(true);
    let (difference, low, high) = newcombe(kt, nt, kc, nc);
    let control = Group::new(nc, kc);
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    Ok(UpliftReport {
        audience_id: audience.audience_id.clone(),
        starts_at: fmt(audience.starts_at),
        window_end: fmt(end),
        conversion: match &category {
            Some(c) => format!(
                "a purchase in {c} within {} days of starts_at",
                opts.window_days
            ),
            None => format!("any purchase within {} days of starts_at", opts.window_days),
        },
        treated: Group::new(nt, kt),
        relative_lift: (control.rate > 0.0).then(|| difference / control.rate),
        control,
        difference,
        difference_low: low,
        difference_high: high,
        incremental_conversions: difference * nt as f64,
        significant: low > 0.0 || high < 0.0,
        method: "difference of conversion rates (treated − control); 95% interval: Newcombe's \
                 hybrid score interval from the groups' Wilson intervals"
            .into(),
        events_end: (latest > i64::MIN)
            .then(|| DateTime::from_timestamp_micros(latest).map(fmt))
            .flatten(),
        window_complete: latest >= end_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Table II, example (a): 56/70 − 48/80, method 10: 0.0524 to 0.3339.
        let (d, lo, hi) = newcombe(56, 70, 48, 80);
        assert!((d - 0.2).abs() < 1e-12);
        assert!((lo - 0.0524).abs() < 5e-5, "{lo}");
        assert!((hi - 0.3339).abs() < 5e-5, "{hi}");
        // Example (h): 0/10 − 0/20: −0.1611 to 0.2775.
        let (_, lo, hi) = newcombe(0, 10, 0, 20);
        assert!((lo + 0.1611).abs() < 5e-5, "{lo}");
        assert!((hi - 0.2775).abs() < 5e-5, "{hi}");
    }

    #[test]
    fn wilson_interval() {
        // The upper limits behind Newcombe's example (h).
        assert!((wilson(0, 10).1 - 0.2775).abs() < 5e-5);
        assert!((wilson(0, 20).1 - 0.1611).abs() < 5e-5);
        assert_eq!(wilson(0, 10).0, 0.0);
        // Symmetric: k of n and n − k of n mirror each other.
        let (a, b) = wilson(3, 40);
        let (c, d) = wilson(37, 40);
        assert!((a - (1.0 - d)).abs() < 1e-12 && (b - (1.0 - c)).abs() < 1e-12);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
