//! The Gamma-Gamma model of spend per purchase.

use serde::{Deserialize, Serialize};

use super::optimise::{FitOptions, Objective, minimise, params_from_theta};
use super::rfm::RfmRow;
use super::special::{digamma, ln_gamma};
use super::{ClvError, Result};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::optimise::check_gradient;

    /// The analytic gradient agrees with central differences of the objective.
    #[test]
    fn gradient_matches_finite_differences() {
        let pairs: Vec<(f64, f64)> = (0..40)
            .map(|i| {
                let x = (i % 7) as f64;
                (x, if x > 0.0 { 5.0 + i as f64 } else { 0.0 })
            })
            .collect();
        let gg = GgData::new(&pairs).expect("valid pairs");
        check_gradient(&gg, &[1.8, 1.3, 2.7]);
        check_gradient(&gg, &[-0.5, 0.2, 0.1]);
    }
}
