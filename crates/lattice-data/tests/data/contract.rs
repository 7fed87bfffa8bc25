//! The data contract: every validation rule with a small bad file made here, and round-trips of
//! the input types a retailer's export may use.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt32Array,
};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::parquet::arrow::ArrowWriter;
use lattice_data::events::read_events;
use lattice_data::issues::{Issue, Rule, Severity};
use lattice_data::validate::{ValidateOptions, Validation, validate_dir};

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn s(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn ts_utc(secs: &[i64]) -> ArrayRef {
    Arc::new(TimestampSecondArray::from(secs.to_vec()).with_timezone("UTC"))
}

/// 2024-01-01T00:00:00Z plus `d` days, in seconds.
fn day(d: i64) -> i64 {
    1_704_067_200 + d * 86_400
}

/// A valid three-event table; tests replace one column to break one rule.
fn good_events() -> Vec<(&'static str, ArrayRef)> {
    vec![
        ("customer_id", s(&["a", "b", "a"])),
        ("ts", ts_utc(&[day(0), day(1), day(2)])),
        ("event_type", s(&["purchase", "view", "support"])),
        (
            "amount",
            Arc::new(Float64Array::from(vec![Some(10.0), None, None])),
        ),
        (
            "quantity",
            Arc::new(Float64Array::from(vec![Some(1.0), None, None])),
        ),
        (
            "sentiment",
            Arc::new(Float64Array::from(vec![None, None, Some(-0.8)])),
        ),
    ]
}

fn replace(
    mut cols: Vec<(&'static str, ArrayRef)>,
    name: &'static str,
    a: ArrayRef,
) -> Vec<(&'static str, ArrayRef)> {
    match cols.iter().position(|(n, _)| *n == name) {
        Some(i) => cols[i].1 = a,
        None => cols.push((name, a)),
    }
    cols
}

fn validate(dir: &Path) -> Validation {
    validate_dir(dir, &ValidateOptions::default())
}

fn errors(v: &Validation) -> Vec<&Issue> {
    v.issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

/// Asserts the validation failed with exactly `rule`, and returns the first finding.
fn only_error(v: &Validation, rule: Rule) -> Issue {
    let errs = errors(v);
    assert!(!errs.is_empty(), "expected {rule:?}, got no errors");
    assert!(
        errs.iter().all(|i| i.rule == rule),
        "expected only {rule:?}, got {errs:#?}"
    );
    errs[0].clone()
}

fn events_dir(cols: Vec<(&str, ArrayRef)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("events.parquet"), cols);
    dir
}

#[test]
fn valid_events_pass_with_summary() {
    let dir = events_dir(good_events());
    let v = validate(dir.path());
    assert!(v.is_ok(), "{:#?}", v.issues);
    let e = v.summary.events.as_ref().unwrap();
    assert_eq!((e.rows, e.customers), (3, 2));
    assert_eq!(e.event_types["purchase"], 1);
    let text = v.summary.to_string();
    assert!(text.contains("3 rows in 1 file(s), 2 customers"), "{text}");
    assert!(
        text.contains("2024-01-01T00:00:00Z .. 2024-01-03T00:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("channel") && text.contains("absent"),
        "{text}"
    );
}

#[test]
fn missing_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let i = only_error(&validate(dir.path()), Rule::MissingFile);
    assert!(i.to_string().contains("events"), "{i}");
}

#[test]
fn not_parquet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.parquet"),
        "customer_id,ts\n1,2024-01-01\n",
    )
    .unwrap();
    let i = only_error(&validate(dir.path()), Rule::NotParquet);
    assert!(
        i.to_string().contains("events.parquet: not a Parquet file"),
        "{i}"
    );
}

