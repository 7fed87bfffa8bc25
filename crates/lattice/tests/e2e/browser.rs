//! The audience-builder page in a real headless Chromium, driven over WebDriver by Debian's
//! `chromedriver` (packages `chromium` and `chromium-driver`; `.ci/run` installs them). The
//! real `lattice serve` binary serves the demo model on a free port; the test types a key and
//! builds an audience with the keyboard only, then checks every number the page shows against
//! the API's own answer to the same request, and the downloaded CSV against the API's CSV.
//!
//! `LATTICE_CHROMEDRIVER` and `LATTICE_CHROMIUM` override the binaries;
//! `LATTICE_SKIP_BROWSER=1` skips the test (for machines without a browser).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;

const KEY: &str = "browser-test-key";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills the child processes when the test ends, passed or not.
struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 exchange: (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then exactly Content-Length bytes (chromedriver keeps the connection
    // open), or chunks up to the last one, or to the end.
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut body = Vec::new();
    if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).unwrap();
    } else if head.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n =
                usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, body)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session, closed (and its browser with it) when dropped.
struct Driver {
    addr: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| http(&self.addr, "DELETE", &path, &[], ""));
    }
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(&self.addr, method, &path, body)
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Types into an element (WebDriver focuses it first): keyboard input.
    fn keys(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        );
    }

    fn clear(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/clear"), json!({}));
    }

    fn script(&self, source: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": source, "args": []}),
        )
    }

    fn press(&self, key: &str) {
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        );
    }

    fn wait_for(&self, what: &str, source: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.script(source);
            if !v.is_null() && v != false {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let status = self.script("return document.getElementById('status').textContent");
                panic!("timed out waiting for {what}; the page says {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn call(addr: &str, method: &str, path: &str, body: Value) -> Value {
    let text = if method == "GET" || method == "DELETE" {
        String::new()
    } else {
        body.to_string()
    };
    let (status, out) = http(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        &text,
    );
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    assert!(status == 200, "WebDriver {method} {path}: {status} {v}");
    v["value"].clone()
}

fn binary(env: &str, default: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(p.into());
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(default))
            .find(|p| p.exists())
    });
    found.or_else(|| Some(PathBuf::from("/usr/bin").join(default)).filter(|p| p.exists()))
}

fn start_server(kill: &mut Kill, events_db: &std::path::Path) -> String {
    let (child, addr) =
        common::serve_demo(KEY, ("marketing", "audience"), events_db, Stdio::null());
    kill.0.push(child);
    addr
}

fn start_driver(kill: &mut Kill, chromedriver: &Path) -> String {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
    kill.0.push(child);
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    addr
}

/// The API's own answer to `request`: (JSON with a 20-row preview, CSV of the whole audience).
fn api(addr: &str, request: &Value) -> (Value, String) {
    let auth = format!("Bearer {KEY}");
    let mut preview = request.clone();
    preview["preview"] = json!(20);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (s, body) = http(
        addr,
        "POST",
        "/v1/audiences?format=json",
        &headers,
        &preview.to_string(),
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let json = serde_json::from_slice(&body).unwrap();
    let (s, body) = http(
        addr,
        "POST",
        "/v1/audiences?format=csv",
        &headers,
        &request.to_string(),
    );
    assert_eq!(s, 200);
    (json, String::from_utf8(body).unwrap())
}

/// Equal up to the last bit or two of serde_json's float parsing (the page's numbers are
/// JavaScript's shortest round-trip text of the very same doubles).
fn same(page: &Value, api: &Value) -> bool {
    let p: f64 = page.as_str().unwrap_or("").parse().unwrap_or(f64::NAN);
    let a = api.as_f64().unwrap_or(f64::NAN);
    (p - a).abs() <= 4.0 * f64::EPSILON * a.abs().max(1.0)
}

/// CSV rows without the start time (the page's request and the test's differ by seconds).
fn csv_rows(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect()
}

#[test]
fn the_audience_builder_page_matches_the_api() {
    if std::env::var("LATTICE_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("LATTICE_SKIP_BROWSER=1: skipping the browser test");
        return;
    }
    let (Some(chromedriver), Some(chromium)) = (
        binary("LATTICE_CHROMEDRIVER", "chromedriver"),
        binary("LATTICE_CHROMIUM", "chromium"),
    ) else {
        panic!(
            "the browser test needs chromium and chromedriver: `apt-get install chromium \
             chromium-driver` (`.ci/run` does), or LATTICE_SKIP_BROWSER=1 to skip it"
        );
    };
    let mut kill = Kill(Vec::new());
    let state = tempfile::tempdir().unwrap();
    let server = start_server(&mut kill, &state.path().join("events.db"));
    let driver_addr = start_driver(&mut kill, &chromedriver);
    let downloads = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,2400", format!("--user-data-dir={}", profile.path().display())],
            "prefs": {"download.default_directory": downloads.path(),
                      "download.prompt_for_download": false}
        }
    }}});
    let session = call(&driver_addr, "POST", "/session", caps);
    // Dropped before `kill`: the session (and the browser) closes before chromedriver stops.
    let d = Driver {
        addr: driver_addr,
        session: session["sessionId"].as_str().unwrap().to_string(),
    };
    d.call(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Browser.setDownloadBehavior",
               "params": {"behavior": "allow", "downloadPath": downloads.path()}}),
    );
    drive(&d, &server, downloads.path());
}

