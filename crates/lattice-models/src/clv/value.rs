//! Customer lifetime value from a fitted BG/NBD and Gamma-Gamma, optionally discounted.

use serde::{Deserialize, Serialize};

use super::bgnbd::BgNbd;
use super::gamma_gamma::GammaGamma;
use super::rfm::{RfmRow, check_horizon};
use super::{ClvError, Result, TimeUnit};

/// Discounting of future cash flows by a rate per month.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Discount {
    /// Discount rate per month, e.g. 0.01 (≈ 12.7 % a year).
    pub monthly_rate: f64,
    /// Model time units per month (e.g. 4.348 for weeks).
    pub units_per_month: f64,
}

impl Discount {
    /// A monthly rate for a model fitted in `unit`, with months of 365.25/12 days.
    pub fn monthly(monthly_rate: f64, unit: TimeUnit) -> Self {
        Discount {
            monthly_rate,
            units_per_month: unit.per_month(),
        }
    }
}

/// Months a discounted CLV may sum over (a thousand years).
const MAX_CLV_MONTHS: f64 = 12_000.0;

/// Customer lifetime value over `horizon` (in the BG/NBD's time unit): expected purchases in
/// (T, T + horizon] times Gamma-Gamma expected spend per purchase.
///
/// Without discounting: `E[Y(horizon)] · E[M]`. With a monthly rate d, the horizon is cut into
/// months (the last one possibly partial) and each month's purchases are discounted at its end,
/// as in `lifetimes`' `customer_lifetime_value`:
/// `Σ_k (E[Y(t_k)] − E[Y(t_{k−1})]) · E[M] / (1 + d)^k` with `t_k = min(k · units_per_month,
/// horizon)`.
pub fn clv(
    bg: &BgNbd,
    gg: &GammaGamma,
    row: &RfmRow,
    horizon: f64,
    discount: Option<Discount>,
) -> Result<f64> {
    check_horizon(horizon)?;
    if !(row.monetary.is_finite() && row.monetary >= 0.0) {
        return Err(ClvError::InvalidArgument {
            name: "monetary",
            value: row.monetary,
            problem: "expected a finite value ≥ 0".into(),
        });
    }
    let spend = gg.expected_spend(row.frequency, row.monetary)?;
    let purchases = |t: f64| bg.expected_purchases(t, row.frequency, row.recency, row.age);
    let Some(d) = discount else {
        return Ok(purchases(horizon)? * spend);
    };
    if !(d.monthly_rate.is_finite() && d.monthly_rate >= 0.0) {
        return Err(ClvError::InvalidArgument {
            name: "monthly_rate",
            value: d.monthly_rate,
            problem: "expected a finite discount rate ≥ 0".into(),
        });
    }
    if !(d.units_per_month.is_finite() && d.units_per_month > 0.0) {
        return Err(ClvError::InvalidArgument {
            name: "units_per_month",
            value: d.units_per_month,
            problem: "expected a finite value > 0".into(),
        });
    }
    let months = (horizon / d.units_per_month).ceil();
    if months > MAX_CLV_MONTHS {
        return Err(ClvError::InvalidArgument {
            name: "horizon",
            value: horizon,
            problem: format!("spans {months} months; at most {MAX_CLV_MONTHS} are supported"),
        });
    }
    let mut total = 0.0;
    let mut prev = 0.0;
    for k in 1..=(months as u32) {
        let t = (f64::from(k) * d.units_per_month).min(horizon);
        let cum = purchases(t)?;
        total += (cum - prev) / (1.0 + d.monthly_rate).powi(k as i32);
        prev = cum;
    }
    Ok(total * spend)
}
