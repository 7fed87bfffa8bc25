//! Model directories: written atomically, verified on load, refused when tampered with.

use std::path::PathBuf;

use lattice_models::artifact::{REPORT, SNAPSHOT, WEIGHTS, load, verify};
use lattice_models::pipeline::TrainConfig;
use lattice_models::train::{TrainOptions, train};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample")
}

fn trained(out: &std::path::Path) {
    let opts = TrainOptions {
        name: "t".into(),
        config: TrainConfig::default(),
        as_of_us: None,
        backtest: false,
        // The page itself is lattice-report's (tested there); here it is one more file.
        report: Some(|m, _, _| format!("<html>report of {}</html>", m.name)),
        force: false,
        cluster: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(train(&sample(), out, &opts)).unwrap();
}

#[test]
fn round_trip_then_tamper_detection() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models/t");
    trained(&model);
    let entries: Vec<String> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(entries, ["t"], "no temporary directory is left behind");

    let (m, models) = load(&model).unwrap();
    assert_eq!(m.customers, 5000);
    assert_eq!(m.categories.len(), 8);
    assert_eq!(m.feature_schema.len(), models.fitted.feature_names.len());
    // The churn model's inputs carry its standardisation; the per-category rhythm features
    // only the affinity models read carry none.
    let standardised: Vec<&str> = m
        .feature_schema
        .iter()
        .filter(|f| f.mean.is_some() && f.std.is_some())
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(standardised, models.fitted.churn.features);
    assert!(
        m.feature_schema
            .iter()
            .any(|f| f.name.starts_with("cat_days_since_"))
    );
    assert!(m.files.contains_key(WEIGHTS) && m.files.contains_key(SNAPSHOT));
    assert_eq!(m.as_of, "2025-06-30T23:59:59Z");
    assert!(models.fitted.churn.weights.iter().all(|w| w.is_finite()));

    // report.html is written into the directory and checksummed like every other file.
    assert!(m.files.contains_key(REPORT), "{:?}", m.files.keys());
    let html = std::fs::read_to_string(model.join(REPORT)).unwrap();
    assert_eq!(html, "<html>report of t</html>");
    std::fs::write(model.join(REPORT), html.replace("report", "rep0rt")).unwrap();
    let err = verify(&model).unwrap_err().to_string();
    assert!(
        err.contains("report.html") && err.contains("checksum mismatch"),
        "{err}"
    );
    std::fs::write(model.join(REPORT), html).unwrap();
    verify(&model).unwrap();

    // Flip one byte of the snapshot: the model must be refused, naming the file.
    let snap = model.join(SNAPSHOT);
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, bytes).unwrap();
    let err = verify(&model).unwrap_err().to_string();
    assert!(
        err.contains("snapshot.parquet") && err.contains("checksum mismatch"),
        "{err}"
    );

    // A missing manifest is a clear error too.
    std::fs::remove_file(model.join("manifest.json")).unwrap();
    let err = load(&model).unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn retraining_replaces_the_model_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    trained(&model);
    let first = verify(&model).unwrap().created_at;
    trained(&model);
    let m = verify(&model).unwrap();
    assert!(m.created_at >= first);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["m"]);
}
