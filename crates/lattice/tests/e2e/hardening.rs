//! Issue 21 against the real `lattice serve` binary on a real socket: safe defaults, reload
//! confined to its roots, conflicts reported, truthful 503s, bounds that hold when exceeded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{demo_model, s};

/// A running `lattice serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lattice serve` with `args` (model, address and events database included by the caller
/// when they matter; defaults otherwise) and `keys` as LATTICE_API_KEYS (`name:key:scopes`,
/// with the key in clear; hashed here). `Err(stderr)` if it exits instead of serving.
pub fn start(args: &[&str], keys: &[(&str, &str, &str)]) -> Result<Server, String> {
    let env: Vec<String> = keys
        .iter()
        .map(|(n, k, sc)| format!("{n}:{}:{sc}", lattice_serve::auth::sha256_hex(k)))
        .collect();
    let demo = demo_model();
    let mut all: Vec<&str> = vec!["serve"];
    if !args.contains(&"--model") {
        all.extend(["--model", s(&demo)]);
    }
    if !args.contains(&"--addr") {
        all.extend(["--addr", "127.0.0.1:0"]);
    }
    all.extend(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args(&all)
        .env("LATTICE_API_KEYS", env.join(","))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.split("http://").nth(1) {
        Some(a) => {
            // Drain stderr so a chatty server never blocks on a full pipe.
            let mut err = child.stderr.take().unwrap();
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            Ok(Server {
                addr: a.trim().replace("0.0.0.0", "127.0.0.1"),
                child,
            })
        }
        None => {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let status = child.wait().unwrap();
            assert!(!status.success());
            Err(err)
        }
    }
}

/// One raw HTTP/1.1 request with any headers; (status, headers, body).
pub fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A JSON request with `Authorization: Bearer key`.
#[allow(dead_code)] // used by the reload and events tests below
pub fn call(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {key}");
    let (status, _, body) = raw(
        addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, v)
}

// Class 8: safe by default.

#[test]
fn no_keys_on_a_network_address_refuses_to_start_unless_insecure_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let err = start(&["--addr", "0.0.0.0:0", "--events-db", s(&db)], &[])
        .err()
        .expect("refused");
    assert!(
        err.contains("no API keys") && err.contains("--insecure-open"),
        "{err}"
    );
    // Loopback without keys is the developer's own machine: allowed.
    let _local = start(&["--events-db", s(&db)], &[]).unwrap();
    drop(_local);
    // Keys make a network address fine, and --insecure-open is the explicit way round.
    let _keyed = start(
        &["--addr", "0.0.0.0:0", "--events-db", s(&db)],
        &[("crm", "k", "score")],
    )
    .unwrap();
    drop(_keyed);
    let open = start(
        &[
            "--addr",
            "0.0.0.0:0",
            "--events-db",
            s(&db),
            "--insecure-open",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(raw(&open.addr, "GET", "/v1/models", &[], "").0, 200);
}

#[test]
fn the_bearer_scheme_is_matched_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let srv = start(&["--events-db", s(&db)], &[("crm", "sekrit", "score")]).unwrap();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} sekrit");
        let (status, _, body) = raw(
            &srv.addr,
            "GET",
            "/v1/models",
            &[("Authorization", &auth)],
            "",
        );
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let (status, _, _) = raw(
        &srv.addr,
        "GET",
        "/v1/models",
        &[("Authorization", "Basic sekrit")],
        "",
    );
    assert_eq!(status, 401);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn metric(addr: &str, name: &str) -> f64 {
    let (_, _, text) = raw(addr, "GET", "/metrics", &[], "");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn detail(v: &serde_json::Value) -> String {
    v["detail"].as_str().unwrap_or_default().to_string()
}

// Class 2: no probing of the server's disk through the API.

#[test]
fn reload_is_confined_to_its_roots_and_never_echoes_file_content() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    copy_dir(&demo_model(), &models.join("demo"));
    // Outside the roots: a readable model, and a file with a secret.
    let outside = tmp.path().join("elsewhere");
    copy_dir(&demo_model(), &outside.join("model"));
    std::fs::write(outside.join("secret.toml"), "password = \"hunter2\"\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("model"), models.join("link")).unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--model", s(&models.join("demo")), "--events-db", s(&db)],
        &[("ops", "admin-key", "admin")],
    )
    .unwrap();
    let reload = |body: serde_json::Value| {
        call(
            &srv.addr,
            "POST",
            "/v1/admin/reload",
            "admin-key",
            &body.to_string(),
        )
    };

    let escape = format!("{}/demo/../../elsewhere/model", models.display());
    for body in [
        serde_json::json!({"model": outside.join("model")}),
        serde_json::json!({"model": escape}),
        serde_json::json!({"model": models.join("link")}),
        serde_json::json!({"model": "/etc"}),
        serde_json::json!({"actions": "/etc/passwd"}),
        serde_json::json!({"actions": outside.join("secret.toml")}),
        // Missing and elsewhere get the same answer: nothing tells what exists.
        serde_json::json!({"model": "/no/such/dir"}),
    ] {
        let (status, v) = reload(body.clone());
        assert_eq!(status, 403, "{body}: {v}");
        assert!(detail(&v).contains("reload roots"), "{v}");
        assert!(!v.to_string().contains("hunter2"), "{v}");
    }

    // Inside the roots, a broken catalog and a broken manifest are refused naming the file
    // and the line or what was expected, without quoting what is in them.
    std::fs::write(
        models.join("bad.toml"),
        "[policy]\nSECRET_LINE_CONTENT = = 1\n",
    )
    .unwrap();
    let (status, v) = reload(serde_json::json!({"actions": models.join("bad.toml")}));
    assert_eq!(status, 422, "{v}");
    let d = detail(&v);
    assert!(d.contains("bad.toml") && d.contains("line 2"), "{d}");
    assert!(!d.contains("SECRET_LINE_CONTENT"), "{d}");
    std::fs::write(
        models.join("bad2.toml"),
        "[[action]]\nid = \"SECRET_VALUE_XYZ\"\nname = 5\n",
    )
    .unwrap();
    let (status, v) = reload(serde_json::json!({"actions": models.join("bad2.toml")}));
    assert_eq!(status, 422, "{v}");
    assert!(!detail(&v).contains("SECRET_VALUE_XYZ"), "{v}");
    let fake = models.join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("manifest.json"),
        r#"{"format_version": "SECRET_JSON_VALUE"}"#,
    )
    .unwrap();
    let (status, v) = reload(serde_json::json!({"model": fake}));
    assert_eq!(status, 422, "{v}");
    let d = detail(&v);
    assert!(d.contains("manifest.json"), "{d}");
    assert!(!d.contains("SECRET_JSON_VALUE"), "{d}");

    // The served directory and its siblings reload.
    let (status, v) = reload(serde_json::json!({}));
    assert_eq!(status, 200, "{v}");
    let (status, v) = reload(serde_json::json!({"model": models.join("demo")}));
    assert_eq!(status, 200, "{v}");
}

