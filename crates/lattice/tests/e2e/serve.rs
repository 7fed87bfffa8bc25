//! End-to-end: the real `lattice serve` binary on a free port, called over a socket, reloaded
//! with SIGHUP and stopped with SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;

use common::{request, signal};

#[test]
fn serve_over_a_socket_then_reload_and_stop() {
    let key = "e2e-key";
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = common::serve_demo(
        key,
        ("e2e", "score+admin"),
        &dir.path().join("events.db"),
        Stdio::piped(),
    );

    let (s, body) = request(&addr, "GET", "/healthz", None, "");
    assert_eq!(s, 200, "{body}");
    let (s, body) = request(&addr, "GET", "/v1/models", Some(key), "");
    assert_eq!(s, 200, "{body}");
    let (s, _) = request(&addr, "GET", "/v1/models", None, "");
    assert_eq!(s, 401);
    let (s, body) = request(
        &addr,
        "POST",
        "/v1/score",
        Some(key),
        r#"{"customer_ids": ["nobody"]}"#,
    );
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"not_found\":[\"nobody\"]"), "{body}");
    let (s, body) = request(
        &addr,
        "GET",
        "/v1/customers/nobody/next-best-actions",
        Some(key),
        "",
    );
    assert_eq!(s, 404, "{body}");

    // SIGHUP reloads; the server keeps answering.
    signal(child.id(), "-HUP");
    std::thread::sleep(Duration::from_millis(1500));
    let (s, body) = request(&addr, "GET", "/metrics", None, "");
    assert_eq!(s, 200);
    assert!(
        body.contains("lattice_model_reloads_total{outcome=\"ok\"} 1"),
        "{body}"
    );

    // SIGTERM: a graceful exit.
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}: {err}");
    assert!(
        !err.contains("nobody"),
        "customer ids never reach the logs: {err}"
    );
}

#[test]
fn serve_refuses_a_missing_model_clearly() {
    let o = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "serve",
            "--model",
            "/nonexistent/model",
            "--addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/model"), "{err}");
}
