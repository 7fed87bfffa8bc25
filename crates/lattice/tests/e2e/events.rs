//! End-to-end durability: the real server is killed with SIGKILL in the middle of a stream of
//! acknowledged batches; after a restart on the same database every acknowledged event is
//! there, and none is applied twice. Then `lattice export-events` hands them back as the data
//! contract's Parquet.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common;

use common::{serve_demo, signal, try_request};

const KEY: &str = "events-e2e";
const BATCH: usize = 50;

/// Batch `n`, the same every time it is built (a retry resends identical events: an id reused
/// with other content would be a conflict).
fn batch(n: usize) -> String {
    static TS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    batch_at(n, TS.get_or_init(|| chrono::Utc::now().to_rfc3339()))
}

fn batch_at(n: usize, ts: &str) -> String {
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

#[test]
fn a_full_database_is_answered_503_with_a_log_line_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let hash = lattice_serve::auth::sha256_hex(KEY);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "serve",
            "--model",
            common::demo_model().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--events-db",
            db.to_str().unwrap(),
            "--events-max-mib",
            "1",
        ])
        .env("LATTICE_API_KEYS", format!("crm:{hash}:score+events"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line.split("http://").nth(1).unwrap().trim().to_string();
    let mut acked = 0;
    let mut refused = None;
    for n in 0..2000 {
        let (s, body) = try_request(&addr, "POST", "/v1/events", Some(KEY), &batch(n)).unwrap();
        if s == 503 {
            refused = Some(body);
            break;
        }
        assert_eq!(s, 200, "{body}");
        acked += BATCH;
    }
    let body = refused.expect("the 1 MiB cap was reached");
    assert!(body.contains("cannot take writes"), "{body}");
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("events database refused a write") && log.contains("events.db"),
        "{log}"
    );
    // Nothing acknowledged was lost.
    let store = lattice_events::EventStore::open(&db, None).unwrap();
    let mut stored = 0;
    store.replay(i64::MIN, |_| stored += 1).unwrap();
    assert_eq!(stored, acked as u64);
}

#[test]
fn train_on_the_history_plus_what_the_server_saw() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let (child, addr) = serve_demo(KEY, ("crm", "score+events"), &db, Stdio::null());
    // Days after the demo history ends (2025-06-30), as a live server would have seen them.
    for n in 0..3 {
        let ts = format!("2025-07-0{}T12:00:00Z", n + 1);
        let (s, body) =
            try_request(&addr, "POST", "/v1/events", Some(KEY), &batch_at(n, &ts)).unwrap();
        assert_eq!(s, 200, "{body}");
    }
    signal(child.id(), "-TERM");
    let mut child = child;
    let _ = child.wait();

    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("events")).unwrap();
    let sample = common::demo_model().join("../../training-data/sample");
    std::fs::copy(
        sample.join("events.parquet"),
        data.join("events/history.parquet"),
    )
    .unwrap();
    for f in ["customers.parquet", "actions.toml", "lattice.toml"] {
        std::fs::copy(sample.join(f), data.join(f)).unwrap();
    }
    let seen = dir.path().join("seen");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    run(&[
        "export-events",
        "--db",
        db.to_str().unwrap(),
        "--out",
        seen.to_str().unwrap(),
    ]);
    std::fs::copy(
        seen.join("events.parquet"),
        data.join("events/server.parquet"),
    )
    .unwrap();
    let model = dir.path().join("m");
    run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--no-backtest",
    ]);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    // The walk-in customer the server met is in the new model; the data ends with its events.
    let snapshot = lattice_models::snapshot::ServingSnapshot::read(
        &model.join("snapshot.parquet"),
        &manifest["feature_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        &serde_json::from_value::<Vec<String>>(manifest["categories"].clone()).unwrap(),
    )
    .unwrap();
    assert!(snapshot.get("sigkill-walk-in").is_some());
    assert!(
        manifest["as_of"]
            .as_str()
            .unwrap()
            .starts_with("2025-07-03"),
        "{}",
        manifest["as_of"]
    );
}
