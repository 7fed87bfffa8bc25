//! Off-policy evaluation: what another policy would have earned, from decisions logged under
//! the current one, without serving it to anyone.
//!
//! For logged decision i (action aᵢ chosen with probability pᵢ, reward rᵢ) and a target policy
//! π with predicted rewards q̂ (a reward model, e.g. the posterior means × value − cost):
//!
//! * IPS: mean of wᵢ·rᵢ, with wᵢ = π(aᵢ|xᵢ) / pᵢ. Unbiased when pᵢ > 0 wherever π acts; noisy.
//! * SNIPS: Σ wᵢ·rᵢ / Σ wᵢ. Slightly biased, far less noisy.
//! * DR (doubly robust): mean of Σₐ π(a|xᵢ)·q̂(xᵢ, a) + wᵢ·(rᵢ − q̂(xᵢ, aᵢ)). Unbiased if
//!   either the probabilities or the reward model are right; the usual choice.
//!
//! Intervals are percentile bootstraps over decisions. The effective sample size
//! (Σw)² / Σw² says how many logged decisions the estimate is really worth. An estimate is
//! refused when a logged probability is missing or not in (0, 1], when the target puts more
//! than `max_unsupported` of its mass where the logging policy had probability 0, or when the
//! effective sample size is below `min_ess`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One action the evaluated policy may take for a logged decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TargetArm {
    pub action: usize,
    /// π(action | context); a record's probabilities sum to 1.
    pub probability: f64,
    /// q̂(context, action): the reward model's prediction.
    pub predicted: f64,
}

/// A logged decision and what the evaluated policy would have done in its context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub logged_action: usize,
    /// The probability with which the logging policy chose `logged_action`.
    pub logged_probability: f64,
    pub reward: f64,
    /// q̂ of the logged action.
    pub predicted_logged: f64,
    pub target: Vec<TargetArm>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Interval level (0.95).
    pub level: f64,
    /// Refuse below this effective sample size.
    pub min_ess: f64,
    /// Refuse when the target puts more than this share of its mass (averaged over
    /// decisions) on actions the logging policy could not have chosen.
    pub max_unsupported: f64,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bootstrap: 1000,
            level: 0.95,
            min_ess: 100.0,
            max_unsupported: 0.01,
            seed: 7,
        }
    }
}

/// An estimate with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evaluation {
    pub decisions: usize,
    pub ips: Estimate,
    pub snips: Estimate,
    pub dr: Estimate,
    /// Effective sample size of the importance weights.
    pub ess: f64,
    /// Logged decisions where the target could have taken the logged action (w > 0).
    pub matched: usize,
    /// The target's mass on actions the logging policy could not have chosen (mean share).
    pub unsupported: f64,
}

/// Why an estimate is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpeError {
    #[error("no logged decisions to evaluate")]
    Empty,
    #[error(
        "logged decision #{index}: logged probability {value} (expected a probability > 0 and \
         <= 1 with which the logged action was chosen; off-policy evaluation needs it)"
    )]
    BadProbability { index: usize, value: f64 },
    #[error(
        "logged decision #{index}: the evaluated policy's probabilities {detail} (expected \
         numbers >= 0 summing to 1)"
    )]
    BadTarget { index: usize, detail: String },
    #[error("logged decision #{index}: {field} is {value} (expected a finite number)")]
    NotFinite {
        index: usize,
        field: &'static str,
        value: f64,
    },
    #[error(
        "no support: the evaluated policy puts {share:.1}% of its choices where the logged \
         probability is 0 (at most {max:.1}% allowed); log with exploration, or evaluate a \
         policy closer to the logged one"
    )]
    NoSupport { share: f64, max: f64 },
    #[error(
        "overlap too poor: effective sample size {ess:.1} of {decisions} decisions (at least \
         {min} needed); the evaluated policy rarely does what the logged one did"
    )]
    SmallEss {
        ess: f64,
        decisions: usize,
        min: f64,
    },
}

/// Per-decision terms: weight, weight × reward, the DR term.
struct Terms {
    w: Vec<f64>,
    wr: Vec<f64>,
    dr: Vec<f64>,
}

