//! Recency-frequency-monetary summaries of purchase histories, and the checks of their values
//! that fits and predictions share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ClvError, Result, TimeUnit};

const DAY_US: i64 = 86_400_000_000;

/// One purchase of one customer: when (µs since the Unix epoch, UTC) and for how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    pub ts_us: i64,
    pub amount: f64,
}

/// A customer's recency-frequency-monetary summary at the end of a calibration period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmRow {
    /// x: number of repeat purchase days.
    pub frequency: f64,
    /// t_x: time from the first to the last purchase.
    pub recency: f64,
    /// T: time from the first purchase to the calibration end.
    pub age: f64,
    /// Mean value of the repeat purchases; 0 when `frequency` is 0.
    pub monetary: f64,
}

impl RfmRow {
    /// Checks the row, naming `row` and the offending field in the error.
    pub fn validate(&self, row: usize) -> Result<()> {
        check_xtt(self.frequency, self.recency, self.age).map_err(|(field, problem)| {
            ClvError::InvalidRow {
                row,
                field,
                problem,
            }
        })?;
        if !(self.monetary.is_finite() && self.monetary >= 0.0) {
            return Err(ClvError::InvalidRow {
                row,
                field: "monetary",
                problem: format!("is {}; expected a finite value ≥ 0", self.monetary),
            });
        }
        Ok(())
    }
}

/// Checks (x, t_x, T); on failure returns the field and what is wrong.
fn check_xtt(x: f64, t_x: f64, age: f64) -> std::result::Result<(), (&'static str, String)> {
    if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
        return Err((
            "frequency",
            format!("is {x}; expected a whole number of repeat purchases ≥ 0"),
        ));
    }
    if !(t_x.is_finite() && t_x >= 0.0) {
        return Err(("recency", format!("is {t_x}; expected a finite value ≥ 0")));
    }
    if !(age.is_finite() && age >= 0.0) {
        return Err(("age", format!("is {age}; expected a finite value ≥ 0")));
    }
    if t_x > age {
        return Err((
            "recency",
            format!("{t_x} exceeds age {age}: the last purchase is after the calibration end"),
        ));
    }
    if x == 0.0 && t_x != 0.0 {
        return Err((
            "recency",
            format!("is {t_x} with frequency 0; expected 0 (no repeat purchase)"),
        ));
    }
    Ok(())
}

pub(super) fn check_args(x: f64, t_x: f64, age: f64) -> Result<()> {
    check_xtt(x, t_x, age).map_err(|(name, problem)| ClvError::InvalidArgument {
        name,
        value: match name {
            "frequency" => x,
            "age" => age,
            _ => t_x,
        },
        problem,
    })
}

pub(super) fn check_horizon(t: f64) -> Result<()> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(ClvError::InvalidArgument {
            name: "horizon",
            value: t,
            problem: "expected a finite value ≥ 0".into(),
        })
    }
}

/// Summarises one customer's purchases as of `calibration_end_us` (inclusive): purchases after
/// it are ignored. `None` if the customer has no purchase by then. Purchases may be unsorted.
pub fn rfm_row(
    purchases: &[Purchase],
    calibration_end_us: i64,
    unit: TimeUnit,
) -> Result<Option<RfmRow>> {
    let mut days: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, p) in purchases.iter().enumerate() {
        if !(p.amount.is_finite() && p.amount >= 0.0) {
            return Err(ClvError::InvalidRow {
                row: i,
                field: "amount",
                problem: format!(
                    "is {}; expected a finite value ≥ 0 (record returns separately)",
                    p.amount
                ),
            });
        }
        if p.ts_us <= calibration_end_us {
            *days.entry(p.ts_us.div_euclid(DAY_US)).or_insert(0.0) += p.amount;
        }
    }
    let (Some((&first, _)), Some((&last, _))) = (days.first_key_value(), days.last_key_value())
    else {
        return Ok(None);
    };
    let end = calibration_end_us.div_euclid(DAY_US);
    let repeats = days.len() - 1;
    let monetary = if repeats == 0 {
        0.0
    } else {
        days.values().skip(1).sum::<f64>() / repeats as f64
    };
    Ok(Some(RfmRow {
        frequency: repeats as f64,
        recency: (last - first) as f64 / unit.days(),
        age: (end - first) as f64 / unit.days(),
        monetary,
    }))
}

/// Number of distinct UTC purchase days in `(after_us, until_us]`: the actual repeat purchases
/// of a holdout period, to compare with
/// [`BgNbd::expected_purchases`](super::BgNbd::expected_purchases).
pub fn purchase_days_between(purchases: &[Purchase], after_us: i64, until_us: i64) -> usize {
    let mut days: Vec<i64> = purchases
        .iter()
        .filter(|p| p.ts_us > after_us && p.ts_us <= until_us)
        .map(|p| p.ts_us.div_euclid(DAY_US))
        .collect();
    days.sort_unstable();
    days.dedup();
    days.len()
}
