//! `rank` over a 30-action catalog: the sample catalog's 16 actions plus 14 more, several with
//! CEL expressions, for a customer with recent contacts and send-time profiles.
//!
//! `cargo bench -p lattice-decide` (target: under 5 µs per call).

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use std::hint::black_box;
use std::path::PathBuf;

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_decide::{
    Catalog, Channel, Contact, Context, Customer, HOURS_PER_WEEK, PerChannel, RankOptions, Scores,
    rank,
};

/// The `lattice` binary's allocator, so the figures are what the server's ranking costs
/// (glibc's malloc and free were a fifth of this bench's instructions).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXTRA: &str = r#"
[[action]]
id = "vip_lounge"
name = "VIP lounge"
kind = "tier_experience"
channels = ["email", "push"]
value = 25.0
cost = 1.0
eligible = "tier == 'gold' || tier == 'platinum'"

[[action]]
id = "delight"
name = "A little something"
kind = "surprise_delight"
channels = ["email"]
value = 40.0
cost = 5.0

[[action]]
id = "check_in"
name = "How is it going?"
kind = "post_purchase"
channels = ["email", "push"]
value = 8.0

[[action]]
id = "insider_outerwear"
name = "Insider: outerwear"
kind = "insider_preview"
channels = ["email", "push"]
category = "outerwear"
value = 50.0
cost = 0.05

[[action]]
id = "discovery_footwear"
name = "Discover: footwear"
kind = "discovery"
channels = ["email", "push"]
category = "footwear"
value = 30.0
cost = 0.05
eligible = "share_footwear < 0.1 && views_30d > 0.0"

[[action]]
id = "early_access_denim"
name = "Early access: denim"
kind = "early_access"
channels = ["email", "push"]
category = "denim"
value = 45.0
cost = 0.05
cooldown_days = 14

[[action]]
id = "lapsed_sms"
name = "We miss you"
kind = "win_back"
channels = ["sms"]
value = 35.0
cost = 0.5
eligible = "recency_days > 60.0 && orders_365d >= 2.0"

[[action]]
id = "points_push"
name = "Points reminder"
kind = "points_expiry"
channels = ["push"]
value = 15.0
cost = 0.01

[[action]]
id = "category_page"
name = "More like this"
kind = "custom"
channels = ["push", "email"]
value = 20.0
cost = 0.05
eligible = "has(context.category) && affinity_outerwear > 0.2"

[[action]]
id = "sale_page"
name = "Sale picks"
kind = "custom"
channels = ["email"]
value = 12.0
cost = 0.02
eligible = "has(context.page) && context.page.startsWith('/sale')"

[[action]]
id = "high_value"
name = "For our best customers"
kind = "custom"
channels = ["email"]
value = 30.0
cost = 1.0
eligible = "clv > 500.0 && p_alive > 0.5"

[[action]]
id = "engaged_reader"
name = "Editor's picks"
kind = "custom"
channels = ["email"]
value = 10.0
cost = 0.01
eligible = "email_open_rate > 0.3 || email_click_rate > 0.05"

[[action]]
id = "store_event"
name = "In-store evening"
kind = "custom"
channels = ["email", "sms"]
value = 18.0
cost = 0.5
eligible = "tier != null && spend_365d > 500.0"