/// Estimates the target's value per decision (IPS, SNIPS, DR), or refuses.
pub fn evaluate(samples: &[Sample], options: &Options) -> Result<Evaluation, OpeError> {
    if samples.is_empty() {
        return Err(OpeError::Empty);
    }
    let n = samples.len();
    let mut t = Terms {
        w: Vec::with_capacity(n),
        wr: Vec::with_capacity(n),
        dr: Vec::with_capacity(n),
    };
    let mut unsupported = 0.0;
    for (index, s) in samples.iter().enumerate() {
        let p = s.logged_probability;
        if !(p > 0.0 && p <= 1.0) {
            return Err(OpeError::BadProbability { index, value: p });
        }
        for (field, value) in [
            ("reward", s.reward),
            ("predicted reward", s.predicted_logged),
        ] {
            if !value.is_finite() {
                return Err(OpeError::NotFinite {
                    index,
                    field,
                    value,
                });
            }
        }
        let mut total = 0.0;
        let mut on_logged = 0.0;
        let mut direct = 0.0;
        for a in &s.target {
            if !(a.probability.is_finite() && a.probability >= 0.0) {
                return Err(OpeError::BadTarget {
                    index,
                    detail: format!("include {}", a.probability),
                });
            }
            if !a.predicted.is_finite() {
                return Err(OpeError::NotFinite {
                    index,
                    field: "predicted reward",
                    value: a.predicted,
                });
            }
            total += a.probability;
            direct += a.probability * a.predicted;
            if a.action == s.logged_action {
                on_logged += a.probability;
            }
        }
        if (total - 1.0).abs() > 1e-6 {
            return Err(OpeError::BadTarget {
                index,
                detail: format!("sum to {total}"),
            });
        }
        // A logged probability of 1 means no other action could have been chosen.
        if p >= 1.0 {
            unsupported += 1.0 - on_logged;
        }
        let w = on_logged / p;
        t.w.push(w);
        t.wr.push(w * s.reward);
        t.dr.push(direct + w * (s.reward - s.predicted_logged));
    }
    let unsupported = unsupported / n as f64;
    if unsupported > options.max_unsupported {
        return Err(OpeError::NoSupport {
            share: 100.0 * unsupported,
            max: 100.0 * options.max_unsupported,
        });
    }
    let sum_w: f64 = t.w.iter().sum();
    let sum_w2: f64 = t.w.iter().map(|w| w * w).sum();
    let ess = if sum_w2 > 0.0 {
        sum_w * sum_w / sum_w2
    } else {
        0.0
    };
    if ess < options.min_ess {
        return Err(OpeError::SmallEss {
            ess,
            decisions: n,
            min: options.min_ess,
        });
    }
    let point = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut sw, mut swr, mut sdr, mut k) = (0.0, 0.0, 0.0, 0usize);
        for i in idx {
            sw += t.w[i];
            swr += t.wr[i];
            sdr += t.dr[i];
            k += 1;
        }
        let k = k as f64;
        let snips = if sw > 0.0 { swr / sw } else { 0.0 };
        [swr / k, snips, sdr / k]
    };
    let full = point(&mut (0..n));
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let b = options.bootstrap.max(1);
    let mut draws: [Vec<f64>; 3] = std::array::from_fn(|_| Vec::with_capacity(b));
    for _ in 0..b {
        let mut idx = (0..n).map(|_| rng.gen_range(0..n));
        let est = point(&mut idx);
        for (d, e) in draws.iter_mut().zip(est) {
            d.push(e);
        }
    }
    let tail = (1.0 - options.level) / 2.0;
    let [ips, snips, dr] = std::array::from_fn(|k| {
        let d = &mut draws[k];
        d.sort_by(f64::total_cmp);
        Estimate {
            value: full[k],
            low: percentile(d, tail),
            high: percentile(d, 1.0 - tail),
        }
    });
    Ok(Evaluation {
        decisions: n,
        ips,
        snips,
        dr,
        ess,
        matched: t.w.iter().filter(|&&w| w > 0.0).count(),
        unsupported,
    })
}

/// The `q` quantile of sorted data (linear interpolation).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
