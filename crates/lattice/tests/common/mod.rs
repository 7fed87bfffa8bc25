//! Starting the real `lattice serve` binary for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The committed demo model.
pub fn demo_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

/// Starts `lattice serve` on the demo model on a free port with one API key (`name:scopes`
/// for `key`); returns the child and the address it printed. `stderr` is where its log goes.
pub fn serve_demo(key: &str, name_and_scopes: (&str, &str), stderr: Stdio) -> (Child, String) {
    let hash = lattice_serve::auth::sha256_hex(key);
    let (name, scopes) = name_and_scopes;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "serve",
            "--model",
            demo_model().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
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
