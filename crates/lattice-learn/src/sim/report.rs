//! What a run reports: per policy, per cell, and the off-policy estimates.

use serde::Serialize;

use crate::ope::Evaluation;
use crate::posterior::Posteriors;
use crate::segment::Segment;

use super::Policy;
use super::offpolicy::evaluation_or_refusal;
use super::world::World;

/// One logged decision of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedDecision {
    pub decision_id: String,
    pub day: u32,
    pub segment: Segment,
    pub action: usize,
    /// The probability with which the policy chose `action`.
    pub probability: f64,
    pub reward: f64,
    /// The chosen action's true expected reward, and the oracle's.
    pub expected: f64,
    pub oracle: f64,
    /// The eligible actions and their static propensities.
    pub eligible: Vec<(usize, f64)>,
    /// What the static policy chooses here (for off-policy evaluation of it).
    pub static_choice: usize,
}

/// A learned cell beside its truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellReport {
    pub action: String,
    pub segment: String,
    pub contacts: u64,
    pub responses: u64,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub truth: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy: Policy,
    pub decisions: usize,
    pub responses: usize,
    pub reward: f64,
    pub reward_per_decision: f64,
    /// 95% normal interval of the mean reward per decision.
    pub reward_per_decision_low: f64,
    pub reward_per_decision_high: f64,
    /// Mean true expected reward per decision (the value without the luck of the draw).
    pub expected_per_decision: f64,
    pub regret: f64,
    /// Cumulative regret at the end of each day.
    pub regret_by_day: Vec<f64>,
    /// Share of the last cadence's decisions that took the true best action.
    pub best_action_share_last_week: f64,
    /// Cells with at least [`COVERAGE_MIN_CONTACTS`] contacts, and the share whose 95%
    /// posterior interval holds the true rate (learning policies only).
    pub cells_covered: usize,
    pub cells_checked: usize,
    pub cells: Vec<CellReport>,
    /// Decisions where the ranking's top action differed from the chooser's (should be 0).
    pub disagreements: usize,
    #[serde(skip)]
    pub log: Vec<LoggedDecision>,
    #[serde(skip)]
    pub posteriors: Option<Posteriors>,
}

/// Contacts a cell needs before its interval is checked against the truth (the bar).
pub const COVERAGE_MIN_CONTACTS: u64 = 200;

/// Off-policy estimate of a policy from Thompson's logs, beside its measured value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpeReport {
    pub target: Policy,
    pub logged_by: Policy,
    /// The estimates, or why they were refused.
    #[serde(serialize_with = "evaluation_or_refusal")]
    pub evaluation: Result<Evaluation, String>,
    /// The target's mean reward per decision when it actually ran, and its 95% interval.
    pub measured: f64,
    pub measured_low: f64,
    pub measured_high: f64,
    /// The target's true expected value per decision.
    pub truth: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub customers: usize,
    pub days: u32,
    pub seed: u64,
    pub segments: usize,
    pub actions: usize,
    pub policies: Vec<PolicyReport>,
    /// The frozen greedy policy, estimated from Thompson's logs.
    pub ope: OpeReport,
    /// The static policy, estimated from Thompson's logs (expected: refused, no support).
    pub ope_static: OpeReport,
    /// Frozen greedy's action for each of Thompson's logged decisions (catalog indices):
    /// the target policy of `ope`, for writing it out (`lattice simulate --logs-out`).
    #[serde(skip)]
    pub frozen_choices: Vec<usize>,
    /// Action ids, catalog order.
    #[serde(skip)]
    pub action_ids: Vec<String>,
    /// Segment names, by index.
    #[serde(skip)]
    pub segment_names: Vec<String>,
}

impl Report {
    pub fn policy(&self, p: Policy) -> Option<&PolicyReport> {
        self.policies.iter().find(|r| r.policy == p)
    }
}

/// Every cell that saw a contact, with its 95% interval beside the truth.
pub(super) fn cell_reports(
    world: &World,
    posteriors: &Posteriors,
) -> (Vec<CellReport>, usize, usize) {
    let mut cells = Vec::new();
    let (mut checked, mut covered) = (0, 0);
    for (a, spec) in world.spec.actions.iter().enumerate() {
        for s in 0..world.segments.len() {
            let seg = Segment(s);
            let Some(cell) = posteriors.cell(a, seg) else {
                continue;
            };
            if cell.contacts == 0 {
                continue;
            }
            let post = cell.posterior(0.5);
            let (low, high) = post.interval(0.95);
            let truth = world.truth(a, seg);
            if cell.contacts >= COVERAGE_MIN_CONTACTS {
                checked += 1;
                covered += usize::from(low <= truth && truth <= high);
            }
            cells.push(CellReport {
                action: spec.id.clone(),
                segment: world.segments.name(seg),
                contacts: cell.contacts,
                responses: cell.responses,
                mean: post.mean(),
                low,
                high,
                truth,
            });
        }
    }
    (cells, checked, covered)
}
