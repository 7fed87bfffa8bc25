//! Off-policy estimates of a frozen policy from a run's logged decisions.

use crate::ope::{self, Evaluation, OpeError, Sample, TargetArm};
use crate::posterior::Posteriors;
use crate::segment::Segment;
use crate::thompson::{self, Arm};

use super::Policy;
use super::report::{LoggedDecision, OpeReport, PolicyReport};
use super::world::World;

/// DR, IPS and SNIPS estimates of `target` (static, or greedy on the frozen posteriors) from
/// Thompson's logs, with Thompson's final posteriors as the reward model, beside the target's
/// value measured by running it.
pub(super) fn evaluate(
    world: &World,
    policies: &[PolicyReport],
    frozen_run: &PolicyReport,
    frozen: &Posteriors,
    target: Policy,
) -> OpeReport {
    let logged = policies.iter().find(|r| r.policy == Policy::Thompson);
    let ran = if target == Policy::FrozenGreedy {
        Some(frozen_run)
    } else {
        policies.iter().find(|r| r.policy == target)
    };
    let (Some(logged), Some(ran)) = (logged, ran) else {
        return OpeReport {
            target,
            logged_by: Policy::Thompson,
            evaluation: Err("a policy did not run".into()),
            measured: f64::NAN,
            measured_low: f64::NAN,
            measured_high: f64::NAN,
            truth: f64::NAN,
        };
    };
    let q = |a: usize, seg: Segment, p: f64| {
        let spec = &world.spec.actions[a];
        frozen.mean(a, seg, p) * spec.value * spec.weight - spec.cost
    };
    let samples: Vec<Sample> = logged
        .log
        .iter()
        .map(|d| {
            let choice = match target {
                Policy::Static => d.static_choice,
                _ => greedy_choice(world, frozen, d),
            };
            let p_of = |a: usize| d.eligible.iter().find(|e| e.0 == a).map_or(0.0, |e| e.1);
            Sample {
                logged_action: d.action,
                logged_probability: d.probability,
                reward: d.reward,
                predicted_logged: q(d.action, d.segment, p_of(d.action)),
                target: vec![TargetArm {
                    action: choice,
                    probability: 1.0,
                    predicted: q(choice, d.segment, p_of(choice)),
                }],
            }
        })
        .collect();
    let evaluation =
        ope::evaluate(&samples, &ope::Options::default()).map_err(|e: OpeError| e.to_string());
    OpeReport {
        target,
        logged_by: Policy::Thompson,
        evaluation,
        measured: ran.reward_per_decision,
        measured_low: ran.reward_per_decision_low,
        measured_high: ran.reward_per_decision_high,
        truth: ran.expected_per_decision,
    }
}

/// The action greedy on `posteriors` takes for a logged decision's eligible actions: the rule
/// [`thompson::choose`] applies with `explore` 0.
pub(super) fn greedy_choice(world: &World, posteriors: &Posteriors, d: &LoggedDecision) -> usize {
    let arms: Vec<Arm<'_>> = d
        .eligible
        .iter()
        .map(|&(a, p)| {
            let spec = &world.spec.actions[a];
            Arm {
                id: &spec.id,
                posterior: posteriors.posterior(a, d.segment, p),
                value: spec.value,
                weight: spec.weight,
                cost: spec.cost,
            }
        })
        .collect();
    thompson::choose(&arms, "", 0.0)
        .and_then(|c| d.eligible.get(c.arm))
        .map_or(d.action, |e| e.0)
}

/// `{"estimate": {...}}` or `{"refused": "why"}`.
pub(super) fn evaluation_or_refusal<S: serde::Serializer>(
    e: &Result<Evaluation, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(1))?;
    match e {
        Ok(e) => m.serialize_entry("estimate", e)?,
        Err(why) => m.serialize_entry("refused", why)?,
    }
    m.end()
}
