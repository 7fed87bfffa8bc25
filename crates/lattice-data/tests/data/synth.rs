//! The synthetic world: determinism, the data contract, and that the planted truth shows in
//! the observed events.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int32Type, TimestampMicrosecondType};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_data::customers::read_customers;
use lattice_data::events::read_events;
use lattice_data::issues::Severity;
use lattice_data::schema::{cu, ev};
use lattice_data::synth::{CATEGORIES, GenerateOptions, generate, truth_schema};
use lattice_data::validate::validate_dir;

const FILES: [&str; 5] = [
    "events.parquet",
    "customers.parquet",
    "truth.parquet",
    "actions.toml",
    "lattice.toml",
];

fn opts(customers: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        customers,
        seed,
        ..Default::default()
    }
}

fn end_us() -> i64 {
    let end = GenerateOptions::default().end;
    end.and_hms_opt(23, 59, 59)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    // Three chunks of customers, so the two-thread run really interleaves work.
    let sa = generate(&opts(9000, 7), a.path()).unwrap();
    let sb = generate(
        &GenerateOptions {
            threads: 1,
            ..opts(9000, 7)
        },
        b.path(),
    )
    .unwrap();
    assert_eq!(sa.events, sb.events);
    for f in FILES {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let y = std::fs::read(b.path().join(f)).unwrap();
        assert!(x == y, "{f} differs between runs with the same seed");
    }
    generate(&opts(9000, 8), c.path()).unwrap();
    for f in ["events.parquet", "customers.parquet", "truth.parquet"] {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let z = std::fs::read(c.path().join(f)).unwrap();
        assert!(x != z, "{f} is the same for different seeds");
    }
    // No temporaries left behind.
    let names: HashSet<String> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, FILES.iter().map(|s| s.to_string()).collect());
}

#[test]
fn meets_the_data_contract() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&opts(2000, 1), dir.path()).unwrap();
    let v = validate_dir(dir.path(), &Default::default());
    let loud: Vec<String> = v
        .issues
        .iter()
        .filter(|i| i.severity != Severity::Note)
        .map(|i| i.to_string())
        .collect();
    assert!(loud.is_empty(), "validation findings: {loud:#?}");
    let es = v.summary.events.as_ref().unwrap();
    assert_eq!(es.rows, summary.events);
    assert_eq!(es.customers, 2000);
    assert_eq!(v.summary.customers.as_ref().unwrap().rows, 2000);
    assert!(es.last_ts_us.unwrap() <= end_us());
    let per_customer = summary.events as f64 / 2000.0;
    assert!(
        (12.0..40.0).contains(&per_customer),
        "{per_customer} events per customer"
    );
    for t in lattice_data::schema::KNOWN_EVENT_TYPES {
        assert!(summary.event_types.contains_key(*t), "no {t} events");
    }

    // The catalog parses and covers every action id and category the events use.
    let catalog = ActionCatalog::from_file(&dir.path().join("actions.toml")).unwrap();
    let ids: HashSet<&str> = catalog.actions.iter().map(|a| a.id.as_str()).collect();
    let cats: HashSet<&str> = catalog
        .actions
        .iter()
        .filter_map(|a| a.category.as_deref())
        .collect();
    assert_eq!(cats, CATEGORIES.iter().copied().collect());
    let mut used = HashSet::new();
    read_events(&dir.path().join("events.parquet"), |b| {
        for a in b.column(ev::ACTION_ID).as_string::<i32>().iter().flatten() {
            used.insert(a.to_string());
        }
        Ok(())
    })
    .unwrap();
    assert!(used.len() >= 10, "{used:?}");
    for a in &used {
        assert!(ids.contains(a.as_str()), "{a} is not in actions.toml");
    }

    let settings = Settings::load_or_default(&dir.path().join("lattice.toml")).unwrap();
    let tiers: Vec<(&str, f64)> = settings
        .tiers
        .iter()
        .map(|t| (t.name.as_str(), t.min_spend))
        .collect();
    assert_eq!(
        tiers,
        [
            ("bronze", 0.0),
            ("silver", 250.0),
            ("gold", 750.0),
            ("platinum", 2000.0)
        ]
    );
    assert!(settings.tiers.iter().all(|t| t.reward.is_some()));

    let truth = read_truth(&dir.path().join("truth.parquet"));
    assert_eq!(truth.schema(), truth_schema());
    assert_eq!(truth.num_rows(), 2000);
}

fn read_truth(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn f64_col<'a>(b: &'a RecordBatch, name: &str) -> &'a datafusion::arrow::array::Float64Array {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// What one customer did, as observed in events.parquet.
#[derive(Default)]
struct Seen {
    first_ts: i64,
    last_purchase: i64,
    orders: HashMap<String, (i64, f64)>,
    lines: u64,
    lines_by_cat: [u64; 8],
    spend_365: f64,
    /// (action category, redeemed) per contact.
    contacts: Vec<(Option<usize>, String, i64, String)>,
    redemptions: HashSet<(String, String)>,
    unsubscribed: HashMap<String, i64>,
    open_slots: Vec<(i64, bool)>,
}

