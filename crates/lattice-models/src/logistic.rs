//! Calibrated, regularised logistic regression on standardised features: Newton's method fits
//! it (see [`fit_raw`]), the L2 strength is chosen on a time-later validation split, Platt
//! scaling or isotonic regression calibrates it (see [`crate::calibration`]), and per-customer
//! reason codes come from each feature's contribution to the logit.

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::calibration::{Calibration, CalibrationChoice, Platt};

/// Heavy-tailed counts and amounts are compressed before standardising:
/// x ↦ sign(x)·ln(1 + |x|). Shares and rates in [0, 1] are nearly unchanged.
pub fn compress(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// Per-feature mean and standard deviation of the compressed features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    pub fn fit(x: &[f64], k: usize) -> Self {
        let n = (x.len() / k).max(1) as f64;
        let mut mean = vec![0.0; k];
        let mut sq = vec![0.0; k];
        for row in x.chunks_exact(k) {
            for j in 0..k {
                let v = compress(row[j]);
                mean[j] += v;
                sq[j] += v * v;
            }
        }
        let std = (0..k)
            .map(|j| {
                mean[j] /= n;
                let var = sq[j] / n - mean[j] * mean[j];
                // A constant feature gets unit scale: it then contributes nothing.
                if var > 1e-12 { var.sqrt() } else { 1.0 }
            })
            .collect();
        Standardizer { mean, std }
    }

    pub fn transform_into(&self, row: &[f64], out: &mut [f64]) {
        for j in 0..row.len() {
            out[j] = (compress(row[j]) - self.mean[j]) / self.std[j];
        }
    }

    /// The standardised rows, row-major like `x`.
    pub fn transform(&self, x: &[f64], k: usize) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        for (row, z) in x.chunks_exact(k).zip(out.chunks_exact_mut(k)) {
            self.transform_into(row, z);
        }
        out
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// A fitted, calibrated linear model over named features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub features: Vec<String>,
    pub scaler: Standardizer,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// L2 strength chosen on the validation split.
    pub alpha: f64,
    pub calibration: Calibration,
    /// The cross-fitted validation log loss behind the choice of `calibration`.
    pub calibration_choice: Option<CalibrationChoice>,
    /// The typical customer, standardised: per feature, the training rows' median. Reason
    /// codes are measured against it ([`crate::reasons`]); empty means the mean (zeros).
    #[serde(default)]
    pub typical: Vec<f64>,
    /// Each feature's reason group ([`crate::reasons::group`]); empty: looked up per call.
    #[serde(default)]
    pub reason_groups: crate::reasons::ReasonGroups,
}

/// One reason code: a group of features ([`crate::reasons::group`]) and how much it pushed the
/// logit up against the typical customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub feature: String,
    pub contribution: f64,
}

impl LogisticModel {
    /// The uncalibrated logit of one raw feature row. `scratch` avoids an allocation per call.
    pub fn logit(&self, row: &[f64], scratch: &mut [f64]) -> f64 {
        for (c, x) in scratch.iter_mut().zip(row) {
            *c = compress(*x);
        }
        self.logit_compressed(scratch)
    }

    /// [`Self::logit`] of a row already passed through [`compress`]: models scoring the same
    /// row share that step (the logarithms are most of a prediction's cost).
    pub fn logit_compressed(&self, compressed: &[f64]) -> f64 {
        let s = &self.scaler;
        self.intercept
            + compressed
                .iter()
                .zip(&s.mean)
                .zip(&s.std)
                .zip(&self.weights)
                .map(|(((c, m), sd), w)| (c - m) / sd * w)
                .sum::<f64>()
    }

    /// The calibrated probability of one raw feature row.
    pub fn predict(&self, row: &[f64], scratch: &mut [f64]) -> f64 {
        self.calibration.apply(self.logit(row, scratch))
    }

    pub fn predict_all(&self, x: &[f64]) -> Vec<f64> {
        let k = self.features.len();
        let mut scratch = vec![0.0; k];
        x.chunks_exact(k)
            .map(|r| self.predict(r, &mut scratch))
            .collect()
    }

