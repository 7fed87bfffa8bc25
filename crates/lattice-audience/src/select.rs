//! Selecting an audience: one pass over the customers through the filters (counting who each
//! one removes), the holdout split, then a partial selection of the best (a bounded heap for
//! `top` and `budget`, so ranking a million customers for the top 10,000 touches each score
//! once and sorts only 10,000).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lattice_decide::{Catalog, Contact, Context, Customer, PerChannel, Scores};
use lattice_models::snapshot::ServingSnapshot;

use crate::holdout::is_control;
use crate::index::{AudienceIndex, EMAIL, NO_TIER, PUSH, SMS, ScoreColumn, prob};
use crate::request::{Plan, Size, Target};
use crate::summary::{FunnelStep, Lift, Summary, TargetSummary, expected_conversions};

/// Everything an audience is selected from: the model's columns, its snapshot (ids, records,
/// value rows) and its action catalog.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub index: &'a AudienceIndex,
    pub snapshot: &'a ServingSnapshot,
    pub catalog: &'a Catalog,
    /// Each customer's time zone (action rules read local dates); UTC where missing.
    pub zones: &'a [Tz],
    /// Consent withdrawn since the snapshot (unsubscribe events a server took), by snapshot
    /// position: email, sms, push. An audience never includes a customer on a withdrawn channel.
    pub withdrawn: Option<&'a HashMap<u32, [bool; 3]>>,
}

/// One customer of the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Position in the snapshot.
    pub index: u32,
    /// The model's probability (an action's propensity), what the ranking sorts by.
    pub score: f64,
    /// Recalibrated on the backtest: what expected conversions sum.
    pub probability: f64,
    pub expected_value: f64,
    /// In the control group.
    pub control: bool,
}

/// A selected audience: the plan, the rows in rank order, the summary.
#[derive(Debug, Clone)]
pub struct Audience {
    pub plan: Plan,
    /// The audience and its control group, in rank order (score descending, then snapshot
    /// order); [`Audience::rows`] is what an answer lists.
    pub picks: Vec<Pick>,
    pub summary: Summary,
}

impl Audience {
    /// The rows to list: the control group only when asked for, at most `preview`.
    pub fn rows(&self) -> impl Iterator<Item = (usize, &Pick)> {
        let include = self.plan.include_holdout;
        self.picks
            .iter()
            .enumerate()
            .filter(move |(_, p)| include || !p.control)
            .take(self.plan.preview.unwrap_or(usize::MAX))
            .map(|(k, p)| (k + 1, p))
    }
}

/// A candidate in the ranking: score and snapshot position. `Ord` puts the *worse* candidate
/// first (lower score, then later in the snapshot), so a max-heap's top is the one to evict.
#[derive(Debug, Clone, Copy)]
struct Key {
    score: f64,
    index: u32,
}

impl Key {
    /// Best first.
    fn rank_order(a: &Key, b: &Key) -> Ordering {
        b.score.total_cmp(&a.score).then(a.index.cmp(&b.index))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        Key::rank_order(self, other)
    }
}

/// The filters in funnel order; each removes customers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Tiers,
    Channel(u8),
    MinChurn(f64),
    MaxChurn(f64),
    MinClv(f64),
    PurchasedWithin(f64),
    PurchaseOlderThan(f64),
    NotContactedAfter(i64),
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Tiers => "tiers",
            Step::Channel(_) => "channel",
            Step::MinChurn(_) => "min_churn_probability",
            Step::MaxChurn(_) => "max_churn_probability",
            Step::MinClv(_) => "min_clv",
            Step::PurchasedWithin(_) => "last_purchase_within_days",
            Step::PurchaseOlderThan(_) => "last_purchase_older_than_days",
            Step::NotContactedAfter(_) => "exclude_contacted_within_days",
        }
    }
}

