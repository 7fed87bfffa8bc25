//! End-to-end: `lattice policy-eval` on the simulator's logs (the documented Parquet format)
//! and its refusals; `lattice performance` on an events database with recorded decisions.

use std::path::PathBuf;

use lattice_events::store::DecidedAction;
use lattice_events::{Decision, Event, EventStore};

use crate::common::{demo_model, lattice, s, text};

#[test]
fn policy_eval_reproduces_the_simulator_and_refuses_bad_logs() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let json = dir.path().join("sim.json");
    let o = lattice(&[
        "simulate",
        "--customers",
        "3000",
        "--seed",
        "11",
        "--json",
        s(&json),
        "--logs-out",
        s(&logs),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let measured = r["ope"]["measured"].as_f64().unwrap();

    let (l, p) = (logs.join("logs.parquet"), logs.join("policy.parquet"));
    let o = lattice(&["policy-eval", "--logs", s(&l), "--policy", s(&p)]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let dr = out
        .lines()
        .find(|l| l.trim_start().starts_with("DR"))
        .unwrap();
    let nums: Vec<f64> = dr
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect();
    let (low, high) = (nums[1], nums[2]);
    assert!(
        low <= measured && measured <= high,
        "{dr} vs measured {measured}\n{out}"
    );

    // The policy must cover every logged decision.
    let o = lattice(&[
        "policy-eval",
        "--logs",
        s(&l),
        "--policy",
        s(&l.with_file_name("nope.parquet")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("nope.parquet"), "{:?}", text(&o));
    // Logs without the probability column are refused by name.
    let o = lattice(&["policy-eval", "--logs", s(&p), "--policy", s(&p)]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("missing column `reward`"),
        "{:?}",
        text(&o)
    );
}

const CATALOG: &str = r#"
[[action]]
id = "offer"
name = "Offer"
kind = "custom"
channels = ["email"]
value = 20.0
[action.response]
event = "purchase"
window_days = 3
"#;

#[test]
fn performance_reads_an_events_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let actions: PathBuf = dir.path().join("actions.toml");
    std::fs::write(&actions, CATALOG).unwrap();
    let day = 86_400_000_000i64;
    let t0 = chrono::Utc::now().timestamp_micros() - 30 * day;
    {
        let mut store = EventStore::open(&db, None).unwrap();
        for i in 0..10 {
            store
                .record_decision(&Decision {
                    decision_id: format!("d{i}"),
                    customer_id: format!("c{:04}", i + 1),
                    decided_us: t0,
                    model: "demo".into(),
                    probability: Some(1.0),
                    segment: Some(0),
                    prior: Some(0.1),
                    held_out: None,
                    arm: None,
                    actions: vec![DecidedAction {
                        rank: 1,
                        action_id: "offer".into(),
                        channel: "email".into(),
                        send_at_us: None,
                        score: 1.0,
                        contacted_us: None,
                        redeemed_us: None,
                    }],
                })
                .unwrap();
        }
        // Customers 1-4 buy a day later (one twice), customer 5 after the window.
        let mut events = Vec::new();
        for (c, at) in [(1, 1), (1, 2), (2, 1), (3, 1), (4, 2), (5, 5)] {
            events.push(Event {
                customer_id: format!("c{c:04}"),
                ts_us: t0 + at * day,
                event_type: "purchase".into(),
                amount: Some(10.0),
                event_id: Some(format!("e{c}-{at}")),
                ..Event::default()
            });
        }
        store
            .append(&events, t0, &mut Vec::new(), &|_| true)
            .unwrap();
    }
    let o = lattice(&[
        "performance",
        "--db",
        s(&db),
        "--model",
        s(&demo_model()),
        "--actions",
        s(&actions),
        "--segments",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let row = out.lines().find(|l| l.starts_with("offer")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[2]), ("10", "4"), "{out}");
    assert!(row.contains("0.4000"), "{out}");
    assert!(out.contains("none/low"), "{out}");

    // The same decisions with their outcomes, as policy-eval logs.
    let file = dir.path().join("decisions.parquet");
    let o = lattice(&[
        "export-decisions",
        "--db",
        s(&db),
        "--model",
        s(&demo_model()),
        "--actions",
        s(&actions),
        "--out",
        s(&file),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("wrote 10 closed decisions (4 responded)"),
        "{out}"
    );
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
    let mut rewards = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let r = b
            .column_by_name("reward")
            .unwrap()
            .as_primitive::<Float64Type>();
        rewards.extend(r.values().iter().copied());
        let p = b
            .column_by_name("probability")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert!(p.values().iter().all(|&p| p == 1.0));
    }
    rewards.sort_by(f64::total_cmp);
    assert_eq!(
        rewards,
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0, 20.0, 20.0, 20.0]
    );
}

/// The real server learns from recorded decisions and posted events; killed with SIGKILL and
/// restarted on the same database, it reports the same performance (the learning state is
/// rebuilt from the store).
#[test]
fn learning_survives_sigkill() {
    use crate::common::{request, serve_demo, signal};
    use serde_json::{Value, json};
    use std::process::Stdio;

    const KEY: &str = "learning-e2e";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let (child, addr) = serve_demo(KEY, ("crm", "score+events"), &db, Stdio::null());
    let at = chrono::Utc::now() - chrono::Duration::days(40);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let mut events = Vec::new();
    let mut recorded = 0;
    for i in 1..=40 {
        let id = format!("c{i:04}");
        let body = json!({"record": true, "limit": 1, "context": {"now": stamp(at)}});
        let (status, answer) = request(
            &addr,
            "POST",
            &format!("/v1/customers/{id}/next-best-actions"),
            Some(KEY),
            &body.to_string(),
        );
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        recorded += usize::from(v["actions"].as_array().is_some_and(|a| !a.is_empty()));
        if i % 2 == 1 {
            // Whatever the action's response rule, one of these answers it.
            for (k, kind) in ["purchase", "redemption", "app_open", "email_click"]
                .iter()
                .enumerate()
            {
                events.push(json!({"customer_id": id, "ts": stamp(at + chrono::Duration::hours(1 + k as i64)),
                                   "event_type": kind, "amount": 10.0, "event_id": format!("{id}-{k}")}));
            }
        }
    }
    assert!(recorded > 20, "{recorded}");
    let (status, answer) = request(
        &addr,
        "POST",
        "/v1/events",
        Some(KEY),
        &Value::Array(events).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let perf = |addr: &str| -> Value {
        let (status, body) = request(addr, "GET", "/v1/actions/performance", Some(KEY), "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let before = perf(&addr);
    let total = |p: &Value, field: &str| -> u64 {
        p["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(total(&before, "decisions") as usize, recorded, "{before}");
    assert!(total(&before, "responses") > 0, "{before}");

    signal(child.id(), "-KILL");
    let mut child = child;
    let _ = child.wait();
    let (mut child, addr) = serve_demo(KEY, ("crm", "score+events"), &db, Stdio::null());
    let after = perf(&addr);
    signal(child.id(), "-TERM");
    let _ = child.wait();
    assert_eq!(after["actions"], before["actions"]);
    assert_eq!(after["open_decisions"], before["open_decisions"]);
}

#[test]
fn serve_refuses_a_bad_challenger_share() {
    let demo = demo_model();
    let o = lattice(&[
        "serve",
        "--model",
        s(&demo),
        "--challenger",
        s(&demo),
        "--challenger-share",
        "1.5",
    ]);
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("--challenger-share") && err.contains("between 0 and 1"),
        "{err}"
    );
}
