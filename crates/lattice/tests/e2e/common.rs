//! Starting the real `lattice serve` binary for end-to-end tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs the `lattice` binary to completion.
pub fn lattice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args(args)
        .output()
        .expect("the lattice binary runs")
}

/// (stdout, stderr) as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The committed demo model.
pub fn demo_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

/// Starts `lattice serve` on the demo model on a free port with one API key (`name:scopes`
/// for `key`) and its events database at `events_db`; returns the child and the address it
/// printed. `stderr` is where its log goes.
pub fn serve_demo(
    key: &str,
    name_and_scopes: (&str, &str),
    events_db: &Path,
    stderr: Stdio,
) -> (Child, String) {
    let hash = lattice_serve::auth::sha256_hex(key);
    let (name, scopes) = name_and_scopes;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "serve",
            "--model",
            demo_model().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--events-db",
            events_db.to_str().unwrap(),
        ])
        .env("LATTICE_API_KEYS", format!("{name}:{hash}:{scopes}"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the lattice binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .map(|a| a.trim().to_string())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// One HTTP/1.1 request; (status, body), or `None` if the connection failed (a killed server).
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok())?;
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// [`try_request`] to a server that must be up.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    try_request(addr, method, path, key, body).expect("the server answers")
}

/// Sends `sig` (e.g. `-HUP`, `-KILL`) to a process.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}
