//! Issue 19: features, labels, training and scoring on an Apache DataFusion Ballista cluster.
//! The in-process standalone cluster against the single-node run on the sample; a real
//! scheduler and two executors started as `lattice cluster ...` processes on loopback; an
//! executor killed mid-job; an unreachable scheduler.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_cluster::Cluster;
use lattice_features::History;
use lattice_features::history::aggregates_of_batch;
use lattice_features::sql::GapWindow;

use crate::common::{lattice, s, text};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample")
}

const DAY_US: i64 = 86_400_000_000;

/// Equal within 1e-9 relative (absolute near zero).
fn close(a: f64, b: f64) -> bool {
    close_to(a, b, 1e-9)
}

fn close_to(a: f64, b: f64, tolerance: f64) -> bool {
    a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// Sums are compared within the tolerance; every other number (counts, instants) exactly.
fn is_sum(key: &str) -> bool {
    ["spend", "revenue", "amount", "sum"]
        .iter()
        .any(|k| key.contains(k))
}

fn assert_same_json(a: &serde_json::Value, b: &serde_json::Value, key: &str, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (k, v) in x {
                assert_same_json(v, &y[k], k, &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_same_json(v, w, key, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if is_sum(key) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(close(x, y), "{at}: {x} vs {y}");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn assert_same_aggregates(
    a: &[(String, lattice_features::Aggregates)],
    b: &[(String, lattice_features::Aggregates)],
) {
    assert_eq!(a.len(), b.len());
    for ((ia, x), (ib, y)) in a.iter().zip(b) {
        assert_eq!(ia, ib);
        assert_same_json(
            &serde_json::to_value(x).unwrap(),
            &serde_json::to_value(y).unwrap(),
            "",
            ia,
        );
    }
}

#[test]
fn per_customer_gap_window_equals_the_ordered_one_on_the_sample() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = History::open(&sample()).await.unwrap();
        let as_of = h.last_event_us;
        let cats = h.categories(as_of).await.unwrap();
        let read = |batches: Vec<datafusion::arrow::array::RecordBatch>| {
            let mut out = Vec::new();
            for b in &batches {
                out.extend(aggregates_of_batch(b, cats.len()).unwrap());
            }
            out.sort_by(|x, y| x.0.cmp(&y.0));
            out
        };
        let ordered = read(
            h.aggregate_batches_with(as_of, &cats, 1.0, GapWindow::Ordered)
                .await
                .unwrap(),
        );
        let per_customer = read(
            h.aggregate_batches_with(as_of, &cats, 1.0, GapWindow::PerCustomer)
                .await
                .unwrap(),
        );
        assert!(ordered.len() > 1000, "{}", ordered.len());
        assert!(ordered.iter().any(|(_, a)| a.gap_sq_sum_days > 0.0));
        assert_same_aggregates(&ordered, &per_customer);
    });
}

#[test]
fn standalone_cluster_aggregates_and_labels_equal_the_single_node_ones() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let local = History::open(&sample()).await.unwrap();
        let ctx = lattice_cluster::connect(&Cluster::Standalone)
            .await
            .unwrap();
        let remote = History::open_on(&sample(), Some(ctx)).await.unwrap();
        assert!(remote.on_cluster());
        assert_eq!(remote.gap_window(), GapWindow::PerCustomer);
        for back_days in [0, 120] {
            let as_of = local.last_event_us - back_days * DAY_US;
            let cats = local.categories(as_of).await.unwrap();
            let a = local.aggregates(as_of, &cats).await.unwrap();
            let b = remote.aggregates(as_of, &cats).await.unwrap();
            assert_same_aggregates(&a, &b);
            // The sampled aggregation uses lattice_unit on the executor.
            let a = local.sampled_aggregates(as_of, &cats, 0.3).await.unwrap();
            let b = remote.sampled_aggregates(as_of, &cats, 0.3).await.unwrap();
            assert!(!a.is_empty() && a.len() < local.aggregates(as_of, &cats).await.unwrap().len());
            assert_same_aggregates(&a, &b);
            if back_days > 0 {
                let a = local.labels(as_of, 60, 28, &cats).await.unwrap();
                let b = remote.labels(as_of, 60, 28, &cats).await.unwrap();
                assert!(!a.is_empty());
                assert_eq!(a, b, "labels at {back_days} days before the end");
                let a = local
                    .sampled_labels(as_of, 60, 28, &cats, 0.3)
                    .await
                    .unwrap();
                let b = remote
                    .sampled_labels(as_of, 60, 28, &cats, 0.3)
                    .await
                    .unwrap();
                assert_eq!(a, b, "sampled labels");
            }
        }
    });
}