#[test]
fn missing_required_column() {
    let cols: Vec<_> = good_events()
        .into_iter()
        .filter(|(n, _)| *n != "event_type")
        .collect();
    let i = only_error(&validate(events_dir(cols).path()), Rule::MissingColumn);
    let msg = i.to_string();
    assert!(
        msg.contains("events.parquet") && msg.contains("`event_type`"),
        "{msg}"
    );
    assert!(msg.contains("expected utf8"), "{msg}");
}

#[test]
fn wrong_column_type() {
    let cols = replace(
        good_events(),
        "ts",
        Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0])),
    );
    let i = only_error(&validate(events_dir(cols).path()), Rule::WrongType);
    let msg = i.to_string();
    assert!(
        msg.contains("column `ts` has type Float32, expected timestamp"),
        "{msg}"
    );
    let cols = replace(
        good_events(),
        "consent",
        Arc::new(Int32Array::from(vec![1, 2, 3])),
    );
    assert!(
        validate(events_dir(cols).path()).is_ok(),
        "unknown columns are ignored"
    );
}

#[test]
fn null_or_empty_customer_id() {
    let cols = replace(
        good_events(),
        "customer_id",
        strs(&[Some("a"), None, Some("  ")]),
    );
    let v = validate(events_dir(cols).path());
    let i = only_error(&v, Rule::NullCustomerId);
    assert_eq!((i.column.as_deref(), i.row), (Some("customer_id"), Some(1)));
    assert_eq!(v.issues.rule_count(Rule::NullCustomerId), 2);
    assert!(i.to_string().contains("column `customer_id`, row 1"), "{i}");
}

#[test]
fn unparseable_timestamp() {
    let cols = replace(
        good_events(),
        "ts",
        strs(&[
            Some("2024-01-01T10:00:00Z"),
            Some("yesterday"),
            Some("2024-01-03"),
        ]),
    );
    let i = only_error(&validate(events_dir(cols).path()), Rule::BadTimestamp);
    assert_eq!(i.row, Some(1));
    assert!(i.message.contains("\"yesterday\""), "{i}");
}

#[test]
fn null_timestamp() {
    let cols = replace(
        good_events(),
        "ts",
        Arc::new(TimestampSecondArray::from(vec![
            Some(day(0)),
            Some(day(1)),
            None,
        ])),
    );
    let i = only_error(&validate(events_dir(cols).path()), Rule::BadTimestamp);
    assert_eq!(i.row, Some(2));
}

#[test]
fn timestamp_after_as_of() {
    let dir = events_dir(good_events());
    let as_of = chrono::DateTime::from_timestamp(day(1), 0).unwrap();
    let v = validate_dir(dir.path(), &ValidateOptions { as_of: Some(as_of) });
    let i = only_error(&v, Rule::TimestampAfterAsOf);
    assert_eq!(i.row, Some(2));
    assert!(
        i.message
            .contains("2024-01-03T00:00:00Z is later than --as-of 2024-01-02T00:00:00Z"),
        "{i}"
    );
}

#[test]
fn sentiment_out_of_range() {
    let cols = replace(
        good_events(),
        "sentiment",
        Arc::new(Float64Array::from(vec![None, None, Some(-3.0)])),
    );
    let i = only_error(&validate(events_dir(cols).path()), Rule::SentimentRange);
    assert_eq!((i.column.as_deref(), i.row), (Some("sentiment"), Some(2)));
}

#[test]
fn negative_quantity_on_purchase() {
    let cols = replace(
        good_events(),
        "quantity",
        Arc::new(Float64Array::from(vec![Some(-1.0), None, None])),
    );
    let i = only_error(&validate(events_dir(cols).path()), Rule::NegativeQuantity);
    assert_eq!(i.row, Some(0));
    // The same quantity on a non-purchase event is not this rule's business.
    let cols = replace(
        good_events(),
        "quantity",
        Arc::new(Float64Array::from(vec![None, Some(-1.0), None])),
    );
    assert!(validate(events_dir(cols).path()).is_ok());
}

