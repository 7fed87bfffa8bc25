//! Customer lifetime value: the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your
//! customers the easy way") for the number of future purchases, and the Gamma-Gamma model
//! (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") for spend per purchase, both
//! fitted by maximum likelihood with argmin.
//!
//! # Conventions
//!
//! These are the conventions of the `lifetimes` package; with them the CDNOW 1/10 sample
//! reproduces the published parameters (see `tests/clv.rs`).
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

mod special;

use std::collections::BTreeMap;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use special::{digamma, hyp2f1, hyp2f1_minus_one, ln_gamma};

const DAY_US: i64 = 86_400_000_000;

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

fn check_args(x: f64, t_x: f64, age: f64) -> Result<()> {
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

fn check_horizon(t: f64) -> Result<()> {
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
/// of a holdout period, to compare with [`BgNbd::expected_purchases`].
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

/// Options of a maximum likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Weight of an L2 penalty on the log-parameters' distance from the starting point (see
    /// the module docs), added to the mean negative log-likelihood. 0 (the default) is plain
    /// maximum likelihood; 0.01–0.1 makes tiny or degenerate data fit.
    pub penalizer: f64,
    /// Iteration cap of each Nelder-Mead round.
    pub max_iters: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iters: 5_000,
        }
    }
}

impl FitOptions {
    fn check(&self) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(ClvError::InvalidArgument {
                name: "penalizer",
                value: self.penalizer,
                problem: "expected a finite value ≥ 0".into(),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Optimisation
// ---------------------------------------------------------------------------------------------

/// Log-parameters beyond this are treated as infeasible (parameters outside ~[1e-13, 1e13]).
const THETA_WALL: f64 = 30.0;
/// A fitted log-parameter beyond this means the parameter ran off rather than converged.
const THETA_BOUNDARY: f64 = 18.0;
/// Cost of an infeasible or non-finite point; finite so Nelder-Mead's arithmetic stays finite.
const INFEASIBLE: f64 = 1e300;

/// An objective on log-parameters: value (to minimise) and optionally its gradient.
trait Objective {
    fn eval(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64;
}

/// The objective plus `coef · ‖θ − center‖²`.
struct Problem<'a, O> {
    obj: &'a O,
    coef: f64,
    center: &'a [f64],
}

impl<O: Objective> Problem<'_, O> {
    fn penalty(&self, theta: &[f64]) -> f64 {
        let d2: f64 = theta
            .iter()
            .zip(self.center)
            .map(|(t, c)| (t - c) * (t - c))
            .sum();
        self.coef * d2
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        if theta.iter().any(|t| !t.is_finite() || t.abs() > THETA_WALL) {
            return Ok(INFEASIBLE);
        }
        let v = self.obj.eval(theta, None) + self.penalty(theta);
        Ok(if v.is_finite() { v } else { INFEASIBLE })
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        let mut g = vec![0.0; theta.len()];
        let v = self.obj.eval(theta, Some(&mut g));
        for ((g, t), c) in g.iter_mut().zip(theta).zip(self.center) {
            *g += 2.0 * self.coef * (t - c);
        }
        if v.is_finite() && g.iter().all(|x| x.is_finite()) {
            Ok(g)
        } else {
            Err(argmin::core::Error::msg("non-finite gradient"))
        }
    }
}

/// Minimises `obj` (plus the penalty toward `start`) from `start` (log-parameters); returns the
/// best point and its cost.
fn minimise<O: Objective>(
    obj: &O,
    start: Vec<f64>,
    opts: &FitOptions,
    model: &'static str,
) -> Result<(Vec<f64>, f64)> {
    let center = start.clone();
    let problem = || Problem {
        obj,
        coef: opts.penalizer,
        center: &center,
    };
    let max_iters = opts.max_iters;
    let fail = |reason: String| ClvError::Fit { model, reason };
    let mut best_cost = problem().cost(&start).map_err(|e| fail(e.to_string()))?;
    if best_cost >= INFEASIBLE {
        return Err(fail(
            "the log-likelihood is not finite at the starting point".into(),
        ));
    }
    let mut best = start;
    // Nelder-Mead can stall on a collapsed simplex; restarting from its best vertex with a fresh
    // simplex until the cost stops improving makes it reliable.
    let mut step = 1.0;
    for _ in 0..20 {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut v = best.clone();
            v[i] += step;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-13)
            .map_err(|e| fail(e.to_string()))?;
        let res = Executor::new(problem(), solver)
            .configure(|s| s.max_iters(max_iters))
            .run()
            .map_err(|e| fail(format!("Nelder-Mead: {e}")))?;
        let state = res.state();
        let cost = state.get_best_cost();
        let improved = cost < best_cost - 1e-12 * best_cost.abs().max(1.0);
        if cost < best_cost
            && let Some(p) = state.get_best_param()
        {
            best = p.clone();
            best_cost = cost;
        }
        if !improved {
            break;
        }
        step = 0.3;
    }
    // Polish with L-BFGS on the analytic gradient; keep it only if it is better.
    let linesearch = MoreThuenteLineSearch::new();
    if let Ok(solver) = LBFGS::new(linesearch, 7)
        .with_tolerance_grad(1e-12)
        .and_then(|s| s.with_tolerance_cost(1e-15))
        && let Ok(res) = Executor::new(problem(), solver)
            .configure(|s| s.param(best.clone()).max_iters(200))
            .run()
    {
        let state = res.state();
        let cost = state.get_best_cost();
        if cost.is_finite()
            && cost < best_cost
            && let Some(p) = state.get_best_param()
            && p.iter().all(|t| t.is_finite() && t.abs() <= THETA_WALL)
        {
            best = p.clone();
            best_cost = cost;
        }
    }
    // A last check that this is a stationary point, not a stall. (Parameters that ran off are
    // left to `params_from_theta`, which says so more helpfully.)
    if best.iter().all(|t| t.abs() <= THETA_BOUNDARY) {
        let grad = problem()
            .gradient(&best)
            .map_err(|e| fail(format!("at the optimum: {e}")))?;
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if norm > 1e-3 {
            return Err(fail(format!(
                "did not converge (gradient norm {norm:.2e} at the best point found); use more \
                 data or FitOptions::penalizer > 0"
            )));
        }
    }
    Ok((best, best_cost))
}

/// Turns fitted log-parameters into parameters, failing on any that ran off to 0 or infinity.
fn params_from_theta(
    theta: &[f64],
    names: &[&str],
    model: &'static str,
    hint: &str,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(theta.len());
    for (t, name) in theta.iter().zip(names) {
        let v = t.exp();
        if !t.is_finite() || !v.is_finite() {
            return Err(ClvError::Fit {
                model,
                reason: format!("parameter {name} is not finite"),
            });
        }
        if t.abs() > THETA_BOUNDARY {
            return Err(ClvError::Fit {
                model,
                reason: format!(
                    "parameter {name} ran off to {v:e} instead of converging: the data cannot \
                     identify the model ({hint}); use more data or FitOptions::penalizer > 0"
                ),
            });
        }
        out.push(v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// BG/NBD
// ---------------------------------------------------------------------------------------------

/// BG/NBD parameters: purchase rates ~ Gamma(r, α), dropout probabilities ~ Beta(a, b). α is in
/// the time unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Distinct (t_x, T) with their multiplicity, grouped by x: real data repeats them a lot (day
/// granularity, few distinct x), so each likelihood term is computed once per distinct row and
/// the Gamma functions once per distinct x.
struct BgData {
    /// (x, range of `rows` with that x).
    groups: Vec<(f64, std::ops::Range<usize>)>,
    /// (t_x, T, count).
    rows: Vec<(f64, f64, f64)>,
    total: f64,
}

impl BgData {
    fn new(rows: &[RfmRow]) -> Result<Self> {
        // Keys are bit patterns of non-negative floats, which sort like the floats themselves.
        let mut counts: BTreeMap<(u64, u64, u64), f64> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            row.validate(i)?;
            // `+ 0.0` turns −0 into +0 so equal values share a key.
            let key = (
                (row.frequency + 0.0).to_bits(),
                (row.recency + 0.0).to_bits(),
                (row.age + 0.0).to_bits(),
            );
            *counts.entry(key).or_insert(0.0) += 1.0;
        }
        let mut groups: Vec<(f64, std::ops::Range<usize>)> = Vec::new();
        let mut distinct = Vec::with_capacity(counts.len());
        for ((x, tx, t), w) in counts {
            let x = f64::from_bits(x);
            let n = distinct.len();
            match groups.last_mut() {
                Some((gx, range)) if *gx == x => range.end = n + 1,
                _ => groups.push((x, n..n + 1)),
            }
            distinct.push((f64::from_bits(tx), f64::from_bits(t), w));
        }
        Ok(BgData {
            groups,
            rows: distinct,
            total: rows.len() as f64,
        })
    }
}

impl Objective for BgData {
    fn eval(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let (r, alpha, a, b) = (
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        );
        let want_grad = grad.is_some();
        let (lg_r, lg_ab, lg_b) = (ln_gamma(r), ln_gamma(a + b), ln_gamma(b));
        let (ps_r, ps_ab, ps_b) = if want_grad {
            (digamma(r), digamma(a + b), digamma(b))
        } else {
            (0.0, 0.0, 0.0)
        };
        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        for (x, range) in &self.groups {
            let x = *x;
            // Terms that depend on x only (Fader-Hardie-Lee eq. 6 in lifetimes' log form).
            let a1 = ln_gamma(r + x) - lg_r + r * ln_alpha;
            let a2 = lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
            let ln_a_bx1 = if x > 0.0 {
                ln_a - (b + x - 1.0).ln()
            } else {
                0.0
            };
            let (gr, gab, gb) = if want_grad {
                let ps_abx = digamma(a + b + x);
                (
                    digamma(r + x) - ps_r + ln_alpha,
                    ps_ab - ps_abx,
                    ps_ab + digamma(b + x) - ps_b - ps_abx,
                )
            } else {
                (0.0, 0.0, 0.0)
            };
            for &(tx, t, w) in &self.rows[range.clone()] {
                let ln_at = (alpha + t).ln();
                let a3 = -(r + x) * ln_at;
                // log(e^A3 + δ e^A4) without overflow; w3, w4 are the two terms' shares.
                let (lse, w3, w4, ln_atx) = if x > 0.0 {
                    let ln_atx = (alpha + tx).ln();
                    let a4 = ln_a_bx1 - (r + x) * ln_atx;
                    let m = a3.max(a4);
                    let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
                    let s = e3 + e4;
                    (m + s.ln(), e3 / s, e4 / s, ln_atx)
                } else {
                    (a3, 1.0, 0.0, 0.0)
                };
                ll += w * (a1 + a2 + lse);
                if want_grad {
                    let db_last = if x > 0.0 { w4 / (b + x - 1.0) } else { 0.0 };
                    g[0] += w * (gr - w3 * ln_at - w4 * ln_atx);
                    g[1] +=
                        w * (r / alpha - w3 * (r + x) / (alpha + t) - w4 * (r + x) / (alpha + tx));
                    g[2] += w * (gab + w4 / a);
                    g[3] += w * (gb - db_last);
                }
            }
        }
        if let Some(out) = grad {
            // d/dθ = p · d/dp for p = e^θ.
            for (i, p) in [r, alpha, a, b].into_iter().enumerate() {
                out[i] = -p * g[i] / self.total;
            }
        }
        -ll / self.total
    }
}

const BG_NAMES: [&str; 4] = ["r", "alpha", "a", "b"];

impl BgNbd {
    /// Parameters as given, checked to be finite and positive.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        let m = BgNbd { r, alpha, a, b };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
        for (name, v) in BG_NAMES.iter().zip([self.r, self.alpha, self.a, self.b]) {
            if !(v.is_finite() && v > 0.0) {
                return Err(ClvError::InvalidParameters {
                    model: "BG/NBD",
                    problem: format!("{name} = {v}; expected a finite value > 0"),
                });
            }
        }
        Ok(())
    }

    /// Maximum likelihood fit with default options.
    pub fn fit(rows: &[RfmRow]) -> Result<Self> {
        Self::fit_with(rows, &FitOptions::default())
    }

    /// Maximum likelihood fit (see the module docs for the method).
    pub fn fit_with(rows: &[RfmRow], opts: &FitOptions) -> Result<Self> {
        let fail = |reason: &str| ClvError::Fit {
            model: "BG/NBD",
            reason: reason.into(),
        };
        opts.check()?;
        if rows.is_empty() {
            return Err(fail("no customers to fit on"));
        }
        let data = BgData::new(rows)?;
        let repeats: f64 = rows.iter().map(|r| r.frequency).sum();
        if repeats == 0.0 {
            // The likelihood is then maximised only in the limit r → 0: nothing to estimate.
            return Err(fail(
                "no customer has a repeat purchase (every frequency is 0), so purchase rates and \
                 dropout cannot be estimated; use a longer calibration period",
            ));
        }
        // Start at r = 1 with α matching the population's mean purchase rate r/α = Σx / ΣT.
        let total_age: f64 = rows.iter().map(|r| r.age).sum();
        let alpha0 = if total_age > 0.0 {
            (total_age / repeats).clamp(1e-6, 1e6)
        } else {
            1.0
        };
        let start = vec![0.0, alpha0.ln(), 0.0, 0.0];
        let (theta, _) = minimise(&data, start, opts, "BG/NBD")?;
        let p = params_from_theta(
            &theta,
            &BG_NAMES,
            "BG/NBD",
            "too few customers, or no sign of dropout?",
        )?;
        Self::new(p[0], p[1], p[2], p[3])
    }

    /// Total log-likelihood of `rows` (the figure papers report, e.g. −9,582.4 on CDNOW).
    pub fn log_likelihood(&self, rows: &[RfmRow]) -> Result<f64> {
        self.check()?;
        if rows.is_empty() {
            return Ok(0.0);
        }
        let data = BgData::new(rows)?;
        let theta = [self.r.ln(), self.alpha.ln(), self.a.ln(), self.b.ln()];
        let ll = -data.eval(&theta, None) * data.total;
        if ll.is_finite() {
            Ok(ll)
        } else {
            Err(ClvError::Numerical(
                "BG/NBD log-likelihood is not finite".into(),
            ))
        }
    }

    /// P(alive at T | x, t_x, T). Exactly 1 when x = 0: the model assumes nobody drops out
    /// before a first repeat purchase, which makes this a poor churn score on its own.
    pub fn p_alive(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        self.check()?;
        check_args(x, t_x, age)?;
        Ok(self.p_alive_unchecked(x, t_x, age))
    }

    fn p_alive_unchecked(&self, x: f64, t_x: f64, age: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        // 1 / (1 + a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)), the ratio taken in log space.
        let l = self.a.ln() - (self.b + x - 1.0).ln()
            + (self.r + x) * ((self.alpha + age).ln() - (self.alpha + t_x).ln());
        1.0 / (1.0 + l.exp())
    }

    /// E[number of purchases in (T, T + t] | x, t_x, T] (paper eq. 10).
    pub fn expected_purchases(&self, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        self.check()?;
        check_args(x, t_x, age)?;
        check_horizon(t)?;
        if t == 0.0 {
            return Ok(0.0);
        }
        self.expected_purchases_near_singular(t, x, t_x, age)
    }

    /// The formula has removable singularities at a = 1 (the factor 1/(a−1)) and, for x = 0, at
    /// a + b = 1 (₂F₁ with c = 0). Near them it loses precision to cancellation, so average the
    /// two sides instead; the function is smooth there, so the error is O(h²).
    fn expected_purchases_near_singular(&self, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        const NEAR: f64 = 1e-6;
        if (self.a - 1.0).abs() < NEAR {
            let h = 1e-5;
            let lo = BgNbd {
                a: 1.0 - h,
                ..*self
            };
            let hi = BgNbd {
                a: 1.0 + h,
                ..*self
            };
            return Ok(0.5
                * (lo.expected_purchases_formula(t, x, t_x, age)?
                    + hi.expected_purchases_formula(t, x, t_x, age)?));
        }
        if x == 0.0 && (self.a + self.b - 1.0).abs() < NEAR {
            let h = 1e-5f64.min(0.5 * self.b);
            let lo = BgNbd {
                b: self.b - h,
                ..*self
            };
            let hi = BgNbd {
                b: self.b + h,
                ..*self
            };
            return Ok(0.5
                * (lo.expected_purchases_formula(t, x, t_x, age)?
                    + hi.expected_purchases_formula(t, x, t_x, age)?));
        }
        self.expected_purchases_formula(t, x, t_x, age)
    }

    fn expected_purchases_formula(&self, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        let BgNbd { r, alpha, a, b } = *self;
        let c = a + b + x - 1.0;
        let k = t / (alpha + age);
        let z = t / (alpha + age + t);
        // Eq. 10 has 1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; c; z). Euler's transformation
        // turns that into 1 − (1−z)^(a−1) · ₂F₁(a+b−1−r, a−1; c; z), whose series has no
        // huge terms for large x (c grows with x) and no overflowing power.
        let s = hyp2f1_minus_one(a + b - 1.0 - r, a - 1.0, c, z).ok_or_else(|| {
            ClvError::Numerical(format!(
                "the hypergeometric series did not converge for horizon {t}: it is too long \
                 relative to α + T = {} (z = {z})",
                alpha + age
            ))
        })?;
        let u = -(a - 1.0) * k.ln_1p();
        // 1 − e^u (1 + s) = −(expm1(u)(1 + s) + s): no cancellation for short horizons.
        let bracket = -(u.exp_m1() * (1.0 + s) + s);
        let e = c / (a - 1.0) * bracket * self.p_alive_unchecked(x, t_x, age);
        if e.is_finite() {
            Ok(e.max(0.0))
        } else {
            Err(ClvError::Numerical(format!(
                "expected purchases not finite for t = {t}, x = {x}, t_x = {t_x}, T = {age}"
            )))
        }
    }

    /// P(no purchase in (T, T + t] | x, t_x, T) = (1 − P(alive)) + P(alive)·((α+T)/(α+T+t))^(r+x):
    /// dead, or alive and no Poisson event in t (the λ posterior is Gamma(r+x, α+T)).
    pub fn p_no_purchase(&self, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        self.check()?;
        check_args(x, t_x, age)?;
        check_horizon(t)?;
        let pa = self.p_alive_unchecked(x, t_x, age);
        let none_if_alive = (-(self.r + x) * (t / (self.alpha + age)).ln_1p()).exp();
        Ok(((1.0 - pa) + pa * none_if_alive).clamp(0.0, 1.0))
    }

    /// E[X(t)]: expected purchases in a period of length t of a customer just acquired (eq. 9;
    /// eq. 10 with x = t_x = T = 0).
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.expected_purchases(t, 0.0, 0.0, 0.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Gamma-Gamma
// ---------------------------------------------------------------------------------------------

/// Gamma-Gamma spend parameters: a customer's purchase values ~ Gamma(p, ν), ν ~ Gamma(q, v)
/// across customers. The population mean spend per purchase is p·v/(q−1), finite only for q > 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

const GG_NAMES: [&str; 3] = ["p", "q", "v"];

/// Repeat customers as (m, ln m), grouped by x so the Gamma functions are computed once per
/// distinct x.
struct GgData {
    /// (x, ln x, range of `rows` with that x).
    groups: Vec<(f64, f64, std::ops::Range<usize>)>,
    rows: Vec<(f64, f64)>,
}

impl GgData {
    /// Validates all pairs and keeps those with x > 0 (the only ones the model uses).
    fn new(pairs: &[(f64, f64)]) -> Result<Self> {
        let mut repeat = Vec::new();
        for (i, &(x, m)) in pairs.iter().enumerate() {
            let bad = |field, problem| ClvError::InvalidRow {
                row: i,
                field,
                problem,
            };
            if !(x.is_finite() && x >= 0.0) {
                return Err(bad(
                    "frequency",
                    format!("is {x}; expected a finite value ≥ 0"),
                ));
            }
            if !(m.is_finite() && m >= 0.0) {
                return Err(bad(
                    "monetary",
                    format!("is {m}; expected a finite value ≥ 0"),
                ));
            }
            if x > 0.0 {
                if m == 0.0 {
                    return Err(bad(
                        "monetary",
                        format!(
                            "is 0 with frequency {x}: Gamma-Gamma needs a positive mean spend \
                             for customers with repeat purchases (leave zero-value customers \
                             out of the fit)"
                        ),
                    ));
                }
                repeat.push((x, m));
            }
        }
        repeat.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut groups: Vec<(f64, f64, std::ops::Range<usize>)> = Vec::new();
        let mut rows = Vec::with_capacity(repeat.len());
        for (x, m) in repeat {
            let n = rows.len();
            match groups.last_mut() {
                Some((gx, _, range)) if *gx == x => range.end = n + 1,
                _ => groups.push((x, x.ln(), n..n + 1)),
            }
            rows.push((m, m.ln()));
        }
        Ok(GgData { groups, rows })
    }
}

impl Objective for GgData {
    fn eval(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let (p, q, v) = (theta[0].exp(), theta[1].exp(), theta[2].exp());
        let want_grad = grad.is_some();
        let lg_q = ln_gamma(q);
        let ps_q = if want_grad { digamma(q) } else { 0.0 };
        let ln_v = v.ln();
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        for (x, ln_x, range) in &self.groups {
            let (x, ln_x) = (*x, *ln_x);
            let px = p * x;
            let per_x = ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + px * ln_x;
            let (ps_pxq, ps_px) = if want_grad {
                (digamma(px + q), digamma(px))
            } else {
                (0.0, 0.0)
            };
            for &(m, ln_m) in &self.rows[range.clone()] {
                let ln_xmv = (x * m + v).ln();
                ll += per_x + (px - 1.0) * ln_m - (px + q) * ln_xmv;
                if want_grad {
                    g[0] += x * (ps_pxq - ps_px + ln_m + ln_x - ln_xmv);
                    g[1] += ps_pxq - ps_q + ln_v - ln_xmv;
                    g[2] += q / v - (px + q) / (x * m + v);
                }
            }
        }
        let n = self.rows.len() as f64;
        if let Some(out) = grad {
            for (i, par) in [p, q, v].into_iter().enumerate() {
                out[i] = -par * g[i] / n;
            }
        }
        -ll / n
    }
}

impl GammaGamma {
    /// Parameters as given, checked to be finite and positive with q > 1.
    pub fn new(p: f64, q: f64, v: f64) -> Result<Self> {
        let m = GammaGamma { p, q, v };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
        for (name, x) in GG_NAMES.iter().zip([self.p, self.q, self.v]) {
            if !(x.is_finite() && x > 0.0) {
                return Err(ClvError::InvalidParameters {
                    model: "Gamma-Gamma",
                    problem: format!("{name} = {x}; expected a finite value > 0"),
                });
            }
        }
        if self.q <= 1.0 {
            return Err(ClvError::InvalidParameters {
                model: "Gamma-Gamma",
                problem: format!(
                    "q = {} ≤ 1: mean spend p·v/(q−1) is infinite (spend too heavy-tailed)",
                    self.q
                ),
            });
        }
        Ok(())
    }

    /// Maximum likelihood fit with default options on (frequency, monetary) pairs; customers
    /// with frequency 0 are ignored (their monetary value is undefined).
    pub fn fit(pairs: &[(f64, f64)]) -> Result<Self> {
        Self::fit_with(pairs, &FitOptions::default())
    }

    /// Maximum likelihood fit on (frequency, monetary) pairs.
    pub fn fit_with(pairs: &[(f64, f64)], opts: &FitOptions) -> Result<Self> {
        opts.check()?;
        let data = GgData::new(pairs)?;
        if data.rows.is_empty() {
            return Err(ClvError::Fit {
                model: "Gamma-Gamma",
                reason: "no customer has a repeat purchase (frequency > 0) to learn spend from"
                    .into(),
            });
        }
        // Start at p = 1, q = 2 and v = the mean of m, so the model's mean spend p·v/(q−1)
        // equals the observed one.
        let mean_m = data.rows.iter().map(|r| r.0).sum::<f64>() / data.rows.len() as f64;
        let start = vec![0.0, 2f64.ln(), mean_m.ln()];
        let (theta, _) = minimise(&data, start, opts, "Gamma-Gamma")?;
        let p = params_from_theta(
            &theta,
            &GG_NAMES,
            "Gamma-Gamma",
            "too few repeat customers, or all spending alike?",
        )?;
        if p[1] <= 1.0 {
            return Err(ClvError::Fit {
                model: "Gamma-Gamma",
                reason: format!(
                    "q = {:.4} ≤ 1: the fitted spend distribution has no finite mean (a few \
                     huge spenders dominate); cap or remove outliers, or use a penalizer",
                    p[1]
                ),
            });
        }
        Self::new(p[0], p[1], p[2])
    }

    /// Fit on RFM rows (their frequency and monetary columns).
    pub fn fit_rows(rows: &[RfmRow], opts: &FitOptions) -> Result<Self> {
        let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.frequency, r.monetary)).collect();
        Self::fit_with(&pairs, opts)
    }

    /// Total log-likelihood of the pairs with frequency > 0.
    pub fn log_likelihood(&self, pairs: &[(f64, f64)]) -> Result<f64> {
        // The likelihood itself is defined for q ≤ 1 too; only positivity matters here.
        GammaGamma { q: 2.0, ..*self }.check()?;
        if !(self.q.is_finite() && self.q > 0.0) {
            return Err(ClvError::InvalidParameters {
                model: "Gamma-Gamma",
                problem: format!("q = {}; expected a finite value > 0", self.q),
            });
        }
        let data = GgData::new(pairs)?;
        if data.rows.is_empty() {
            return Ok(0.0);
        }
        let theta = [self.p.ln(), self.q.ln(), self.v.ln()];
        let ll = -data.eval(&theta, None) * data.rows.len() as f64;
        if ll.is_finite() {
            Ok(ll)
        } else {
            Err(ClvError::Numerical(
                "Gamma-Gamma log-likelihood is not finite".into(),
            ))
        }
    }

    /// Population mean spend per purchase, p·v/(q−1).
    pub fn mean_spend(&self) -> Result<f64> {
        self.check()?;
        Ok(self.p * self.v / (self.q - 1.0))
    }

    /// E[spend per purchase | x repeat purchases with mean m] = p·(v + x·m) / (p·x + q − 1): a
    /// weighted average of the population mean and the customer's own mean. For x = 0 it is
    /// the population mean.
    pub fn expected_spend(&self, x: f64, m: f64) -> Result<f64> {
        self.check()?;
        if !(x.is_finite() && x >= 0.0) {
            return Err(ClvError::InvalidArgument {
                name: "frequency",
                value: x,
                problem: "expected a finite value ≥ 0".into(),
            });
        }
        if !(m.is_finite() && m >= 0.0) {
            return Err(ClvError::InvalidArgument {
                name: "monetary",
                value: m,
                problem: "expected a finite value ≥ 0".into(),
            });
        }
        let e = self.p * (self.v + x * m) / (self.p * x + self.q - 1.0);
        if e.is_finite() {
            Ok(e)
        } else {
            Err(ClvError::Numerical(format!(
                "expected spend not finite for x = {x}, m = {m}"
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CLV
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn check<O: Objective>(obj: &O, theta: &[f64]) {
        let mut g = vec![0.0; theta.len()];
        obj.eval(theta, Some(&mut g));
        for i in 0..theta.len() {
            let h = 1e-6;
            let (mut up, mut down) = (theta.to_vec(), theta.to_vec());
            up[i] += h;
            down[i] -= h;
            let fd = (obj.eval(&up, None) - obj.eval(&down, None)) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-6 * fd.abs().max(1.0),
                "{i}: {fd} vs {}",
                g[i]
            );
        }
    }

    /// The analytic gradients agree with central differences of the objectives.
    #[test]
    fn gradients_match_finite_differences() {
        let rows: Vec<RfmRow> = (0..40)
            .map(|i| {
                let x = (i % 7) as f64;
                let age = 10.0 + i as f64;
                RfmRow {
                    frequency: x,
                    recency: if x > 0.0 {
                        age * (0.3 + 0.1 * (i % 5) as f64)
                    } else {
                        0.0
                    },
                    age,
                    monetary: if x > 0.0 { 5.0 + i as f64 } else { 0.0 },
                }
            })
            .collect();
        let bg = BgData::new(&rows).expect("valid rows");
        let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.frequency, r.monetary)).collect();
        let gg = GgData::new(&pairs).expect("valid pairs");
        check(&bg, &[-1.4, 1.5, -0.2, 0.9]);
        check(&bg, &[0.5, -0.3, 1.2, -1.0]);
        check(&gg, &[1.8, 1.3, 2.7]);
        check(&gg, &[-0.5, 0.2, 0.1]);
    }
}
