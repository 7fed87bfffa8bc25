//! End-to-end: the real `lattice` binary on real files.

use crate::common::{lattice, s, text};

use std::path::PathBuf;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn validate_sample_cdnow_and_a_broken_file() {
    let o = lattice(&["validate", "--data", s(&repo("training-data/sample"))]);
    let (out, _) = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("5000 customers") && out.contains("is valid"),
        "{out}"
    );

    let o = lattice(&["validate", "--data", s(&repo("training-data/cdnow"))]);
    assert!(o.status.success());
    assert!(
        text(&o)
            .0
            .contains("69659 rows in 1 file(s), 23570 customers")
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.parquet"), "not parquet").unwrap();
    let o = lattice(&["validate", "--data", s(dir.path())]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("error[not-parquet]") && err.contains("events.parquet: not a Parquet file"),
        "{err}"
    );
}

#[test]
fn generate_is_deterministic_and_valid() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        let o = lattice(&[
            "generate",
            "--customers",
            "300",
            "--seed",
            "9",
            "--out",
            s(d.path()),
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    for f in [
        "events.parquet",
        "customers.parquet",
        "truth.parquet",
        "actions.toml",
        "lattice.toml",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        lattice(&["validate", "--data", s(a.path())])
            .status
            .success()
    );
}

#[test]
fn score_the_committed_demo_model_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.csv");
    let o = lattice(&[
        "score",
        "--model",
        s(&repo("models/demo")),
        "--out",
        s(&out),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for col in [
        "customer_id",
        "churn_probability",
        "p_alive",
        "expected_purchases",
        "clv",
        "affinity_outerwear",
        "churn_reasons",
        "best_hour_of_day",
        "top3_hours_of_week",
        "best_hour_of_week_email",
    ] {
        assert!(header.contains(&col), "missing {col} in {header:?}");
    }
    assert_eq!(lines.count(), 5000);
}

#[test]
fn score_refuses_a_missing_model_clearly() {
    let o = lattice(&[
        "score",
        "--model",
        "/nonexistent/model",
        "--out",
        "/tmp/x.parquet",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("/nonexistent/model/manifest.json"), "{err}");
}
