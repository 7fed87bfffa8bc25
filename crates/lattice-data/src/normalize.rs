//! Coerces the column types a user's export may have into the canonical contract types.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Date32Builder, RecordBatch, StringArray,
    TimestampMicrosecondBuilder, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use crate::error::{DataError, Result};
use crate::issues::{Issue, Issues, Rule};
use crate::schema::{ColumnKind, ColumnSpec};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Where each contract column comes from in one input file.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// For each contract column, the index of the input column, if present.
    pub sources: Vec<Option<usize>>,
    /// Input columns that are not part of the contract (ignored).
    pub extra: Vec<String>,
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

fn accepts(kind: ColumnKind, dt: &DataType) -> bool {
    if *dt == DataType::Null {
        return true;
    }
    match kind {
        ColumnKind::Id => is_string(dt) || is_integer(dt),
        ColumnKind::Text => is_string(dt),
        ColumnKind::Timestamp | ColumnKind::Date => {
            matches!(
                dt,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            ) || is_string(dt)
        }
        ColumnKind::Number => dt.is_numeric(),
        ColumnKind::Bool => *dt == DataType::Boolean,
    }
}

/// Matches an input schema against the contract: every required column present, every present
/// column of an accepted type.
pub fn plan_columns(path: &Path, input: &SchemaRef, specs: &[ColumnSpec]) -> Result<ColumnPlan> {
    let mut sources = Vec::with_capacity(specs.len());
    for spec in specs {
        match input.index_of(spec.name) {
            Ok(i) => {
                let dt = input.field(i).data_type();
                if !accepts(spec.kind, dt) || (spec.required && *dt == DataType::Null) {
                    return Err(DataError::WrongType {
                        path: path.to_path_buf(),
                        column: spec.name.to_string(),
                        found: dt.to_string(),
                        expected: spec.kind.expected().to_string(),
                    });
                }
                sources.push(Some(i));
            }
            Err(_) if spec.required => {
                return Err(DataError::MissingColumn {
                    path: path.to_path_buf(),
                    column: spec.name.to_string(),
                    expected: spec.kind.expected().to_string(),
                });
            }
            Err(_) => sources.push(None),
        }
    }
    let extra = input
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !specs.iter().any(|s| s.name == n))
        .collect();
    Ok(ColumnPlan { sources, extra })
}

/// Converts one input batch to the canonical schema. Unparseable timestamps and dates become
/// nulls and are reported to `issues` with their row (`first_row` is the file-level row index of
/// the batch's first row).
pub fn normalize_batch(
    path: &Path,
    batch: &RecordBatch,
    plan: &ColumnPlan,
    specs: &[ColumnSpec],
    target: &SchemaRef,
    first_row: u64,
    issues: &mut Issues,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(specs.len());
    for (spec, source) in specs.iter().zip(&plan.sources) {
        let canonical = spec.kind.canonical();
        let col = match source {
            None => new_null_array(&canonical, n),
            Some(i) => {
                let input = batch.column(*i);
                match spec.kind {
                    ColumnKind::Timestamp => to_timestamp_micros(
                        path,
                        spec.name,
                        input,
                        spec.required,
                        first_row,
                        issues,
                    )?,
                    ColumnKind::Date => to_date32(path, spec.name, input, first_row, issues)?,
                    _ if input.data_type() == &canonical => input.clone(),
                    _ => cast(input, &canonical).map_err(|e| DataError::BadValue {
                        path: path.to_path_buf(),
                        column: spec.name.to_string(),
                        row: first_row,
                        message: format!("cannot convert to {canonical}: {e}"),
                    })?,
                }
            }
        };
        columns.push(col);
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|e| DataError::arrow(path, e))
}

/// Parses the timestamp spellings the contract accepts in string columns.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn string_values(input: &ArrayRef) -> std::result::Result<StringArray, String> {
    let a = cast(input, &DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(a.as_string::<i32>().clone())
}