fn steps(plan: &Plan) -> Vec<Step> {
    let f = &plan.filters;
    let mut s = Vec::new();
    if f.tiers.is_some() {
        s.push(Step::Tiers);
    }
    if let Some(c) = f.channel {
        s.push(Step::Channel(match c {
            lattice_decide::Channel::Email => EMAIL,
            lattice_decide::Channel::Sms => SMS,
            lattice_decide::Channel::Push => PUSH,
        }));
    }
    s.extend(f.min_churn.map(Step::MinChurn));
    s.extend(f.max_churn.map(Step::MaxChurn));
    s.extend(f.min_clv.map(Step::MinClv));
    s.extend(f.purchased_within_days.map(Step::PurchasedWithin));
    s.extend(f.purchase_older_than_days.map(Step::PurchaseOlderThan));
    s.extend(f.contacted_after_us.map(Step::NotContactedAfter));
    s
}

impl<'a> Source<'a> {
    /// Customer `i` as decision rules see it, with `contacts` filled by
    /// [`Source::fill_contacts`]. Send-time profiles are left out: eligibility never reads them.
    pub fn customer<'x>(&'x self, i: usize, contacts: &'x [Contact<'x>]) -> Customer<'x> {
        let rec = &self.snapshot.customers[i];
        let s = self.snapshot.scores(i);
        let at = |us: Option<i64>| us.and_then(DateTime::<Utc>::from_timestamp_micros);
        Customer {
            id: &rec.id,
            values: self.snapshot.values(i),
            scores: Scores {
                churn_probability: s[0],
                p_alive: s[1],
                expected_purchases: s[2],
                clv: s[3],
                affinity: &s[4..],
            },
            tier: rec.tier.as_deref(),
            spend_365d: self
                .index
                .spend_365d
                .map_or(0.0, |j| self.snapshot.features(i)[j]),
            points_balance: rec.points_balance.unwrap_or(0.0),
            tz: self.zones.get(i).copied().unwrap_or(Tz::UTC),
            consent: {
                let [email, sms, push] = self.consent(i);
                PerChannel { email, sms, push }
            },
            birth_date: rec.birth_date,
            signup_date: at(rec.signup_us).map(|t| t.date_naive()),
            last_negative_at: at(rec.last_negative_us),
            last_purchase_at: at(rec.last_purchase_us),
            contacts,
            send_time: PerChannel::default(),
            send_time_source: None,
        }
    }

    /// Customer `i`'s consent (email, sms, push): the snapshot's, less what was withdrawn.
    pub fn consent(&self, i: usize) -> [bool; 3] {
        let c = self.snapshot.customers[i].consent;
        match self.withdrawn.and_then(|w| w.get(&(i as u32))) {
            Some(w) => [c[0] && !w[0], c[1] && !w[1], c[2] && !w[2]],
            None => c,
        }
    }

    /// Customer `i`'s consent bits in the index's layout, less what was withdrawn.
    fn consent_bits(&self, i: usize) -> u8 {
        let bits = self.index.consent[i];
        match self.withdrawn.and_then(|w| w.get(&(i as u32))) {
            Some(w) => {
                bits & !((u8::from(w[0]) * EMAIL)
                    | (u8::from(w[1]) * SMS)
                    | (u8::from(w[2]) * PUSH))
            }
            None => bits,
        }
    }

    /// Customer `i`'s recent contacts, for [`Source::customer`].
    pub fn fill_contacts(&self, i: usize, out: &mut Vec<Contact<'a>>) {
        out.clear();
        out.extend(self.snapshot.customers[i].contacts.iter().filter_map(|k| {
            Some(Contact {
                action_id: &k.action_id,
                channel: lattice_decide::Channel::parse(&k.channel)?,
                at: DateTime::from_timestamp_micros(k.at_us)?,
            })
        }));
    }

    /// The moment action rules are evaluated at: the model's as_of.
    pub fn context(&self) -> Context<'static> {
        Context::at(DateTime::from_timestamp_micros(self.index.as_of_us).unwrap_or_default())
    }

    fn column(&self, target: Target) -> Option<&'a ScoreColumn> {
        match target {
            Target::Category(c) => self.index.affinity.get(c),
            Target::Churn => Some(&self.index.churn),
            Target::Action {
                affinity_category, ..
            } => affinity_category.and_then(|c| self.index.affinity.get(c)),
        }
    }
}