// Class 5: conflicts are reported, never swallowed.

#[test]
fn an_event_id_reused_with_other_content_is_a_conflict_and_reserved_ids_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(&["--events-db", s(&db)], &[("crm", "ev", "events+score")]).unwrap();
    let ts = chrono::Utc::now().to_rfc3339();
    let ev = |id: &str, amount: f64| {
        serde_json::json!({"customer_id": "c-conflict", "ts": ts, "event_type": "purchase",
                           "amount": amount, "event_id": id})
    };
    let post =
        |batch: serde_json::Value| call(&srv.addr, "POST", "/v1/events", "ev", &batch.to_string());
    let (status, v) = post(serde_json::json!([ev("e-1", 10.0)]));
    assert_eq!((status, v["stored"].as_u64()), (200, Some(1)), "{v}");
    // The same event again: a retry, a duplicate.
    let (status, v) = post(serde_json::json!([ev("e-1", 10.0)]));
    assert_eq!((status, v["duplicates"].as_u64()), (200, Some(1)), "{v}");
    // Another event under that id: a conflict; the good event beside it is not stored either.
    let (status, v) = post(serde_json::json!([ev("e-2", 5.0), ev("e-1", 99.0)]));
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        v["conflicts"],
        serde_json::json!([{"index": 1, "event_id": "e-1"}])
    );
    // Two different events with one id in one batch.
    let (status, v) = post(serde_json::json!([ev("e-3", 1.0), ev("e-3", 2.0)]));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["conflicts"][0]["index"], 1);
    // Exported ids cannot collide with client ids: the prefix is reserved.
    let (status, v) = post(serde_json::json!([ev("lattice-seq-1", 1.0)]));
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "event_id");
    assert_eq!(v["errors"][0]["rule"], "reserved-event-id");
    drop(srv);
    let store = lattice_events::EventStore::open_read_only(&db).unwrap();
    let mut ids = Vec::new();
    store
        .for_each(|_, e| {
            ids.push((e.event_id.unwrap(), e.amount.unwrap()));
            Ok(())
        })
        .unwrap();
    assert_eq!(ids, vec![("e-1".to_string(), 10.0)]);
}

