//! Attribution: the window, the event kind, first touch, nothing credited twice.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lattice_catalog::actions::{Response, ResponseEvent};
use lattice_learn::{Attributor, Contacted, Event, EventKind, attribute};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn decision(id: &str, customer: &str, hours: i64, event: ResponseEvent, days: u32) -> Contacted {
    Contacted {
        decision_id: id.into(),
        customer_id: customer.into(),
        action: 0,
        at: t0() + TimeDelta::hours(hours),
        response: Response {
            event,
            window_days: days,
        },
        category: Some("denim".into()),
    }
}

fn event<'a>(
    customer: &'a str,
    hours: i64,
    kind: EventKind,
    category: Option<&'a str>,
) -> Event<'a> {
    Event {
        customer_id: customer,
        at: t0() + TimeDelta::hours(hours),
        kind,
        category,
    }
}

#[test]
fn event_types_map_to_response_kinds() {
    assert_eq!(EventKind::of("purchase"), EventKind::Purchase);
    assert_eq!(EventKind::of("email_click"), EventKind::Click);
    assert_eq!(EventKind::of("push_open"), EventKind::Click);
    assert_eq!(EventKind::of("app_open"), EventKind::AppOpen);
    assert_eq!(EventKind::of("redemption"), EventKind::Redemption);
    assert_eq!(EventKind::of("view"), EventKind::Other);
}

#[test]
fn a_response_is_the_right_event_inside_the_window() {
    let d = decision("d", "c", 0, ResponseEvent::PurchaseInCategory, 7);
    let denim = Some("denim");
    assert!(d.answered_by(&event("c", 1, EventKind::Purchase, denim)));
    assert!(
        d.answered_by(&event("c", 7 * 24, EventKind::Purchase, denim)),
        "the window's last instant counts"
    );
    assert!(
        !d.answered_by(&event("c", 7 * 24 + 1, EventKind::Purchase, denim)),
        "after the window"
    );
    assert!(
        !d.answered_by(&event("c", 0, EventKind::Purchase, denim)),
        "at the decision itself"
    );
    assert!(
        !d.answered_by(&event("c", -1, EventKind::Purchase, denim)),
        "before it"
    );
    assert!(
        !d.answered_by(&event("c", 1, EventKind::Purchase, Some("shoes"))),
        "another category"
    );
    assert!(
        !d.answered_by(&event("c", 1, EventKind::Click, denim)),
        "another kind"
    );
    let any = decision("d", "c", 0, ResponseEvent::Purchase, 7);
    assert!(any.answered_by(&event("c", 1, EventKind::Purchase, Some("shoes"))));
}

#[test]
fn first_touch_and_one_response_per_decision() {
    let mut a = Attributor::new();
    a.open(decision("late", "c", 24, ResponseEvent::Purchase, 7));
    a.open(decision("early", "c", 0, ResponseEvent::Purchase, 7));
    a.open(decision("other", "k", 0, ResponseEvent::Purchase, 7));
    // The first purchase goes to the earliest open decision, the second to the next, the
    // third to none: no decision answered twice, no event credited twice.
    let first = a
        .observe(&event("c", 30, EventKind::Purchase, None))
        .unwrap();
    assert_eq!(first.decision.decision_id, "early");
    let second = a
        .observe(&event("c", 31, EventKind::Purchase, None))
        .unwrap();
    assert_eq!(second.decision.decision_id, "late");
    assert!(
        a.observe(&event("c", 32, EventKind::Purchase, None))
            .is_none()
    );
    assert_eq!(a.open_decisions(), 1);
    // The other customer's window closes without a response.
    assert!(a.close_until(t0() + TimeDelta::days(6)).is_empty());
    let closed = a.close_until(t0() + TimeDelta::days(7));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].decision.decision_id, "other");
    assert!(!closed[0].responded());
    assert_eq!(a.open_decisions(), 0);
}

#[test]
fn attribute_over_a_history() {
    let decisions = vec![
        decision("a", "c", 0, ResponseEvent::Click, 3),
        decision("b", "c", 0, ResponseEvent::Purchase, 3),
        decision("open", "c", 24 * 20, ResponseEvent::Purchase, 30),
    ];
    let events = [
        event("c", 5, EventKind::Purchase, None),
        event("c", 2, EventKind::Click, None),
        event("c", 24 * 5, EventKind::Click, None),
    ];
    let out = attribute(decisions, &events, t0() + TimeDelta::days(10));
    let got: Vec<(&str, bool)> = out
        .iter()
        .map(|o| (o.decision.decision_id.as_str(), o.responded()))
        .collect();
    assert_eq!(got, [("a", true), ("b", true)]);
}

proptest! {
    /// Random decisions and events: every event answers at most one decision, every decision
    /// gets at most one outcome, and a credited event is inside the decision's window.
    #[test]
    fn nothing_is_counted_twice(
        ds in prop::collection::vec((0usize..3, 0i64..200, 0usize..5, 1u32..5), 1..30),
        es in prop::collection::vec((0usize..3, 0i64..300, 0usize..5), 0..60),
    ) {
        let kinds = [ResponseEvent::Purchase, ResponseEvent::PurchaseInCategory, ResponseEvent::Redemption, ResponseEvent::Click, ResponseEvent::AppOpen];
        let ev_kinds = [EventKind::Purchase, EventKind::Purchase, EventKind::Redemption, EventKind::Click, EventKind::AppOpen];
        let customers = ["x", "y", "z"];
        let decisions: Vec<Contacted> = ds.iter().enumerate()
            .map(|(i, &(c, h, k, w))| decision(&format!("d{i}"), customers[c], h, kinds[k], w))
            .collect();
        let events: Vec<Event<'_>> = es.iter()
            .map(|&(c, h, k)| event(customers[c], h, ev_kinds[k], (k == 1).then_some("denim")))
            .collect();
        let until = t0() + TimeDelta::days(30);
        let out = attribute(decisions.clone(), &events, until);
        let mut ids: Vec<&str> = out.iter().map(|o| o.decision.decision_id.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        prop_assert_eq!(ids.len(), n, "a decision closed twice");
        // Every decision closes by `until` (windows are at most 5 days, decisions within 200 h).
        prop_assert_eq!(n, decisions.len());
        let mut used = std::collections::HashMap::<(String, DateTime<Utc>), usize>::new();
        for o in out.iter().filter(|o| o.responded()) {
            let at = o.responded_at.unwrap();
            prop_assert!(at > o.decision.at && at <= o.decision.closes_at());
            *used.entry((o.decision.customer_id.clone(), at)).or_default() += 1;
        }
        for ((customer, at), credited) in used {
            let available = events.iter().filter(|e| e.customer_id == customer && e.at == at).count();
            prop_assert!(credited <= available, "an event credited twice");
        }
    }
}
