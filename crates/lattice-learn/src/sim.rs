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

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lattice_catalog::actions::{ActionCatalog, ResponseEvent};
use lattice_catalog::settings::Settings;
use lattice_decide::{
    Catalog, Context, Customer, Learned, PerChannel, RankOptions, Scores, rank, rank_with,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, StandardNormal};
use serde::Serialize;

use crate::attribution::{Attributor, Contacted, Event, EventKind};
use crate::hash::{hash64, unit};
use crate::ope::{self, Evaluation, OpeError, Sample, TargetArm};
use crate::posterior::Posteriors;
use crate::segment::{Segment, Segments};
use crate::thompson::{self, Arm};

/// The simulated programme's actions.
pub const CATALOG: &str = r#"
[[action]]
id = "offer_outerwear"
name = "New season outerwear"
kind = "custom"
channels = ["email"]
category = "outerwear"
value = 40.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_denim"
name = "Denim edit"
kind = "custom"
channels = ["email"]
category = "denim"
value = 30.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_shoes"
name = "Shoes you will like"
kind = "custom"
channels = ["email"]
category = "shoes"
value = 35.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_beauty"
name = "Beauty picks"
kind = "custom"
channels = ["email"]
category = "beauty"
value = 20.0
cost = 0.1
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "win_back"
name = "We saved you something"
kind = "win_back"
channels = ["email"]
value = 60.0
cost = 0.5
response = { event = "purchase", window_days = 7 }

[[action]]
id = "tier_experience"
name = "A members' evening"
kind = "tier_experience"
channels = ["email"]
value = 25.0
cost = 0.2
response = { event = "app_open", window_days = 7 }

[[action]]
id = "points_newsletter"
name = "Your points this month"
kind = "custom"
channels = ["email"]
value = 12.0
cost = 0.05
response = { event = "click", window_days = 7 }
"#;

pub const CATEGORIES: [&str; 4] = ["outerwear", "denim", "shoes", "beauty"];
const TIERS: &str = "[[tier]]\nname = \"bronze\"\nmin_spend = 0\n[[tier]]\nname = \"silver\"\nmin_spend = 250\n[[tier]]\nname = \"gold\"\nmin_spend = 1000\n";
/// Days between a customer's decisions: at least every response window, so a customer's
/// windows never overlap and attribution is exact.
const CADENCE_DAYS: u32 = 7;
/// Spread of the true rates around the static propensities (log scale).
const TRUTH_SPREAD: f64 = 0.8;

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

struct SimCustomer {
    id: String,
    spend: f64,
    churn: f64,
    p_alive: f64,
    affinity: [f64; 4],
    recency_days: f64,
    segment: Segment,
    /// Day of the cadence (0..7) and hour of the decision.
    day: u32,
    hour: u32,
}

/// The world: programme, customers, the true rate of every action × segment cell.
pub struct World {
    pub catalog: Catalog,
    pub spec: ActionCatalog,
    pub segments: Segments,
    customers: Vec<SimCustomer>,
    /// `truth[action × segments + segment]`; NaN where no customer of the cell is eligible.
    pub truth: Vec<f64>,
    pub start: DateTime<Utc>,
}

