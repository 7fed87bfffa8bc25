//! Choosing among eligible actions: greedy on the posterior means, or Thompson sampling (one
//! draw from each posterior, the best draw wins) for a share of decisions.
//!
//! Everything random is seeded by the decision id: a retried or replayed decision explores
//! the same way and gets the same answer. The probability with which the chosen action was
//! chosen is logged for off-policy evaluation; for Thompson sampling it has no closed form, so
//! it is estimated from [`DRAWS`] draws, the first of which is the one that decided (so the
//! chosen action's estimate is never 0).

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::hash::{hash64, unit};
use crate::posterior::Beta;

/// Monte Carlo draws behind a Thompson decision's logged probability: its standard error is at
/// most 0.016 (√(0.25/1000)), small beside the spread of importance weights.
pub const DRAWS: usize = 1000;

/// An eligible action as the chooser sees it: its posterior and what a response is worth.
/// `score(θ) = θ × value × weight − cost`, as ranking scores a propensity θ.
#[derive(Debug, Clone, Copy)]
pub struct Arm<'a> {
    /// Ties on score go to the smaller id, as in ranking.
    pub id: &'a str,
    pub posterior: Beta,
    pub value: f64,
    pub weight: f64,
    pub cost: f64,
}

impl Arm<'_> {
    fn score(&self, theta: f64) -> f64 {
        theta * self.value * self.weight - self.cost
    }
}

/// How a decision was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index into the arms.
    pub arm: usize,
    /// Whether this decision explored (Thompson) or exploited (greedy).
    pub explored: bool,
    /// The probability the policy chooses this arm for this decision: exact for a greedy-only
    /// policy, `explore × P̂(Thompson picks it) + (1 − explore) × [greedy picks it]` otherwise.
    pub probability: f64,
    /// The propensity each arm was ranked with: the decisive draw when exploring, the
    /// posterior mean otherwise. Hand these to `lattice_decide::rank_with`.
    pub propensities: Vec<f64>,
}

/// Chooses among `arms` for decision `decision_id`: Thompson sampling with probability
/// `explore` (decided by the id's hash, so stable), greedy on posterior means otherwise. The
/// logged probability comes from [`DRAWS`] draws seeded by the decision id, the decisive one
/// first. `None` without arms.
pub fn choose(arms: &[Arm<'_>], decision_id: &str, explore: f64) -> Option<Choice> {
    choose_inner(arms, decision_id, explore, None)
}

/// [`choose`] with the Thompson win shares given (from [`thompson_shares`]): for callers that
/// make many decisions over the same posteriors (the same segment, eligible actions and
/// posterior state share one exact probability, so one estimate serves them all). The chosen
/// action's share counts as at least 1 / [`DRAWS`], as in [`choose`], where the decisive draw
/// is one of the draws.
pub fn choose_with_shares(
    arms: &[Arm<'_>],
    decision_id: &str,
    explore: f64,
    shares: &[f64],
) -> Option<Choice> {
    choose_inner(arms, decision_id, explore, Some(shares))
}

/// The share of [`DRAWS`] Thompson draws (seeded by `seed`) each arm wins.
pub fn thompson_shares(arms: &[Arm<'_>], seed: &str) -> Vec<f64> {
    let means: Vec<f64> = arms.iter().map(|a| a.posterior.mean()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(hash64(&[seed, "thompson"]));
    let mut wins = vec![0u32; arms.len()];
    let mut scratch = Vec::with_capacity(arms.len());
    for _ in 0..DRAWS {
        draw(arms, &means, &mut rng, &mut scratch);
        wins[best(arms, &scratch)] += 1;
    }
    wins.iter().map(|&w| f64::from(w) / DRAWS as f64).collect()
}

fn draw(arms: &[Arm<'_>], means: &[f64], rng: &mut ChaCha8Rng, out: &mut Vec<f64>) {
    out.clear();
    for (a, m) in arms.iter().zip(means) {
        out.push(beta_sample(rng, a.posterior.alpha, a.posterior.beta).unwrap_or(*m));
    }
}

fn choose_inner(
    arms: &[Arm<'_>],
    decision_id: &str,
    explore: f64,
    shares: Option<&[f64]>,
) -> Option<Choice> {
    if arms.is_empty() {
        return None;
    }
    let explore = if explore.is_finite() {
        explore.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let means: Vec<f64> = arms.iter().map(|a| a.posterior.mean()).collect();
    let greedy = best(arms, &means);
    let explored = explore > 0.0 && unit(hash64(&[decision_id, "explore"])) < explore;
    if explore == 0.0 || arms.len() == 1 {
        return Some(Choice {
            arm: greedy,
            explored,
            probability: 1.0,
            propensities: means,
        });
    }
    // The logged probability of `arm` from the win shares (the chosen arm's counted as at
    // least one draw of DRAWS, as when the decisive draw is one of them).
    let logged = |arm: usize, shares: &[f64]| {
        let share = shares
            .get(arm)
            .copied()
            .unwrap_or(0.0)
            .max(1.0 / DRAWS as f64);
        (explore * share + (1.0 - explore) * f64::from(u8::from(arm == greedy))).min(1.0)
    };
    if let (Some(shares), false) = (shares, explored) {
        // Greedy with the shares known: the decisive draw would decide nothing, so it is not
        // drawn (the same choice and probability as drawing it).
        return Some(Choice {
            arm: greedy,
            explored,
            probability: logged(greedy, shares),
            propensities: means,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(hash64(&[decision_id, "thompson"]));
    let mut thetas = Vec::with_capacity(arms.len());
    draw(arms, &means, &mut rng, &mut thetas);
    let sampled = best(arms, &thetas);
    let arm = if explored { sampled } else { greedy };
    let probability = match shares {
        Some(shares) => logged(arm, shares),
        None => {
            let mut wins = vec![0u32; arms.len()];
            wins[sampled] += 1;
            let mut scratch = Vec::with_capacity(arms.len());
            for _ in 1..DRAWS {
                draw(arms, &means, &mut rng, &mut scratch);
                wins[best(arms, &scratch)] += 1;
            }
            let shares: Vec<f64> = wins.iter().map(|&w| f64::from(w) / DRAWS as f64).collect();
            logged(arm, &shares)
        }
    };
    Some(Choice {
        arm,
        explored,
        probability,
        propensities: if explored { thetas } else { means },
    })
}

/// The arm with the highest score at these propensities; ties to the smaller id.
fn best(arms: &[Arm<'_>], thetas: &[f64]) -> usize {
    let mut top = 0;
    for i in 1..arms.len() {
        let (s, t) = (arms[i].score(thetas[i]), arms[top].score(thetas[top]));
        if s > t || (s == t && arms[i].id < arms[top].id) {
            top = i;
        }
    }
    top
}

/// A draw from Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); `None` unless both
/// parameters are positive and finite. Marsaglia and Tsang's gamma sampler: about a normal and
/// a uniform per draw, 2-3× faster than `rand_distr::Beta`, which matters at 1,000 draws per
/// decision.
pub fn beta_sample<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> Option<f64> {
    if !(a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
        return None;
    }
    let x = gamma_sample(rng, a);
    let y = gamma_sample(rng, b);
    let sum = x + y;
    Some(if sum > 0.0 { x / sum } else { a / (a + b) })
}

/// Gamma(shape, 1) for shape > 0 (Marsaglia & Tsang 2000; shape < 1 by the boost
/// Gamma(shape + 1) × U^(1/shape)).
fn gamma_sample<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.r#gen();
        return gamma_sample(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x: f64 = StandardNormal.sample(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = rng.r#gen();
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}