#[test]
fn null_event_type_and_unknown_event_type_warning() {
    let cols = replace(
        good_events(),
        "event_type",
        strs(&[Some("purchase"), None, Some("support")]),
    );
    only_error(&validate(events_dir(cols).path()), Rule::NullEventType);

    let cols = replace(
        good_events(),
        "event_type",
        s(&["purchase", "wishlist", "wishlist"]),
    );
    let v = validate(events_dir(cols).path());
    assert!(v.is_ok());
    let w = v
        .issues
        .iter()
        .find(|i| i.rule == Rule::UnknownEventType)
        .expect("a warning");
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("\"wishlist\" (2)"), "{w}");
    assert_eq!(
        v.summary.events.unwrap().event_types["wishlist"],
        2,
        "unknown types are kept and counted"
    );
}

fn customers_dir(customers: Vec<(&str, ArrayRef)>) -> tempfile::TempDir {
    let dir = events_dir(good_events());
    write_parquet(&dir.path().join("customers.parquet"), customers);
    dir
}

#[test]
fn duplicate_customer_rows() {
    let dir = customers_dir(vec![("customer_id", s(&["a", "b", "a"]))]);
    let i = only_error(&validate(dir.path()), Rule::DuplicateCustomer);
    assert_eq!(i.row, Some(2));
    assert!(i.message.contains("already appeared in row 0"), "{i}");
}

#[test]
fn unknown_time_zone() {
    let dir = customers_dir(vec![
        ("customer_id", s(&["a", "b"])),
        (
            "timezone",
            strs(&[Some("Europe/Paris"), Some("Europe/Pariss")]),
        ),
    ]);
    let i = only_error(&validate(dir.path()), Rule::UnknownTimezone);
    assert_eq!((i.column.as_deref(), i.row), (Some("timezone"), Some(1)));
    assert!(i.message.contains("\"Europe/Pariss\""), "{i}");
}

#[test]
fn customers_without_row_warn_and_extra_columns_note() {
    let dir = customers_dir(vec![
        ("customer_id", s(&["a"])),
        ("loyalty_card", s(&["x"])),
    ]);
    let v = validate(dir.path());
    assert!(v.is_ok(), "{:#?}", v.issues);
    let w = v
        .issues
        .iter()
        .find(|i| i.rule == Rule::CustomerWithoutRow)
        .expect("warning");
    assert_eq!(w.severity, Severity::Warning);
    assert!(
        w.message
            .starts_with("1 customers have events but no customer row (e.g. b)"),
        "{w}"
    );
    let n = v
        .issues
        .iter()
        .find(|i| i.rule == Rule::ExtraColumn)
        .expect("note");
    assert_eq!(n.severity, Severity::Note);
    assert!(n.message.contains("loyalty_card"));
}

#[test]
fn duplicate_action_ids() {
    let dir = events_dir(good_events());
    let action =
        "[[action]]\nid = \"x\"\nname = \"X\"\nkind = \"custom\"\nchannels = [\"email\"]\n";
    std::fs::write(dir.path().join("actions.toml"), format!("{action}{action}")).unwrap();
    let i = only_error(&validate(dir.path()), Rule::DuplicateActionId);
    assert!(
        i.to_string()
            .contains("actions.toml: action #2 (id \"x\"): duplicate action id"),
        "{i}"
    );
}

#[test]
fn bad_settings() {
    let dir = events_dir(good_events());
    std::fs::write(
        dir.path().join("lattice.toml"),
        "[[tier]]\nname = \"gold\"\n",
    )
    .unwrap();
    let i = only_error(&validate(dir.path()), Rule::BadSettings);
    assert!(
        i.to_string().contains("lattice.toml") && i.message.contains("min_spend"),
        "{i}"
    );
}

