//! The events database on real files: durability across reopen, idempotent retries, the size
//! cap answered as "unavailable", the decision log closing its loop, and the export read back
//! through the data contract's own validation.

use lattice_data::arrow::array::{Array, AsArray};
use lattice_data::events::{events_location, read_events};
use lattice_data::schema::ev;
use lattice_data::validate::{ValidateOptions, validate_dir};
use lattice_events::store::DecidedAction;
use lattice_events::{Decision, Event, EventStore, export};

const T: i64 = 1_780_000_000_000_000;

fn event(customer: &str, dt: i64, event_type: &str, id: Option<&str>) -> Event {
    Event {
        customer_id: customer.into(),
        ts_us: T + dt,
        event_type: event_type.into(),
        event_id: id.map(str::to_string),
        ..Default::default()
    }
}

#[test]
fn a_retried_batch_is_a_no_op_and_everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs/events.db");
    let batch = vec![
        event("a", 1, "view", Some("e1")),
        event("a", 2, "purchase", Some("e2")),
        event("b", 3, "view", None),
    ];
    let mut applied = Vec::new();
    {
        let mut s = EventStore::open(&path, None).unwrap();
        let first = s.append(&batch, T, &mut applied, &|_| true).unwrap();
        assert_eq!((first.stored, first.duplicates), (3, 0));
        assert_eq!(applied, [true, true, true]);
        let retry = s.append(&batch, T, &mut applied, &|_| true).unwrap();
        // Events without an id cannot be recognised: only the two with ids are skipped.
        assert_eq!((retry.stored, retry.duplicates), (1, 2));
        assert_eq!(applied, [false, false, true]);
    }
    let s = EventStore::open(&path, None).unwrap();
    let mut seen = Vec::new();
    assert_eq!(s.replay(T, |e| seen.push(e.event_type)).unwrap(), 4);
    assert_eq!(seen, ["view", "purchase", "view", "view"]);
    let mut later = 0;
    s.replay(T + 1, |_| later += 1).unwrap();
    assert_eq!(later, 3, "replay starts after the given instant");
}

#[test]
fn a_full_database_refuses_the_batch_as_unavailable_and_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut s = EventStore::open(&path, Some(64 * 1024)).unwrap();
    let mut applied = Vec::new();
    let mut acknowledged = 0;
    let err = loop {
        let batch: Vec<Event> = (0..200)
            .map(|i| Event {
                category: Some("x".repeat(50)),
                ..event("c", i, "view", None)
            })
            .collect();
        match s.append(&batch, T, &mut applied, &|_| true) {
            Ok(a) => acknowledged += a.stored,
            Err(e) => break e,
        }
        assert!(acknowledged < 100_000, "the cap never bit");
    };
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("events.db"), "{err}");
    let mut stored = 0;
    s.replay(i64::MIN, |_| stored += 1).unwrap();
    assert_eq!(
        stored, acknowledged as u64,
        "the failed batch left nothing behind"
    );
}

#[test]
fn a_later_contact_and_redemption_close_the_decisions_loop_and_export_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut s = EventStore::open(&path, None).unwrap();
    let action = |rank, id: &str| DecidedAction {
        rank,
        action_id: id.into(),
        channel: "email".into(),
        send_at_us: Some(T + 3_600_000_000),
        score: 0.5,
        contacted_us: None,
        redeemed_us: None,
    };
    s.record_decision(&Decision {
        decision_id: "d1".into(),
        customer_id: "a".into(),
        decided_us: T,
        model: "demo@2026-01-01".into(),
        probability: Some(0.25),
        segment: Some(5),
        prior: Some(0.1),
        held_out: None,
        arm: None,
        actions: vec![action(1, "win_back"), action(2, "thank_you")],
    })
    .unwrap();
    let mut applied = Vec::new();
    let batch = vec![
        // Before the decision: not its outcome.
        Event {
            action_id: Some("win_back".into()),
            ..event("a", -10, "contact", Some("old"))
        },
        Event {
            action_id: Some("win_back".into()),
            channel: Some("email".into()),
            ..event("a", 100, "contact", Some("sent"))
        },
        Event {
            action_id: Some("win_back".into()),
            decision_id: Some("d1".into()),
            ..event("a", 500, "redemption", None)
        },
        // Another customer's contact for the same action does not count.
        Event {
            action_id: Some("thank_you".into()),
            ..event("b", 200, "contact", None)
        },
    ];
    s.append(&batch, T, &mut applied, &|_| true).unwrap();
    let d = s.decision("d1").unwrap().unwrap();
    assert_eq!(d.actions[0].contacted_us, Some(T + 100));
    assert_eq!(d.actions[0].redeemed_us, Some(T + 500));
    assert_eq!(d.actions[1].contacted_us, None);
    assert!(s.decision("nope").unwrap().is_none());
    assert_eq!(
        (d.probability, d.segment, d.prior),
        (Some(0.25), Some(5), Some(0.1))
    );

    let out = dir.path().join("export");
    let done = export(&path, &out, false).unwrap();
    assert_eq!((done.events, done.decisions, done.decision_rows), (4, 1, 2));
    let v = validate_dir(&out, &ValidateOptions::default());
    assert!(v.is_ok(), "{:?}", v.issues);
    let mut ids = Vec::new();
    read_events(&events_location(&out), |b| {
        let col = b.column(ev::EVENT_ID).as_string::<i32>();
        assert_eq!(col.null_count(), 0, "every exported event has an id");
        ids.extend(col.iter().flatten().map(str::to_string));
        Ok(())
    })
    .unwrap();
    assert_eq!(ids[..2], ["old".to_string(), "sent".to_string()]);
    assert!(ids[2].starts_with("lattice-seq-"), "{ids:?}");
}

#[test]
fn opening_a_missing_database_read_only_names_it() {
    let err = match EventStore::open_read_only(std::path::Path::new("/nonexistent/x.db")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a missing file"),
    };
    assert!(err.contains("/nonexistent/x.db"), "{err}");
}

#[test]
fn a_version_1_log_gains_the_learning_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,
                 decided_us INTEGER NOT NULL, model TEXT NOT NULL);
             INSERT INTO decisions VALUES ('old', 'a', 1, 'demo@2026-01-01');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut s = EventStore::open(&path, None).unwrap();
    let old = s.decision("old").unwrap().unwrap();
    assert_eq!(
        (old.probability, old.segment, old.prior),
        (None, None, None)
    );
    s.record_decision(&Decision {
        decision_id: "new".into(),
        customer_id: "a".into(),
        decided_us: 2,
        model: "demo@2026-01-01".into(),
        probability: Some(1.0),
        segment: Some(0),
        prior: Some(0.3),
        held_out: Some("offer".into()),
        arm: None,
        actions: vec![],
    })
    .unwrap();
    drop(s);
    // Opening again: already version 2, nothing to add.
    let s = EventStore::open(&path, None).unwrap();
    let new = s.decision("new").unwrap().unwrap();
    assert_eq!(new.probability, Some(1.0));
    assert_eq!(new.held_out.as_deref(), Some("offer"));
}