// Class 3: a 503 or a timeout means nothing was stored; reloads never overlap.

fn big_batch(n: usize, ts: &str) -> String {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|k| {
            serde_json::json!({"customer_id": format!("c-timeout-{}", k % 50), "ts": ts,
                               "event_type": "view", "category": "outerwear",
                               "order_id": format!("pad-{k:0>40}")})
        })
        .collect();
    serde_json::Value::Array(events).to_string()
}

fn stored_events(db: &std::path::Path) -> u64 {
    let store = lattice_events::EventStore::open_read_only(db).unwrap();
    store.for_each(|_, _| Ok(())).unwrap()
}

#[test]
fn a_batch_answered_503_at_its_deadline_is_never_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let ts = chrono::Utc::now().to_rfc3339();
    // Events without ids: a batch stored after its 503 would be stored twice by the retry.
    let batch = big_batch(10_000, &ts);
    {
        let srv = start(
            &["--events-db", s(&db), "--timeout-secs", "0.001"],
            &[("crm", "ev", "events")],
        )
        .unwrap();
        for _ in 0..3 {
            let (status, v) = call(&srv.addr, "POST", "/v1/events", "ev", &batch);
            assert_eq!(status, 503, "{v}");
            assert!(detail(&v).contains("nothing"), "{v}");
        }
        // Whatever was still running when the answers went out has finished by now.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            metric(&srv.addr, "lattice_events_total{outcome=\"stored\"}"),
            0.0
        );
        assert_eq!(metric(&srv.addr, "lattice_events_abandoned_total"), 3.0);
    }
    assert_eq!(stored_events(&db), 0, "a batch answered 503 was stored");
    // The retry, with time enough, stores it once.
    let srv = start(&["--events-db", s(&db)], &[("crm", "ev", "events")]).unwrap();
    let (status, v) = call(&srv.addr, "POST", "/v1/events", "ev", &batch);
    assert_eq!((status, v["stored"].as_u64()), (200, Some(10_000)), "{v}");
    drop(srv);
    assert_eq!(stored_events(&db), 10_000);
}

#[test]
fn a_reload_answered_503_changes_nothing_and_reloads_never_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    copy_dir(&demo_model(), &models.join("demo"));
    // The same model under another name (the manifest is not among its own checksums).
    let other = models.join("other");
    copy_dir(&demo_model(), &other);
    let manifest = std::fs::read_to_string(other.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["name"] = "other".into();
    std::fs::write(other.join("manifest.json"), m.to_string()).unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &[
            "--model",
            s(&models.join("demo")),
            "--events-db",
            s(&db),
            "--timeout-secs",
            "0.001",
        ],
        &[("ops", "admin-key", "admin+score")],
    )
    .unwrap();
    let body = serde_json::json!({"model": other}).to_string();
    let (status, v) = call(&srv.addr, "POST", "/v1/admin/reload", "admin-key", &body);
    assert_eq!(status, 503, "{v}");
    assert!(detail(&v).contains("nothing changed"), "{v}");
    // The abandoned load still runs (it holds the reload lock): a second reload is told so.
    let (status, v) = call(&srv.addr, "POST", "/v1/admin/reload", "admin-key", &body);
    assert_eq!(status, 409, "{v}");
    assert!(detail(&v).contains("another reload"), "{v}");
    std::thread::sleep(Duration::from_secs(3));
    let (status, v) = call(&srv.addr, "GET", "/v1/models", "admin-key", "");
    assert_eq!(status, 200);
    assert_eq!(
        v["models"][0]["name"], "demo",
        "a reload answered 503 swapped the model in"
    );
}

