//! Point-in-time features on hand-made histories: exact values, no leakage, parity between
//! layouts of the same data.

use std::collections::HashMap;
use std::path::Path;

use lattice_data::write::{EventRow, EventsWriter};
use lattice_features::sample::id_unit;
use lattice_features::{FeatureContext, FeatureFrame, History, feature_frame};

const DAY: i64 = 86_400_000_000;
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200_000_000;

fn ev<'a>(c: &'a str, day: i64, t: &'a str) -> EventRow<'a> {
    EventRow {
        customer_id: c,
        ts_us: T0 + day * DAY,
        event_type: t,
        ..Default::default()
    }
}

fn buy<'a>(c: &'a str, day: i64, order: &'a str, cat: &'a str, amount: f64) -> EventRow<'a> {
    EventRow {
        category: Some(cat),
        amount: Some(amount),
        order_id: Some(order),
        quantity: Some(1.0),
        ..ev(c, day, "purchase")
    }
}

fn history_rows() -> Vec<EventRow<'static>> {
    vec![
        buy("a", 0, "o1", "outerwear", 30.0),
        buy("a", 0, "o1", "denim", 20.0),
        EventRow {
            channel: Some("email"),
            action_id: Some("x"),
            ..ev("a", 5, "contact")
        },
        EventRow {
            channel: Some("email"),
            ..ev("a", 5, "email_open")
        },
        buy("a", 10, "o2", "outerwear", 50.0),
        EventRow {
            category: Some("outerwear"),
            amount: Some(50.0),
            ..ev("a", 12, "return")
        },
        buy("a", 40, "o3", "outerwear", 40.0),
        EventRow {
            sentiment: Some(-0.8),
            channel: Some("support"),
            ..ev("a", 45, "support")
        },
        EventRow {
            category: Some("denim"),
            ..ev("a", 48, "view")
        },
        EventRow {
            category: Some("denim"),
            ..ev("b", 20, "view")
        },
        buy("b", 30, "p1", "denim", 10.0),
    ]
}

/// Events after the as_of of day 50: they must change nothing at day 50.
fn future_rows() -> Vec<EventRow<'static>> {
    vec![
        buy("a", 51, "o4", "denim", 99.0),
        EventRow {
            sentiment: Some(0.9),
            ..ev("a", 52, "support")
        },
        buy("z", 53, "q1", "home", 5.0),
        buy("b", 70, "p2", "denim", 10.0),
    ]
}

fn write(path: &Path, rows: &[EventRow<'_>]) {
    let mut w = EventsWriter::create(path).unwrap();
    for r in rows {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
}

fn ctx() -> FeatureContext {
    FeatureContext {
        categories: vec!["outerwear".into(), "denim".into()],
        tiers: vec![],
    }
}

fn frame(location: &Path, as_of_day: i64) -> FeatureFrame {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = History::open_events(location).await.unwrap();
        feature_frame(&h, &HashMap::new(), &ctx(), T0 + as_of_day * DAY)
            .await
            .unwrap()
    })
}

fn get(f: &FeatureFrame, id: &str, name: &str) -> f64 {
    let i = f.customer_ids.iter().position(|c| c == id).unwrap();
    let j = f
        .names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no feature {name}"));
    f.row(i)[j]
}

