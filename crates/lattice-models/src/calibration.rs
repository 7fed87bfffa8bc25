//! Turning a model's logit into a probability that means what it says: Platt scaling or
//! isotonic regression, fitted on a later time window than the model, whichever predicts that
//! window's labels better.
//!
//! Platt is two numbers and extrapolates smoothly; isotonic follows any monotone shape (a
//! model whose logit is too flat in the middle and too steep in the tails) but can overfit a
//! small window. Neither is better everywhere, so [`Calibration::choose`] lets the data decide
//! by two-fold cross-fitting on the validation window: each method is fitted on one half and
//! scored (log loss) on the other, both ways round. The winner is then fitted on the whole
//! window.

use serde::{Deserialize, Serialize};

use crate::logistic::sigmoid;

/// Platt scaling: p = σ(a·logit + b), fitted on held-out predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Fits by Newton's method with backtracking on the log loss (Lin, Lin & Weng, 2007), with
    /// Platt's smoothed targets ((n₊+1)/(n₊+2), 1/(n₋+2)) so that few positives do not give
    /// infinite slopes. Starts from the prior log-odds with zero slope.
    pub fn fit(logits: &[f64], labels: &[bool]) -> Platt {
        let pos = labels.iter().filter(|&&y| y).count() as f64;
        let neg = labels.len() as f64 - pos;
        let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
        let t: Vec<f64> = labels.iter().map(|&y| if y { hi } else { lo }).collect();
        let loss = |a: f64, b: f64| -> f64 {
            logits
                .iter()
                .zip(&t)
                .map(|(&z, &t)| {
                    let m = a * z + b;
                    // log(1 + e^m) − t·m, stably.
                    m.max(0.0) + (-m.abs()).exp().ln_1p() - t * m
                })
                .sum()
        };
        let (mut a, mut b) = (0.0, ((pos + 1.0) / (neg + 1.0)).ln());
        let mut f = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for (&z, &t) in logits.iter().zip(&t) {
                let p = sigmoid(a * z + b);
                let w = p * (1.0 - p);
                ga += (p - t) * z;
                gb += p - t;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
                break;
            }
            let det = haa * hbb - hab * hab;
            if det <= 0.0 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-10 {
                let (na, nb) = (a - step * da, b - step * db);
                let nf = loss(na, nb);
                if nf < f + 1e-4 * step * (ga * -da + gb * -db) {
                    (a, b, f) = (na, nb, nf);
                    improved = true;
                    break;
                }
                step /= 2.0;
            }
            if !improved {
                break;
            }
        }
        if a.is_finite() && b.is_finite() {
            Platt { a, b }
        } else {
            Platt::IDENTITY
        }
    }

    pub fn apply(&self, logit: f64) -> f64 {
        sigmoid(self.a * logit + self.b)
    }
}

/// Isotonic regression of the label on the logit (pool adjacent violators), read between its
/// blocks by linear interpolation and flat beyond the ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Mean logit of each block, increasing.
    pub logits: Vec<f64>,
    /// The block's smoothed positive rate, non-decreasing.
    pub probs: Vec<f64>,
}