/// customer id -> (column -> value) of every Float64 column of a Parquet file or a directory
/// of part files.
fn read_floats(path: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = BTreeMap::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b.column_by_name("customer_id").unwrap();
            let ids = datafusion::arrow::compute::cast(ids, &DataType::Utf8).unwrap();
            let ids = ids.as_string::<i32>();
            for r in 0..b.num_rows() {
                let mut row = BTreeMap::new();
                for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                    if field.data_type() == &DataType::Float64 && !col.is_null(r) {
                        row.insert(
                            field.name().clone(),
                            col.as_primitive::<Float64Type>().value(r),
                        );
                    }
                }
                let before = out.insert(ids.value(r).to_string(), row);
                assert!(before.is_none(), "customer {} twice", ids.value(r));
            }
        }
    }
    out
}

/// Every customer of `a` is in `b` with the same value (within 1e-9) in each of `a`'s columns
/// `b` has.
fn assert_same_table(
    a: &BTreeMap<String, BTreeMap<String, f64>>,
    b: &BTreeMap<String, BTreeMap<String, f64>>,
    columns_at_least: usize,
) {
    assert_similar_table(a, b, columns_at_least, 1e-9);
}

fn assert_similar_table(
    a: &BTreeMap<String, BTreeMap<String, f64>>,
    b: &BTreeMap<String, BTreeMap<String, f64>>,
    columns_at_least: usize,
    tolerance: f64,
) {
    assert_eq!(a.len(), b.len(), "customers");
    for (id, x) in a {
        let y = b.get(id).unwrap_or_else(|| panic!("{id} missing"));
        let shared: Vec<&String> = x.keys().filter(|k| y.contains_key(*k)).collect();
        assert!(shared.len() >= columns_at_least, "{id}: columns {shared:?}");
        for k in shared {
            assert!(
                close_to(x[k], y[k], tolerance),
                "{id} {k}: {} vs {}",
                x[k],
                y[k]
            );
        }
    }
}

fn ok(o: &Output, what: &str) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "{what} failed:\n{out}\n{err}");
    out
}

