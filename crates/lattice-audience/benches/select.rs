//! Ranking a category over 1,000,000 customers and returning the best 10,000: the selection
//! alone, with filters and a holdout, and with the 10,000 rows written as JSON (what the server
//! does before the first byte leaves). A synthetic snapshot of 1M customers with 8 categories.
//!
//! cargo bench -p lattice-audience --bench select

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lattice_audience::{
    AudienceIndex, AudienceRequest, Format, ModelFacts, Plan, Source, select, write,
};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::{Settings, Tier};
use lattice_decide::Catalog;
use lattice_models::snapshot::{Contact, CustomerRecord, ServingSnapshot};

const CUSTOMERS: usize = 1_000_000;
const CATEGORIES: [&str; 8] = [
    "accessories",
    "footwear",
    "denim",
    "beauty",
    "outerwear",
    "home",
    "knitwear",
    "kids",
];
const DAY_US: i64 = 86_400_000_000;

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

struct World {
    snapshot: ServingSnapshot,
    index: AudienceIndex,
    catalog: Catalog,
}

fn world() -> World {
    let categories: Vec<String> = CATEGORIES.iter().map(|c| c.to_string()).collect();
    let mut features = vec![
        "recency_days".to_string(),
        "monetary_mean".into(),
        "spend_365d".into(),
    ];
    features.extend(CATEGORIES.iter().map(|c| format!("share_{c}")));
    let mut snapshot = ServingSnapshot::empty(&features, &categories);
    let as_of = Utc.with_ymd_and_hms(2025, 6, 30, 23, 59, 59).unwrap();
    let as_of_us = as_of.timestamp_micros();
    let tiers = ["bronze", "silver", "gold", "platinum"];
    let mut rng = Lcg(7);
    let mut values = Vec::with_capacity(snapshot.variables.len());
    for i in 0..CUSTOMERS {
        values.clear();
        let recency = (rng.next() * 400.0).floor();
        values.extend([recency, 20.0 + rng.next() * 100.0, rng.next() * 3000.0]);
        values.extend((0..CATEGORIES.len()).map(|_| rng.next() * 0.5));
        let churn = rng.next();
        values.extend([churn, 1.0 - churn, rng.next() * 2.0, rng.next() * 800.0]);
        // Affinities: skewed, like real ones (most customers near 0).
        values.extend((0..CATEGORIES.len()).map(|_| rng.next().powi(4)));
        let consent = [rng.next() < 0.8, rng.next() < 0.3, rng.next() < 0.5];
        values.push(rng.next() * 500.0);
        values.extend(consent.map(|b| f64::from(u8::from(b))));
        let contacts = if rng.next() < 0.3 {
            vec![Contact {
                action_id: "newsletter".into(),
                channel: "email".into(),
                at_us: as_of_us - (rng.next() * 60.0) as i64 * DAY_US,
            }]
        } else {
            Vec::new()
        };
        let record = CustomerRecord {
            id: format!("c{i:07}"),
            tier: Some(tiers[(rng.next() * 4.0) as usize].to_string()),
            consent,
            timezone: "UTC".into(),
            last_purchase_us: Some(as_of_us - recency as i64 * DAY_US),
            contacts,
            ..Default::default()
        };
        snapshot.push(record, &values).expect("a valid row");
    }
    let settings = Settings {
        tiers: tiers
            .iter()
            .enumerate()
            .map(|(k, n)| Tier {
                name: n.to_string(),
                min_spend: 500.0 * k as f64,
                reward: None,
            })
            .collect(),
        ..Settings::default()
    };
    let catalog = Catalog::compile(
        &ActionCatalog::parse(
            r#"
            [[action]]
            id = "coats"
            name = "Early access: coats"
            kind = "early_access"
            channels = ["email", "push"]
            category = "outerwear"
            value = 60.0
            cost = 0.05
            cooldown_days = 14
            "#,
        )
        .expect("a catalog"),
        &settings,
        &snapshot.variables,
        &categories,
    )
    .expect("compiles");
    let as_of_text = as_of.to_rfc3339();
    let started = std::time::Instant::now();
    let index = AudienceIndex::build(
        ModelFacts {
            name: "synthetic-1m",
            as_of: &as_of_text,
            as_of_us,
            horizon_days: 60,
            affinity_days: 28,
            categories: &categories,
        },
        &snapshot,
        &settings.tiers,
        None,
        "no backtest".into(),
    );
    eprintln!(
        "audience index of {CUSTOMERS} customers built in {:.0} ms (once per model load)",
        started.elapsed().as_secs_f64() * 1e3
    );
    World {
        snapshot,
        index,
        catalog,
    }
}

fn plan(w: &World, json: serde_json::Value) -> Plan {
    let req: AudienceRequest = serde_json::from_value(json).expect("a request");
    req.plan(&w.index, &w.catalog, Utc::now())
        .expect("a valid request")
}

fn bench(c: &mut Criterion) {
    let w = world();
    let src = Source {
        index: &w.index,
        snapshot: &w.snapshot,
        catalog: &w.catalog,
        zones: &[],
        withdrawn: None,
    };
    let top = plan(
        &w,
        serde_json::json!({"target": {"category": "outerwear"}, "size": {"top": 10_000}}),
    );
    let filtered = plan(
        &w,
        serde_json::json!({"target": {"category": "outerwear"}, "size": {"top": 10_000},
            "filters": {"tiers": ["gold", "platinum"], "channel": "email", "min_clv": 100,
                        "exclude_contacted_within_days": 14},
            "holdout": {"share": 0.1}}),
    );
    let threshold = plan(
        &w,
        serde_json::json!({"target": {"category": "outerwear"},
                           "size": {"min_probability": 0.5}}),
    );
    let a = select(&src, &top);
    assert_eq!(a.summary.size, 10_000);
    let json = write(&a, src, Format::Json, Vec::new()).expect("written");
    eprintln!("10,000 rows as JSON: {} bytes", json.len());
    // One timing of an action target (every rule of the action for every customer): too slow
    // for criterion's repetitions at this size.
    let action = plan(
        &w,
        serde_json::json!({"target": {"action": "coats"}, "size": {"top": 10_000}}),
    );
    let started = std::time::Instant::now();
    let a = select(&src, &action);
    eprintln!(
        "action target over {CUSTOMERS} customers: {} eligible, {:.0} ms",
        a.summary.funnel[1].after,
        started.elapsed().as_secs_f64() * 1e3
    );

    let mut g = c.benchmark_group("audience over 1M customers");
    g.sample_size(20);
    g.measurement_time(std::time::Duration::from_secs(5));
    g.bench_function("select top 10,000 of a category", |b| {
        b.iter(|| black_box(select(&src, black_box(&top)).picks.len()))
    });
    g.bench_function("select top 10,000 + write them as JSON", |b| {
        b.iter(|| {
            let a = select(&src, black_box(&top));
            let out = write(&a, src, Format::Json, Vec::with_capacity(4 << 20)).expect("written");
            black_box(out.len())
        })
    });
    g.bench_function("select top 10,000 with 4 filters and a 10% holdout", |b| {
        b.iter(|| black_box(select(&src, black_box(&filtered)).picks.len()))
    });
    g.bench_function("select everyone above p = 0.5 (about 160,000)", |b| {
        b.iter(|| black_box(select(&src, black_box(&threshold)).picks.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