impl Isotonic {
    /// Each block's rate is shrunk towards the overall rate by one pseudo-example, so a block
    /// of a few negatives does not say "never" (an infinite log loss on the next positive).
    pub fn fit(logits: &[f64], labels: &[bool]) -> Option<Isotonic> {
        let n = logits.len();
        if n == 0 || logits.iter().any(|z| !z.is_finite()) {
            return None;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| logits[i].total_cmp(&logits[j]));
        let base = labels.iter().filter(|&&y| y).count() as f64 / n as f64;
        // Blocks as (sum of logits, positives, count); equal logits start in one block, since
        // the calibrated map must give them one value.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for &i in &order {
            let y = f64::from(u8::from(labels[i]));
            match blocks.last_mut() {
                Some(last) if last.0 / last.2 == logits[i] => {
                    last.0 += logits[i];
                    last.1 += y;
                    last.2 += 1.0;
                }
                _ => blocks.push((logits[i], y, 1.0)),
            }
            while blocks.len() > 1 {
                let k = blocks.len();
                let (b, a) = (blocks[k - 1], blocks[k - 2]);
                if a.1 / a.2 < b.1 / b.2 {
                    break;
                }
                blocks[k - 2] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
                blocks.pop();
            }
        }
        let logits: Vec<f64> = blocks.iter().map(|b| b.0 / b.2).collect();
        let mut probs: Vec<f64> = blocks.iter().map(|b| (b.1 + base) / (b.2 + 1.0)).collect();
        // Shrinking can undo the order between blocks of different sizes; restore it.
        for i in 1..probs.len() {
            probs[i] = probs[i].max(probs[i - 1]);
        }
        Some(Isotonic { logits, probs })
    }

    pub fn apply(&self, logit: f64) -> f64 {
        let (x, y) = (&self.logits, &self.probs);
        let Some(&last) = y.last() else {
            return sigmoid(logit);
        };
        let i = x.partition_point(|&v| v < logit);
        if i == 0 {
            return y[0];
        }
        if i == x.len() {
            return last;
        }
        let t = (logit - x[i - 1]) / (x[i] - x[i - 1]);
        y[i - 1] + t * (y[i] - y[i - 1])
    }
}

/// The calibration a model applies to its logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    Platt(Platt),
    Isotonic(Isotonic),
}

/// Two-fold cross-fitted validation log loss of each method, and the one chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationChoice {
    pub platt_log_loss: f64,
    pub isotonic_log_loss: f64,
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration::Platt(Platt::IDENTITY);

    pub fn apply(&self, logit: f64) -> f64 {
        match self {
            Calibration::Platt(p) => p.apply(logit),
            Calibration::Isotonic(i) => i.apply(logit),
        }
    }

    /// How much the calibrated log-odds move per unit of logit near the middle: Platt's slope;
    /// isotonic is taken as 1 (it is monotone, so the sign is what reason codes need).
    pub fn slope(&self) -> f64 {
        match self {
            Calibration::Platt(p) => p.a,
            Calibration::Isotonic(_) => 1.0,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Calibration::Platt(_) => "platt",
            Calibration::Isotonic(_) => "isotonic",
        }
    }

    /// Fits Platt and isotonic calibration on the validation window's logits and labels, and
    /// keeps the one with the lower two-fold cross-fitted log loss (ties go to Platt, the
    /// simpler). The folds alternate rows, so neither half is an earlier part of the window.
    pub fn choose(logits: &[f64], labels: &[bool]) -> (Calibration, CalibrationChoice) {
        let half = |k: usize| -> (Vec<f64>, Vec<bool>) {
            logits
                .iter()
                .zip(labels)
                .enumerate()
                .filter(|(i, _)| i % 2 == k)
                .map(|(_, (&z, &y))| (z, y))
                .unzip()
        };
        let folds = [half(0), half(1)];
        let (mut platt_loss, mut iso_loss) = (0.0, 0.0);
        for k in 0..2 {
            let (fit_z, fit_y) = &folds[k];
            let (test_z, test_y) = &folds[1 - k];
            let platt = Platt::fit(fit_z, fit_y);
            let p: Vec<f64> = test_z.iter().map(|&z| platt.apply(z)).collect();
            platt_loss += crate::metrics::log_loss(&p, test_y) * test_y.len() as f64;
            iso_loss += match Isotonic::fit(fit_z, fit_y) {
                Some(iso) => {
                    let p: Vec<f64> = test_z.iter().map(|&z| iso.apply(z)).collect();
                    crate::metrics::log_loss(&p, test_y) * test_y.len() as f64
                }
                None => f64::INFINITY,
            };
        }
        let n = labels.len().max(1) as f64;
        let choice = CalibrationChoice {
            platt_log_loss: platt_loss / n,
            isotonic_log_loss: iso_loss / n,
        };
        let isotonic = (choice.isotonic_log_loss < choice.platt_log_loss)
            .then(|| Isotonic::fit(logits, labels))
            .flatten();
        let calibration = match isotonic {
            Some(i) => Calibration::Isotonic(i),
            None => Calibration::Platt(Platt::fit(logits, labels)),
        };
        (calibration, choice)
    }
}
