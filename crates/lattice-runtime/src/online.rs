//! Online state: what events since the snapshot's as_of changed about a customer. Each
//! customer touched by an event gets a copy of their snapshot data (or, for a customer the
//! snapshot does not know, an empty history with the population's models: cold start), the
//! events applied with the training feature code ([`Aggregates::apply`]), and their feature
//! row and scores recomputed as training would at the customer's latest event. Requests read
//! it without waiting on writers: a sharded map of immutable `Arc`s, replaced whole per batch.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use chrono_tz::Tz;
use lattice_decide::Customer;
use lattice_events::{Event, EventStore, StoreError};
use lattice_features::Aggregates;
use lattice_features::aggregates::DAY_US;
use lattice_features::online::{EventView, OrderMemo};
use lattice_models::sendtime::{Channel as SendChannel, hour_of_week_from_local_seconds};
use lattice_models::snapshot::{CONTACT_DAYS, Contact, CustomerRecord};

use crate::model::{LoadedModel, Scratch};

const SHARDS: usize = 64;

/// One customer as events left them.
#[derive(Debug, Clone)]
pub struct OnlineCustomer {
    pub record: CustomerRecord,
    pub aggregates: Aggregates,
    memo: OrderMemo,
    /// The value row decision rules see (features, scores, attributes), at `at_us`.
    pub values: Vec<f64>,
    /// When the features were evaluated: the later of the model's as_of and the customer's
    /// latest event.
    pub at_us: i64,
    pub tz: Tz,
    /// Whether the snapshot knew the customer.
    pub in_snapshot: bool,
}

type Shard = RwLock<HashMap<String, Arc<OnlineCustomer>>>;

/// Every customer changed by events since the model's as_of, up to a limit: memory is bounded
/// by configuration whatever ids clients post. Past the limit, a customer not yet in online
/// state is answered from the snapshot (or cold start) and their events are counted as
/// dropped (they stay stored, for export and retraining).
pub struct OnlineState {
    shards: Box<[Shard; SHARDS]>,
    hasher: RandomState,
    len: AtomicUsize,
    limit: usize,
    dropped: AtomicU64,
    /// Channels whose consent events withdrew, by snapshot position (for audiences, which
    /// select from the snapshot).
    withdrawn: RwLock<HashMap<u32, [bool; 3]>>,
}

/// Default most customers in online state (about 1 GB at the demo model's width).
pub const DEFAULT_MAX_ONLINE_CUSTOMERS: usize = 250_000;

impl Default for OnlineState {
    fn default() -> Self {
        OnlineState::with_limit(DEFAULT_MAX_ONLINE_CUSTOMERS)
    }
}

/// How many events a batch changed online state with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub events: usize,
    /// Events at or before the model's as_of: stored, but already the snapshot's business
    /// (or too late for it); the next training run sees them.
    pub before_as_of: usize,
    pub new_customers: usize,
    /// Events of customers online state had no room for (stored, not applied).
    pub dropped: usize,
}

impl OnlineState {
    /// Empty online state keeping at most `limit` customers.
    pub fn with_limit(limit: usize) -> Self {
        OnlineState {
            shards: Box::new(std::array::from_fn(|_| RwLock::new(HashMap::new()))),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            limit,
            dropped: AtomicU64::new(0),
            withdrawn: RwLock::new(HashMap::new()),
        }
    }