impl World {
    pub fn new(config: &Config) -> Result<World, SimError> {
        if config.customers == 0 {
            return Err(SimError::Customers(config.customers));
        }
        if !(1..=3650).contains(&config.days) {
            return Err(SimError::Days(config.days));
        }
        let spec = ActionCatalog::parse(CATALOG).map_err(SimError::Catalog)?;
        let settings = Settings::parse(TIERS).map_err(SimError::Catalog)?;
        let categories: Vec<String> = CATEGORIES.iter().map(|c| c.to_string()).collect();
        let catalog = Catalog::compile(&spec, &settings, &[], &categories)
            .map_err(|e| SimError::Catalog(e.to_string()))?;
        let segments = Segments::new(settings.tiers.iter().map(|t| t.name.clone()));
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let spend_dist =
            LogNormal::new(300f64.ln(), 1.0).map_err(|e| SimError::Catalog(e.to_string()))?;
        let churn_dist =
            rand_distr::Beta::new(1.2, 1.8).map_err(|e| SimError::Catalog(e.to_string()))?;
        let customers: Vec<SimCustomer> = (0..config.customers)
            .map(|i| {
                let id = format!("s{i:06}");
                let spend: f64 = spend_dist.sample(&mut rng);
                let churn: f64 = churn_dist.sample(&mut rng);
                let p_alive = (1.0 - 0.7 * churn + rng.gen_range(-0.05..0.05)).clamp(0.01, 1.0);
                let affinity = std::array::from_fn(|_| 0.5 * rng.gen_range(0.0f64..1.0).powi(2));
                let recency_days = 5.0 + 120.0 * churn * rng.gen_range(0.5..1.5);
                let tier = settings.tier_for(spend).0.map(|t| t.name.as_str());
                let h = hash64(&[&id, "schedule"]);
                SimCustomer {
                    segment: segments.of(tier, churn),
                    day: (h % u64::from(CADENCE_DAYS)) as u32,
                    hour: ((h >> 8) % 24) as u32,
                    id,
                    spend,
                    churn,
                    p_alive,
                    affinity,
                    recency_days,
                }
            })
            .collect();
        let start = Utc
            .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
            .single()
            .ok_or_else(|| SimError::Catalog("start date".into()))?;
        let mut world = World {
            catalog,
            spec,
            segments,
            customers,
            truth: Vec::new(),
            start,
        };
        // Plant the truth around each cell's mean static propensity.
        let n_actions = world.spec.actions.len();
        let n_seg = world.segments.len();
        let mut sum = vec![0.0; n_actions * n_seg];
        let mut count = vec![0u32; n_actions * n_seg];
        for c in &world.customers {
            let customer = c.customer(start, &[]);
            let context = Context::at(start);
            for a in 0..n_actions {
                if let Ok(p) = world.catalog.assess(a, &customer, &context, None) {
                    sum[a * n_seg + c.segment.0] += p;
                    count[a * n_seg + c.segment.0] += 1;
                }
            }
        }
        world.truth = (0..n_actions * n_seg)
            .map(|k| {
                let z: f64 = StandardNormal.sample(&mut rng);
                if count[k] == 0 {
                    f64::NAN
                } else {
                    let mean = sum[k] / f64::from(count[k]);
                    (mean * (TRUTH_SPREAD * z).exp()).clamp(0.005, 0.5)
                }
            })
            .collect();
        Ok(world)
    }

    fn truth(&self, action: usize, segment: Segment) -> f64 {
        self.truth[action * self.segments.len() + segment.0]
    }

    fn expected(&self, action: usize, segment: Segment) -> f64 {
        let a = &self.spec.actions[action];
        self.truth(action, segment) * a.value * a.weight - a.cost
    }
}

impl SimCustomer {
    fn customer<'a>(
        &'a self,
        now: DateTime<Utc>,
        contacts: &'a [lattice_decide::Contact<'a>],
    ) -> Customer<'a> {
        Customer {
            id: &self.id,
            values: &[],
            scores: Scores {
                churn_probability: self.churn,
                p_alive: self.p_alive,
                expected_purchases: 1.0,
                clv: self.spend,
                affinity: &self.affinity,
            },
            spend_365d: self.spend,
            consent: PerChannel {
                email: true,
                sms: false,
                push: false,
            },
            last_purchase_at: Some(now - TimeDelta::seconds((self.recency_days * 86_400.0) as i64)),
            contacts,
            ..Customer::default()
        }
    }
}

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

/// Contacts a cell needs before its interval is checked against the truth (the issue's bar).
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

/// A response event waiting to happen.
struct Pending {
    at: DateTime<Utc>,
    customer: usize,
    kind: EventKind,
    category: Option<usize>,
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

/// Every cell that saw a contact, with its 95% interval beside the truth.
fn cell_reports(world: &World, posteriors: &Posteriors) -> (Vec<CellReport>, usize, usize) {
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

/// DR, IPS and SNIPS estimates of `target` (static, or greedy on the frozen posteriors) from
/// Thompson's logs, with Thompson's final posteriors as the reward model, beside the target's
/// value measured by running it.
fn evaluate(
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
fn greedy_choice(world: &World, posteriors: &Posteriors, d: &LoggedDecision) -> usize {
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
fn evaluation_or_refusal<S: serde::Serializer>(
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
