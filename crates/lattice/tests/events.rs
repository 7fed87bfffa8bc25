//! End-to-end durability: the real server is killed with SIGKILL in the middle of a stream of
//! acknowledged batches; after a restart on the same database every acknowledged event is
//! there, and none is applied twice. Then `lattice export-events` hands them back as the data
//! contract's Parquet.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

mod common;

use common::{serve_demo, signal, try_request};

const KEY: &str = "events-e2e";
const BATCH: usize = 50;

fn batch(n: usize) -> String {
    let ts = chrono::Utc::now().to_rfc3339();
    let events: Vec<Value> = (0..BATCH)
        .map(|k| {
            json!({"customer_id": "sigkill-walk-in", "ts": ts, "event_type": "purchase",
                   "amount": 1.0, "order_id": format!("o-{n}-{k}"), "event_id": format!("e-{n}-{k}")})
        })
        .collect();
    Value::Array(events).to_string()
}

fn metric(addr: &str, name: &str) -> f64 {
    let (_, text) = try_request(addr, "GET", "/metrics", None, "").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn every_acknowledged_event_survives_sigkill_and_none_is_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state/events.db");
    let (child, addr) = serve_demo(KEY, ("crm", "score+events"), &db, Stdio::null());

    // A client streams batches; a second thread kills the server while it does.
    let acknowledged = Arc::new(Mutex::new(Vec::<usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (acknowledged, stop, addr) = (acknowledged.clone(), stop.clone(), addr.clone());
        std::thread::spawn(move || {
            for n in 0.. {
                match try_request(&addr, "POST", "/v1/events", Some(KEY), &batch(n)) {
                    Some((200, _)) => acknowledged.lock().unwrap().push(n),
                    Some((s, body)) => panic!("batch {n}: {s} {body}"),
                    None => break, // the server is gone
                }
                if stop.load(Ordering::Relaxed) && n > 1000 {
                    break;
                }
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "-KILL");
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let mut child = child;
    let _ = child.wait();
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 20);

    // Restart on the same database.
    let (mut child, addr) = serve_demo(KEY, ("crm", "score+events"), &db, Stdio::null());
    let replayed = metric(&addr, "lattice_events_replayed_total") as usize;
    let acked_events = acked.len() * BATCH;
    // The batch in flight at the kill may have been committed without its answer reaching the
    // client: at most one batch more than was acknowledged.
    assert!(
        replayed == acked_events || replayed == acked_events + BATCH,
        "replayed {replayed}, acknowledged {acked_events}"
    );
    // Every acknowledged batch is there: posting it again stores nothing.
    for &n in &acked {
        let (s, body) = try_request(&addr, "POST", "/v1/events", Some(KEY), &batch(n)).unwrap();
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["stored"], 0, "batch {n} was lost: {v}");
        assert_eq!(v["duplicates"], BATCH, "{v}");
    }
    // None applied twice: the customer's orders are the stored purchases, once each.
    let (s, body) = try_request(
        &addr,
        "GET",
        "/v1/customers/sigkill-walk-in/features",
        Some(KEY),
        "",
    )
    .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["features"]["frequency"], replayed as f64, "{v}");
    signal(child.id(), "-TERM");
    let _ = child.wait();

    // The stored events back as the data contract's Parquet, each with its event id.
    let out = dir.path().join("export");
    let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "export-events",
            "--db",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains(&format!("wrote {replayed} events")), "{said}");
    let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args(["validate", "--data", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn export_events_names_a_missing_database() {
    let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "export-events",
            "--db",
            "/nonexistent/events.db",
            "--out",
            "/tmp/x",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/events.db"), "{err}");
}

#[test]
fn serve_refuses_an_events_database_inside_the_model_directory() {
    let model = common::demo_model();
    let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--events-db",
            model.join("events.db").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("inside the model directory"), "{err}");
    assert!(!model.join("events.db").exists());
}