    /// The `top` groups of features pushing this customer's probability up the most against
    /// the typical customer, strongest first ([`crate::reasons`]), from a row already passed
    /// through [`compress`] (as for [`Self::logit_compressed`]).
    pub fn reasons_compressed(&self, compressed: &[f64], top: usize) -> Vec<Reason> {
        let looked_up;
        let groups = if self.reason_groups.of_feature.len() == self.features.len() {
            &self.reason_groups
        } else {
            looked_up = crate::reasons::ReasonGroups::new(&self.features);
            &looked_up
        };
        let s = &self.scaler;
        let mut sums = vec![0.0; groups.names.len()];
        for (j, &c) in compressed.iter().enumerate() {
            let z = (c - s.mean[j]) / s.std[j];
            let typical = self.typical.get(j).copied().unwrap_or(0.0);
            sums[groups.of_feature[j]] += (z - typical) * self.weights[j];
        }
        let slope = self.calibration.slope();
        let mut c: Vec<(usize, f64)> = sums
            .into_iter()
            .map(|v| v * slope)
            .enumerate()
            .filter(|(_, v)| *v > 0.0)
            .collect();
        c.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.into_iter()
            .take(top)
            .map(|(g, v)| Reason {
                feature: groups.names[g].clone(),
                contribution: v,
            })
            .collect()
    }
}

/// The L2-penalised negative log-likelihood of a logistic model, summed over rows (the scale
/// the strengths in [`ALPHAS`] were chosen on), with the intercept unpenalised.
struct Objective<'a> {
    /// Standardised rows, row-major, `k` columns.
    z: &'a [f64],
    y: &'a [bool],
    k: usize,
    alpha: f64,
}

impl Objective<'_> {
    /// The margin of one row at weights `w` and intercept `b`.
    fn margin(row: &[f64], w: &[f64], b: f64) -> f64 {
        b + row.iter().zip(w).map(|(x, w)| x * w).sum::<f64>()
    }

    /// −log σ(±m) = softplus(∓m), stable for any margin.
    fn row_cost(m: f64, y: bool) -> f64 {
        let t = if y { -m } else { m };
        t.max(0.0) + (-t.abs()).exp().ln_1p()
    }

    fn cost(&self, p: &[f64]) -> f64 {
        let (w, b) = (&p[..self.k], p[self.k]);
        let data: f64 = self
            .z
            .chunks_exact(self.k)
            .zip(self.y)
            .map(|(row, &y)| Self::row_cost(Self::margin(row, w, b), y))
            .sum();
        data + 0.5 * self.alpha * w.iter().map(|w| w * w).sum::<f64>()
    }

    /// Cost, gradient and the upper triangle of the Hessian (row-major, `k + 1` square, the
    /// intercept last) at `p`, in one pass over the rows.
    fn second_order(&self, p: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let (k, d) = (self.k, self.k + 1);
        let (w, b) = (&p[..k], p[k]);
        let mut grad = vec![0.0; d];
        let mut hess = vec![0.0; d * d];
        let mut cost = 0.0;
        for (row, &y) in self.z.chunks_exact(k).zip(self.y) {
            let m = Self::margin(row, w, b);
            cost += Self::row_cost(m, y);
            let q = sigmoid(m);
            let r = q - if y { 1.0 } else { 0.0 };
            let h = q * (1.0 - q);
            for (a, &xa) in row.iter().enumerate() {
                grad[a] += r * xa;
                let hx = h * xa;
                let line = &mut hess[a * d..a * d + k];
                for (hab, &xb) in line[a..].iter_mut().zip(&row[a..]) {
                    *hab += hx * xb;
                }
                hess[a * d + k] += hx;
            }
            grad[k] += r;
            hess[k * d + k] += h;
        }
        for a in 0..k {
            grad[a] += self.alpha * w[a];
            hess[a * d + a] += self.alpha;
        }
        cost += 0.5 * self.alpha * w.iter().map(|w| w * w).sum::<f64>();
        (cost, grad, hess)
    }
}

