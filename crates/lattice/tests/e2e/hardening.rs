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