#[test]
fn a_body_that_never_finishes_arriving_is_answered_503_at_the_deadline() {
    // The routes that decide their deadline with their commit have no outer timer: the body
    // must still arrive within the deadline, or a client holds its slot forever.
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--events-db", s(&db), "--timeout-secs", "1"],
        &[("ops", "k", "events+admin+score")],
    )
    .unwrap();
    let id = lattice_runtime::LoadedModel::load(&demo_model(), None)
        .unwrap()
        .record(0)
        .id
        .clone();
    for path in [
        "/v1/events".to_string(),
        "/v1/admin/reload".to_string(),
        format!("/v1/customers/{id}/next-best-actions"),
    ] {
        let mut stream = TcpStream::connect(&srv.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
        );
        stream.write_all(head.as_bytes()).unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // The answer, without the client ever closing its side (or sending the rest).
        while !String::from_utf8_lossy(&answer).contains("}") {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{path}: no answer after {:?}: {e}", started.elapsed()),
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{path}: {answer}");
        assert!(
            answer.contains("nothing of this request"),
            "{path}: {answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{path}");
    }
    assert_eq!(metric(&srv.addr, "lattice_events_abandoned_total"), 1.0);
    assert_eq!(
        metric(&srv.addr, "lattice_events_total{outcome=\"stored\"}"),
        0.0
    );
}

// Class 4: memory bounded by configuration, whatever the input.

#[test]
fn error_lists_are_capped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(&["--events-db", s(&db)], &[("crm", "ev", "events")]).unwrap();
    // 10,000 events with 5 problems each.
    let bad: Vec<serde_json::Value> = (0..10_000)
        .map(|_| serde_json::json!({"a": 1, "b": 2, "c": 3, "ts": "never"}))
        .collect();
    let (status, v) = call(
        &srv.addr,
        "POST",
        "/v1/events",
        "ev",
        &serde_json::Value::Array(bad).to_string(),
    );
    assert_eq!(status, 422);
    assert_eq!(v["errors"].as_array().unwrap().len(), 100);
    assert_eq!(v["errors_total"], 60_000, "{}", detail(&v));
    // Past 10,000 events a batch is refused whole, its items counted rather than kept.
    let many = format!("[{}0]", "0,".repeat(1_000_000));
    let (status, v) = call(&srv.addr, "POST", "/v1/events", "ev", &many);
    assert_eq!(status, 413, "{v}");
    assert!(detail(&v).contains("1000001 events"), "{v}");
}

#[test]
fn online_state_is_bounded_and_the_drops_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--events-db", s(&db), "--max-online-customers", "5"],
        &[("crm", "ev", "events+score")],
    )
    .unwrap();
    let ts = chrono::Utc::now().to_rfc3339();
    let batch: Vec<serde_json::Value> = (0..12)
        .map(|k| {
            serde_json::json!({"customer_id": format!("walk-in-{k}"), "ts": ts,
                                    "event_type": "purchase", "amount": 5.0})
        })
        .collect();
    let (status, v) = call(
        &srv.addr,
        "POST",
        "/v1/events",
        "ev",
        &serde_json::Value::Array(batch).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["stored"].as_u64(), v["dropped"].as_u64()),
        (Some(12), Some(7)),
        "{v}"
    );
    assert_eq!(metric(&srv.addr, "lattice_online_customers"), 5.0);
    assert_eq!(metric(&srv.addr, "lattice_online_customers_limit"), 5.0);
    assert_eq!(
        metric(&srv.addr, "lattice_online_events_dropped_total"),
        7.0
    );
    // Kept customers are scored from online state; the rest are unknown until a retrain.
    let (status, _) = call(&srv.addr, "GET", "/v1/customers/walk-in-0/scores", "ev", "");
    assert_eq!(status, 200);
    let (status, _) = call(
        &srv.addr,
        "GET",
        "/v1/customers/walk-in-11/scores",
        "ev",
        "",
    );
    assert_eq!(status, 404);
}

