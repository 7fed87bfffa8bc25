//! One policy run through the real ranking and attribution, day by day.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use lattice_catalog::actions::ResponseEvent;
use lattice_decide::{Context, Learned, RankOptions, rank, rank_with};

use crate::attribution::{Attributor, Contacted, Event, EventKind};
use crate::hash::{hash64, unit};
use crate::posterior::Posteriors;
use crate::segment::Segment;
use crate::thompson::{self, Arm};

use super::report::{LoggedDecision, PolicyReport, cell_reports};
use super::world::{CADENCE_DAYS, CATEGORIES, World};
use super::{Config, Policy};

/// A response event waiting to happen.
pub(super) struct Pending {
    pub(super) at: DateTime<Utc>,
    pub(super) customer: usize,
    pub(super) kind: EventKind,
    pub(super) category: Option<usize>,
}

/// One policy over the whole horizon. `frozen`: the posteriors of [`Policy::FrozenGreedy`],
/// which does not learn.
pub fn run_policy(
    world: &World,
    config: &Config,
    policy: Policy,
    frozen: Option<&Posteriors>,
) -> PolicyReport {
    let n_actions = world.spec.actions.len();
    let mut posteriors = match (policy, frozen) {
        (Policy::FrozenGreedy, Some(p)) => p.clone(),
        _ => Posteriors::new(n_actions, world.segments.len()),
    };
    let learns = matches!(policy, Policy::Greedy | Policy::Thompson);
    // Responses wait for their window to close before they count, like non-responses:
    // counting them at once would inflate the rates of recently contacted cells.
    let mut awaiting: Vec<crate::attribution::Outcome> = Vec::new();
    // Thompson win shares per (segment, eligible actions) for the day: the posteriors only
    // change between days, so decisions sharing a key share the exact probability.
    let mut shares_cache: std::collections::HashMap<(Segment, Vec<usize>), Vec<f64>> =
        Default::default();
    let mut attributor = Attributor::new();
    // Keyed by (time, sequence) so events come out in time order.
    let mut pending: BTreeMap<(DateTime<Utc>, u64), Pending> = BTreeMap::new();
    let mut seq = 0u64;
    // Static propensity of each open decision, to centre the cell's prior when it closes.
    let mut open_static: std::collections::HashMap<String, (Segment, f64)> = Default::default();
    let responses = world
        .spec
        .actions
        .iter()
        .map(|a| a.response_rule())
        .collect::<Vec<_>>();
    let category_of: Vec<Option<usize>> = world
        .spec
        .actions
        .iter()
        .map(|a| {
            a.category
                .as_deref()
                .and_then(|c| CATEGORIES.iter().position(|x| *x == c))
        })
        .collect();
    let action_ids: Vec<&str> = world.spec.actions.iter().map(|a| a.id.as_str()).collect();
    let explore = match policy {
        Policy::Thompson => 1.0,
        _ => 0.0,
    };

    let mut log = Vec::new();
    let mut regret = 0.0;
    let mut regret_by_day = Vec::with_capacity(config.days as usize);
    let mut disagreements = 0;
    let mut responses_seen = 0;
    let options = RankOptions {
        limit: 1,
        channel: None,
        explain: false,
    };
    let mut props: Vec<Option<f64>> = vec![None; n_actions];

    for day in 0..config.days {
        let day_start = world.start + TimeDelta::days(i64::from(day));
        // Outcomes up to the start of the day: responses as their events arrive, then the
        // windows that closed without one.
        let due: Vec<(DateTime<Utc>, u64)> =
            pending.range(..(day_start, 0)).map(|(k, _)| *k).collect();
        let mut closed = Vec::new();
        shares_cache.clear();
        for k in due {
            if let Some(p) = pending.remove(&k) {
                let c = &world.customers[p.customer];
                let event = Event {
                    customer_id: &c.id,
                    at: p.at,
                    kind: p.kind,
                    category: p.category.map(|i| CATEGORIES[i]),
                };
                awaiting.extend(attributor.observe(&event));
            }
        }
        closed.extend(attributor.close_until(day_start));
        let (due, later): (Vec<_>, Vec<_>) = awaiting
            .drain(..)
            .partition(|o| o.decision.closes_at() <= day_start);
        awaiting = later;
        closed.extend(due);
        for o in closed {
            if let Some((segment, p)) = open_static.remove(&o.decision.decision_id) {
                responses_seen += usize::from(o.responded());
                if learns {
                    posteriors.record(o.decision.action, segment, p, o.responded());
                }
            }
        }

        for (ci, c) in world.customers.iter().enumerate() {
            if day % CADENCE_DAYS != c.day {
                continue;
            }
            let now = day_start + TimeDelta::hours(i64::from(c.hour));
            let customer = c.customer(now, &[]);
            let context = Context::at(now);
            let eligible: Vec<(usize, f64)> = (0..n_actions)
                .filter_map(|a| {
                    world
                        .catalog
                        .assess(a, &customer, &context, None)
                        .ok()
                        .map(|p| (a, p))
                })
                .collect();
            if eligible.is_empty() {
                continue;
            }
            let decision_id = format!("sim-{day}-{}", c.id);
            let static_top = rank(&world.catalog, &customer, &context, &options)
                .actions
                .first()
                .and_then(|a| world.catalog.action(&a.id))
                .map(|a| a.index);
            let Some(static_choice) = static_top else {
                continue;
            };
            let (chosen, probability) = match policy {
                Policy::Static => (static_choice, 1.0),
                Policy::Greedy | Policy::Thompson | Policy::FrozenGreedy => {
                    let arms: Vec<Arm<'_>> = eligible
                        .iter()
                        .map(|&(a, p)| {
                            let spec = &world.spec.actions[a];
                            Arm {
                                id: action_ids[a],
                                posterior: posteriors.posterior(a, c.segment, p),
                                value: spec.value,
                                weight: spec.weight,
                                cost: spec.cost,
                            }
                        })
                        .collect();
                    // Once every eligible cell has contacts its posterior no longer depends on
                    // the customer, so one estimate of the win shares serves the whole key.
                    let settled = eligible.iter().all(|&(a, _)| {
                        posteriors
                            .cell(a, c.segment)
                            .is_some_and(|x| x.contacts > 0)
                    });
                    let choice = if explore > 0.0 && settled {
                        let key = (c.segment, eligible.iter().map(|e| e.0).collect::<Vec<_>>());
                        let shares = shares_cache.entry(key).or_insert_with(|| {
                            thompson::thompson_shares(&arms, &format!("sim-{day}-{}", c.segment.0))
                        });
                        thompson::choose_with_shares(&arms, &decision_id, explore, shares)
                    } else {
                        thompson::choose(&arms, &decision_id, explore)
                    };
                    let Some(choice) = choice else {
                        continue;
                    };
                    props.iter_mut().for_each(|p| *p = None);
                    for (&(a, _), &theta) in eligible.iter().zip(&choice.propensities) {
                        props[a] = Some(theta);
                    }
                    let learned = Learned {
                        propensities: &props,
                        control: &[],
                        observed: &[],
                    };
                    let ranked = rank_with(&world.catalog, &customer, &context, &options, &learned);
                    let top = ranked
                        .actions
                        .first()
                        .and_then(|a| world.catalog.action(&a.id))
                        .map(|a| a.index);
                    let intended = eligible[choice.arm].0;
                    if top != Some(intended) {
                        disagreements += 1;
                    }
                    (top.unwrap_or(intended), choice.probability)
                }
            };
            let spec = &world.spec.actions[chosen];
            let rate = world.truth(chosen, c.segment);
            let u = unit(hash64(&[&decision_id, &spec.id, "respond"]) ^ config.seed);
            let responded = u < rate;
            let response = responses[chosen];
            if responded {
                let delay =
                    unit(hash64(&[&decision_id, "delay"])) * f64::from(response.window_days);
                let at = now + TimeDelta::seconds(((delay * 86_400.0) as i64).max(1));
                let kind = match response.event {
                    ResponseEvent::Purchase | ResponseEvent::PurchaseInCategory => {
                        EventKind::Purchase
                    }
                    ResponseEvent::Redemption => EventKind::Redemption,
                    ResponseEvent::Click => EventKind::Click,
                    ResponseEvent::AppOpen => EventKind::AppOpen,
                };
                pending.insert(
                    (at, seq),
                    Pending {
                        at,
                        customer: ci,
                        kind,
                        category: category_of[chosen],
                    },
                );
                seq += 1;
            }
            let static_p = eligible
                .iter()
                .find(|(a, _)| *a == chosen)
                .map_or(0.0, |e| e.1);
            open_static.insert(decision_id.clone(), (c.segment, static_p));
            attributor.open(Contacted {
                decision_id: decision_id.clone(),
                customer_id: c.id.clone(),
                action: chosen,
                at: now,
                response,
                category: spec.category.clone(),
            });
            let expected = world.expected(chosen, c.segment);
            let oracle = eligible
                .iter()
                .map(|&(a, _)| world.expected(a, c.segment))
                .fold(f64::NEG_INFINITY, f64::max);
            regret += oracle - expected;
            log.push(LoggedDecision {
                decision_id: decision_id.clone(),
                day,
                segment: c.segment,
                action: chosen,
                probability,
                reward: if responded { spec.value } else { 0.0 } - spec.cost,
                expected,
                oracle,
                eligible,
                static_choice,
            });
        }
        regret_by_day.push(regret);
    }

    let n = log.len().max(1) as f64;
    let reward: f64 = log.iter().map(|d| d.reward).sum();
    let mean = reward / n;
    let var = log.iter().map(|d| (d.reward - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let half = 1.96 * (var / n).sqrt();
    let last_week = config.days.saturating_sub(CADENCE_DAYS);
    let recent: Vec<&LoggedDecision> = log.iter().filter(|d| d.day >= last_week).collect();
    let best = recent
        .iter()
        .filter(|d| d.expected >= d.oracle - 1e-12)
        .count();
    let (cells, cells_checked, cells_covered) = if policy == Policy::Static {
        (Vec::new(), 0, 0)
    } else {
        cell_reports(world, &posteriors)
    };
    PolicyReport {
        policy,
        decisions: log.len(),
        responses: responses_seen,
        reward,
        reward_per_decision: mean,
        reward_per_decision_low: mean - half,
        reward_per_decision_high: mean + half,
        expected_per_decision: log.iter().map(|d| d.expected).sum::<f64>() / n,
        regret,
        regret_by_day,
        best_action_share_last_week: best as f64 / recent.len().max(1) as f64,
        cells_covered,
        cells_checked,
        cells,
        disagreements,
        log,
        posteriors: Some(posteriors),
    }
}