fn drive(d: &Driver, server: &str, downloads: &Path) {
    d.call("POST", "/url", json!({"url": format!("http://{server}/")}));
    // Every control has a label.
    let unlabelled = d.script(
        "return [...document.querySelectorAll('input, select')]
            .filter(e => !(e.labels && e.labels.length)).map(e => e.id)",
    );
    assert_eq!(unlabelled, json!([]), "controls without a label");

    // Keyboard only: type the key, Tab to the button, Enter.
    d.keys("#api-key", KEY);
    d.press("\u{E004}");
    assert_eq!(
        d.script("return document.activeElement.id"),
        "connect-button"
    );
    d.press("\u{E007}");
    d.wait_for(
        "the builder form",
        "return !document.getElementById('builder').hidden && \
         document.getElementById('category').options.length > 0",
    );
    let unlabelled = d.script(
        "return [...document.querySelectorAll('#builder input, #builder select')]
            .filter(e => !(e.labels && e.labels.length)).map(e => e.id)",
    );
    assert_eq!(unlabelled, json!([]), "controls without a label");

    // Outerwear, the best 300 gold and platinum customers with email consent, not contacted
    // in the last 7 days, 10% held out.
    d.keys("#category", "outerwear");
    assert_eq!(
        d.script("return document.getElementById('category').value"),
        "outerwear"
    );
    d.clear("#top");
    d.keys("#top", "300");
    let tiers = d.script("return [...document.querySelectorAll('#tiers input')].map(b => b.value)");
    for (k, t) in tiers.as_array().unwrap().iter().enumerate() {
        if t == "gold" || t == "platinum" {
            d.keys(&format!("#tier-{k}"), " ");
        }
    }
    d.keys("#channel", "email");
    d.keys("#contacted-days", "7");
    d.clear("#holdout");
    d.keys("#holdout", "0.1");
    d.keys("#audience-id", "browser-test\u{E007}");
    d.wait_for(
        "the audience",
        "return document.getElementById('status').textContent.startsWith('Built')",
    );

    let page = d.script(
        "const v = id => document.getElementById(id).dataset.value;
         const cells = sel => [...document.querySelectorAll(sel)];
         return {
           request: JSON.parse(document.getElementById('result').dataset.request),
           size: v('size'), control: v('control-size'), expected: v('expected'),
           low: v('expected-low'), high: v('expected-high'),
           lift_backtest: v('lift-backtest'), lift_estimated: v('lift-estimated'),
           expected_text: document.getElementById('expected').textContent,
           funnel: cells('#funnel tbody tr').map(r => [r.dataset.step,
             r.cells[2].dataset.value, r.cells[3].dataset.value]),
           rows: cells('#preview tbody tr').map(r => [r.dataset.customer,
             r.cells[2].dataset.value, r.cells[3].dataset.value]),
           lift_points: document.querySelectorAll('#lift-chart polyline').length,
           funnel_bars: document.querySelectorAll('#funnel-chart rect').length,
         };",
    );
    let request = &page["request"];
    assert_eq!(
        *request,
        json!({"target": {"category": "outerwear"}, "size": {"top": 300},
               "filters": {"tiers": ["gold", "platinum"], "channel": "email",
                           "exclude_contacted_within_days": 7},
               "holdout": {"share": 0.1}, "audience_id": "browser-test"}),
        "the page sent what was typed"
    );

    let (answer, csv) = api(server, request);
    let s = &answer["summary"];
    assert_eq!(page["size"], s["size"].to_string());
    assert_eq!(page["control"], s["control_size"].to_string());
    let e = &s["expected_conversions"];
    for (p, a) in [
        (&page["expected"], &e["mean"]),
        (&page["low"], &e["low"]),
        (&page["high"], &e["high"]),
        (&page["lift_backtest"], &s["lift"]["backtest"]),
        (&page["lift_estimated"], &s["lift"]["estimated"]),
    ] {
        assert!(same(p, a), "page {p} vs API {a}");
    }
    // What the marketer reads: the expected conversions to one decimal.
    let shown: f64 = page["expected_text"]
        .as_str()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(
        (shown - e["mean"].as_f64().unwrap()).abs() <= 0.05 + 1e-9,
        "{shown} vs {e}"
    );

    let api_funnel: Vec<Value> = s["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| json!([f["step"], f["before"].to_string(), f["after"].to_string()]))
        .collect();
    assert_eq!(page["funnel"], json!(api_funnel));
    assert_eq!(
        page["funnel"].as_array().unwrap().len(),
        6,
        "{}",
        page["funnel"]
    );
    let customers = answer["customers"].as_array().unwrap();
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), customers.len());
    assert_eq!(rows.len(), 20);
    for (r, c) in rows.iter().zip(customers) {
        assert_eq!(r[0], c["customer_id"]);
        assert!(
            same(&r[1], &c["probability"]) && same(&r[2], &c["expected_value"]),
            "{r} {c}"
        );
    }
    assert_eq!(page["lift_points"], 1, "the lift chart is drawn");
    assert_eq!(page["funnel_bars"], 6, "the funnel chart is drawn");

    // Download the CSV with the keyboard: the same rows as the API's CSV.
    d.keys("#download", "\u{E007}");
    let file = downloads.join("browser-test.csv");
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no download in {}: {:?}",
            downloads.display(),
            std::fs::read_dir(downloads).map(|r| r.count())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let downloaded = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv_rows(&downloaded), csv_rows(&csv));
    assert_eq!(
        downloaded.lines().count() - 1,
        s["size"].as_u64().unwrap() as usize
    );
}