#[test]
fn decision_records_have_their_own_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--events-db", s(&db), "--max-decisions", "2"],
        &[("crm", "read-only", "score")],
    )
    .unwrap();
    let id = lattice_runtime::LoadedModel::load(&demo_model(), None)
        .unwrap()
        .record(0)
        .id
        .clone();
    let path = format!("/v1/customers/{id}/next-best-actions?record=true");
    for _ in 0..2 {
        let (status, v) = call(&srv.addr, "GET", &path, "read-only", "");
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = call(&srv.addr, "GET", &path, "read-only", "");
    assert_eq!(status, 429, "{v}");
    assert!(detail(&v).contains("not recorded"), "{v}");
    // Without record=true the key still gets its answers.
    let plain = format!("/v1/customers/{id}/next-best-actions");
    assert_eq!(call(&srv.addr, "GET", &plain, "read-only", "").0, 200);
    assert_eq!(metric(&srv.addr, "lattice_decisions_stored"), 2.0);
    assert_eq!(metric(&srv.addr, "lattice_decisions_refused_total"), 1.0);
}

#[test]
fn an_audience_download_the_client_stops_reading_releases_its_thread() {
    // An audience far larger than the socket buffers: 20,000 customers as JSON (~5 MB).
    let tmp = tempfile::tempdir().unwrap();
    let (world, model) = (tmp.path().join("world"), tmp.path().join("models/big"));
    let o = crate::common::lattice(&[
        "generate",
        "--customers",
        "20000",
        "--seed",
        "5",
        "--out",
        s(&world),
    ]);
    assert!(o.status.success(), "{:?}", crate::common::text(&o));
    let o = crate::common::lattice(&[
        "train",
        "--data",
        s(&world),
        "--out",
        s(&model),
        "--no-backtest",
    ]);
    assert!(o.status.success(), "{:?}", crate::common::text(&o));
    let db = tmp.path().join("events.db");
    let srv = start(
        &[
            "--model",
            s(&model),
            "--events-db",
            s(&db),
            "--write-timeout-secs",
            "1",
        ],
        &[("mkt", "aud", "audience")],
    )
    .unwrap();

    // A client with a small receive window that asks and then reads nothing.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = srv.addr.parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = sock.into();
    let body = r#"{"target": {"churn": true}, "size": {"top": 20000}}"#;
    let req = format!(
        "POST /v1/audiences?format=json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aud\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let mut seen_active = false;
    loop {
        let active = metric(&srv.addr, "lattice_streams_active");
        seen_active |= active > 0.0;
        if seen_active && active == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stream still holds its thread after 30 s (active {active}, seen {seen_active})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&srv.addr, "lattice_streams_timed_out_total"), 1.0);
    drop(stream);
}

// Class 6: refuse what cannot be honoured.

