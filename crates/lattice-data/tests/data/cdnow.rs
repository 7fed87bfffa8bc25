//! CDNOW import: row and customer counts of the real files, and the committed Parquet.

use std::path::PathBuf;

use lattice_data::cdnow::import_cdnow;
use lattice_data::validate::{ValidateOptions, validate_dir};

fn training_data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../training-data")
        .join(rel)
}

#[test]
fn imports_master_file() {
    let out = tempfile::tempdir().unwrap();
    let s = import_cdnow(&training_data("cdnow/CDNOW_master.txt"), out.path(), false).unwrap();
    assert_eq!((s.rows, s.customers), (69_659, 23_570));
    let v = validate_dir(out.path(), &ValidateOptions::default());
    assert!(v.is_ok(), "{:#?}", v.issues);
    let e = v.summary.events.unwrap();
    assert_eq!((e.rows, e.customers), (69_659, 23_570));
    assert_eq!(e.first_ts_us.map(lattice_ts), Some("1997-01-01".into()));
    assert_eq!(e.last_ts_us.map(lattice_ts), Some("1998-06-30".into()));
}

#[test]
fn imports_sample_file() {
    let out = tempfile::tempdir().unwrap();
    let s = import_cdnow(
        &training_data("cdnow-sample/CDNOW_sample.txt"),
        out.path(),
        false,
    )
    .unwrap();
    assert_eq!((s.rows, s.customers), (6_919, 2_357));
}

#[test]
fn committed_parquet_matches_the_import() {
    for (dir, rows, customers) in [("cdnow", 69_659, 23_570), ("cdnow-sample", 6_919, 2_357)] {
        let v = validate_dir(&training_data(dir), &ValidateOptions::default());
        assert!(v.is_ok(), "{dir}: {:#?}", v.issues);
        let e = v.summary.events.unwrap();
        assert_eq!((e.rows, e.customers), (rows, customers), "{dir}");
    }
}

#[test]
fn bad_lines_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cdnow.txt");
    std::fs::write(&f, "00001 19970101  1   11.77\n00002 19971332  1   12.00\n").unwrap();
    let err = import_cdnow(&f, dir.path(), false).unwrap_err().to_string();
    assert!(
        err.contains("cdnow.txt: line 2: date \"19971332\" is not YYYYMMDD"),
        "{err}"
    );
    std::fs::write(&f, "00001 19970101  1\n").unwrap();
    let err = import_cdnow(&f, dir.path(), false).unwrap_err().to_string();
    assert!(err.contains("line 1: expected 4 columns"), "{err}");
    let err = import_cdnow(&dir.path().join("nope.txt"), dir.path(), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.txt"), "{err}");
}

fn lattice_ts(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}
