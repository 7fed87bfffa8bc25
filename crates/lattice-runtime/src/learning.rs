//! Learning at runtime: each action's response rate per segment, learned from the decisions
//! the server records and the events posted after them (`lattice_learn`, `docs/learning.md`).
//!
//! Recorded decisions open a response window; posted events close them as responses (first
//! touch, one per decision); windows that end close them as non-responses; a decision counts
//! in its cell's posterior when it closes. All of it is a function of the decision log and
//! the stored events, so a restart rebuilds it by replaying the store ([`Learning::replay`]).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use lattice_catalog::settings::Settings;
use lattice_decide::{Catalog, Context, Customer, Decision, Learned, RankOptions, Screening};
use lattice_events::{EventStore, StoreError};
use lattice_learn::thompson::choose_with;
use lattice_learn::{
    Arm, Attributor, Contacted, Event, EventKind, Holdouts, Outcome, Posteriors, Segment, Segments,
    win_probability,
};

/// At most this many (segment, eligible actions) keep their Thompson probabilities: 12
/// segments × a few hundred eligible sets is more than a catalog's rules produce, and each
/// entry is one f64 per eligible action, so the cache stays under a few MB.
pub const CACHED_SETS: usize = 4096;

/// What a learning server keeps beside a loaded model.
pub struct Learning {
    state: Mutex<State>,
    pub segments: Segments,
    pub holdouts: Holdouts,
    /// `[policy] explore`.
    pub explore: f64,
    /// At most this many (segment, eligible actions) sets keep cached Thompson probabilities
    /// ([`CACHED_SETS`] unless changed).
    pub cache_limit: usize,
    /// Tier names, entry tier first, with their thresholds (a customer's tier by spend).
    settings: Settings,
}

struct State {
    posteriors: Posteriors,
    attributor: Attributor,
    /// Open decisions: their cell and the static propensity centring its prior.
    open: HashMap<String, (Segment, f64)>,
    /// Responded decisions waiting for their window to end before they count (counting them
    /// earlier than the non-responses would inflate recent cells).
    awaiting: Vec<Outcome>,
    /// Thompson probabilities per (segment, eligible actions), each computed when first
    /// needed (NaN until then) and valid until a posterior of the segment changes: decisions
    /// over the same posteriors share them. At most [`CACHED_SETS`] sets.
    shares: HashMap<(Segment, Vec<usize>), Vec<f64>>,
    /// Counts the closes that changed posteriors: a probability computed before one is not
    /// cached after it.
    epoch: u64,
    /// The control arm: decisions whose customer was held out of the action that would have
    /// been chosen, attributed on their own (a response there is what the customer did
    /// without the action) and counted per action × segment.
    control: Posteriors,
    control_attributor: Attributor,
    control_open: HashMap<String, Segment>,
    control_awaiting: Vec<Outcome>,
}

/// One action × segment cell with closed decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPerformance {
    pub segment: String,
    pub decisions: u64,
    pub responses: u64,
    /// The prior's centre: the mean static propensity of those decisions.
    pub prior: f64,
    /// Posterior mean and 95% interval.
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// One action's closed decisions, all segments together and per segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPerformance {
    pub index: usize,
    pub decisions: u64,
    pub responses: u64,
    /// responses / decisions and a 95% interval from Beta(1 + responses, 1 + non-responses);
    /// `None` without closed decisions.
    pub rate: Option<(f64, f64, f64)>,
    /// rate × value − cost.
    pub value_per_decision: Option<f64>,
    pub segments: Vec<CellPerformance>,
    /// The control arm: (closed decisions, responses) of customers held out of the action
    /// when it would have been chosen.
    pub control: (u64, u64),
    /// Response rate minus the control's, with a 95% interval.
    pub lift: Option<(f64, f64, f64)>,
}

/// A cell's (closed decisions, responses), where it has counted any.
pub type Observed = Option<(u64, u64)>;

/// A recorded decision whose first action the chooser picked.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub decision_id: &'a str,
    pub customer_id: &'a str,
    /// The first action's catalog index.
    pub action: usize,
    pub at: DateTime<Utc>,
    pub segment: Segment,
    /// The first action's static propensity.
    pub prior: f64,
}