/// Selects the audience `plan` describes from `src`.
pub fn select(src: &Source<'_>, plan: &Plan) -> Audience {
    let ix = src.index;
    let n = ix.len();
    let steps = steps(plan);
    // Removed by each filter, then by eligibility, the holdout and the size cut.
    let mut removed = vec![0usize; steps.len()];
    let (mut not_eligible, mut held_out) = (0usize, 0usize);
    let column = src.column(plan.target);
    let action = match plan.target {
        Target::Action { index, .. } => Some(index),
        _ => None,
    };
    let channel = plan.filters.channel;
    let context = src.context();
    let mut contacts: Vec<Contact<'_>> = Vec::new();
    // Action propensities, by snapshot position (only for action targets).
    let mut propensity: Vec<(u32, f64)> = Vec::new();

    let k = match plan.size {
        Size::Top(k) => Some(k),
        Size::Budget { n, .. } => Some(n),
        Size::MinProbability(_) => None,
    };
    let mut heap: BinaryHeap<Key> = BinaryHeap::with_capacity(k.unwrap_or(0).min(n) + 1);
    let mut above: Vec<Key> = Vec::new();
    let mut control: Vec<Key> = Vec::new();
    let (mut pool, mut pool_sum) = (0usize, 0.0);

    'customers: for i in 0..n {
        for (s, step) in steps.iter().enumerate() {
            let keep =
                match *step {
                    Step::Tiers => {
                        let t = ix.tier[i];
                        t != NO_TIER
                            && plan.filters.tiers.as_ref().is_some_and(|keep| {
                                keep.get(usize::from(t)).copied().unwrap_or(false)
                            })
                    }
                    Step::Channel(bit) => src.consent_bits(i) & bit != 0,
                    Step::MinChurn(v) => ix.churn.raw[i] >= v,
                    Step::MaxChurn(v) => ix.churn.raw[i] <= v,
                    Step::MinClv(v) => ix.clv[i] >= v,
                    // NaN (no purchase) fails both comparisons.
                    Step::PurchasedWithin(d) => ix.days_since_purchase[i] <= d,
                    Step::PurchaseOlderThan(d) => ix.days_since_purchase[i] > d,
                    Step::NotContactedAfter(t) => ix.last_contact_us[i] <= t,
                };
            if !keep {
                removed[s] += 1;
                continue 'customers;
            }
        }
        let (score, calibrated) = match action {
            None => {
                let col = column.expect("category and churn targets have a column");
                (sanitize(col.raw[i]), col.calibrated[i])
            }
            Some(a) => {
                src.fill_contacts(i, &mut contacts);
                let customer = src.customer(i, &contacts);
                match src.catalog.assess(a, &customer, &context, channel) {
                    Ok(p) => {
                        let cal = column.map_or(prob(p), |c| c.calibrate(p));
                        propensity.push((i as u32, cal));
                        (sanitize(p), cal)
                    }
                    Err(_) => {
                        not_eligible += 1;
                        continue;
                    }
                }
            }
        };
        pool += 1;
        pool_sum += calibrated;
        let key = Key {
            score,
            index: i as u32,
        };
        if is_control(ix.id_hash[i], plan.audience_hash, plan.holdout_share) {
            held_out += 1;
            control.push(key);
            continue;
        }
        match (k, plan.size) {
            (Some(k), _) => {
                if heap.len() < k {
                    heap.push(key);
                } else if let Some(mut worst) = heap.peek_mut()
                    && key < *worst
                {
                    *worst = key;
                }
            }
            (None, Size::MinProbability(t)) => {
                if calibrated >= t {
                    above.push(key);
                }
            }
            (None, _) => unreachable!("sizes without a count are thresholds"),
        }
    }

    let qualifying = pool - held_out;
    let mut treated: Vec<Key> = if k.is_some() { heap.into_vec() } else { above };
    treated.sort_unstable_by(Key::rank_order);
    // The control group: held-out customers who would have made the same cut.
    let control: Vec<Key> = match plan.size {
        Size::MinProbability(t) => control
            .into_iter()
            .filter(|c| probability_of(plan, column, &propensity, c.index) >= t)
            .collect(),
        _ => match (k, treated.last()) {
            (Some(0), _) => Vec::new(),
            (Some(k), Some(last)) if treated.len() == k => {
                control.into_iter().filter(|c| c < last).collect()
            }
            _ => control,
        },
    };

    let value = |i: u32, p: f64| -> f64 {
        let i = i as usize;
        match plan.target {
            Target::Category(_) => p * ix.order_value[i],
            Target::Churn => p * ix.clv[i],
            Target::Action { index, .. } => {
                p * src.catalog.actions().nth(index).map_or(0.0, |a| a.value)
            }
        }
    };
    let pick = |key: &Key, control: bool| {
        let probability = probability_of(plan, column, &propensity, key.index);
        Pick {
            index: key.index,
            score: key.score,
            probability,
            expected_value: value(key.index, probability),
            control,
        }
    };
    let mut picks: Vec<Pick> = treated
        .iter()
        .map(|key| pick(key, false))
        .chain(control.iter().map(|key| pick(key, true)))
        .collect();
    picks.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));

    // The funnel.
    let mut funnel = vec![FunnelStep {
        step: "customers".into(),
        detail: format!("in model {} as of {}", ix.model, ix.as_of),
        before: n,
        after: n,
    }];
    let mut left = n;
    for (step, r) in steps.iter().zip(&removed) {
        funnel.push(FunnelStep {
            step: step.name().into(),
            detail: describe(step, plan, ix),
            before: left,
            after: left - r,
        });
        left -= r;
    }
    if let Some(a) = action.and_then(|a| src.catalog.actions().nth(a)) {
        funnel.push(FunnelStep {
            step: "eligible".into(),
            detail: format!(
                "every rule of action {} (consent, caps, cooldown, suppression, {} rule{})",
                a.id,
                a.kind,
                if plan.filters.channel.is_some() {
                    ", on the chosen channel"
                } else {
                    ""
                }
            ),
            before: left,
            after: left - not_eligible,
        });
        left -= not_eligible;
    }
    if plan.holdout_share > 0.0 {
        funnel.push(FunnelStep {
            step: "holdout".into(),
            detail: format!(
                "{}% held out as a control group (audience id {})",
                plan.holdout_share * 100.0,
                plan.audience_id
            ),
            before: left,
            after: qualifying,
        });
    }
    funnel.push(FunnelStep {
        step: "size".into(),
        detail: match plan.size {
            Size::Top(k) => format!("the best {k}"),
            Size::MinProbability(t) => format!("probability at least {t}"),
            Size::Budget { n, budget, cost } => {
                format!("budget {budget} at {cost} per contact: the best {n}")
            }
        },
        before: qualifying,
        after: treated.len(),
    });

    let summary = summarise(src, plan, column, &picks, funnel, pool, pool_sum);
    Audience {
        plan: plan.clone(),
        picks,
        summary,
    }
}

