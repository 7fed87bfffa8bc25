//! `lattice validate`: checks a data directory against the contract and summarises it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};

use crate::customers::{check_customers_batch, customers_location, open_customers_file};
use crate::error::DataError;
use crate::events::{check_events_batch, event_files, events_location, fmt_us, open_events_file};
use crate::issues::{Issue, Issues, Rule};
use crate::schema::{CUSTOMER_COLUMNS, EVENT_COLUMNS, ev, is_known_event_type};
use crate::table::TableReader;
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;

#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Events later than this instant are errors.
    pub as_of: Option<DateTime<Utc>>,
}

/// Null counts per contract column; `None` when the column is absent from every file.
#[derive(Debug, Clone, Default)]
pub struct NullCounts(pub Vec<(&'static str, Option<u64>)>);

#[derive(Debug, Clone, Default)]
pub struct EventsSummary {
    pub files: usize,
    pub rows: u64,
    pub customers: u64,
    pub first_ts_us: Option<i64>,
    pub last_ts_us: Option<i64>,
    pub event_types: BTreeMap<String, u64>,
    pub categories: BTreeMap<String, u64>,
    pub channels: BTreeMap<String, u64>,
    pub purchase_revenue: f64,
    pub nulls: NullCounts,
}

#[derive(Debug, Clone, Default)]
pub struct CustomersSummary {
    pub rows: u64,
    pub tiers: BTreeMap<String, u64>,
    pub nulls: NullCounts,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub events: Option<EventsSummary>,
    pub customers: Option<CustomersSummary>,
    pub actions: Option<usize>,
    pub tiers: Option<Vec<String>>,
}

/// The outcome of validating a data directory: a summary and every finding.
#[derive(Debug)]
pub struct Validation {
    pub summary: Summary,
    pub issues: Issues,
}

impl Validation {
    pub fn is_ok(&self) -> bool {
        !self.issues.has_errors()
    }
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn add_nulls(nulls: &mut [Option<u64>], batch: &RecordBatch, present: &[bool]) {
    for (i, n) in nulls.iter_mut().enumerate() {
        if present[i] {
            *n = Some(n.unwrap_or(0) + batch.column(i).null_count() as u64);
        }
    }
}

/// Validates the data directory `dir`: `events.parquet` or `events/` (required),
/// `customers.parquet`, `actions.toml` and `lattice.toml` (each optional).
pub fn validate_dir(dir: &Path, opts: &ValidateOptions) -> Validation {
    let mut issues = Issues::new(10);
    let mut summary = Summary::default();
    let as_of_us = opts.as_of.map(|t| t.timestamp_micros());

    let mut event_customers: HashSet<String> = HashSet::new();
    match event_files(&events_location(dir)) {
        Err(e) => issues.push(Issue::from_error(&e)),
        Ok(files) => {
            let s = scan_events(&files, as_of_us, &mut event_customers, &mut issues);
            summary.events = Some(s);
        }
    }

    let customers_path = customers_location(dir);
    if customers_path.exists() {
        let mut ids = HashMap::new();
        match scan_customers(&customers_path, &mut ids, &mut issues) {
            Ok(s) => {
                summary.customers = Some(s);
                let missing: Vec<&String> = event_customers
                    .iter()
                    .filter(|c| !ids.contains_key(c.as_str()))
                    .collect();
                if !missing.is_empty() {
                    let mut examples: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                    examples.sort_unstable();
                    examples.truncate(5);
                    issues.push(Issue::warning(
                        Rule::CustomerWithoutRow,
                        &customers_path,
                        format!(
                            "{} customers have events but no customer row (e.g. {}); they get \
                             default time zone, no consent and no tier",
                            missing.len(),
                            examples.join(", ")
                        ),
                    ));
                }
            }
            Err(e) => issues.push(Issue::from_error(&e)),
        }
    }

    let actions_path = dir.join("actions.toml");
    if actions_path.exists() {
        match ActionCatalog::from_file(&actions_path) {
            Ok(c) => summary.actions = Some(c.actions.len()),
            Err(e) => {
                let e = DataError::from(e);
                let rule = if e.to_string().contains("duplicate action id") {
                    Rule::DuplicateActionId
                } else {
                    Rule::BadActions
                };
                issues.push(Issue {
                    rule,
                    ..Issue::from_error(&e)
                });
            }
        }
    }

    let settings_path = dir.join("lattice.toml");
    if settings_path.exists() {
        match Settings::load_or_default(&settings_path) {
            Ok(s) => summary.tiers = Some(s.tiers.iter().map(|t| t.name.clone()).collect()),
            Err(e) => issues.push(Issue {
                rule: Rule::BadSettings,
                ..Issue::from_error(&DataError::from(e))
            }),
        }
    }

    Validation { summary, issues }
}

fn scan_events(
    files: &[std::path::PathBuf],
    as_of_us: Option<i64>,
    customers: &mut HashSet<String>,
    issues: &mut Issues,
) -> EventsSummary {
    let mut s = EventsSummary {
        files: files.len(),
        ..Default::default()
    };
    let mut types: HashMap<String, u64> = HashMap::new();
    let mut cats: HashMap<String, u64> = HashMap::new();
    let mut chans: HashMap<String, u64> = HashMap::new();
    let mut nulls: Vec<Option<u64>> = vec![None; EVENT_COLUMNS.len()];

    for file in files {
        let mut reader = match open_events_file(file) {
            Ok(r) => r,
            Err(e) => {
                issues.push(Issue::from_error(&e));
                continue;
            }
        };
        reader.note_extra_columns(issues);
        let present = present_in_file(&reader, EVENT_COLUMNS.iter().map(|c| c.name));
        loop {
            let (batch, first) = match reader.next_batch(issues) {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    issues.push(Issue::from_error(&e));
                    break;
                }
            };
            check_events_batch(file, &batch, first, as_of_us, issues);
            s.rows += batch.num_rows() as u64;
            add_nulls(&mut nulls, &batch, &present);
            let ids = batch.column(ev::CUSTOMER_ID).as_string::<i32>();
            for id in ids.iter().flatten() {
                if !customers.contains(id) {
                    customers.insert(id.to_string());
                }
            }
            let ts = batch
                .column(ev::TS)
                .as_primitive::<TimestampMicrosecondType>();
            if let Some(lo) = datafusion::arrow::compute::min(ts) {
                s.first_ts_us = Some(s.first_ts_us.map_or(lo, |v| v.min(lo)));
            }
            if let Some(hi) = datafusion::arrow::compute::max(ts) {
                s.last_ts_us = Some(s.last_ts_us.map_or(hi, |v| v.max(hi)));
            }
            let et = batch.column(ev::EVENT_TYPE).as_string::<i32>();
            let amount = batch.column(ev::AMOUNT).as_primitive::<Float64Type>();
            for (i, t) in et.iter().enumerate() {
                if let Some(t) = t {
                    bump(&mut types, t);
                    if t == "purchase" && !amount.is_null(i) && amount.value(i).is_finite() {
                        s.purchase_revenue += amount.value(i);
                    }
                }
            }
            for c in batch
                .column(ev::CATEGORY)
                .as_string::<i32>()
                .iter()
                .flatten()
            {
                bump(&mut cats, c);
            }
            for c in batch
                .column(ev::CHANNEL)
                .as_string::<i32>()
                .iter()
                .flatten()
            {
                bump(&mut chans, c);
            }
        }
    }
    let mut unknown: Vec<(&String, &u64)> = types
        .iter()
        .filter(|(t, _)| !t.trim().is_empty() && !is_known_event_type(t))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        let list: Vec<String> = unknown
            .iter()
            .map(|(t, n)| format!("{t:?} ({n})"))
            .collect();
        let file = files
            .first()
            .map(|f| f.as_path())
            .unwrap_or(Path::new("events"));
        issues.push(
            Issue::warning(
                Rule::UnknownEventType,
                file,
                format!(
                    "unknown event types are kept but not used by the models: {}",
                    list.join(", ")
                ),
            )
            .at("event_type", None),
        );
    }
    s.customers = customers.len() as u64;
    s.event_types = types.into_iter().collect();
    s.categories = cats.into_iter().collect();
    s.channels = chans.into_iter().collect();
    s.nulls = NullCounts(EVENT_COLUMNS.iter().map(|c| c.name).zip(nulls).collect());
    s
}

/// Which contract columns the file actually has (absent ones are all-null in canonical batches
/// and should not count as nulls).
fn present_in_file<'a>(reader: &TableReader, names: impl Iterator<Item = &'a str>) -> Vec<bool> {
    names.map(|n| reader.has_column(n)).collect()
}