#[test]
fn planted_truth_shows_in_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4000;
    generate(&opts(n, 3), dir.path()).unwrap();
    let end = end_us();
    let cat_index = |c: &str| CATEGORIES.iter().position(|x| *x == c).unwrap();

    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut last: Option<(String, i64)> = None;
    read_events(&dir.path().join("events.parquet"), |b| {
        let ids = b.column(ev::CUSTOMER_ID).as_string::<i32>();
        let ts = b.column(ev::TS).as_primitive::<TimestampMicrosecondType>();
        let et = b.column(ev::EVENT_TYPE).as_string::<i32>();
        let ch = b.column(ev::CHANNEL).as_string::<i32>();
        let cat = b.column(ev::CATEGORY).as_string::<i32>();
        let amount = b.column(ev::AMOUNT).as_primitive::<Float64Type>();
        let qty = b.column(ev::QUANTITY).as_primitive::<Float64Type>();
        let oid = b.column(ev::ORDER_ID).as_string::<i32>();
        let action = b.column(ev::ACTION_ID).as_string::<i32>();
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            let t = ts.value(i);
            assert!(t <= end, "event after the end");
            // Customers in id order, events in time order within a customer.
            match &last {
                Some((l, lt)) if l == id => assert!(t >= *lt, "{id}: events out of order"),
                Some((l, _)) => assert!(l.as_str() < id, "{l} before {id}"),
                None => {}
            }
            last = Some((id.to_string(), t));
            let s = seen.entry(id.to_string()).or_insert_with(|| {
                order.push(id.to_string());
                Seen {
                    first_ts: t,
                    ..Default::default()
                }
            });
            match et.value(i) {
                "purchase" => {
                    assert!(qty.value(i) >= 1.0 && amount.value(i) > 0.0);
                    let o = s.orders.entry(oid.value(i).to_string()).or_insert((t, 0.0));
                    assert_eq!(o.0, t, "lines of an order share a timestamp");
                    o.1 += amount.value(i);
                    s.lines += 1;
                    s.lines_by_cat[cat_index(cat.value(i))] += 1;
                    s.last_purchase = t;
                    if t > end - 365 * 86_400_000_000 {
                        s.spend_365 += amount.value(i);
                    }
                }
                "return" => {
                    assert!(qty.value(i) >= 1.0 && !oid.is_null(i));
                    if t > end - 365 * 86_400_000_000 {
                        s.spend_365 -= amount.value(i);
                    }
                }
                "contact" => {
                    let c = (!cat.is_null(i)).then(|| cat_index(cat.value(i)));
                    let chan = ch.value(i).to_string();
                    if let Some(u) = s.unsubscribed.get(&chan) {
                        assert!(t < *u, "{id}: contact on {chan} after unsubscribing");
                    }
                    s.contacts.push((c, action.value(i).to_string(), t, chan));
                }
                "redemption" => {
                    s.redemptions
                        .insert((action.value(i).to_string(), ch.value(i).to_string()));
                }
                "unsubscribe" => {
                    s.unsubscribed.insert(ch.value(i).to_string(), t);
                }
                "email_open" | "push_open" => s.open_slots.push((t, true)),
                _ => {}
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.len() as u64, n, "every customer has events");

    let truth = read_truth(&dir.path().join("truth.parquet"));
    let customers = read_customers(&dir.path().join("customers.parquet")).unwrap();
    let t_ids = truth
        .column_by_name("customer_id")
        .unwrap()
        .as_string::<i32>();
    let c_ids = customers.column(cu::CUSTOMER_ID).as_string::<i32>();
    let lambda = f64_col(&truth, "true_purchase_rate_per_year");
    let spend = f64_col(&truth, "true_mean_spend");
    let alive = truth.column_by_name("alive_at_end").unwrap().as_boolean();
    let dropout = truth
        .column_by_name("dropout_ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let first = truth
        .column_by_name("first_purchase_ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let prefs: Vec<_> = CATEGORIES
        .iter()
        .map(|c| f64_col(&truth, &format!("pref_{c}")))
        .collect();
    let tz = truth.column_by_name("timezone").unwrap().as_string::<i32>();
    let top3 = truth
        .column_by_name("true_top3_hours_of_week")
        .unwrap()
        .as_list::<i32>();
    let best = truth
        .column_by_name("true_best_hour_of_week")
        .unwrap()
        .as_primitive::<Int32Type>();
    let signup = customers
        .column(cu::SIGNUP_TS)
        .as_primitive::<TimestampMicrosecondType>();
    let birth = customers
        .column(cu::BIRTH_DATE)
        .as_primitive::<Date32Type>();
    let tier = customers.column(cu::TIER).as_string::<i32>();
    let settings = Settings::load_or_default(&dir.path().join("lattice.toml")).unwrap();

    let (mut rate_true, mut rate_seen) = (Vec::new(), Vec::new());
    let (mut spend_ratio, mut spend_n) = (0.0, 0.0);
    let (mut top_share, mut top_n) = (0.0, 0.0);
    let (mut red_top, mut con_top, mut red_other, mut con_other) = (0u64, 0u64, 0u64, 0u64);
    let (mut opens, mut opens_in_top3) = (0u64, 0u64);
    let mut alive_n = 0;
    assert_eq!(order.len() as u64, n);
    for (i, seen_id) in order.iter().enumerate() {
        let id = t_ids.value(i);
        assert_eq!(id, seen_id, "truth in customer order");
        assert_eq!(id, c_ids.value(i), "customers in customer order");
        let s = &seen[id];
        assert!(s.first_ts >= signup.value(i), "{id}: event before signup");
        assert!(!s.orders.is_empty(), "{id}: no purchase");
        let first_order = s.orders.values().map(|o| o.0).min().unwrap();
        assert_eq!(first_order, first.value(i));

        // Age 18–75 at signup.
        let signed = DateTime::from_timestamp_micros(signup.value(i))
            .unwrap()
            .date_naive();
        let born = NaiveDate::from_num_days_from_ce_opt(birth.value(i) + 719_163).unwrap();
        let age = signed.years_since(born).unwrap();
        assert!((18..=75).contains(&age), "{id}: age {age}");

        // Tier from trailing-365-day net spend, with the lattice.toml thresholds.
        let expected = settings.tier_for(s.spend_365.max(0.0)).0.unwrap();
        assert_eq!(tier.value(i), expected.name, "{id}: spend {}", s.spend_365);

        if alive.value(i) {
            alive_n += 1;
            assert!(dropout.is_null(i));
            let years = (end - first.value(i)) as f64 / (365.25 * 86_400e6);
            if years > 0.5 {
                rate_true.push(lambda.value(i));
                rate_seen.push((s.orders.len() - 1) as f64 / years);
            }
        } else {
            assert!(
                s.last_purchase <= dropout.value(i),
                "{id}: purchase after dropout"
            );
        }
        if s.orders.len() >= 3 {
            let mean = s.orders.values().map(|o| o.1).sum::<f64>() / s.orders.len() as f64;
            spend_ratio += mean / spend.value(i);
            spend_n += 1.0;
        }
        let theta: Vec<f64> = prefs.iter().map(|p| p.value(i)).collect();
        let top = (0..8)
            .max_by(|&a, &b| theta[a].total_cmp(&theta[b]))
            .unwrap();
        top_share += s.lines_by_cat[top] as f64 / s.lines as f64;
        top_n += 1.0;
        for (c, action, _, chan) in &s.contacts {
            let Some(c) = c else { continue };
            let redeemed = s.redemptions.contains(&(action.clone(), chan.clone())) as u64;
            if *c == top {
                con_top += 1;
                red_top += redeemed;
            } else {
                con_other += 1;
                red_other += redeemed;
            }
        }
        let zone = chrono_tz::Tz::from_str(tz.value(i)).unwrap();
        let slots = top3.value(i);
        let slots = slots.as_primitive::<Int32Type>();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots.value(0), best.value(i));
        for (t, _) in &s.open_slots {
            let local = DateTime::from_timestamp_micros(*t)
                .unwrap()
                .with_timezone(&zone);
            let slot = local.weekday().num_days_from_monday() as i32 * 24 + local.hour() as i32;
            opens += 1;
            opens_in_top3 += slots.values().contains(&slot) as u64;
        }
    }
    assert!(alive_n > 0 && alive_n < n, "{alive_n} alive of {n}");
    let r = pearson(&rate_true, &rate_seen);
    assert!(
        r > 0.5,
        "purchase rate vs true λ: r = {r} on {}",
        rate_true.len()
    );
    let ratio = spend_ratio / spend_n;
    assert!(
        (0.93..1.07).contains(&ratio),
        "mean order value / ν = {ratio}"
    );
    let share = top_share / top_n;
    assert!(share > 0.5, "share of lines in the top category: {share}");
    let (rt, ro) = (
        red_top as f64 / con_top as f64,
        red_other as f64 / con_other as f64,
    );
    assert!(rt > 3.0 * ro, "redemption rate top {rt} vs other {ro}");
    let in_top3 = opens_in_top3 as f64 / opens as f64;
    assert!(
        in_top3 > 4.0 * 3.0 / 168.0,
        "opens in the top-3 slots: {in_top3} of {opens}"
    );
    eprintln!(
        "r(λ) = {r:.3} on {}, spend ratio {ratio:.3}, top share {share:.3}, redemption \
         top {rt:.4} other {ro:.4}, opens in top3 {in_top3:.3}, alive {alive_n}",
        rate_true.len()
    );
}

#[test]
fn unsubscribes_withdraw_consent_and_dropouts_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    generate(&opts(3000, 11), dir.path()).unwrap();
    let customers = read_customers(&dir.path().join("customers.parquet")).unwrap();
    let consent: HashMap<(String, &str), bool> = {
        let ids = customers.column(cu::CUSTOMER_ID).as_string::<i32>();
        let mut m = HashMap::new();
        for (chan, col) in [
            ("email", cu::CONSENT_EMAIL),
            ("sms", cu::CONSENT_SMS),
            ("push", cu::CONSENT_PUSH),
        ] {
            let b = customers.column(col).as_boolean();
            for i in 0..customers.num_rows() {
                m.insert((ids.value(i).to_string(), chan), b.value(i));
            }
        }
        m
    };
    let mut unsubscribes = 0;
    let mut contacted: HashSet<(String, String)> = HashSet::new();
    let mut unsubscribed: HashSet<(String, String)> = HashSet::new();
    read_events(&dir.path().join("events.parquet"), |b| {
        let ids = b.column(ev::CUSTOMER_ID).as_string::<i32>();
        let et = b.column(ev::EVENT_TYPE).as_string::<i32>();
        let ch = b.column(ev::CHANNEL).as_string::<i32>();
        for i in 0..b.num_rows() {
            let key = (ids.value(i).to_string(), ch.value(i));
            match et.value(i) {
                "unsubscribe" => {
                    unsubscribes += 1;
                    assert!(!consent[&key], "{key:?}: consent after unsubscribing");
                    unsubscribed.insert((key.0, key.1.to_string()));
                }
                "contact" => {
                    contacted.insert((key.0, key.1.to_string()));
                }
                _ => {}
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(unsubscribes > 0);
    // Consent rates near email 80%, sms 35%, push 45% (a few withdrawn by unsubscribes).
    for (chan, rate) in [("email", 0.8), ("sms", 0.35), ("push", 0.45)] {
        let yes = consent
            .iter()
            .filter(|((_, c), v)| *c == chan && **v)
            .count();
        let share = yes as f64 / 3000.0;
        assert!((share - rate).abs() < 0.05, "{chan} consent {share}");
    }
    // Contacts go only to channels consented at signup: a customer without consent on a
    // channel now was either never contacted on it or unsubscribed from it.
    for ((id, chan), ok) in &consent {
        let key = (id.clone(), chan.to_string());
        if !ok && contacted.contains(&key) {
            assert!(
                unsubscribed.contains(&key),
                "{key:?}: contacted without consent"
            );
        }
    }

    let truth = read_truth(&dir.path().join("truth.parquet"));
    let alive = truth.column_by_name("alive_at_end").unwrap().as_boolean();
    let cause = truth
        .column_by_name("dropout_cause")
        .unwrap()
        .as_string::<i32>();
    let (mut by_purchase, mut by_support) = (0, 0);
    for i in 0..truth.num_rows() {
        match (alive.value(i), cause.is_null(i)) {
            (true, true) => {}
            (false, false) if cause.value(i) == "after_purchase" => by_purchase += 1,
            (false, false) if cause.value(i) == "support_ticket" => by_support += 1,
            other => panic!("row {i}: alive/cause mismatch {other:?}"),
        }
    }
    assert!(
        by_purchase > 10 * by_support && by_support > 0,
        "{by_purchase} {by_support}"
    );
}

/// The benchmark run: `LATTICE_SYNTH_CUSTOMERS=1000000 /usr/bin/time -v cargo test --release
/// -p lattice-data --test data -- --ignored --nocapture`.
#[test]
#[ignore]
fn generate_a_big_world() {
    let n: u64 = std::env::var("LATTICE_SYNTH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let s = generate(&opts(n, 42), dir.path()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let size = |f: &str| std::fs::metadata(dir.path().join(f)).unwrap().len() as f64 / 1e6;
    eprintln!(
        "{n} customers: {} events ({:.1}/customer), {} orders, {} alive at end in {secs:.1} s; \
         events.parquet {:.1} MB, customers.parquet {:.1} MB, truth.parquet {:.1} MB",
        s.events,
        s.events as f64 / n as f64,
        s.orders,
        s.alive_at_end,
        size("events.parquet"),
        size("customers.parquet"),
        size("truth.parquet"),
    );
    eprintln!("{:#?}", s.event_types);
}
