//! A synthetic world with planted truth, to measure learning where the right answer is known.
//!
//! # The world
//!
//! `customers` customers, each with a spend over the last year (log-normal, median 300, so
//! tiers bronze / silver from 250 / gold from 1,000), a churn probability (Beta(1.2, 1.8)), a
//! p_alive (1 − 0.7 × churn, jittered), an affinity per category (outerwear, denim, shoes,
//! beauty; each 0.5 × U² ) and days since the last purchase (5 + 120 × churn × U(0.5, 1.5)).
//! These are the model's scores; they do not change during a run.
//!
//! Seven actions ([`CATALOG`]): four category offers (kind `custom`, propensity = the
//! category's affinity), a win-back (churn × p_alive), a tier experience (0.3 × p_alive, silver
//! and gold only) and a points newsletter (0.1 × p_alive). Every response window is 7 days.
//!
//! # The truth
//!
//! Each action × segment (tier × churn band) cell has a true response rate: the mean static
//! propensity of the cell's eligible customers times exp(0.8 z), z standard normal drawn from
//! the seed, clamped to [0.005, 0.5]. So the static propensities are right on average across
//! cells and wrong, by a factor of about 2 either way, in each one: what a model trained on
//! other outcomes looks like. A contacted customer responds with the cell's rate; the response
//! event (the action's response kind, in its category) comes uniformly within the window.
//!
//! # A run
//!
//! Every customer gets a decision every 7 days (on a day and hour set by their id's hash), for
//! `days` days. A policy chooses one action among the eligible ones through the real ranking
//! (`lattice_decide::rank_with`); responses come back as events through the real attribution
//! ([`Attributor`]), and posteriors learn when a decision closes. Responses use common random
//! numbers (a hash of decision id and action), so policies are compared on the same luck.
//! Reward = value if the customer responded, minus cost; regret = the oracle's expected reward
//! (the true best eligible action) minus the chosen action's, summed over decisions.
//!
//! # The rooms
//!
//! [`world`] (programme, customers, truth), [`run`] (a policy's run), [`report`] (what is
//! reported) and [`offpolicy`] (off-policy estimates); everything public is re-exported here.

use serde::Serialize;

use crate::posterior::Posteriors;
use crate::segment::Segment;

mod offpolicy;
mod report;
mod run;
mod world;

use offpolicy::{evaluate, greedy_choice};
pub use report::*;
pub use run::*;
pub use world::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub customers: usize,
    pub days: u32,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            customers: 10_000,
            days: 60,
            seed: 7,
        }
    }
}

/// The three policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Today's ranking: the kinds' propensities, no learning.
    Static,
    /// The posterior mean, learned from outcomes, never exploring.
    Greedy,
    /// Thompson sampling on every decision.
    Thompson,
    /// Greedy on Thompson's final posteriors, frozen: a fixed second policy, evaluated
    /// off-policy from Thompson's logs and then run to measure it.
    FrozenGreedy,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Static, Policy::Greedy, Policy::Thompson];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Static => "static",
            Policy::Greedy => "greedy",
            Policy::Thompson => "thompson",
            Policy::FrozenGreedy => "frozen_greedy",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("--customers = {0} (expected at least 1)")]
    Customers(usize),
    #[error("--days = {0} (expected 1 to 3650)")]
    Days(u32),
    #[error("the simulated catalog does not compile: {0}")]
    Catalog(String),
}

/// Runs the static, greedy and Thompson policies in the world; then evaluates, from
/// Thompson's logs, the frozen greedy policy (and the static one, which Thompson's logs do not
/// support once it has learned) and runs the frozen greedy policy to measure it.
pub fn run(config: &Config) -> Result<Report, SimError> {
    let world = World::new(config)?;
    let mut policies: Vec<PolicyReport> = Policy::ALL
        .iter()
        .map(|&p| run_policy(&world, config, p, None))
        .collect();
    let empty = Posteriors::new(0, 0);
    let learned = policies
        .iter()
        .find(|r| r.policy == Policy::Thompson)
        .and_then(|r| r.posteriors.clone())
        .unwrap_or(empty);
    let frozen = run_policy(&world, config, Policy::FrozenGreedy, Some(&learned));
    let ope = evaluate(&world, &policies, &frozen, &learned, Policy::FrozenGreedy);
    let ope_static = evaluate(&world, &policies, &frozen, &learned, Policy::Static);
    let frozen_choices = policies
        .iter()
        .find(|r| r.policy == Policy::Thompson)
        .map(|t| {
            t.log
                .iter()
                .map(|d| greedy_choice(&world, &learned, d))
                .collect()
        })
        .unwrap_or_default();
    policies.push(frozen);
    Ok(Report {
        customers: config.customers,
        days: config.days,
        seed: config.seed,
        segments: world.segments.len(),
        actions: world.spec.actions.len(),
        policies,
        ope,
        ope_static,
        frozen_choices,
        action_ids: world.spec.actions.iter().map(|a| a.id.clone()).collect(),
        segment_names: (0..world.segments.len())
            .map(|s| world.segments.name(Segment(s)))
            .collect(),
    })
}