#[test]
fn input_types_normalise_to_the_canonical_form() {
    // Integer ids, timestamps in every unit with and without zones, and date32 all mean the
    // same instants once read.
    let expected_us: Vec<i64> = [day(0), day(1), day(2)]
        .iter()
        .map(|s| s * 1_000_000)
        .collect();
    let variants: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(vec![
            day(0) * 1000,
            day(1) * 1000,
            day(2) * 1000,
        ])),
        Arc::new(
            TimestampNanosecondArray::from(vec![
                day(0) * 1_000_000_000,
                day(1) * 1_000_000_000,
                day(2) * 1_000_000_000,
            ])
            .with_timezone("America/New_York"),
        ),
        Arc::new(Date32Array::from(vec![19723, 19724, 19725])),
        s(&["2024-01-01T00:00:00Z", "2024-01-02 00:00:00", "2024-01-03"]),
    ];
    for ts in variants {
        let dt = ts.data_type().clone();
        let cols = replace(good_events(), "ts", ts);
        let cols = replace(
            cols,
            "customer_id",
            Arc::new(UInt32Array::from(vec![7, 8, 7])),
        );
        let dir = events_dir(cols);
        let mut got = Vec::new();
        let mut ids = Vec::new();
        read_events(&dir.path().join("events.parquet"), |b| {
            let t = b.column(1).as_primitive::<TimestampMicrosecondType>();
            got.extend(t.values().iter().copied());
            ids.extend(
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap().to_string()),
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(got, expected_us, "ts of type {dt}");
        assert_eq!(ids, ["7", "8", "7"]);
    }
}

#[test]
fn events_directory_of_files_reads_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    std::fs::create_dir(&events).unwrap();
    write_parquet(
        &events.join("part-1.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![3])) as ArrayRef,
            ),
            ("ts", ts_utc(&[day(5)])),
            ("event_type", s(&["view"])),
        ],
    );
    write_parquet(&events.join("part-0.parquet"), good_events());
    std::fs::write(events.join("README.txt"), "not data").unwrap();
    let v = validate(dir.path());
    assert!(v.is_ok(), "{:#?}", v.issues);
    let e = v.summary.events.unwrap();
    assert_eq!((e.files, e.rows, e.customers), (2, 4, 3));
    let mut ids = Vec::new();
    read_events(&events, |b| {
        ids.extend(
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string()),
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(ids, ["a", "b", "a", "3"]);
}

#[test]
fn strict_reader_fails_at_the_first_bad_row_with_its_location() {
    let cols = replace(
        good_events(),
        "sentiment",
        Arc::new(Float64Array::from(vec![None, Some(2.0), None])),
    );
    let dir = events_dir(cols);
    let err = read_events(&dir.path().join("events.parquet"), |_| Ok(())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("events.parquet: column `sentiment`, row 1: sentiment 2 is outside [-1, 1]"),
        "{msg}"
    );
}

#[test]
fn customers_round_trip_through_the_writer() {
    use lattice_data::write::{CustomerRow, CustomersWriter, EventRow, EventsWriter};
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventsWriter::create(&dir.path().join("events.parquet")).unwrap();
    w.push(&EventRow {
        customer_id: "a",
        ts_us: day(0) * 1_000_000,
        event_type: "purchase",
        amount: Some(5.0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(w.finish().unwrap(), 1);
    let mut c = CustomersWriter::create(&dir.path().join("customers.parquet")).unwrap();
    c.push(&CustomerRow {
        customer_id: "a",
        timezone: Some("Asia/Tokyo"),
        consent_email: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.finish().unwrap(), 1);
    assert!(!dir.path().join("events.parquet.tmp").exists());
    let v = validate(dir.path());
    assert!(
        v.is_ok() && v.issues.warning_count() == 0,
        "{:#?}",
        v.issues
    );
    let b = lattice_data::customers::read_customers(&dir.path().join("customers.parquet")).unwrap();
    assert_eq!(b.num_rows(), 1);
    let consent = b.column(6).as_any().downcast_ref::<BooleanArray>().unwrap();
    assert!(consent.value(0));
}