/// How a recorded decision was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The propensity each action is to be ranked with (`None`: the kind's).
    pub propensities: Vec<Option<f64>>,
    /// (decisions, responses) of each action's cell, where it has counted any.
    pub observed: Vec<Observed>,
    /// The promotional action the customer is held out of that would have been chosen
    /// greedily without control groups: the decision observes its control arm.
    pub held_out: Option<usize>,
    /// The action the chooser picked (catalog index), the probability it was picked with and
    /// its static propensity; `None` when no action was eligible.
    pub action: Option<(usize, f64, f64)>,
}

impl Learning {
    pub fn new(catalog: &Catalog, settings: &Settings) -> Self {
        let segments = Segments::new(settings.tiers.iter().map(|t| t.name.clone()));
        let n = catalog.actions().count();
        let holdouts = Holdouts {
            universal: catalog.control_share(),
            per_action: catalog.actions().map(|a| a.holdout).collect(),
        };
        Learning {
            state: Mutex::new(State {
                posteriors: Posteriors::new(n, segments.len()),
                attributor: Attributor::new(),
                open: HashMap::new(),
                awaiting: Vec::new(),
                shares: HashMap::new(),
                epoch: 0,
                control: Posteriors::new(n, segments.len()),
                control_attributor: Attributor::new(),
                control_open: HashMap::new(),
                control_awaiting: Vec::new(),
            }),
            segments,
            holdouts,
            explore: catalog.explore(),
            cache_limit: CACHED_SETS,
            settings: settings.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The customer's segment: their tier (as recorded, else by spend) × churn band.
    pub fn segment(&self, customer: &Customer<'_>) -> Segment {
        let known = customer
            .tier
            .filter(|t| self.settings.tiers.iter().any(|x| x.name == *t));
        let tier = known.or_else(|| {
            self.settings
                .tier_for(customer.spend_365d)
                .0
                .map(|t| t.name.as_str())
        });
        self.segments.of(tier, customer.scores.churn_probability)
    }

    /// Whether the customer is held out of each action (catalog order).
    pub fn control(&self, catalog: &Catalog, customer_id: &str) -> Vec<bool> {
        self.holdouts
            .control_for(customer_id, catalog.actions().map(|a| a.id))
    }

    /// Posterior means of the cells that have counted a decision, and their (decisions,
    /// responses); `None` elsewhere (an empty cell's mean is the kind's propensity itself).
    pub fn means(&self, segment: Segment) -> (Vec<Option<f64>>, Vec<Observed>) {
        let s = self.lock();
        (0..s.posteriors.actions())
            .map(|a| {
                let cell = s.posteriors.cell(a, segment).filter(|c| c.contacts > 0);
                (
                    cell.map(|c| c.posterior(0.5).mean()),
                    cell.map(|c| (c.contacts, c.responses)),
                )
            })
            .unzip()
    }

    /// A recorded decision for `customer`: the chooser's pick (greedy or Thompson by
    /// `explore`, seeded by `decision_id`, with the probability to log) and the ranking on the
    /// propensities it chose with, control groups applied. Also the customer's segment. The
    /// actions are screened once, for the chooser and the ranking both.
    pub fn decide(
        &self,
        catalog: &Catalog,
        customer: &Customer<'_>,
        context: &Context<'_>,
        options: &RankOptions,
        decision_id: &str,
    ) -> (Decision, Chosen, Segment) {
        let screening = Screening::new(catalog, customer, context, options);
        let segment = self.segment(customer);
        let control = self.control(catalog, customer.id);
        let chosen = self.choose(catalog, segment, &screening, &control, decision_id);
        let learned = Learned {
            propensities: &chosen.propensities,
            control: &control,
            observed: &chosen.observed,
        };
        (screening.rank(&learned), chosen, segment)
    }

    /// Chooses for a recorded decision in `segment`: the screened actions (every rule but the
    /// competition) less the promotional ones the customer is held out of (`control`) as arms,
    /// greedy or Thompson by `explore`, seeded by the decision id.
    pub fn choose(
        &self,
        catalog: &Catalog,
        segment: Segment,
        screening: &Screening<'_>,
        control: &[bool],
        decision_id: &str,
    ) -> Chosen {
        let infos: Vec<_> = catalog.actions().collect();
        let held = |a: usize| infos[a].promotional && control.get(a).copied().unwrap_or(false);
        let all: Vec<(usize, f64)> = screening.eligible().collect();
        // What greedy would have taken without control groups; held out of it, the customer
        // is an observation of its control arm.
        let held_out = {
            let s = self.lock();
            let score = |&(a, p): &(usize, f64)| {
                s.posteriors.mean(a, segment, p) * infos[a].value * infos[a].weight - infos[a].cost
            };
            all.iter()
                .max_by(|x, y| {
                    score(x)
                        .total_cmp(&score(y))
                        .then_with(|| infos[y.0].id.cmp(infos[x.0].id))
                })
                .map(|x| x.0)
                .filter(|&a| held(a))
        };
        let eligible: Vec<(usize, f64)> = all.into_iter().filter(|&(a, _)| !held(a)).collect();
        let key = (segment, eligible.iter().map(|e| e.0).collect::<Vec<_>>());
        let mut observed = vec![None; infos.len()];
        let (arms, settled, cached, epoch): (Vec<Arm<'_>>, bool, Option<Vec<f64>>, u64) = {
            let s = self.lock();
            for &(a, _) in &eligible {
                observed[a] = s
                    .posteriors
                    .cell(a, segment)
                    .filter(|c| c.contacts > 0)
                    .map(|c| (c.contacts, c.responses));
            }
            let arms = eligible
                .iter()
                .map(|&(a, p)| Arm {
                    id: infos[a].id,
                    posterior: s.posteriors.posterior(a, segment, p),
                    value: infos[a].value,
                    weight: infos[a].weight,
                    cost: infos[a].cost,
                })
                .collect();
            // Once every eligible cell has counted decisions its posterior no longer depends
            // on the customer's own static propensity: the key says it all.
            let settled = eligible.iter().all(|&(a, _)| {
                s.posteriors
                    .cell(a, segment)
                    .is_some_and(|c| c.contacts > 0)
            });
            let cached = settled.then(|| s.shares.get(&key).cloned()).flatten();
            (arms, settled, cached, s.epoch)
        };
        let mut propensities = vec![None; infos.len()];
        let choice = choose_with(&arms, decision_id, self.explore, |arm| {
            if let Some(&p) = cached
                .as_ref()
                .and_then(|c| c.get(arm))
                .filter(|p| !p.is_nan())
            {
                return p;
            }
            let p = win_probability(&arms, arm);
            if !settled {
                return p;
            }
            let mut s = self.lock();
            if s.epoch == epoch {
                if !s.shares.contains_key(&key) && s.shares.len() >= self.cache_limit.max(1) {
                    // Any entry will do: the cache only saves work, and a set that is
                    // still in use comes back on its next decision.
                    if let Some(evict) = s.shares.keys().next().cloned() {
                        s.shares.remove(&evict);
                    }
                }
                let entry = s
                    .shares
                    .entry(key)
                    .or_insert_with(|| vec![f64::NAN; arms.len()]);
                if let Some(slot) = entry.get_mut(arm) {
                    *slot = p;
                }
            }
            p
        });
        let Some(choice) = choice else {
            return Chosen {
                propensities,
                observed,
                held_out,
                action: None,
            };
        };
        for (&(a, _), &theta) in eligible.iter().zip(&choice.propensities) {
            propensities[a] = Some(theta);
        }
        let (a, prior) = eligible[choice.arm];
        Chosen {
            propensities,
            observed,
            held_out,
            action: Some((a, choice.probability, prior)),
        }
    }

    /// Opens a recorded decision's response window.
    pub fn opened(&self, catalog: &Catalog, d: Recorded<'_>) {
        let Some(contact) = contacted(catalog, &d) else {
            return;
        };
        let mut s = self.lock();
        s.open
            .insert(d.decision_id.to_owned(), (d.segment, d.prior));
        s.attributor.open(contact);
    }

    /// Opens the control-arm window of a decision whose customer was held out of `action`.
    pub fn opened_control(&self, catalog: &Catalog, d: Recorded<'_>) {
        let Some(contact) = contacted(catalog, &d) else {
            return;
        };
        let mut s = self.lock();
        s.control_open.insert(d.decision_id.to_owned(), d.segment);
        s.control_attributor.open(contact);
    }

    /// Attributes events (any order within the batch: they are taken by time), then closes
    /// the windows that ended by `now`.
    pub fn observe(&self, events: &[&lattice_events::Event], now: DateTime<Utc>) {
        let mut sorted: Vec<(DateTime<Utc>, &lattice_events::Event)> = events
            .iter()
            .filter_map(|e| Some((DateTime::from_timestamp_micros(e.ts_us)?, *e)))
            .filter(|(_, e)| EventKind::of(&e.event_type) != EventKind::Other)
            .collect();
        sorted.sort_by_key(|(t, _)| *t);
        let mut s = self.lock();
        for (at, e) in sorted {
            let event = Event {
                customer_id: &e.customer_id,
                at,
                kind: EventKind::of(&e.event_type),
                category: e.category.as_deref(),
            };
            if let Some(o) = s.attributor.observe(&event) {
                s.awaiting.push(o);
            }
            if let Some(o) = s.control_attributor.observe(&event) {
                s.control_awaiting.push(o);
            }
        }
        close(&mut s, now);
    }

    /// How many (segment, eligible actions) sets have cached Thompson probabilities.
    pub fn cached_sets(&self) -> usize {
        self.lock().shares.len()
    }

    /// Closes the windows that ended by `now`.
    pub fn close_until(&self, now: DateTime<Utc>) {
        close(&mut self.lock(), now);
    }

    /// The posteriors, the control arm's counts, and how many decisions are still open
    /// (window running).
    pub fn snapshot(&self) -> (Posteriors, Posteriors, usize) {
        let s = self.lock();
        (
            s.posteriors.clone(),
            s.control.clone(),
            s.open.len() + s.control_open.len(),
        )
    }

    /// Per action (catalog order): closed decisions and responses, pooled and per segment,
    /// after closing the windows that ended by `now`.
    pub fn performance(
        &self,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> (Vec<ActionPerformance>, usize) {
        self.close_until(now);
        let (posteriors, control, open) = self.snapshot();
        let actions = catalog
            .actions()
            .map(|a| {
                let mut segments = Vec::new();
                let (mut n, mut r) = (0u64, 0u64);
                for s in 0..self.segments.len() {
                    let seg = Segment(s);
                    let Some(cell) = posteriors.cell(a.index, seg).filter(|c| c.contacts > 0)
                    else {
                        continue;
                    };
                    let post = cell.posterior(0.5);
                    let (low, high) = post.interval(0.95);
                    n += cell.contacts;
                    r += cell.responses;
                    segments.push(CellPerformance {
                        segment: self.segments.name(seg),
                        decisions: cell.contacts,
                        responses: cell.responses,
                        prior: cell.prior_mean(0.5),
                        rate: post.mean(),
                        low,
                        high,
                    });
                }
                let rate = (n > 0).then(|| {
                    let (low, high) = lattice_learn::Beta {
                        alpha: 1.0 + r as f64,
                        beta: 1.0 + (n - r) as f64,
                    }
                    .interval(0.95);
                    (r as f64 / n as f64, low, high)
                });
                let (mut n0, mut r0) = (0u64, 0u64);
                for s in 0..self.segments.len() {
                    if let Some(c) = control.cell(a.index, Segment(s)) {
                        n0 += c.contacts;
                        r0 += c.responses;
                    }
                }
                ActionPerformance {
                    index: a.index,
                    decisions: n,
                    responses: r,
                    rate,
                    value_per_decision: rate.map(|(p, ..)| p * a.value - a.cost),
                    segments,
                    control: (n0, r0),
                    lift: lift(n, r, n0, r0),
                }
            })
            .collect();
        (actions, open)
    }

    /// Rebuilds the state from the decision log and the stored events: every recorded decision
    /// with learning fields opened in time order, every event attributed in time order, windows
    /// closed up to `now`. Returns the decisions replayed.
    pub fn replay(
        &self,
        catalog: &Catalog,
        store: &EventStore,
        arm: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut decisions = Vec::new();
        store.for_each_decision(|d| {
            // Each arm learns from its own decisions.
            if d.arm.as_deref() != arm {
                return Ok(());
            }
            let (Some(segment), Some(at)) =
                (d.segment, DateTime::from_timestamp_micros(d.decided_us))
            else {
                return Ok(());
            };
            let treated = d
                .actions
                .first()
                .and_then(|first| catalog.action(&first.action_id))
                .zip(d.prior)
                .map(|(info, prior)| (info.index, prior));
            let held_out = d
                .held_out
                .as_deref()
                .and_then(|id| catalog.action(id))
                .map(|a| a.index);
            if treated.is_some() || held_out.is_some() {
                decisions.push(Logged {
                    at,
                    decision_id: d.decision_id,
                    customer_id: d.customer_id,
                    treated,
                    segment: Segment(segment as usize),
                    held_out,
                });
            }
            Ok(())
        })?;
        // Only events after the first decision can answer one; none without decisions.
        let Some(first) = decisions.iter().map(|d| d.at).min() else {
            return Ok(0);
        };
        let mut events = Vec::new();
        store.replay(first.timestamp_micros(), |e| {
            if EventKind::of(&e.event_type) != EventKind::Other {
                events.push(e);
            }
        })?;
        events.sort_by_key(|e| e.ts_us);
        let n = decisions.len() as u64;
        let mut next = decisions.into_iter().peekable();
        for e in &events {
            let Some(at) = DateTime::from_timestamp_micros(e.ts_us) else {
                continue;
            };
            while let Some(d) = next.next_if(|d| d.at < at) {
                self.open_logged(catalog, &d);
            }
            self.observe(&[e], at);
        }
        for d in next {
            self.open_logged(catalog, &d);
        }
        self.close_until(now);
        Ok(n)
    }
}

/// A logged decision as replay reads it.
struct Logged {
    at: DateTime<Utc>,
    decision_id: String,
    customer_id: String,
    /// The chosen first action and its static propensity, when the chooser's pick was logged.
    treated: Option<(usize, f64)>,
    segment: Segment,
    /// The action the customer was held out of (control arm).
    held_out: Option<usize>,
}

impl Learning {
    fn open_logged(&self, catalog: &Catalog, d: &Logged) {
        let recorded = |action: usize, prior: f64| Recorded {
            decision_id: &d.decision_id,
            customer_id: &d.customer_id,
            action,
            at: d.at,
            segment: d.segment,
            prior,
        };
        if let Some((action, prior)) = d.treated {
            self.opened(catalog, recorded(action, prior));
        }
        if let Some(action) = d.held_out {
            self.opened_control(catalog, recorded(action, 0.0));
        }
    }
}

/// Treated rate minus control rate, with a 95% normal interval for the difference of two
/// proportions; `None` unless both arms have closed decisions.
fn lift(n1: u64, r1: u64, n0: u64, r0: u64) -> Option<(f64, f64, f64)> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (p1, p0) = (r1 as f64 / n1 as f64, r0 as f64 / n0 as f64);
    let se = (p1 * (1.0 - p1) / n1 as f64 + p0 * (1.0 - p0) / n0 as f64).sqrt();
    let d = p1 - p0;
    Some((d, d - 1.96 * se, d + 1.96 * se))
}

/// Counts the decisions whose windows ended by `now`, responded or not.
fn close(s: &mut State, now: DateTime<Utc>) {
    let mut done = s.attributor.close_until(now);
    let (due, later): (Vec<Outcome>, Vec<Outcome>) = std::mem::take(&mut s.awaiting)
        .into_iter()
        .partition(|o| o.decision.closes_at() <= now);
    s.awaiting = later;
    done.extend(due);
    let mut changed = Vec::new();
    for o in done {
        if let Some((segment, prior)) = s.open.remove(&o.decision.decision_id) {
            s.posteriors
                .record(o.decision.action, segment, prior, o.responded());
            changed.push(segment);
        }
    }
    // Cached Thompson probabilities of a segment whose posteriors changed no longer hold; the
    // other segments' still do.
    if !changed.is_empty() {
        s.epoch += 1;
        s.shares
            .retain(|(segment, _), _| !changed.contains(segment));
    }
    let mut done = s.control_attributor.close_until(now);
    let (due, later): (Vec<Outcome>, Vec<Outcome>) = std::mem::take(&mut s.control_awaiting)
        .into_iter()
        .partition(|o| o.decision.closes_at() <= now);
    s.control_awaiting = later;
    done.extend(due);
    for o in done {
        if let Some(segment) = s.control_open.remove(&o.decision.decision_id) {
            s.control
                .record(o.decision.action, segment, 0.0, o.responded());
        }
    }
}

/// The response window a recorded decision opens for its action (`None` for an action the
/// catalog no longer has), built before the lock is taken.
fn contacted(catalog: &Catalog, d: &Recorded<'_>) -> Option<Contacted> {
    let info = catalog.actions().nth(d.action)?;
    Some(Contacted {
        decision_id: d.decision_id.to_owned(),
        customer_id: d.customer_id.to_owned(),
        action: d.action,
        at: d.at,
        response: info.response,
        category: info
            .category
            .and_then(|c| catalog.categories().get(c).cloned()),
    })
}