[[action]]
id = "gratitude_push"
name = "Thanks for sticking with us"
kind = "gratitude"
channels = ["push"]
value = 8.0
"#;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn bench_rank(c: &mut Criterion) {
    let sample = std::fs::read_to_string(repo("training-data/sample/actions.toml")).unwrap();
    let actions = ActionCatalog::parse(&format!("{sample}\n{EXTRA}")).unwrap();
    let settings = Settings::load_or_default(&repo("training-data/sample/lattice.toml")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("models/demo/manifest.json")).unwrap())
            .unwrap();
    let variables: Vec<String> = manifest["feature_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    let categories: Vec<String> = manifest["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let catalog = Catalog::compile(&actions, &settings, &variables, &categories).unwrap();
    assert_eq!(catalog.len(), 30);

    let now = Utc.with_ymd_and_hms(2025, 6, 30, 18, 0, 0).unwrap();
    let mut values = vec![0.0; variables.len()];
    for (name, x) in [
        ("recency_days", 20.0),
        ("orders_365d", 6.0),
        ("carts_30d", 1.0),
        ("views_30d", 6.0),
        ("days_since_last_event", 1.0),
        ("email_open_rate", 0.4),
        ("share_outerwear", 0.6),
        ("spend_365d", 700.0),
    ] {
        values[variables.iter().position(|v| v == name).unwrap()] = x;
    }
    let affinity = [0.01, 0.12, 0.02, 0.0, 0.41, 0.03, 0.05, 0.0];
    let ids = [
        "early_access_outerwear",
        "newsletter",
        "discovery_home",
        "win_back",
    ];
    let contacts: Vec<Contact> = (0..8)
        .map(|i| Contact {
            action_id: ids[i % ids.len()],
            channel: [Channel::Email, Channel::Push][i % 2],
            at: now - TimeDelta::hours(60 * i as i64 + 5),
        })
        .collect();
    let mut profile = [0.0; HOURS_PER_WEEK];
    for (h, w) in profile.iter_mut().enumerate() {
        *w = ((h % 24) as f64 - 12.0).abs().recip().min(1.0);
    }
    let customer = Customer {
        id: "c0042",
        values: &values,
        scores: Scores {
            churn_probability: 0.65,
            p_alive: 0.7,
            expected_purchases: 2.0,
            clv: 650.0,
            affinity: &affinity,
        },
        tier: Some("silver"),
        spend_365d: 700.0,
        points_balance: 800.0,
        tz: chrono_tz::America::New_York,
        consent: PerChannel {
            email: true,
            sms: true,
            push: true,
        },
        birth_date: Some(chrono::NaiveDate::from_ymd_opt(1988, 6, 14).unwrap()),
        last_purchase_at: Some(now - TimeDelta::days(20)),
        contacts: &contacts,
        send_time: PerChannel {
            email: Some(&profile),
            sms: None,
            push: Some(&profile),
        },
        ..Customer::default()
    };
    let mut context = Context::at(now);
    context.category = Some("outerwear");
    context.page = Some("/sale/coats");
    let options = RankOptions {
        limit: 5,
        channel: None,
        explain: false,
    };
    let decision = rank(&catalog, &customer, &context, &options);
    assert_eq!(decision.actions.len(), 5);

    c.bench_function("rank 30 actions, limit 5", |b| {
        b.iter(|| {
            rank(
                black_box(&catalog),
                black_box(&customer),
                black_box(&context),
                &options,
            )
        })
    });
    c.bench_function("rank 30 actions, limit 5, written as JSON", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4096);
            catalog.rank_json(
                black_box(&customer),
                black_box(&context),
                &options,
                &mut out,
            );
            out
        })
    });
    // What a learning server's recorded decision adds before ranking: each action screened on
    // its own for the chooser's arms (lattice-runtime's `Learning::choose`).
    let n = catalog.actions().count();
    c.bench_function("assess each of 30 actions", |b| {
        b.iter(|| {
            (0..n)
                .filter_map(|i| {
                    catalog
                        .assess(i, black_box(&customer), black_box(&context), None)
                        .ok()
                })
                .count()
        })
    });
    let explain = RankOptions {
        explain: true,
        ..options
    };
    c.bench_function("rank 30 actions, limit 5, explain", |b| {
        b.iter(|| {
            rank(
                black_box(&catalog),
                black_box(&customer),
                black_box(&context),
                &explain,
            )
        })
    });
    // The slot scan of one send time: the week ahead, outside the catalog's quiet hours.
    c.bench_function("send_at, a week ahead", |b| {
        b.iter(|| {
            catalog.send_at(
                black_box(now),
                chrono_tz::America::New_York,
                Some(black_box(&profile)),
                false,
            )
        })
    });
    c.bench_function("compile 30 actions", |b| {
        b.iter(|| Catalog::compile(black_box(&actions), &settings, &variables, &categories))
    });
}

criterion_group!(benches, bench_rank);
criterion_main!(benches);
