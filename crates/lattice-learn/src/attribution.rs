//! Attribution: which decision, if any, a customer's event answers.
//!
//! The rule: an event is a response to a decision when it is the decision's response event
//! (`[action.response]`, or the kind's default), for the same customer, strictly after the
//! decision and at most `window_days` after it. When several open decisions could claim it,
//! the earliest wins (first touch; ties by decision id). A decision takes at most one
//! response, and an event answers at most one decision: nothing is credited twice. A decision
//! with no response by the end of its window closes as a non-response.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use lattice_catalog::actions::{Response, ResponseEvent};
use serde::Serialize;

/// What an event is, as far as responses go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Purchase,
    Redemption,
    /// `email_click`, `sms_click`, `push_open`.
    Click,
    AppOpen,
    /// Anything else: never a response.
    Other,
}

impl EventKind {
    /// The kind of a contract `event_type`.
    pub fn of(event_type: &str) -> EventKind {
        match event_type {
            "purchase" => EventKind::Purchase,
            "redemption" => EventKind::Redemption,
            "email_click" | "sms_click" | "push_open" => EventKind::Click,
            "app_open" => EventKind::AppOpen,
            _ => EventKind::Other,
        }
    }
}

/// One event of a customer.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub customer_id: &'a str,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// The purchase's category, when known.
    pub category: Option<&'a str>,
}

/// A decision that went out, waiting for its response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contacted {
    pub decision_id: String,
    pub customer_id: String,
    /// The action's index in the catalog.
    pub action: usize,
    pub at: DateTime<Utc>,
    #[serde(skip)]
    pub response: Response,
    /// The action's category (for `purchase_in_category`).
    pub category: Option<String>,
}

impl Contacted {
    /// When its window ends.
    pub fn closes_at(&self) -> DateTime<Utc> {
        self.at + TimeDelta::days(i64::from(self.response.window_days))
    }

    /// Whether `event` is this decision's response (the customer aside).
    pub fn answered_by(&self, event: &Event<'_>) -> bool {
        if event.at <= self.at || event.at > self.closes_at() {
            return false;
        }
        match self.response.event {
            ResponseEvent::Purchase => event.kind == EventKind::Purchase,
            ResponseEvent::PurchaseInCategory => {
                event.kind == EventKind::Purchase
                    && self
                        .category
                        .as_deref()
                        .is_none_or(|c| event.category == Some(c))
            }
            ResponseEvent::Redemption => event.kind == EventKind::Redemption,
            ResponseEvent::Click => event.kind == EventKind::Click,
            ResponseEvent::AppOpen => event.kind == EventKind::AppOpen,
        }
    }
}

/// A closed decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub decision: Contacted,
    /// When the response came; `None`: the window closed without one.
    pub responded_at: Option<DateTime<Utc>>,
}

impl Outcome {
    pub fn responded(&self) -> bool {
        self.responded_at.is_some()
    }
}

/// Open decisions per customer; events close them as responses, time closes them as
/// non-responses. Feed events in time order, and close windows only up to the time events
/// have arrived until (a window closed early would miss a late response).
#[derive(Debug, Default)]
pub struct Attributor {
    open: HashMap<String, Vec<Contacted>>,
    /// (window end, decision id, customer id) of every open decision: closing is a walk from
    /// the front, not a scan of everything open.
    closing: BTreeSet<(DateTime<Utc>, String, String)>,
}

impl Attributor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decisions waiting for a response or their window's end.
    pub fn open_decisions(&self) -> usize {
        self.closing.len()
    }

    /// Starts waiting for a decision's response.
    pub fn open(&mut self, decision: Contacted) {
        self.closing.insert((
            decision.closes_at(),
            decision.decision_id.clone(),
            decision.customer_id.clone(),
        ));
        let list = self.open.entry(decision.customer_id.clone()).or_default();
        // Kept in first-touch order: earliest, then by id.
        let at = list
            .partition_point(|d| (d.at, &d.decision_id) <= (decision.at, &decision.decision_id));
        list.insert(at, decision);
    }

    /// The decision `event` answers, closed as a response; `None` if it answers none.
    pub fn observe(&mut self, event: &Event<'_>) -> Option<Outcome> {
        let list = self.open.get_mut(event.customer_id)?;
        let i = list.iter().position(|d| d.answered_by(event))?;
        let decision = list.remove(i);
        if list.is_empty() {
            self.open.remove(event.customer_id);
        }
        self.closing.remove(&(
            decision.closes_at(),
            decision.decision_id.clone(),
            decision.customer_id.clone(),
        ));
        Some(Outcome {
            decision,
            responded_at: Some(event.at),
        })
    }

    /// Closes, as non-responses, every decision whose window ended at or before `now`, in
    /// the order their windows ended.
    pub fn close_until(&mut self, now: DateTime<Utc>) -> Vec<Outcome> {
        let mut closed = Vec::new();
        while let Some(first) = self.closing.first() {
            if first.0 > now {
                break;
            }
            let Some((_, decision_id, customer_id)) = self.closing.pop_first() else {
                break;
            };
            if let Some(list) = self.open.get_mut(&customer_id) {
                if let Some(i) = list.iter().position(|d| d.decision_id == decision_id) {
                    closed.push(Outcome {
                        decision: list.remove(i),
                        responded_at: None,
                    });
                }
                if list.is_empty() {
                    self.open.remove(&customer_id);
                }
            }
        }
        closed
    }
}

/// Attribution over a whole history: every decision's outcome, responses and windows closed
/// at `until` (decisions whose window is still open at `until` are left out). Events need not
/// be sorted.
pub fn attribute(
    decisions: Vec<Contacted>,
    events: &[Event<'_>],
    until: DateTime<Utc>,
) -> Vec<Outcome> {
    let mut a = Attributor::new();
    let mut decisions = decisions;
    decisions.sort_by(|x, y| (x.at, &x.decision_id).cmp(&(y.at, &y.decision_id)));
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].at);
    let mut out = Vec::new();
    let mut next = decisions.into_iter().peekable();
    for i in order {
        let e = &events[i];
        if e.at > until {
            break;
        }
        // Decisions made before the event are open when it arrives; windows that ended
        // before it are closed first so they cannot claim it.
        while next.peek().is_some_and(|d| d.at < e.at) {
            if let Some(d) = next.next() {
                a.open(d);
            }
        }
        out.extend(a.close_until(e.at - TimeDelta::nanoseconds(1)));
        out.extend(a.observe(e));
    }
    for d in next.by_ref() {
        a.open(d);
    }
    out.extend(a.close_until(until));
    out
}