/// Solves `H x = g` for a symmetric positive definite `H` given by its upper triangle
/// (row-major, `d` square) by Cholesky; `None` if `H` is not numerically positive definite.
fn solve_spd(hess: &[f64], g: &[f64], d: usize) -> Option<Vec<f64>> {
    // L Lᵀ = H, L lower triangular stored row-major; H[i][j] for j ≤ i read as H[j][i].
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|t| l[i * d + t] * l[j * d + t]).sum();
            let v = hess[j * d + i] - dot;
            if i == j {
                // NaN fails this too.
                if v.is_nan() || v <= 1e-12 * hess[i * d + i].abs().max(1e-300) {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = v / l[j * d + j];
            }
        }
    }
    let mut x = g.to_vec();
    for i in 0..d {
        let s: f64 = (0..i).map(|t| l[i * d + t] * x[t]).sum();
        x[i] = (x[i] - s) / l[i * d + i];
    }
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|t| l[t * d + i] * x[t]).sum();
        x[i] = (x[i] - s) / l[i * d + i];
    }
    Some(x)
}

/// Fits an uncalibrated model with L2 strength `alpha` on standardised row-major rows `z` of
/// `k` columns, starting from `init` (weights then intercept) when given.
///
/// Newton's method with a backtracking line search: with tens of standardised columns the
/// Hessian is a few thousand numbers, one pass over the rows builds it, and a handful of steps
/// reach the optimum (two or three from the previous point of a regularisation path), where
/// L-BFGS took hundreds of gradient passes.
fn fit_raw(
    z: &[f64],
    k: usize,
    y: &[bool],
    alpha: f64,
    init: Option<&[f64]>,
) -> Result<(Vec<f64>, f64), ModelError> {
    let problem = Objective { z, y, k, alpha };
    let d = k + 1;
    let mut p = init
        .filter(|w| w.len() == d && w.iter().all(|v| v.is_finite()))
        .map_or_else(|| vec![0.0; d], <[f64]>::to_vec);
    // Converged at a mean gradient norm (per row) of 1e-7: Newton gets there in a step or two
    // from 1e-4, where first-order methods stopped.
    let tolerance = 1e-7 * y.len().max(1) as f64;
    for _ in 0..MAX_NEWTON_STEPS {
        let (cost, grad, mut hess) = problem.second_order(&p);
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(ModelError::Fit(
                "logistic regression: the gradient is not finite".into(),
            ));
        }
        if norm <= tolerance {
            break;
        }
        // A tiny ridge keeps the intercept's row positive definite when every margin saturates.
        let mut step = None;
        for ridge in [0.0, 1e-8, 1e-4, 1e-1] {
            for i in 0..d {
                hess[i * d + i] += ridge;
            }
            step = solve_spd(&hess, &grad, d);
            if step.is_some() {
                break;
            }
        }
        let step = step.ok_or_else(|| {
            ModelError::Fit("logistic regression: the Hessian is not positive definite".into())
        })?;
        // Backtrack until the cost falls enough (Armijo); the full step is taken near the optimum.
        let slope: f64 = grad.iter().zip(&step).map(|(g, s)| g * s).sum();
        let mut t = 1.0;
        let mut next = p.clone();
        loop {
            for ((n, p), s) in next.iter_mut().zip(&p).zip(&step) {
                *n = p - t * s;
            }
            let c = problem.cost(&next);
            if c <= cost - 1e-4 * t * slope {
                break;
            }
            t *= 0.5;
            if t < 1e-10 {
                // No decrease along a descent direction: the optimum to rounding error.
                return finish(p);
            }
        }
        p = next;
    }
    finish(p)
}

/// Newton steps at most per fit; in practice under ten from zero.
const MAX_NEWTON_STEPS: usize = 50;

fn finish(mut p: Vec<f64>) -> Result<(Vec<f64>, f64), ModelError> {
    if p.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Fit(
            "logistic regression: the weights are not finite".into(),
        ));
    }
    let intercept = p.pop().unwrap_or(0.0);
    Ok((p, intercept))
}