#[test]
fn a_cooldown_longer_than_the_contact_history_and_insane_inline_values_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    copy_dir(&demo_model(), &models.join("demo"));
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--model", s(&models.join("demo")), "--events-db", s(&db)],
        &[("ops", "k", "admin+score")],
    )
    .unwrap();
    let catalog = models.join("long.toml");
    std::fs::write(
        &catalog,
        "[[action]]\nid = \"slow\"\nname = \"Slow\"\nkind = \"custom\"\nchannels = [\"email\"]\n\
         cooldown_days = 120\n",
    )
    .unwrap();
    let body = serde_json::json!({"actions": catalog}).to_string();
    let (status, v) = call(&srv.addr, "POST", "/v1/admin/reload", "k", &body);
    assert_eq!(status, 422, "{v}");
    let d = detail(&v);
    assert!(
        d.contains("cooldown_days") && d.contains("at most 90"),
        "{d}"
    );
    // The same catalog from the command line.
    let o = crate::common::lattice(&[
        "audience",
        "--model",
        s(&models.join("demo")),
        "--actions",
        s(&catalog),
        "--churn",
        "--top",
        "5",
        "--out",
        s(&tmp.path().join("a.csv")),
    ]);
    assert!(!o.status.success());
    assert!(
        crate::common::text(&o).1.contains("cooldown_days"),
        "{:?}",
        crate::common::text(&o)
    );

    // Inline features: a customer's own row scores; the same row with a value no feature can
    // take is refused naming the feature.
    let id = lattice_runtime::LoadedModel::load(&demo_model(), None)
        .unwrap()
        .record(0)
        .id
        .clone();
    let (status, f) = call(
        &srv.addr,
        "GET",
        &format!("/v1/customers/{id}/features"),
        "k",
        "",
    );
    assert_eq!(status, 200, "{f}");
    let features = f["features"].clone();
    let score = |features: &serde_json::Value| {
        let body = serde_json::json!({"customers": [{"customer_id": "x", "features": features}]});
        call(&srv.addr, "POST", "/v1/score", "k", &body.to_string())
    };
    let (status, v) = score(&features);
    assert_eq!(status, 200, "{v}");
    for (name, value) in [
        ("recency_days", 1e300),
        ("frequency", -3.0),
        ("share_outerwear", 7.5),
        ("sentiment_mean_90d", -40.0),
    ] {
        let mut bad = features.clone();
        bad[name] = serde_json::json!(value);
        let (status, v) = score(&bad);
        assert_eq!(status, 422, "{name}: {v}");
        assert_eq!(v["field"], format!("customers[0].features.{name}"), "{v}");
        assert!(detail(&v).contains("expected"), "{v}");
    }
}

// Class 7: an empty batch answers the documented 422 body.

#[test]
fn an_empty_event_batch_answers_the_documented_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(&["--events-db", s(&db)], &[("crm", "ev", "events")]).unwrap();
    for (body, ctype) in [("[]", "application/json"), ("\n", "application/x-ndjson")] {
        let (status, head, text) = raw(
            &srv.addr,
            "POST",
            "/v1/events",
            &[("Authorization", "Bearer ev"), ("Content-Type", ctype)],
            body,
        );
        assert_eq!(status, 422, "{text}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // EventsProblem: every required member, errors empty.
        for member in [
            "type",
            "title",
            "status",
            "detail",
            "errors",
            "errors_total",
        ] {
            assert!(v.get(member).is_some(), "{member} missing: {v}");
        }
        assert_eq!(v["errors"], serde_json::json!([]));
    }
}

#[test]
fn a_recorded_decision_is_answered_200_exactly_when_it_was_stored() {
    // At a 1 ms deadline some answers are 503 and some 200; whichever, a 503 recorded nothing
    // and every 200 recorded its decision.
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let srv = start(
        &["--events-db", s(&db), "--timeout-secs", "0.001"],
        &[("crm", "k", "score")],
    )
    .unwrap();
    let id = lattice_runtime::LoadedModel::load(&demo_model(), None)
        .unwrap()
        .record(0)
        .id
        .clone();
    let path = format!("/v1/customers/{id}/next-best-actions");
    let body = r#"{"record": true, "context": {"channel": "email"}}"#;
    let mut ok = 0;
    for _ in 0..40 {
        let (status, v) = call(&srv.addr, "POST", &path, "k", body);
        match status {
            200 => ok += 1,
            503 => assert!(detail(&v).contains("nothing"), "{v}"),
            other => panic!("{other}: {v}"),
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(srv);
    let store = lattice_events::EventStore::open_read_only(&db).unwrap();
    assert_eq!(store.decision_count().unwrap(), ok);
}
