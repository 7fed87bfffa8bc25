//! Customer lifetime value: the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your
//! customers the easy way") for the number of future purchases, and the Gamma-Gamma model
//! (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") for spend per purchase, both
//! fitted by maximum likelihood with argmin.
//!
//! # Conventions
//!
//! These are the conventions of the `lifetimes` package; with them the CDNOW 1/10 sample
//! reproduces the published parameters (see `tests/models/clv.rs`).
//!
//! - Purchases are aggregated per UTC day: several purchases on one day are one purchase
//!   occasion whose value is their sum.
//! - `frequency` (x) is the number of purchase days after the first one, up to and including the
//!   calibration end; `recency` (t_x) is the time from the first to the last purchase day; `age`
//!   (T) is the time from the first purchase day to the day of the calibration end. Both are in
//!   whole days divided by the [`TimeUnit`] (7 for weeks).
//! - `monetary` is the mean value of the repeat purchase days (the first purchase day is left
//!   out), 0 when there is none.
//!
//! # Fitting
//!
//! Parameters are optimised on the log scale (so they stay positive) by Nelder-Mead, restarted
//! from its best vertex until it stops improving, then polished with L-BFGS on the analytic
//! gradient. The objective is the mean negative log-likelihood plus an optional
//! `penalizer · Σ (θ − θ₀)²` on the log-parameters θ, θ₀ being the data-scaled starting point
//! (a weak prior; unlike `lifetimes`' `penalizer_coef`, which shrinks the parameters themselves
//! toward 0 and so drives a, b to 0 on degenerate data). A fit fails with a [`ClvError::Fit`]
//! instead of returning parameters that ran off to 0 or infinity, which is what happens when the
//! data cannot identify them (one customer, no dropout in sight) — a penalizer then helps — or
//! there is nothing to learn from (no repeat purchases at all).

mod bgnbd;
mod gamma_gamma;
mod optimise;
mod rfm;
mod special;
mod value;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use bgnbd::BgNbd;
pub use gamma_gamma::GammaGamma;
pub use optimise::FitOptions;
pub use rfm::{Purchase, RfmRow, purchase_days_between, rfm_row};
pub use special::{digamma, hyp2f1, hyp2f1_minus_one, ln_gamma};
pub use value::{Discount, clv};

/// Why a CLV fit or prediction could not be made.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClvError {
    /// An input row (RFM row, (frequency, monetary) pair or purchase) is unusable.
    #[error("row {row}: {field} {problem}")]
    InvalidRow {
        row: usize,
        field: &'static str,
        problem: String,
    },
    /// A prediction argument is unusable.
    #[error("{name} = {value}: {problem}")]
    InvalidArgument {
        name: &'static str,
        value: f64,
        problem: String,
    },
    /// Model parameters are unusable (e.g. hand-edited weights).
    #[error("invalid {model} parameters: {problem}")]
    InvalidParameters {
        model: &'static str,
        problem: String,
    },
    /// Maximum likelihood did not produce usable parameters.
    #[error("{model} fit failed: {reason}")]
    Fit { model: &'static str, reason: String },
    /// A prediction could not be computed to full precision.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

type Result<T> = std::result::Result<T, ClvError>;

/// The unit `recency`, `age` and horizons are expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    /// Length of one unit in days.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Units in an average month (365.25 / 12 days).
    pub fn per_month(self) -> f64 {
        365.25 / 12.0 / self.days()
    }
}