fn sanitize(score: f64) -> f64 {
    if score.is_nan() { 0.0 } else { score }
}

/// The recalibrated probability of a selected customer.
fn probability_of(
    plan: &Plan,
    column: Option<&ScoreColumn>,
    propensity: &[(u32, f64)],
    i: u32,
) -> f64 {
    match plan.target {
        Target::Action { .. } => propensity
            .binary_search_by_key(&i, |p| p.0)
            .map_or(0.0, |k| propensity[k].1),
        _ => column.map_or(0.0, |c| c.calibrated[i as usize]),
    }
    .clamp(0.0, 1.0)
}

fn describe(step: &Step, plan: &Plan, ix: &AudienceIndex) -> String {
    match *step {
        Step::Tiers => {
            let names: Vec<&str> = plan
                .filters
                .tiers
                .iter()
                .flat_map(|keep| keep.iter().enumerate())
                .filter(|(_, k)| **k)
                .map(|(t, _)| ix.tier_names[t].as_str())
                .collect();
            format!("tier in {}", names.join(", "))
        }
        Step::Channel(_) => format!(
            "consent on {}",
            plan.filters.channel.map_or("", |c| c.as_str())
        ),
        Step::MinChurn(v) => format!("churn probability at least {v}"),
        Step::MaxChurn(v) => format!("churn probability at most {v}"),
        Step::MinClv(v) => format!("CLV at least {v}"),
        Step::PurchasedWithin(d) => format!("last purchase within {d} days"),
        Step::PurchaseOlderThan(d) => format!("last purchase more than {d} days ago"),
        Step::NotContactedAfter(_) => format!(
            "not contacted in the last {} days",
            plan.request
                .filters
                .exclude_contacted_within_days
                .unwrap_or(0)
        ),
    }
}