/// Converts to timestamp(µs, UTC); unparseable values (and nulls, when `required`) are
/// reported as `bad-timestamp` and become null.
fn to_timestamp_micros(
    path: &Path,
    column: &str,
    input: &ArrayRef,
    required: bool,
    first_row: u64,
    issues: &mut Issues,
) -> Result<ArrayRef> {
    let n = input.len();
    let mut out = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let overflow = |row: usize| DataError::BadValue {
        path: path.to_path_buf(),
        column: column.to_string(),
        row: first_row + row as u64,
        message: "timestamp out of range".into(),
    };
    match input.data_type() {
        DataType::Timestamp(unit, _) => {
            // Time zones are dropped: the stored instant is already UTC.
            let (vals, mul, div): (Vec<Option<i64>>, i64, i64) = match unit {
                TimeUnit::Second => (
                    input.as_primitive::<TimestampSecondType>().iter().collect(),
                    1_000_000,
                    1,
                ),
                TimeUnit::Millisecond => (
                    input
                        .as_primitive::<TimestampMillisecondType>()
                        .iter()
                        .collect(),
                    1_000,
                    1,
                ),
                TimeUnit::Microsecond => (
                    input
                        .as_primitive::<TimestampMicrosecondType>()
                        .iter()
                        .collect(),
                    1,
                    1,
                ),
                TimeUnit::Nanosecond => (
                    input
                        .as_primitive::<TimestampNanosecondType>()
                        .iter()
                        .collect(),
                    1,
                    1_000,
                ),
            };
            for (i, v) in vals.into_iter().enumerate() {
                match v {
                    Some(v) => {
                        let us = v
                            .checked_mul(mul)
                            .ok_or_else(|| overflow(i))?
                            .div_euclid(div);
                        out.append_value(us);
                    }
                    None => out.append_null(),
                }
            }
        }
        DataType::Date32 => {
            for v in input.as_primitive::<Date32Type>().iter() {
                out.append_option(v.map(|d| d as i64 * MICROS_PER_DAY));
            }
        }
        DataType::Date64 => {
            for v in input.as_primitive::<Date64Type>().iter() {
                out.append_option(v.map(|ms| ms * 1_000));
            }
        }
        DataType::Null => out.append_nulls(n),
        _ => {
            let strings = string_values(input).map_err(|e| DataError::invalid(path, e))?;
            for (i, s) in strings.iter().enumerate() {
                match s {
                    None => out.append_null(),
                    Some(s) => match parse_timestamp(s) {
                        Some(t) => out.append_value(t.timestamp_micros()),
                        None => {
                            issues.push(
                                Issue::error(
                                    Rule::BadTimestamp,
                                    path,
                                    format!(
                                        "cannot parse {s:?} as a timestamp (expected RFC 3339, \
                                         `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`)"
                                    ),
                                )
                                .at(column, Some(first_row + i as u64)),
                            );
                            out.append_null();
                        }
                    },
                }
            }
        }
    }
    let out = out.finish();
    if required && out.null_count() > 0 {
        for (i, v) in out.iter().enumerate() {
            if v.is_none() && input.is_null(i) {
                issues.push(
                    Issue::error(Rule::BadTimestamp, path, "missing timestamp (null)")
                        .at(column, Some(first_row + i as u64)),
                );
            }
        }
    }
    Ok(Arc::new(out))
}

fn to_date32(
    path: &Path,
    column: &str,
    input: &ArrayRef,
    first_row: u64,
    issues: &mut Issues,
) -> Result<ArrayRef> {
    let n = input.len();
    match input.data_type() {
        DataType::Date32 => Ok(input.clone()),
        DataType::Null => Ok(Arc::new(Date32Array::new_null(n))),
        DataType::Timestamp(_, _) | DataType::Date64 => {
            let us = to_timestamp_micros(path, column, input, false, first_row, issues)?;
            let us = us.as_primitive::<TimestampMicrosecondType>();
            let mut out = Date32Builder::with_capacity(n);
            for v in us.iter() {
                out.append_option(v.map(|v| v.div_euclid(MICROS_PER_DAY) as i32));
            }
            Ok(Arc::new(out.finish()))
        }
        _ => {
            let strings = string_values(input).map_err(|e| DataError::invalid(path, e))?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
            let mut out = Date32Builder::with_capacity(n);
            for (i, s) in strings.iter().enumerate() {
                match s.map(|s| (s, NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d"))) {
                    None => out.append_null(),
                    Some((_, Ok(d))) => out.append_value((d - epoch).num_days() as i32),
                    Some((s, Err(_))) => {
                        issues.push(
                            Issue::error(
                                Rule::BadDate,
                                path,
                                format!("cannot parse {s:?} as a date (expected YYYY-MM-DD)"),
                            )
                            .at(column, Some(first_row + i as u64)),
                        );
                        out.append_null();
                    }
                }
            }
            Ok(Arc::new(out.finish()))
        }
    }
}