#[test]
fn exact_values_for_a_hand_made_customer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.parquet");
    write(&p, &history_rows());
    let f = frame(&p, 50);
    assert_eq!(f.customer_ids, ["a", "b"]);
    let a = |n| get(&f, "a", n);
    assert_eq!(a("frequency"), 3.0);
    assert_eq!(a("monetary_total"), 140.0);
    assert!((a("monetary_mean") - 140.0 / 3.0).abs() < 1e-9);
    assert_eq!(a("recency_days"), 10.0);
    assert_eq!(a("tenure_days"), 50.0);
    assert_eq!(a("orders_30d"), 1.0);
    assert_eq!(a("orders_90d"), 3.0);
    assert_eq!(a("gap_mean_days"), 20.0);
    assert!((a("gap_std_days") - 10.0).abs() < 1e-9, "gaps 10 and 30");
    assert_eq!(a("recency_over_gap"), 0.5);
    assert_eq!(a("returns"), 1.0);
    assert_eq!(a("return_ratio"), 0.25);
    assert_eq!(a("share_outerwear"), 0.75);
    assert_eq!(a("share_denim"), 0.25);
    assert_eq!(a("view_share_denim"), 1.0);
    assert_eq!(
        (a("email_contacts"), a("email_opens"), a("email_open_rate")),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(a("support_90d"), 1.0);
    assert_eq!(a("sentiment_mean_90d"), -0.8);
    assert_eq!(a("days_since_negative"), 5.0);
    assert_eq!(a("days_since_last_event"), 2.0);
    assert_eq!(a("views_30d"), 1.0);
    // Outerwear's own rhythm: orders on days 0, 10 and 40.
    assert_eq!(
        [
            "cat_days_since_outerwear",
            "cat_orders_outerwear",
            "cat_orders_30d_outerwear",
            "cat_orders_90d_outerwear",
            "cat_gap_days_outerwear",
            "cat_overdue_outerwear",
            "cat_spend_365d_outerwear",
            "cat_share_trend_outerwear",
        ]
        .map(a),
        [10.0, 3.0, 1.0, 3.0, 20.0, 0.5, 120.0, 0.0]
    );
    assert_eq!(
        (
            a("cat_days_since_denim"),
            a("cat_orders_denim"),
            a("cat_gap_days_denim")
        ),
        (50.0, 1.0, 0.0)
    );
    let b = |n| get(&f, "b", n);
    assert_eq!(
        (b("cat_days_since_outerwear"), b("cat_orders_outerwear")),
        (lattice_features::features::NEVER_DAYS, 0.0)
    );
    assert_eq!(b("cat_days_since_denim"), 20.0);
    assert_eq!(
        (b("frequency"), b("recency_days"), b("tenure_days")),
        (1.0, 20.0, 30.0)
    );
    assert_eq!(b("gap_mean_days"), 0.0);
    assert!(f.values.iter().all(|v| v.is_finite()));
}

#[test]
fn events_after_as_of_change_no_feature() {
    let dir = tempfile::tempdir().unwrap();
    let past = dir.path().join("past.parquet");
    write(&past, &history_rows());
    let all = dir.path().join("all.parquet");
    let mut rows = history_rows();
    rows.extend(future_rows());
    write(&all, &rows);
    let (before, with_future) = (frame(&past, 50), frame(&all, 50));
    assert_eq!(before, with_future);
    // ...while the same data at a later as_of does see them.
    assert_eq!(get(&frame(&all, 60), "a", "frequency"), 4.0);
}

#[test]
fn one_file_or_two_files_give_the_same_features() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.parquet");
    let rows = history_rows();
    write(&one, &rows);
    let split = dir.path().join("split");
    std::fs::create_dir(&split).unwrap();
    write(&split.join("part-0.parquet"), &rows[..5]);
    write(&split.join("part-1.parquet"), &rows[5..]);
    assert_eq!(frame(&one, 50), frame(&split, 50));
}

#[test]
fn non_canonical_input_types_give_the_same_features() {
    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    // Integer ids and millisecond timestamps without a zone: staged to canonical form first.
    let raw = dir.path().join("raw.parquet");
    let batch = RecordBatch::try_from_iter(vec![
        (
            "customer_id",
            Arc::new(Int64Array::from(vec![7, 7, 8])) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![
                T0 / 1000,
                (T0 + 10 * DAY) / 1000,
                T0 / 1000,
            ])) as ArrayRef,
        ),
        (
            "event_type",
            Arc::new(StringArray::from(vec!["purchase", "purchase", "view"])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Float64Array::from(vec![Some(10.0), Some(30.0), None])) as ArrayRef,
        ),
    ])
    .unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&raw).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let canonical = dir.path().join("canonical.parquet");
    write(
        &canonical,
        &[
            EventRow {
                amount: Some(10.0),
                ..ev("7", 0, "purchase")
            },
            EventRow {
                amount: Some(30.0),
                ..ev("7", 10, "purchase")
            },
            ev("8", 0, "view"),
        ],
    );
    let (a, b) = (frame(&raw, 20), frame(&canonical, 20));
    assert_eq!(a, b);
    assert_eq!(
        get(&a, "7", "frequency"),
        2.0,
        "no order_id: each purchase instant is an order"
    );
}

