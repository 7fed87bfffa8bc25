//! Deterministic customer samples. Fitting and backtesting need tens of thousands of customers,
//! not millions: a customer is in the sample of fraction `f` when [`id_unit`] of its id is below
//! `f`, the same set in Rust and, through the `lattice_unit` SQL function, inside a query (so
//! the other customers' events are dropped before they are aggregated).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::expr_fn::SimpleScalarUDF;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, Volatility};

/// The name of the SQL function computing [`id_unit`] of a string.
pub const UNIT_FN: &str = "lattice_unit";

/// A stable pseudo-random number in [0, 1) from a customer id.
pub fn id_unit(id: &str) -> f64 {
    // FNV-1a, then a 64-bit finaliser: stable across platforms and releases.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The share of customers to keep so that about `max_rows` of `customers` remain (1 keeps all).
pub fn fraction(max_rows: usize, customers: usize) -> f64 {
    (max_rows as f64 / customers.max(1) as f64).min(1.0)
}

/// The SQL condition keeping the sample of `fraction` (none when it keeps everyone).
pub fn sql_filter(fraction: f64) -> String {
    if fraction >= 1.0 {
        String::new()
    } else {
        format!(" AND {UNIT_FN}(customer_id) < {fraction:?}")
    }
}

fn units(a: &dyn Array) -> Result<Float64Array, DataFusionError> {
    let map = |it: &mut dyn Iterator<Item = Option<&str>>| -> Float64Array {
        it.map(|v| v.map(id_unit)).collect()
    };
    Ok(match a.data_type() {
        DataType::Utf8 => map(&mut a.as_string::<i32>().iter()),
        DataType::LargeUtf8 => map(&mut a.as_string::<i64>().iter()),
        DataType::Utf8View => map(&mut a.as_string_view().iter()),
        other => {
            return Err(DataFusionError::Execution(format!(
                "{UNIT_FN} expects a string, got {other}"
            )));
        }
    })
}

/// The `lattice_unit(string) -> double` SQL function.
pub fn unit_udf() -> ScalarUDF {
    let fun = Arc::new(
        |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            match args {
                [ColumnarValue::Array(a)] => {
                    Ok(ColumnarValue::Array(Arc::new(units(a)?) as ArrayRef))
                }
                [ColumnarValue::Scalar(s)] => {
                    let v = match s {
                        ScalarValue::Utf8(v)
                        | ScalarValue::LargeUtf8(v)
                        | ScalarValue::Utf8View(v) => v.as_deref().map(id_unit),
                        other => {
                            return Err(DataFusionError::Execution(format!(
                                "{UNIT_FN} expects a string, got {other}"
                            )));
                        }
                    };
                    Ok(ColumnarValue::Scalar(ScalarValue::Float64(v)))
                }
                _ => Err(DataFusionError::Execution(format!(
                    "{UNIT_FN} takes one argument"
                ))),
            }
        },
    );
    let signature = Signature::uniform(
        1,
        vec![DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View],
        Volatility::Immutable,
    );
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        UNIT_FN,
        signature,
        DataType::Float64,
        fun,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_stable_and_spread() {
        // Pinned: a change would silently change every sample and holdout.
        assert_eq!(id_unit("c0001"), id_unit("c0001"));
        let n = 100_000;
        let below = (0..n)
            .filter(|i| id_unit(&format!("c{i:07}")) < 0.1)
            .count();
        assert!((9_500..10_500).contains(&below), "{below}");
        assert_eq!(fraction(50, 100), 0.5);
        assert_eq!(fraction(500, 100), 1.0);
        assert_eq!(sql_filter(1.0), "");
    }
}