fn summarise(
    src: &Source<'_>,
    plan: &Plan,
    column: Option<&ScoreColumn>,
    picks: &[Pick],
    funnel: Vec<FunnelStep>,
    pool: usize,
    pool_sum: f64,
) -> Summary {
    let ix = src.index;
    let treated = || picks.iter().filter(|p| !p.control);
    let size = treated().count();
    let control_size = picks.len() - size;
    let expected = expected_conversions(treated().map(|p| p.probability));
    let mean = if size > 0 {
        expected.mean / size as f64
    } else {
        0.0
    };
    let ratio = |base: f64| (size > 0 && base > 0.0).then(|| mean / base);
    let depth = size as f64 / ix.len().max(1) as f64;
    let curve = column.and_then(|c| c.lift.as_ref());
    let lift = Lift {
        depth,
        backtest: curve.filter(|_| size > 0).map(|c| c.at(depth)),
        estimated: column.and_then(|c| ratio(c.population_mean)),
        vs_filtered_pool: ratio(pool_sum / pool.max(1) as f64),
        base_rate: curve.map(|c| c.base_rate),
        curve: curve.map(|c| c.points.clone()).unwrap_or_default(),
    };
    let target = target_summary(src, plan);
    let calibration = match (plan.target, column) {
        (Target::Action { index, .. }, None) => format!(
            "not calibrated: the propensity of a {} action is a rule of its kind, not a \
             backtested probability; the lift over random is unknown",
            src.catalog
                .actions()
                .nth(index)
                .map_or("custom".to_string(), |a| a.kind.to_string())
        ),
        (_, Some(c)) if c.calibration.is_none() && ix.churn.calibration.is_some() => {
            "not calibrated: the backtest has no deciles for this score, so probabilities are \
             the model's own"
                .to_string()
        }
        _ => ix.calibration_note.clone(),
    };
    let rows = picks
        .iter()
        .filter(|p| plan.include_holdout || !p.control)
        .count()
        .min(plan.preview.unwrap_or(usize::MAX));
    Summary {
        audience_id: plan.audience_id.clone(),
        model: ix.model.clone(),
        as_of: ix.as_of.clone(),
        starts_at: plan
            .starts_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        target,
        size,
        control_size,
        holdout_share: plan.holdout_share,
        rows,
        funnel,
        expected_value: treated().map(|p| p.expected_value).sum(),
        mean_probability: mean,
        expected_conversions: expected,
        lift,
        calibration,
        request: plan.request.clone(),
    }
}

fn target_summary(src: &Source<'_>, plan: &Plan) -> TargetSummary {
    let ix = src.index;
    let purchase_in = |c: usize| {
        format!(
            "a purchase in {} within {} days after the model's as_of",
            ix.categories[c], ix.affinity_days
        )
    };
    match plan.target {
        Target::Category(c) => TargetSummary {
            kind: "category",
            category: Some(ix.categories[c].clone()),
            action: None,
            event: purchase_in(c),
            expected_value: "probability × the customer's mean order value (the mean over \
                             buyers for customers without orders)"
                .into(),
        },
        Target::Churn => TargetSummary {
            kind: "churn",
            category: None,
            action: None,
            event: format!(
                "churn: no purchase within {} days after the model's as_of",
                ix.horizon_days
            ),
            expected_value: "probability × CLV: the customer value at risk".into(),
        },
        Target::Action {
            index,
            affinity_category,
        } => {
            let a = src.catalog.actions().nth(index);
            let id = a.map_or(String::new(), |a| a.id.to_string());
            TargetSummary {
                kind: "action",
                category: affinity_category.map(|c| ix.categories[c].clone()),
                event: match affinity_category {
                    Some(c) => format!(
                        "{} (the action's propensity is its affinity)",
                        purchase_in(c)
                    ),
                    None => format!(
                        "a response to {id} (the propensity its kind's rule assigns, as in \
                         next-best-action ranking)"
                    ),
                },
                action: Some(id),
                expected_value: "probability × the action's value (as in next-best-action \
                                 ranking)"
                    .into(),
            }
        }
    }
}