#[test]
fn standalone_features_and_scores_equal_the_single_node_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let data = sample();
    // Features.
    ok(
        &lattice(&["features", "--data", s(&data), "--out", s(&p("f1.parquet"))]),
        "features",
    );
    ok(
        &lattice(&[
            "features",
            "--data",
            s(&data),
            "--out",
            s(&p("f2.parquet")),
            "--cluster",
            "standalone",
        ]),
        "features --cluster standalone",
    );
    let (f1, f2) = (read_floats(&p("f1.parquet")), read_floats(&p("f2.parquet")));
    assert_same_table(&f1, &f2, 40);

    // Scores of one model: single-node (the snapshot) against the cluster's aggregates.
    ok(
        &lattice(&[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&p("m")),
            "--no-backtest",
        ]),
        "train",
    );
    ok(
        &lattice(&["score", "--model", s(&p("m")), "--out", s(&p("s1.parquet"))]),
        "score",
    );
    let out = ok(
        &lattice(&[
            "score",
            "--model",
            s(&p("m")),
            "--data",
            s(&data),
            "--cluster",
            "standalone",
            "--out",
            s(&p("s2")),
        ]),
        "score --cluster standalone",
    );
    assert!(out.contains("part files"), "{out}");
    assert!(p("s2").join("_SUCCESS").is_file());
    let (s1, s2) = (read_floats(&p("s1.parquet")), read_floats(&p("s2")));
    // churn, p_alive, expected purchases, CLV and one affinity per category.
    assert_same_table(&s1, &s2, 5);

    // A model trained (with its backtest) on the cluster scores every customer as the
    // single-node one does, to within what fits on inputs equal to 1e-9 can move (1e-6).
    ok(
        &lattice(&[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&p("m2")),
            "--cluster",
            "standalone",
        ]),
        "train --cluster standalone",
    );
    ok(
        &lattice(&[
            "score",
            "--model",
            s(&p("m2")),
            "--out",
            s(&p("s3.parquet")),
        ]),
        "score m2",
    );
    ok(
        &lattice(&["train", "--data", s(&data), "--out", s(&p("m3"))]),
        "train with backtest",
    );
    ok(
        &lattice(&[
            "score",
            "--model",
            s(&p("m3")),
            "--out",
            s(&p("s4.parquet")),
        ]),
        "score m3",
    );
    assert_similar_table(
        &read_floats(&p("s4.parquet")),
        &read_floats(&p("s3.parquet")),
        5,
        1e-6,
    );

    // The output rules of `score` hold: what is not a scores directory is refused.
    let precious = p("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep").unwrap();
    let o = lattice(&[
        "score",
        "--model",
        s(&p("m")),
        "--data",
        s(&data),
        "--cluster",
        "standalone",
        "--out",
        s(&precious),
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("--force") && err.contains("_SUCCESS"), "{err}");
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "keep"
    );
}

/// Child processes killed when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, within: Duration) {
    let until = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scheduler and `executors` executors as `lattice cluster` processes on loopback; returns