/// Row-major examples with their features' names.
pub struct Examples<'a> {
    pub x: &'a [f64],
    pub y: &'a [bool],
}

/// Default grid of L2 strengths.
pub const ALPHAS: &[f64] = &[0.01, 0.1, 1.0, 10.0, 100.0, 1000.0];

/// Chooses `alpha` by the validation log loss of models fitted on `train` and scored on `valid`
/// (a later time window), and calibrates the chosen model with Platt scaling fitted on those
/// same validation predictions. The model is not refitted on `valid`: the calibration would
/// then describe a different model.
///
/// The grid is walked from the strongest regularisation to the weakest, each fit starting from
/// the previous solution (a regularisation path): later fits then take a few iterations. `init`
/// (e.g. the same model fitted at an earlier cutoff) starts the first fit.
pub fn fit_calibrated(
    features: &[String],
    train: Examples<'_>,
    valid: Examples<'_>,
    alphas: &[f64],
    init: Option<&LogisticModel>,
) -> Result<LogisticModel, ModelError> {
    let k = features.len();
    for (name, e) in [("training", &train), ("validation", &valid)] {
        let pos = e.y.iter().filter(|&&v| v).count();
        if pos == 0 || pos == e.y.len() {
            return Err(ModelError::Data(format!(
                "the {name} window has {} examples, {pos} positive: both classes are needed \
                 (a longer history or a different horizon may help)",
                e.y.len()
            )));
        }
        if e.x.len() != e.y.len() * k {
            return Err(ModelError::Data(format!(
                "{name}: feature matrix has the wrong shape"
            )));
        }
    }
    let scaler = Standardizer::fit(train.x, k);
    let zt = scaler.transform(train.x, k);
    let zv = scaler.transform(valid.x, k);
    let mut path = alphas.to_vec();
    path.sort_by(|a, b| b.total_cmp(a));
    let mut start: Option<Vec<f64>> = init.filter(|m| m.features == features).map(|m| {
        let mut w = m.weights.clone();
        w.push(m.intercept);
        w
    });
    let mut best: Option<(f64, LogisticModel, Vec<f64>)> = None;
    for alpha in path {
        let (weights, intercept) = fit_raw(&zt, k, train.y, alpha, start.as_deref())?;
        let logits: Vec<f64> = zv
            .chunks_exact(k)
            .map(|r| intercept + r.iter().zip(&weights).map(|(x, w)| x * w).sum::<f64>())
            .collect();
        let platt = Platt::fit(&logits, valid.y);
        let probs: Vec<f64> = logits.iter().map(|&l| platt.apply(l)).collect();
        let loss = crate::metrics::log_loss(&probs, valid.y);
        let mut next = weights.clone();
        next.push(intercept);
        start = Some(next);
        if best.as_ref().is_none_or(|(l, ..)| loss < *l) {
            let model = LogisticModel {
                features: features.to_vec(),
                scaler: scaler.clone(),
                weights,
                intercept,
                alpha,
                calibration: Calibration::Platt(platt),
                calibration_choice: None,
                typical: Vec::new(),
                reason_groups: Default::default(),
            };
            best = Some((loss, model, logits));
        }
    }
    let (_, mut model, logits) = best.ok_or_else(|| ModelError::Fit("empty alpha grid".into()))?;
    // The strength was chosen under Platt; now the calibration itself is chosen, on the same
    // window's logits, between Platt and isotonic.
    let (calibration, choice) = Calibration::choose(&logits, valid.y);
    model.calibration = calibration;
    model.calibration_choice = Some(choice);
    model.typical = crate::reasons::typical(&zt, k);
    model.reason_groups = crate::reasons::ReasonGroups::new(features);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::Platt;

    #[test]
    fn platt_recovers_a_known_calibration() {
        // Labels drawn from σ(2z − 1): Platt should find a ≈ 2, b ≈ −1.
        let mut state = 42u64;
        let mut rand = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let z: Vec<f64> = (0..20000).map(|_| rand() * 6.0 - 3.0).collect();
        let y: Vec<bool> = z.iter().map(|&z| rand() < sigmoid(2.0 * z - 1.0)).collect();
        let p = Platt::fit(&z, &y);
        assert!(
            (p.a - 2.0).abs() < 0.15 && (p.b + 1.0).abs() < 0.15,
            "{p:?}"
        );
    }

    #[test]
    fn platt_stays_finite_with_rare_positives() {
        // 60 positives in 5,000 with well-separated logits: plain Newton diverges here.
        let z: Vec<f64> = (0..5000)
            .map(|i| {
                if i < 60 {
                    3.0 + (i % 7) as f64
                } else {
                    -2.0 - (i % 11) as f64
                }
            })
            .collect();
        let y: Vec<bool> = (0..5000).map(|i| i < 60).collect();
        let p = Platt::fit(&z, &y);
        assert!(p.a > 0.0 && p.a < 50.0, "{p:?}");
        assert!(p.apply(5.0) > 0.9 && p.apply(-5.0) < 0.05, "{p:?}");
    }

    #[test]
    fn standardizer_handles_constant_columns() {
        let s = Standardizer::fit(&[1.0, 5.0, 1.0, 7.0], 2);
        assert_eq!(s.std[0], 1.0);
        let mut out = [0.0; 2];
        s.transform_into(&[1.0, 5.0], &mut out);
        assert_eq!(out[0], 0.0);
    }

    /// Rows of three standard normal-ish columns and labels drawn from σ(b + z·w).
    fn synthetic(n: usize, w: [f64; 3], b: f64, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut state = seed;
        let mut rand = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut z = Vec::with_capacity(3 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..3)
                .map(|_| (rand() + rand() + rand() - 1.5) * 2.0)
                .collect();
            let m = b + row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>();
            y.push(rand() < sigmoid(m));
            z.extend(row);
        }
        (z, y)
    }

    #[test]
    fn newton_recovers_known_weights_and_stops_at_a_stationary_point() {
        let (z, y) = synthetic(40_000, [1.5, -0.8, 0.0], -1.0, 7);
        let (w, b) = fit_raw(&z, 3, &y, 0.01, None).unwrap();
        for (got, want) in w.iter().zip([1.5, -0.8, 0.0]) {
            assert!((got - want).abs() < 0.06, "{w:?}");
        }
        assert!((b + 1.0).abs() < 0.06, "{b}");
        let mut p = w.clone();
        p.push(b);
        let obj = Objective {
            z: &z,
            y: &y,
            k: 3,
            alpha: 0.01,
        };
        let (_, grad, _) = obj.second_order(&p);
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!(norm <= 1e-7 * y.len() as f64, "gradient norm {norm}");
    }

    #[test]
    fn newton_warm_start_reaches_the_same_optimum() {
        let (z, y) = synthetic(5_000, [0.7, 0.3, -1.2], 0.4, 11);
        let cold = fit_raw(&z, 3, &y, 10.0, None).unwrap();
        let mut start = vec![5.0, -5.0, 5.0];
        start.push(-3.0);
        let warm = fit_raw(&z, 3, &y, 10.0, Some(&start)).unwrap();
        for (a, b) in cold.0.iter().zip(&warm.0) {
            assert!((a - b).abs() < 1e-6, "{cold:?} vs {warm:?}");
        }
        assert!((cold.1 - warm.1).abs() < 1e-6);
    }

    #[test]
    fn newton_stays_finite_on_separable_data() {
        // Perfectly separated by the first column: only the penalty bounds the weights.
        let z: Vec<f64> = (0..2_000)
            .flat_map(|i| {
                let x = if i % 2 == 0 { 1.0 } else { -1.0 };
                [x * (1.0 + (i % 5) as f64), 0.0]
            })
            .collect();
        let y: Vec<bool> = (0..2_000).map(|i| i % 2 == 0).collect();
        let (w, b) = fit_raw(&z, 2, &y, 0.01, None).unwrap();
        assert!(w.iter().all(|v| v.is_finite()) && b.is_finite());
        assert!(w[0] > 1.0, "{w:?}");
    }
}