fn scan_customers(
    path: &Path,
    ids: &mut HashMap<String, u64>,
    issues: &mut Issues,
) -> crate::Result<CustomersSummary> {
    let mut reader = open_customers_file(path)?;
    reader.note_extra_columns(issues);
    let present = present_in_file(&reader, CUSTOMER_COLUMNS.iter().map(|c| c.name));
    let mut s = CustomersSummary::default();
    let mut nulls: Vec<Option<u64>> = vec![None; CUSTOMER_COLUMNS.len()];
    let mut tiers: HashMap<String, u64> = HashMap::new();
    while let Some((batch, first)) = reader.next_batch(issues)? {
        check_customers_batch(path, &batch, first, ids, issues);
        s.rows += batch.num_rows() as u64;
        add_nulls(&mut nulls, &batch, &present);
        for t in batch
            .column(crate::schema::cu::TIER)
            .as_string::<i32>()
            .iter()
            .flatten()
        {
            bump(&mut tiers, t);
        }
    }
    s.tiers = tiers.into_iter().collect();
    s.nulls = NullCounts(CUSTOMER_COLUMNS.iter().map(|c| c.name).zip(nulls).collect());
    Ok(s)
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn write_counts(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    counts: &BTreeMap<String, u64>,
    total: u64,
) -> fmt::Result {
    if counts.is_empty() {
        return Ok(());
    }
    writeln!(f, "  {label}:")?;
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in v {
        writeln!(f, "    {k:<20} {n:>12} {:>7}", pct(*n, total))?;
    }
    Ok(())
}

fn write_nulls(f: &mut fmt::Formatter<'_>, nulls: &NullCounts, rows: u64) -> fmt::Result {
    writeln!(f, "  null rate by column:")?;
    for (name, n) in &nulls.0 {
        match n {
            Some(n) => writeln!(f, "    {name:<20} {:>7}", pct(*n, rows))?,
            None => writeln!(f, "    {name:<20}  absent")?,
        }
    }
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.events {
            writeln!(
                f,
                "events: {} rows in {} file(s), {} customers",
                e.rows, e.files, e.customers
            )?;
            if let (Some(a), Some(b)) = (e.first_ts_us, e.last_ts_us) {
                writeln!(f, "  date range: {} .. {}", fmt_us(a), fmt_us(b))?;
            }
            writeln!(f, "  purchase revenue: {:.2}", e.purchase_revenue)?;
            write_counts(f, "event types", &e.event_types, e.rows)?;
            write_counts(f, "channels", &e.channels, e.rows)?;
            write_counts(f, "categories", &e.categories, e.rows)?;
            write_nulls(f, &e.nulls, e.rows)?;
        }
        if let Some(c) = &self.customers {
            writeln!(f, "customers: {} rows", c.rows)?;
            write_counts(f, "tiers", &c.tiers, c.rows)?;
            write_nulls(f, &c.nulls, c.rows)?;
        }
        if let Some(n) = self.actions {
            writeln!(f, "actions.toml: {n} actions")?;
        }
        if let Some(t) = &self.tiers {
            writeln!(f, "lattice.toml: tiers {}", t.join(" < "))?;
        }
        Ok(())
    }
}