#[test]
fn labels_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.parquet");
    let mut rows = history_rows();
    rows.extend(future_rows());
    write(&p, &rows);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = History::open_events(&p).await.unwrap();
        let cats = ctx().categories;
        let l = h.labels(T0 + 50 * DAY, 10, 5, &cats).await.unwrap();
        assert_eq!(l["a"].purchases_in_horizon, 1.0);
        assert_eq!(l["a"].categories, [0.0, 1.0], "denim bought on day 51");
        assert!(!l.contains_key("b"), "b buys again only on day 70");
        let err = h
            .labels(T0 + 50 * DAY, 60, 28, &cats)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("after the last event 2024-03-11"), "{err}");
        assert_eq!(
            h.categories(T0 + 50 * DAY).await.unwrap(),
            ["outerwear", "denim"]
        );
    });
}

#[test]
fn a_bad_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.parquet");
    write(
        &p,
        &[
            ev("a", 0, "purchase"),
            EventRow {
                sentiment: Some(4.0),
                ..ev("a", 1, "review")
            },
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(History::open_events(&p))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("column `sentiment`, row 1"), "{err}");
}

#[test]
fn a_sample_aggregates_only_its_customers_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.parquet");
    let ids: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    let mut rows = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let d = (i % 40) as i64;
        rows.push(buy(id, d, "o1", "outerwear", 10.0 + i as f64));
        rows.push(ev(id, d + 3, "email_open"));
        rows.push(buy(id, 55 + d % 5, "o2", "denim", 5.0));
    }
    write(&p, &rows);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = History::open_events(&p).await.unwrap();
        assert_eq!(h.customers().await.unwrap(), 300);
        let cats = ctx().categories;
        let as_of = T0 + 50 * DAY;
        let full = h.aggregates(as_of, &cats).await.unwrap();
        let part = h.sampled_aggregates(as_of, &cats, 0.3).await.unwrap();
        let expected: Vec<_> = full.iter().filter(|(id, _)| id_unit(id) < 0.3).collect();
        assert!(
            (60..120).contains(&part.len()),
            "about 30% of 300: {}",
            part.len()
        );
        assert_eq!(part.iter().collect::<Vec<_>>(), expected);

        let full = h.labels(as_of, 10, 10, &cats).await.unwrap();
        let part = h.sampled_labels(as_of, 10, 10, &cats, 0.3).await.unwrap();
        assert!(!part.is_empty());
        assert_eq!(
            part.len(),
            full.keys().filter(|id| id_unit(id) < 0.3).count()
        );
        for (id, l) in part.iter() {
            assert_eq!(&full[id], l, "{id}");
        }
    });
}

#[test]
fn the_first_order_is_kept_apart_for_the_spend_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events.parquet");
    write(&p, &history_rows());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = History::open_events(&p).await.unwrap();
        let aggs = h
            .aggregates(T0 + 50 * DAY, &ctx().categories)
            .await
            .unwrap();
        let a = &aggs.iter().find(|(id, _)| id == "a").unwrap().1;
        // Orders o1 (30 + 20 on day 0), o2 (50), o3 (40): the first is 50 of 140.
        assert_eq!(
            (a.orders, a.revenue, a.first_order_amount),
            (3.0, 140.0, 50.0)
        );
        let b = &aggs.iter().find(|(id, _)| id == "b").unwrap().1;
        assert_eq!((b.orders, b.first_order_amount), (1.0, 10.0));
    });
}
