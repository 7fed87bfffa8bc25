//! End-to-end: `lattice audience` on the demo model, and `lattice uplift` on its holdout.

use crate::common::{demo_model, lattice, s, text};

use lattice_data::write::{EventRow, EventsWriter};

fn demo() -> String {
    s(&demo_model()).to_string()
}

#[test]
fn audience_to_csv_then_uplift_on_its_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("coats.csv");
    let o = lattice(&[
        "audience",
        "--model",
        &demo(),
        "--category",
        "outerwear",
        "--top",
        "500",
        "--channel",
        "email",
        "--holdout",
        "0.2",
        "--include-holdout",
        "--audience-id",
        "coats",
        "--starts-at",
        "2025-07-01T00:00:00Z",
        "--out",
        s(&out),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("customers to contact: 500"), "{stdout}");
    assert!(stdout.contains("expected conversions:"), "{stdout}");
    assert!(stdout.contains("channel"), "{stdout}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("customer_id,rank,probability"));
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let treated = rows.iter().filter(|r| r[6] == "false").count();
    let control = rows.iter().filter(|r| r[6] == "true").count();
    assert_eq!(treated, 500);
    assert!(control > 50, "{control}");
    assert!(rows.iter().all(|r| r[7] == "coats"));

    // Plant purchases: every treated customer buys outerwear in the window, no control does.
    let data = dir.path().join("after");
    std::fs::create_dir(&data).unwrap();
    let mut ev = EventsWriter::create(&data.join("events.parquet")).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2025-07-01T00:00:00Z")
        .unwrap()
        .timestamp_micros();
    for (k, r) in rows.iter().enumerate() {
        if r[6] == "false" {
            let order = format!("o{k}");
            ev.push(&EventRow {
                customer_id: r[0],
                ts_us: start + 86_400_000_000 * 3,
                event_type: "purchase",
                category: Some("outerwear"),
                amount: Some(80.0),
                quantity: Some(1.0),
                order_id: Some(&order),
                ..EventRow::default()
            })
            .unwrap();
        }
    }
    ev.finish().unwrap();
    let o = lattice(&[
        "uplift",
        "--audience",
        s(&out),
        "--events",
        s(&data),
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["treated"]["converted"], 500);
    assert_eq!(r["control"]["converted"], 0);
    assert_eq!(r["control"]["customers"], control);
    assert_eq!(r["significant"], true);
    let o = lattice(&["uplift", "--audience", s(&out), "--events", s(&data)]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("treated") && stdout.contains("difference: +100.00 points"),
        "{stdout}"
    );
}

#[test]
fn bad_audience_options_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.csv");
    let model = demo();
    let run = |extra: &[&str]| {
        let mut args = vec!["audience", "--model", &model, "--out", s(&out)];
        args.extend_from_slice(extra);
        let o = lattice(&args);
        assert!(!o.status.success());
        text(&o).1
    };
    let e = run(&["--category", "socks", "--top", "10"]);
    assert!(e.contains("--category") && e.contains("outerwear"), "{e}");
    let e = run(&["--category", "denim", "--top", "10", "--budget", "5"]);
    assert!(e.contains("--top, --min-probability or --budget"), "{e}");
    let e = run(&["--churn", "--top", "10", "--holdout", "1.5"]);
    assert!(e.contains("--holdout"), "{e}");
    let e = run(&["--churn", "--top", "10", "--tier", "diamond"]);
    assert!(e.contains("--tier") && e.contains("gold"), "{e}");
    let e = run(&["--churn", "--top", "-5"]);
    assert!(e.contains("-5"), "{e}");
    assert!(!out.exists());
}

#[test]
fn an_unsubscribe_the_server_stored_keeps_the_customer_out_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pull = |out: &std::path::Path, db: Option<&std::path::Path>| -> Vec<String> {
        let mut args = vec![
            "audience",
            "--model",
            &demo(),
            "--churn",
            "--top",
            "300",
            "--channel",
            "email",
            "--out",
            s(out),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        if let Some(db) = db {
            args.extend(["--events-db".to_string(), s(db).to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = lattice(&args);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stdout}{stderr}");
        std::fs::read_to_string(out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let before = pull(&dir.path().join("a.csv"), None);
    let db = dir.path().join("events.db");
    let mut store = lattice_events::EventStore::open(&db, None).unwrap();
    let unsubscribe = lattice_events::Event {
        customer_id: before[0].clone(),
        ts_us: chrono::Utc::now().timestamp_micros(),
        event_type: "unsubscribe".into(),
        channel: Some("email".into()),
        ..Default::default()
    };
    store
        .append(&[unsubscribe], 0, &mut Vec::new(), &|_| true)
        .unwrap();
    drop(store);
    let after = pull(&dir.path().join("b.csv"), Some(&db));
    assert!(
        !after.contains(&before[0]),
        "{} is still in the file",
        before[0]
    );
    assert_eq!(after.len(), before.len());
}