/// them, the scheduler's address and the executors' work directories.
fn start_cluster(root: &Path, executors: usize) -> (Procs, String, Vec<PathBuf>) {
    let mut procs = Procs(Vec::new());
    let mut scheduler = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "cluster",
            "scheduler",
            "--bind",
            "127.0.0.1:0",
            "--executor-timeout-seconds",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = scheduler.stdout.take().unwrap();
    procs.0.push(scheduler);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the scheduler says where it listens");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line:?}");
    let mut dirs = Vec::new();
    for i in 0..executors {
        let dir = root.join(format!("executor-{i}"));
        let (port, grpc) = (free_port(), free_port());
        let (port_s, grpc_s) = (port.to_string(), grpc.to_string());
        let child = Command::new(env!("CARGO_BIN_EXE_lattice"))
            .args([
                "cluster",
                "executor",
                "--scheduler",
                addr.as_str(),
                "--port",
                port_s.as_str(),
                "--grpc-port",
                grpc_s.as_str(),
                "--concurrent-tasks",
                "2",
                "--memory-limit",
                "1GiB",
                "--work-dir",
                s(&dir),
                "--heartbeat-seconds",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        procs.0.push(child);
        wait_for_port(port, Duration::from_secs(30));
        dirs.push(dir);
    }
    // Registration follows the first heartbeat.
    std::thread::sleep(Duration::from_secs(2));
    (procs, addr, dirs)
}

/// Runs `lattice args` with a time limit; killed and failed past it.
fn lattice_within(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_within(child, limit, args)
}

fn wait_within(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    let until = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            let (out, err) = text(&o);
            panic!("{what:?} took longer than {limit:?}:\n{out}\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_scheduler_and_two_executors_train_and_score_the_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let (_procs, addr, _) = start_cluster(tmp.path(), 2);
    let cluster = format!("df://{addr}");
    let cluster = cluster.as_str();
    let data = sample();
    let limit = Duration::from_secs(600);
    let out = ok(
        &lattice_within(
            &[
                "train",
                "--data",
                s(&data),
                "--out",
                s(&p("m")),
                "--cluster",
                cluster,
            ],
            limit,
        ),
        "train on the cluster",
    );
    assert!(out.contains("trained"), "{out}");
    ok(
        &lattice_within(
            &[
                "score",
                "--model",
                s(&p("m")),
                "--data",
                s(&data),
                "--cluster",
                cluster,
                "--out",
                s(&p("scores")),
            ],
            limit,
        ),
        "score on the cluster",
    );
    assert!(p("scores").join("_SUCCESS").is_file());
    // The same model scored from its snapshot (single node) gives the same scores.
    ok(
        &lattice(&["score", "--model", s(&p("m")), "--out", s(&p("s.parquet"))]),
        "score",
    );
    assert_same_table(&read_floats(&p("s.parquet")), &read_floats(&p("scores")), 5);
}

#[test]
fn an_executor_killed_mid_job_retries_or_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    // A world big enough that the job is still running when the executor dies.
    ok(
        &lattice(&[
            "generate",
            "--customers",
            "20000",
            "--seed",
            "19",
            "--out",
            s(&p("world")),
        ]),
        "generate",
    );
    ok(
        &lattice(&[
            "train",
            "--data",
            s(&p("world")),
            "--out",
            s(&p("m")),
            "--no-backtest",
        ]),
        "train",
    );
    ok(
        &lattice(&[
            "score",
            "--model",
            s(&p("m")),
            "--out",
            s(&p("single.parquet")),
        ]),
        "score",
    );
    let (mut procs, addr, dirs) = start_cluster(tmp.path(), 2);
    let cluster = format!("df://{addr}");
    let cluster = cluster.as_str();
    let child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "score",
            "--model",
            s(&p("m")),
            "--data",
            s(&p("world")),
            "--cluster",
            cluster,
            "--out",
            s(&p("scores")),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the first executor once it has written shuffle output of this job (or after 20 s).
    let until = Instant::now() + Duration::from_secs(20);
    let busy = |d: &Path| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some());
    while !busy(&dirs[0]) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_mid_job = busy(&dirs[0]);
    let _ = procs.0[1].kill();
    let _ = procs.0[1].wait();
    let o = wait_within(child, Duration::from_secs(300), &["score", "--cluster"]);
    let (out, err) = text(&o);
    eprintln!(
        "executor killed mid-job: {killed_mid_job}; exit {:?}\n{out}\n{err}",
        o.status
    );
    if o.status.success() {
        // Retried on the other executor: the output is complete.
        assert!(p("scores").join("_SUCCESS").is_file());
        assert_same_table(
            &read_floats(&p("single.parquet")),
            &read_floats(&p("scores")),
            5,
        );
    } else {
        // A clear error, and nothing that looks like a complete output.
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!p("scores").exists());
    }
}

#[test]
fn an_unreachable_cluster_fails_fast_naming_its_address() {
    let port = free_port();
    let cluster = format!("df://127.0.0.1:{port}");
    let cluster = cluster.as_str();
    let tmp = tempfile::tempdir().unwrap();
    let data = sample();
    let out = tmp.path().join("f.parquet");
    for args in [
        vec!["features", "--data", s(&data), "--out", s(&out)],
        vec!["evaluate", "--data", s(&data)],
        vec![
            "train",
            "--data",
            s(&data),
            "--out",
            s(&tmp.path().join("m")),
        ],
    ] {
        let mut args = args;
        args.extend(["--cluster", cluster]);
        let started = Instant::now();
        let o = lattice_within(&args, Duration::from_secs(30));
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.contains(cluster) && err.contains("cannot reach"),
            "{err}"
        );
    }
    let o = lattice(&[
        "features",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--cluster",
        "http://x:1",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("df://HOST:PORT"), "{err}");
    assert!(!out.exists());
}