    /// Most customers kept.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Events not applied because online state was full when their customer was new to it.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn shard(&self, id: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(id) as usize % SHARDS]
    }

    /// Customers with online state.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The customer's online state, if events changed it. No lock is taken while nothing has.
    pub fn get(&self, id: &str) -> Option<Arc<OnlineCustomer>> {
        if self.is_empty() {
            return None;
        }
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        shard.get(id).cloned()
    }

    /// Snapshot customers' withdrawn consent (email, sms, push), by snapshot position.
    pub fn withdrawn(&self) -> HashMap<u32, [bool; 3]> {
        self.withdrawn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies events (already stored) in order. Callers serialise batches (the store's lock),
    /// so two batches never interleave for one customer.
    pub fn apply(&self, model: &LoadedModel, events: &[&Event]) -> Applied {
        let as_of = model.as_of_us();
        let mut applied = Applied::default();
        // Group by customer, keeping each customer's order.
        let mut order: Vec<&str> = Vec::new();
        let mut by_customer: HashMap<&str, Vec<&Event>> = HashMap::new();
        for e in events {
            if e.ts_us <= as_of {
                applied.before_as_of += 1;
                continue;
            }
            by_customer
                .entry(e.customer_id.as_str())
                .or_insert_with(|| {
                    order.push(e.customer_id.as_str());
                    Vec::new()
                })
                .push(e);
            applied.events += 1;
        }
        for id in order {
            let in_snapshot = model.snapshot.get(id);
            let mut shard = self.shard(id).write().unwrap_or_else(|p| p.into_inner());
            if !shard.contains_key(id) {
                if self.len() >= self.limit {
                    let n = by_customer[id].len();
                    applied.events -= n;
                    applied.dropped += n;
                    self.dropped.fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                applied.new_customers += usize::from(in_snapshot.is_none());
                self.len.fetch_add(1, Ordering::Relaxed);
                shard.insert(id.to_string(), Arc::new(start(model, id, in_snapshot)));
            }
            let Some(entry) = shard.get_mut(id) else {
                unreachable!("inserted above");
            };
            // In place unless a request holds this customer right now (then a copy): the
            // shard's other customers wait a few microseconds, the rest not at all.
            let c = Arc::make_mut(entry);
            for e in &by_customer[id] {
                c.apply(model, e);
            }
            c.refresh(model);
            if let Some(i) = in_snapshot {
                let was = model.record(i).consent;
                let now = c.record.consent;
                let gone = [was[0] && !now[0], was[1] && !now[1], was[2] && !now[2]];
                if gone.contains(&true) {
                    self.withdrawn
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(i as u32, gone);
                }
            }
        }
        applied
    }
}

/// The consent of snapshot customers that stored `unsubscribe` events (newer than the model's
/// as_of) withdrew, as [`OnlineState::withdrawn`] has it, without replaying anything else:
/// for readers of the database beside the server (`lattice audience`).
pub fn withdrawn_consent(
    model: &LoadedModel,
    store: &EventStore,
) -> Result<HashMap<u32, [bool; 3]>, StoreError> {
    let mut out: HashMap<u32, [bool; 3]> = HashMap::new();
    store.replay_unsubscribes(model.as_of_us(), |e| {
        let channel = e
            .channel
            .as_deref()
            .and_then(lattice_decide::Channel::parse);
        if let (Some(i), Some(ch)) = (model.snapshot.get(&e.customer_id), channel)
            && model.record(i).consent[ch as usize]
        {
            out.entry(i as u32).or_default()[ch as usize] = true;
        }
    })?;
    Ok(out)
}

/// A customer's state before any online event: the snapshot's, or an empty history.
fn start(model: &LoadedModel, id: &str, in_snapshot: Option<usize>) -> OnlineCustomer {
    let categories = model.manifest.categories.len();
    match in_snapshot {
        Some(i) => OnlineCustomer {
            record: model.record(i).clone(),
            // Snapshots built in memory carry no aggregates: start from an empty history.
            aggregates: model
                .snapshot
                .aggregates(i)
                .unwrap_or_else(|| Aggregates::empty(categories)),
            memo: OrderMemo::default(),
            values: model.snapshot.values(i).to_vec(),
            at_us: model.as_of_us(),
            tz: model.timezone(i),
            in_snapshot: true,
        },
        None => {
            let tz = Tz::from_str(&model.settings.default_timezone).unwrap_or(Tz::UTC);
            OnlineCustomer {
                record: CustomerRecord {
                    id: id.to_string(),
                    timezone: tz.name().to_string(),
                    ..Default::default()
                },
                aggregates: Aggregates::empty(categories),
                memo: OrderMemo::default(),
                values: Vec::new(),
                at_us: model.as_of_us(),
                tz,
                in_snapshot: false,
            }
        }
    }
}

impl OnlineCustomer {
    /// This customer as the decision layer sees them (see [`LoadedModel::customer`]).
    pub fn customer<'a>(
        &'a self,
        model: &'a LoadedModel,
        scratch: &'a mut Scratch<'a>,
    ) -> Customer<'a> {
        model.customer_from(&self.record, &self.values, self.tz, scratch)
    }

    fn apply(&mut self, model: &LoadedModel, e: &Event) {
        self.aggregates.apply(
            &EventView {
                ts_us: e.ts_us,
                event_type: &e.event_type,
                channel: e.channel.as_deref(),
                category: e.category.as_deref(),
                amount: e.amount,
                order_id: e.order_id.as_deref(),
                sentiment: e.sentiment,
            },
            &model.manifest.categories,
            &mut self.memo,
        );
        let rec = &mut self.record;
        rec.last_purchase_us = self.aggregates.last_order_us;
        rec.last_negative_us = self.aggregates.last_negative_us;
        let channel = e
            .channel
            .as_deref()
            .and_then(lattice_decide::Channel::parse);
        match (e.event_type.as_str(), channel) {
            ("contact", _) => rec.contacts.push(Contact {
                action_id: e.action_id.clone().unwrap_or_default(),
                channel: e.channel.clone().unwrap_or_default(),
                at_us: e.ts_us,
            }),
            ("unsubscribe", Some(ch)) => rec.consent[ch as usize] = false,
            _ => {}
        }
        if let Some(ch) = SendChannel::from_event_type(&e.event_type) {
            let local = chrono::DateTime::from_timestamp_micros(e.ts_us).map(|t| {
                t.with_timezone(&self.tz)
                    .naive_local()
                    .and_utc()
                    .timestamp()
            });
            if let Some(secs) = local {
                let how = hour_of_week_from_local_seconds(secs);
                bump(&mut rec.engagement[ch.index()], how);
                // Channel engagement also counts as activity (the pooled profile).
                if ch != SendChannel::Any {
                    bump(&mut rec.engagement[SendChannel::Any.index()], how);
                }
            }
        }
    }

    /// Recomputes the feature row, the scores and the attributes at the latest event.
    fn refresh(&mut self, model: &LoadedModel) {
        self.at_us = model.as_of_us().max(self.aggregates.last_event_us);
        // Contacts older than any cooldown or cap window stop mattering, as in a snapshot.
        let since = self.at_us - CONTACT_DAYS * DAY_US;
        self.record.contacts.retain(|c| c.at_us > since);
        let width = model.snapshot.variables.len();
        self.values.resize(width, 0.0);
        let (row, score) = model.score_at(&self.aggregates, &self.record.profile(), self.at_us);
        let nf = row.len();
        self.values[..nf].copy_from_slice(&row);
        let scores = [
            score.churn_probability,
            score.p_alive,
            score.expected_purchases,
            score.clv,
        ];
        let ns = scores.len() + score.affinity.len();
        self.values[nf..nf + 4].copy_from_slice(&scores);
        self.values[nf + 4..nf + ns].copy_from_slice(&score.affinity);
        let attrs = &mut self.values[nf + ns..];
        attrs[0] = self.record.points_balance.unwrap_or(0.0);
        for (v, c) in attrs[1..].iter_mut().zip(self.record.consent) {
            *v = f64::from(u8::from(c));
        }
        self.record.churn_reasons = score.churn_reasons.into_iter().map(|r| r.feature).collect();
    }
}

/// Adds one engagement at hour of week `how` to a sorted `(hour, count)` list.
fn bump(list: &mut Vec<(u8, u16)>, how: u8) {
    match list.binary_search_by_key(&how, |&(h, _)| h) {
        Ok(k) => list[k].1 = list[k].1.saturating_add(1),
        Err(k) => list.insert(k, (how, 1)),
    }
}
