//! Choosing among eligible actions: greedy on the posterior means, or Thompson sampling (one
//! draw from each posterior, the best draw wins) for a share of decisions.
//!
//! Everything random is seeded by the decision id: a retried or replayed decision explores
//! the same way and gets the same answer. The probability with which the chosen action was
//! chosen is logged for off-policy evaluation; for Thompson sampling [`choose`] computes it by
//! numerical integration ([`crate::argmax`]), deterministic and within about 1e-6. The
//! simulator, which makes thousands of decisions over the same posteriors, estimates every
//! arm's share at once from [`DRAWS`] draws instead ([`thompson_shares`]).

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub use crate::argmax::{Quadrature, win_probability, win_probability_with};
use crate::hash::{hash64, unit};
use crate::posterior::Beta;

/// Monte Carlo draws behind [`thompson_shares`]: its standard error is at most 0.016
/// (√(0.25/1000)), small beside the spread of importance weights.
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
    pub(crate) fn score(&self, theta: f64) -> f64 {
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
    /// policy, `explore × P(Thompson picks it) + (1 − explore) × [greedy picks it]` otherwise.
    pub probability: f64,
    /// The propensity each arm was ranked with: the decisive draw when exploring, the
    /// posterior mean otherwise. Hand these to `lattice_decide::rank_with`.
    pub propensities: Vec<f64>,
}

/// Chooses among `arms` for decision `decision_id`: Thompson sampling with probability
/// `explore` (decided by the id's hash, so stable), greedy on posterior means otherwise. The
/// Thompson probability in the logged one is computed by integration
/// ([`win_probability`]) for the chosen arm only. `None` without arms.
pub fn choose(arms: &[Arm<'_>], decision_id: &str, explore: f64) -> Option<Choice> {
    choose_with(arms, decision_id, explore, |arm| win_probability(arms, arm))
}

/// [`choose`] with the Thompson probability of an arm supplied by the caller (a cache of
/// [`win_probability`] for decisions over the same posteriors). It is asked for the chosen
/// arm only, once, and never when `explore` is 0 or there is one arm.
pub fn choose_with(
    arms: &[Arm<'_>],
    decision_id: &str,
    explore: f64,
    thompson: impl FnOnce(usize) -> f64,
) -> Option<Choice> {
    choose_inner(arms, decision_id, explore, thompson)
}

/// [`choose`] with the Thompson win shares given (from [`thompson_shares`]): for callers that
/// make many decisions over the same posteriors (the same segment, eligible actions and
/// posterior state share one probability, so one estimate serves them all). The chosen
/// action's share counts as at least 1 / [`DRAWS`] (the decisive draw is one of its wins).
pub fn choose_with_shares(
    arms: &[Arm<'_>],
    decision_id: &str,
    explore: f64,
    shares: &[f64],
) -> Option<Choice> {
    let share = |arm: usize| {
        shares
            .get(arm)
            .copied()
            .unwrap_or(0.0)
            .max(1.0 / DRAWS as f64)
    };
    choose_inner(arms, decision_id, explore, share)
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

/// A greedy decision does not draw: the draw would decide nothing (each decision's draws are
/// seeded by its own id, so skipping them changes no other decision).
fn choose_inner(
    arms: &[Arm<'_>],
    decision_id: &str,
    explore: f64,
    thompson: impl FnOnce(usize) -> f64,
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
    let logged = |arm: usize, p: f64| {
        // A drawn arm's probability is positive; an integral below the error bound is not 0.
        let p = if p.is_finite() {
            p.clamp(MIN_PROBABILITY, 1.0)
        } else {
            MIN_PROBABILITY
        };
        (explore * p + (1.0 - explore) * f64::from(u8::from(arm == greedy))).min(1.0)
    };
    if !explored {
        return Some(Choice {
            arm: greedy,
            explored,
            probability: logged(greedy, thompson(greedy)),
            propensities: means,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(hash64(&[decision_id, "thompson"]));
    let mut thetas = Vec::with_capacity(arms.len());
    draw(arms, &means, &mut rng, &mut thetas);
    let arm = best(arms, &thetas);
    Some(Choice {
        arm,
        explored,
        probability: logged(arm, thompson(arm)),
        propensities: thetas,
    })
}

/// The least Thompson probability logged: above [`crate::argmax`]'s truncation bound, so a
/// drawn arm never logs 0 (which off-policy evaluation refuses).
pub const MIN_PROBABILITY: f64 = 1e-9;

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
/// a uniform per draw, 2-3× faster than `rand_distr::Beta`, which matters at the simulator's
/// 1,000 draws per shares estimate.
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
