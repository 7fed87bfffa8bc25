//! The BG/NBD model of the number of future purchases.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::optimise::{FitOptions, Objective, minimise, params_from_theta};
use super::rfm::{RfmRow, check_args, check_horizon};
use super::special::{digamma, hyp2f1_minus_one, ln_gamma};
use super::{ClvError, Result};

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

    /// Maximum likelihood fit (see the [module docs](super) for the method).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::optimise::check_gradient;

    /// The analytic gradient agrees with central differences of the objective.
    #[test]
    fn gradient_matches_finite_differences() {
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
        check_gradient(&bg, &[-1.4, 1.5, -0.2, 0.9]);
        check_gradient(&bg, &[0.5, -0.3, 1.2, -1.0]);
    }
}
