//! The three formats carry the same audience: JSON (summary + rows), CSV and Parquet (rows
//! with the audience id, target and start; Parquet also the summary in its metadata).

use crate::common;

use common::{C, demo, world};
use lattice_audience::{Format, ROW_GROUP, SUMMARY_KEY, select, write};
use lattice_data::arrow::array::{Array, AsArray};
use lattice_data::arrow::datatypes::{Float64Type, Int64Type};
use lattice_data::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

/// (customer id, rank, probability, expected value, holdout, reasons).
type Row = (String, i64, f64, f64, bool, Vec<String>);

fn json_rows(v: &Value) -> Vec<Row> {
    v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["customer_id"].as_str().unwrap().to_string(),
                c["rank"].as_i64().unwrap(),
                c["probability"].as_f64().unwrap(),
                c["expected_value"].as_f64().unwrap(),
                c["holdout"].as_bool().unwrap(),
                c["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn csv_rows(bytes: &[u8]) -> (Vec<Row>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, lattice_audience::COLUMNS);
    let mut rows = Vec::new();
    let mut tails = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        rows.push((
            rec[0].to_string(),
            rec[1].parse().unwrap(),
            rec[2].parse().unwrap(),
            rec[4].parse().unwrap(),
            rec[6].parse().unwrap(),
            rec[5].split(';').map(String::from).collect(),
        ));
        tails.push(rec.iter().skip(7).map(String::from).collect());
    }
    (rows, tails)
}

fn parquet_rows(bytes: Vec<u8>) -> (Vec<Row>, Value, usize) {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &bytes).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = b.metadata().clone();
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let summary = kv
        .iter()
        .find(|k| k.key == SUMMARY_KEY)
        .and_then(|k| k.value.clone())
        .unwrap();
    let mut rows = Vec::new();
    for batch in b.build().unwrap() {
        let batch = batch.unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        let ids = col("customer_id");
        let ids = ids.as_string::<i32>();
        let rank = col("rank");
        let rank = rank.as_primitive::<Int64Type>();
        let p = col("probability");
        let p = p.as_primitive::<Float64Type>();
        let ev = col("expected_value");
        let ev = ev.as_primitive::<Float64Type>();
        let hold = col("holdout");
        let hold = hold.as_boolean();
        let reasons = col("reasons");
        let reasons = reasons.as_list::<i32>();
        for r in 0..batch.num_rows() {
            let rs = reasons.value(r);
            let rs = rs.as_string::<i32>();
            rows.push((
                ids.value(r).to_string(),
                rank.value(r),
                p.value(r),
                ev.value(r),
                hold.value(r),
                (0..rs.len()).map(|k| rs.value(k).to_string()).collect(),
            ));
        }
    }
    (
        rows,
        serde_json::from_str(&summary).unwrap(),
        meta.num_row_groups(),
    )
}

#[test]
fn json_csv_and_parquet_carry_the_same_audience() {
    let w = demo();
    let plan = w.plan(json!({
        "audience_id": "coats-2025",
        "target": {"category": "outerwear"},
        "size": {"top": 300},
        "filters": {"channel": "email"},
        "holdout": {"share": 0.1, "include": true},
        "starts_at": "2025-07-01T09:00:00Z"
    }));
    let a = select(&w.source(), &plan);
    let out = |f: Format| write(&a, w.source(), f, Vec::new()).unwrap();

    // serde_json's default float parsing may be one ulp off: compare parsed with parsed, and
    // JSON numbers with a one-ulp tolerance; CSV and Parquet must match exactly.
    let reparsed = |v: &Value| -> Value { serde_json::from_str(&v.to_string()).unwrap() };
    let j: Value = serde_json::from_slice(&out(Format::Json)).unwrap();
    let summary: Value = serde_json::from_str(&serde_json::to_string(&a.summary).unwrap()).unwrap();
    assert_eq!(j["summary"], summary);
    let json = json_rows(&j);
    let rows: Vec<Row> = a
        .rows()
        .zip(&json)
        .map(|((rank, p), r)| {
            let id = w.snapshot.customers[p.index as usize].id.clone();
            (
                id,
                rank as i64,
                p.probability,
                p.expected_value,
                p.control,
                r.5.clone(),
            )
        })
        .collect();
    assert_eq!(json.len(), rows.len());
    let close = |x: f64, y: f64| (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs());
    for (x, y) in json.iter().zip(&rows) {
        assert!(
            x.0 == y.0 && x.1 == y.1 && x.4 == y.4 && x.5 == y.5,
            "{x:?} {y:?}"
        );
        assert!(close(x.2, y.2) && close(x.3, y.3), "{x:?} {y:?}");
    }
    assert_eq!(rows.len(), 300 + a.summary.control_size);
    assert!(a.summary.control_size > 0);
    assert_eq!(rows.iter().filter(|r| r.4).count(), a.summary.control_size);
    let expected: Vec<i64> = (1..=rows.len() as i64).collect();
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), expected);
    assert!(
        rows[0].5[0].starts_with("affinity_outerwear="),
        "{:?}",
        rows[0].5
    );

    let (c, tails) = csv_rows(&out(Format::Csv));
    assert_eq!(c, rows);
    assert!(tails.iter().all(|t| t
        == &[
            "coats-2025",
            "category",
            "",
            "outerwear",
            "2025-07-01T09:00:00Z"
        ]));

    let (p, summary_pq, _) = parquet_rows(out(Format::Parquet));
    assert_eq!(p, rows);
    assert_eq!(reparsed(&summary_pq), j["summary"]);

    // The preview lists the first rows; the summary still covers the whole audience.
    let mut plan = plan;
    plan.preview = Some(5);
    let a5 = select(&w.source(), &plan);
    let j5: Value =
        serde_json::from_slice(&write(&a5, w.source(), Format::Json, Vec::new()).unwrap()).unwrap();
    assert_eq!(json_rows(&j5), json[..5]);
    assert_eq!(j5["summary"]["size"], 300);
    assert_eq!(j5["summary"]["rows"], 5);
}

#[test]
fn parquet_is_written_a_row_group_at_a_time() {
    let cs: Vec<C> = (0..40_000)
        .map(|k| C::new(&format!("c{k:06}"), (k % 997) as f64 / 997.0))
        .collect();
    let w = world(&cs);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": 40_000}})),
    );
    let bytes = write(&a, w.source(), Format::Parquet, Vec::new()).unwrap();
    let (rows, _, groups) = parquet_rows(bytes);
    assert_eq!(rows.len(), 40_000);
    assert_eq!(groups, 40_000usize.div_ceil(ROW_GROUP));
    // Best first, ties in snapshot order.
    assert!(
        rows.windows(2)
            .all(|w| w[0].2 > w[1].2 || (w[0].2 == w[1].2 && w[0].0 < w[1].0))
    );
}

#[test]
fn formats_are_named_by_extension_and_accept_header() {
    use std::path::Path;
    assert_eq!(Format::of_path(Path::new("a.CSV")), Some(Format::Csv));
    assert_eq!(
        Format::of_path(Path::new("a.parquet")),
        Some(Format::Parquet)
    );
    assert_eq!(Format::of_path(Path::new("a.txt")), None);
    assert_eq!(Format::from_accept("text/csv"), Format::Csv);
    assert_eq!(
        Format::from_accept("text/html, application/vnd.apache.parquet;q=0.9"),
        Format::Parquet
    );
    assert_eq!(Format::from_accept("*/*"), Format::Json);
}
