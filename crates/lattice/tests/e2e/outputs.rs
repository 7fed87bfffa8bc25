//! Class 1 of issue 21: a command that writes refuses to replace what is not its own kind of
//! output unless told `--force`, and an interrupted write leaves the previous complete result.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{demo_model, lattice, s, text};

fn sample() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample")
}

/// A directory holding someone's files (no model in it).
fn precious_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("home");
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("notes.txt"), "do not delete").unwrap();
    std::fs::write(dir.join("docs/thesis.tex"), "\\section{one}").unwrap();
    dir
}

fn assert_untouched(dir: &Path) {
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "do not delete"
    );
    assert!(dir.join("docs/thesis.tex").is_file());
    assert!(!dir.join("manifest.json").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn train_refuses_a_directory_that_is_not_a_model_and_force_replaces_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = precious_dir(root.path());
    let o = lattice(&[
        "train",
        "--data",
        s(&sample()),
        "--out",
        s(&dir),
        "--no-backtest",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("is not a model directory") && err.contains("--force"),
        "{err}"
    );
    assert_untouched(&dir);
    // Nothing left beside it either.
    let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // A model directory is replaced without --force (retraining is the normal case) ...
    let model = root.path().join("model");
    copy_dir(&demo_model(), &model);
    let o = lattice(&[
        "train",
        "--data",
        s(&sample()),
        "--out",
        s(&model),
        "--no-backtest",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    lattice_models::artifact::verify(&model).unwrap();

    // ... and anything else only with --force.
    let o = lattice(&[
        "train",
        "--data",
        s(&sample()),
        "--out",
        s(&dir),
        "--no-backtest",
        "--force",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    lattice_models::artifact::verify(&dir).unwrap();
    assert!(!dir.join("notes.txt").exists());
}

#[test]
fn an_interrupted_train_leaves_the_old_model_complete() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    copy_dir(&demo_model(), &model);
    let before = std::fs::read(model.join("manifest.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args([
            "train",
            "--data",
            s(&sample()),
            "--out",
            s(&model),
            "--no-backtest",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while it writes: as soon as its temporary directory appears.
    let tmp = root.path().join(format!(".model.tmp-{}", child.id()));
    let started = Instant::now();
    while !tmp.exists() && started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(tmp.exists(), "train never started writing");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(model.join("manifest.json")).unwrap(), before);
    lattice_models::artifact::verify(&model).unwrap();
}

#[test]
fn every_writing_command_refuses_what_is_not_its_output() {
    let root = tempfile::tempdir().unwrap();
    let dir = precious_dir(root.path());
    let model = demo_model();

    let o = lattice(&["generate", "--customers", "50", "--out", s(&dir)]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--force"), "{:?}", text(&o));
    assert_untouched(&dir);

    let db = root.path().join("events.db");
    lattice_events::EventStore::open(&db, None).unwrap();
    let o = lattice(&["export-events", "--db", s(&db), "--out", s(&dir)]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("is not an events export"),
        "{:?}",
        text(&o)
    );
    assert_untouched(&dir);

    // Files: a source file (wrong extension), a CSV path holding binary, a directory.
    let notes = dir.join("notes.txt");
    let bin = root.path().join("photo.parquet");
    std::fs::write(&bin, [0xffu8, 0xd8, 0xff, 0xe0, 0, 0]).unwrap();
    for out in [&notes, &bin] {
        let o = lattice(&[
            "score",
            "--model",
            s(&model),
            "--out",
            s(out),
            "--format",
            "csv",
        ]);
        assert!(!o.status.success(), "{out:?}");
        assert!(text(&o).1.contains("--force"), "{:?}", text(&o));
        let o = lattice(&[
            "audience",
            "--model",
            s(&model),
            "--churn",
            "--top",
            "5",
            "--format",
            "csv",
            "--out",
            s(out),
        ]);
        assert!(!o.status.success(), "{out:?}: {:?}", text(&o));
        assert!(text(&o).1.contains("--force"), "{:?}", text(&o));
    }
    assert_untouched(&dir);
    assert_eq!(std::fs::read(&bin).unwrap().len(), 6);
    let o = lattice(&["score", "--model", s(&model), "--out", s(&dir), "--force"]);
    assert!(!o.status.success());
    assert_untouched(&dir);
    let o = lattice(&["evaluate", "--data", s(&sample()), "--out", s(&notes)]);
    assert!(!o.status.success());
    assert_untouched(&dir);

    // Their own outputs are replaced, and --force replaces the rest.
    let scores = root.path().join("scores.csv");
    for _ in 0..2 {
        let o = lattice(&[
            "score",
            "--model",
            s(&model),
            "--out",
            s(&scores),
            "--format",
            "csv",
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    let o = lattice(&["score", "--model", s(&model), "--out", s(&bin), "--force"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(std::fs::read(&bin).unwrap().starts_with(b"PAR1"));
    let export = root.path().join("export");
    for _ in 0..2 {
        let o = lattice(&["export-events", "--db", s(&db), "--out", s(&export)]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    // No temporary files left behind.
    for e in std::fs::read_dir(root.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "{name} left behind");
    }
}

/// A Parquet table another tool wrote (pyarrow, Spark, DuckDB): someone's data, whatever its
/// extension and magic say.
fn foreign_parquet(path: &Path) {
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    let x: ArrayRef = std::sync::Arc::new(Int64Array::from(vec![1, 2, 3]));
    let batch = RecordBatch::try_from_iter([("x", x)]).unwrap();
    let props = WriterProperties::builder()
        .set_created_by("parquet-cpp-arrow version 21.0.0".into())
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn the_other_writing_commands_refuse_what_is_not_their_output_too() {
    let root = tempfile::tempdir().unwrap();
    let dir = precious_dir(root.path());
    let notes = dir.join("notes.txt");
    let theirs = root.path().join("theirs.parquet");
    foreign_parquet(&theirs);
    let their_bytes = std::fs::read(&theirs).unwrap();
    let model = demo_model();
    let cdnow = sample().join("../cdnow-sample/CDNOW_sample.txt");
    let db = root.path().join("events.db");
    lattice_events::EventStore::open(&db, None).unwrap();
    let refused = |args: &[&str]| {
        let o = lattice(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).1.contains("--force"), "{args:?}: {:?}", text(&o));
    };
    let ok = |args: &[&str]| {
        let o = lattice(args);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
    };

    // A source file, and a Parquet table Lattice did not write.
    for out in [&notes, &theirs] {
        refused(&["score", "--model", s(&model), "--out", s(out)]);
        refused(&[
            "export-decisions",
            "--db",
            s(&db),
            "--model",
            s(&model),
            "--out",
            s(out),
        ]);
        refused(&["features", "--data", s(&sample()), "--out", s(out)]);
    }
    refused(&[
        "evaluate",
        "--data",
        s(&sample()),
        "--dump-features",
        s(&dir),
    ]);
    let sim = ["simulate", "--customers", "200", "--days", "14"];
    refused(&with(&sim, &["--json", s(&notes)]));
    refused(&with(&sim, &["--logs-out", s(&dir)]));
    // import writes events.parquet into a data directory: only over one Lattice wrote.
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&theirs, data.join("events.parquet")).unwrap();
    refused(&["import", "cdnow", s(&cdnow), "--out", s(&data)]);
    assert_untouched(&dir);
    assert_eq!(std::fs::read(&theirs).unwrap(), their_bytes);
    assert_eq!(
        std::fs::read(data.join("events.parquet")).unwrap(),
        their_bytes
    );

    // --force replaces the rest; their own outputs are then replaced without it.
    let decisions = root.path().join("decisions.parquet");
    let (report, logs) = (root.path().join("sim.json"), root.path().join("logs"));
    ok(&["import", "cdnow", s(&cdnow), "--out", s(&data), "--force"]);
    ok(&[
        "export-decisions",
        "--db",
        s(&db),
        "--model",
        s(&model),
        "--out",
        s(&theirs),
        "--force",
    ]);
    for _ in 0..2 {
        ok(&["import", "cdnow", s(&cdnow), "--out", s(&data)]);
        ok(&[
            "export-decisions",
            "--db",
            s(&db),
            "--model",
            s(&model),
            "--out",
            s(&decisions),
        ]);
        ok(&with(&sim, &["--json", s(&report), "--logs-out", s(&logs)]));
    }
    assert!(logs.join("logs.parquet").is_file() && logs.join("policy.parquet").is_file());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["customers"], 200);
    assert_untouched(&dir);
    // No temporary files left behind.
    for e in std::fs::read_dir(root.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "{name} left behind");
    }
}
