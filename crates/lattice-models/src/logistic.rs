//! Calibrated, regularised logistic regression on standardised features: linfa fits it, the
//! L2 strength is chosen on a time-later validation split, Platt scaling or isotonic regression
//! calibrates it (see [`crate::calibration`]), and
//! per-customer reason codes come from each feature's contribution to the logit.

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ShapeBuilder};
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

    /// The standardised rows as a column-major matrix: linfa's gradient multiplies by the
    /// transpose, which then reads each column contiguously (2× faster fits than row-major).
    pub fn transform(&self, x: &[f64], k: usize) -> Array2<f64> {
        let n = x.len() / k;
        let mut out = Array2::zeros((n, k).f());
        let mut z = vec![0.0; k];
        for (i, row) in x.chunks_exact(k).enumerate() {
            self.transform_into(row, &mut z);
            out.row_mut(i).assign(&ndarray::ArrayView1::from(&z[..]));
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
}

/// One reason code: a feature and how much it pushed the logit up.
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

    /// The `top` features pushing this customer's probability up the most, strongest first.
    pub fn reasons(&self, row: &[f64], top: usize) -> Vec<Reason> {
        let mut z = vec![0.0; row.len()];
        self.scaler.transform_into(row, &mut z);
        let mut c: Vec<(usize, f64)> = z
            .iter()
            .zip(&self.weights)
            .map(|(z, w)| z * w * self.calibration.slope())
            .enumerate()
            .filter(|(_, v)| *v > 0.0)
            .collect();
        c.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.into_iter()
            .take(top)
            .map(|(j, v)| Reason {
                feature: self.features[j].clone(),
                contribution: v,
            })
            .collect()
    }
}

/// Fits an uncalibrated model with L2 strength `alpha` on standardised rows, starting from
/// `init` (weights then intercept) when given.
fn fit_raw(
    z: &Array2<f64>,
    y: &[bool],
    alpha: f64,
    init: Option<&[f64]>,
) -> Result<(Vec<f64>, f64), ModelError> {
    let targets = Array1::from(y.to_vec());
    let data = Dataset::new(z.clone(), targets);
    // linfa's loss is a sum over rows, so its gradient grows with the row count: an absolute
    // tolerance (its default 1e-4) is never met on large data and every fit ran to the
    // iteration cap. Stop at a mean gradient norm of 1e-4 instead.
    let tolerance = 1e-4 * z.nrows().max(1) as f64;
    let mut params = LogisticRegression::default()
        .alpha(alpha)
        .gradient_tolerance(tolerance)
        .max_iterations(200);
    // linfa models P(the larger class; the first seen on a tie), so a warm start must be given
    // in that orientation.
    let n_true = y.iter().filter(|&&v| v).count();
    let n_false = y.len() - n_true;
    let true_is_pos = if y.first() == Some(&true) {
        n_true >= n_false
    } else {
        n_true > n_false
    };
    let sign = if true_is_pos { 1.0 } else { -1.0 };
    if let Some(w) = init.filter(|w| w.len() == z.ncols() + 1) {
        params = params.initial_params(w.iter().map(|v| sign * v).collect());
    }
    let fitted = params
        .fit(&data)
        .map_err(|e| ModelError::Fit(format!("logistic regression: {e}")))?;
    // Flip to P(true) when linfa modelled P(false).
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok((
        fitted.params().iter().map(|w| sign * w).collect(),
        sign * fitted.intercept(),
    ))
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
        let (weights, intercept) = fit_raw(&zt, train.y, alpha, start.as_deref())?;
        let w = Array1::from(weights.clone());
        let logits: Vec<f64> = zv
            .rows()
            .into_iter()
            .map(|r| intercept + r.dot(&w))
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
}
