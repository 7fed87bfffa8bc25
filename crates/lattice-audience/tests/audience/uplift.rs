//! Holdout groups measured afterwards: an audience with a control group is written, purchases
//! are planted after its start (treated customers convert more often), and `measure` must
//! count exactly the planted conversions and bracket the planted difference.

use crate::common;

use chrono::TimeDelta;
use common::{C, DAY_US, world};
use lattice_audience::uplift::{UpliftOptions, measure, read_audience};
use lattice_audience::{Format, select, write};
use lattice_data::write::{EventRow, EventsWriter};
use serde_json::json;

/// A small deterministic generator (no dependency on rand's stream stability).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn uplift_counts_planted_conversions_and_brackets_the_true_difference() {
    let cs: Vec<C> = (0..6000)
        .map(|k| C::new(&format!("c{k:05}"), ((k * 7919) % 6000) as f64 / 6000.0))
        .collect();
    let w = world(&cs);
    let plan = w.plan(json!({
        "audience_id": "coats-test",
        "target": {"category": "outerwear"},
        "size": {"top": 3000},
        "holdout": {"share": 0.3, "include": true},
        "starts_at": "2025-07-01T00:00:00Z"
    }));
    let a = select(&w.source(), &plan);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("audience.csv");
    let parquet = dir.path().join("audience.parquet");
    std::fs::write(
        &csv,
        write(&a, w.source(), Format::Csv, Vec::new()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &parquet,
        write(&a, w.source(), Format::Parquet, Vec::new()).unwrap(),
    )
    .unwrap();

    // Plant: treated convert (outerwear purchase within 28 days) at 30%, control at 20%.
    // Noise that must not count: purchases in another category, before the start, after the
    // window, views, and purchases by customers outside the audience.
    let start = plan.starts_at.timestamp_micros();
    let mut rng = Lcg(42);
    let mut planted = [0usize; 2];
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut ev = EventsWriter::create(&data.join("events.parquet")).unwrap();
    let mut order = 0;
    let mut push = |ev: &mut EventsWriter, id: &str, ts: i64, kind: &str, cat: &str| {
        order += 1;
        let o = format!("o{order}");
        ev.push(&EventRow {
            customer_id: id,
            ts_us: ts,
            event_type: kind,
            category: Some(cat),
            amount: Some(40.0),
            quantity: Some(1.0),
            order_id: Some(&o),
            ..EventRow::default()
        })
        .unwrap();
    };
    let rows: Vec<(String, bool)> = a
        .rows()
        .map(|(_, p)| (w.snapshot.customers[p.index as usize].id.clone(), p.control))
        .collect();
    for (id, control) in &rows {
        let rate = if *control { 0.20 } else { 0.30 };
        if rng.next() < rate {
            planted[usize::from(*control)] += 1;
            let day = (rng.next() * 27.0) as i64 + 1;
            push(&mut ev, id, start + day * DAY_US, "purchase", "outerwear");
            // A second purchase is still one converted customer.
            push(
                &mut ev,
                id,
                start + day * DAY_US + 1000,
                "purchase",
                "outerwear",
            );
        }
        push(&mut ev, id, start + 3 * DAY_US, "purchase", "denim");
        push(&mut ev, id, start - DAY_US, "purchase", "outerwear");
        push(&mut ev, id, start + 40 * DAY_US, "purchase", "outerwear");
        push(&mut ev, id, start + 2 * DAY_US, "view", "outerwear");
    }
    push(&mut ev, "outsider", start + DAY_US, "purchase", "outerwear");
    ev.finish().unwrap();

    let opts = UpliftOptions {
        window_days: 28,
        ..UpliftOptions::default()
    };
    let from_csv = read_audience(&csv).unwrap();
    assert_eq!(from_csv, read_audience(&parquet).unwrap());
    assert_eq!(from_csv.audience_id, "coats-test");
    assert_eq!(from_csv.category.as_deref(), Some("outerwear"));
    assert_eq!(from_csv.starts_at, plan.starts_at);
    let r = measure(&from_csv, &data, &opts).unwrap();
    assert_eq!(r.treated.customers, 3000);
    assert_eq!(r.control.customers, a.summary.control_size);
    assert_eq!(r.treated.converted, planted[0]);
    assert_eq!(r.control.converted, planted[1]);
    assert!(r.difference_low < 0.10 && 0.10 < r.difference_high, "{r:?}");
    assert!(r.significant, "{r:?}");
    assert!(r.window_complete);
    assert!((r.incremental_conversions - r.difference * 3000.0).abs() < 1e-9);

    // Any purchase: the denim purchases 3 days in convert everyone.
    let any = measure(
        &from_csv,
        &data,
        &UpliftOptions {
            any_purchase: true,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(any.treated.converted, 3000);
    assert!(!any.significant);

    // A window that has not closed yet is reported as such.
    let long = measure(
        &from_csv,
        &data,
        &UpliftOptions {
            window_days: 60,
            ..opts.clone()
        },
    )
    .unwrap();
    assert!(!long.window_complete);
    let _ = TimeDelta::days(1);
}

#[test]
fn an_audience_without_its_control_group_is_refused_with_the_fix() {
    let w = world(&[C::new("a", 0.5), C::new("b", 0.4), C::new("c", 0.3)]);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": 3}})),
    );
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    std::fs::write(
        &csv,
        write(&a, w.source(), Format::Csv, Vec::new()).unwrap(),
    )
    .unwrap();
    let e = read_audience(&csv).unwrap_err().to_string();
    assert!(
        e.contains("a.csv") && e.contains("--include-holdout"),
        "{e}"
    );
    let bad = dir.path().join("b.csv");
    std::fs::write(
        &bad,
        "customer_id,holdout,audience_id,category,starts_at\nx,maybe,a,,2025-07-01T00:00:00Z\n",
    )
    .unwrap();
    let e = read_audience(&bad).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("maybe"), "{e}");
    let e = read_audience(&dir.path().join("a.xlsx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(".csv or .parquet"), "{e}");
}
