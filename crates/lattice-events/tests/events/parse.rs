//! Parsing posted event batches: every field checked, every bad one named with its index.

use lattice_events::{BatchError, parse_batch};

const NOW: i64 = 1_780_000_000_000_000;

fn errors(body: &str) -> Vec<(usize, String, &'static str)> {
    match parse_batch(body.as_bytes(), false, NOW) {
        Err(BatchError::Invalid { errors: e, .. }) => {
            e.into_iter().map(|e| (e.index, e.field, e.rule)).collect()
        }
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn a_good_batch_parses_with_integer_ids_and_every_field() {
    let body = r#"[{"customer_id": 42, "ts": "2026-05-01T10:00:00Z", "event_type": "purchase",
        "channel": "web", "category": "shoes", "amount": 19.5, "quantity": 1, "order_id": 7,
        "sentiment": null, "action_id": "a", "event_id": "e1", "decision_id": "d1"}]"#;
    let e = &parse_batch(body.as_bytes(), false, NOW).unwrap()[0];
    assert_eq!(e.customer_id, "42");
    assert_eq!(e.order_id.as_deref(), Some("7"));
    assert_eq!(e.ts_us, 1_777_629_600_000_000);
    assert_eq!(
        (e.amount, e.quantity, e.sentiment),
        (Some(19.5), Some(1.0), None)
    );
    assert_eq!(e.decision_id.as_deref(), Some("d1"));
}

#[test]
fn ndjson_skips_blank_lines_and_names_the_bad_line() {
    let body = "{\"customer_id\":\"a\",\"ts\":\"2026-01-01\",\"event_type\":\"view\"}\n\n{\"customer_id\":\"b\",\"ts\":\"2026-01-02\",\"event_type\":\"view\"}\n";
    assert_eq!(parse_batch(body.as_bytes(), true, NOW).unwrap().len(), 2);
    match parse_batch(b"{\"a\":1}\n{oops\n", true, NOW) {
        Err(BatchError::Body(m)) => assert!(m.starts_with("line 2:"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_bad_field_is_listed_with_its_index() {
    let body = r#"[
        {"customer_id": "ok", "ts": "2026-01-01T00:00:00Z", "event_type": "view"},
        {"customer_id": "", "ts": "yesterday", "event_type": "purchase", "quantity": -1},
        {"customer_id": "c", "ts": "2026-01-01T00:00:00Z", "event_type": "support", "sentiment": 3, "amount": "12"},
        {"customer_id": "d", "ts": "2026-01-01T00:00:00Z", "event_type": "unsubscribe", "colour": "red"},
        {"customer_id": "e", "ts": "2099-01-01T00:00:00Z"}
    ]"#;
    let got = errors(body);
    let want = [
        (1, "customer_id", "null-customer-id"),
        (1, "ts", "bad-timestamp"),
        (1, "quantity", "negative-quantity"),
        (2, "amount", "non-finite-number"),
        (2, "sentiment", "sentiment-range"),
        (3, "colour", "unknown-field"),
        (3, "channel", "unsubscribe-channel"),
        (4, "ts", "bad-timestamp"),
        (4, "event_type", "null-event-type"),
    ];
    for w in want {
        assert!(
            got.iter().any(|g| (g.0, g.1.as_str(), g.2) == w),
            "missing {w:?} in {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
}

#[test]
fn bodies_that_are_not_batches_are_refused() {
    assert!(matches!(
        parse_batch(b"[]", false, NOW),
        Err(BatchError::Empty)
    ));
    assert!(matches!(
        parse_batch(b"{\"customer_id\":1}", false, NOW),
        Err(BatchError::Body(_))
    ));
    assert!(matches!(
        parse_batch(b"[1,", false, NOW),
        Err(BatchError::Body(_))
    ));
    assert!(matches!(
        parse_batch(b"[1]", false, NOW),
        Err(BatchError::Invalid { events: 1, .. })
    ));
}

#[test]
fn a_batch_over_the_limit_is_refused_with_its_count_whatever_its_items() {
    use lattice_events::event::MAX_BATCH;
    let ev = r#"{"customer_id":"a","ts":"2026-01-01","event_type":"view"}"#;
    for (body, ndjson, count) in [
        (
            format!("[{}]", vec![ev; MAX_BATCH + 1].join(",")),
            false,
            MAX_BATCH + 1,
        ),
        (vec![ev; MAX_BATCH + 1].join("\n"), true, MAX_BATCH + 1),
        // Tiny items past the limit are counted, not kept.
        (
            format!("[{}0]", "0,".repeat(3 * MAX_BATCH)),
            false,
            3 * MAX_BATCH + 1,
        ),
        (
            format!("{}0", "0\n".repeat(3 * MAX_BATCH)),
            true,
            3 * MAX_BATCH + 1,
        ),
    ] {
        match parse_batch(body.as_bytes(), ndjson, NOW) {
            Err(BatchError::TooMany { got, max }) => assert_eq!((got, max), (count, MAX_BATCH)),
            other => panic!("{count} items: {other:?}"),
        }
    }
    // Exactly the limit is a batch.
    let body = format!("[{}]", vec![ev; MAX_BATCH].join(","));
    assert_eq!(
        parse_batch(body.as_bytes(), false, NOW).unwrap().len(),
        MAX_BATCH
    );
    // Past the limit the rest must still be JSON, and nothing may follow the array.
    for body in [
        format!("[{}, {{oops]", vec![ev; MAX_BATCH].join(",")),
        format!("[{}] []", vec![ev; MAX_BATCH + 1].join(",")),
    ] {
        assert!(
            matches!(
                parse_batch(body.as_bytes(), false, NOW),
                Err(BatchError::Body(_))
            ),
            "{}",
            &body[body.len() - 20..]
        );
    }
}
