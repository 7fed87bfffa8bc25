//! Shared fixtures: a small model (variables, categories), tiers, customers.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_decide::{
    Catalog, CatalogError, Context, Customer, Decision, PerChannel, RankOptions, Scores, rank,
};

pub const VARIABLES: &[&str] = &[
    "recency_days",
    "frequency",
    "orders_90d",
    "carts_30d",
    "views_30d",
    "days_since_last_event",
    "share_outerwear",
    "share_footwear",
    "share_home",
    "view_share_outerwear",
    "view_share_footwear",
    "view_share_home",
];

pub const CATEGORIES: &[&str] = &["outerwear", "footwear", "home"];

pub fn variables() -> Vec<String> {
    VARIABLES.iter().map(|s| s.to_string()).collect()
}

pub fn categories() -> Vec<String> {
    CATEGORIES.iter().map(|s| s.to_string()).collect()
}

pub fn settings() -> Settings {
    Settings::parse(
        r#"
currency = "EUR"
[[tier]]
name = "bronze"
min_spend = 0
reward = "free shipping"
[[tier]]
name = "silver"
min_spend = 250
reward = "free returns"
[[tier]]
name = "gold"
min_spend = 750
reward = "early access"
[[tier]]
name = "platinum"
min_spend = 2000
reward = "a personal stylist"
"#,
    )
    .unwrap()
}

pub fn parse(toml: &str) -> ActionCatalog {
    ActionCatalog::parse(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

pub fn compile(toml: &str) -> Result<Catalog, CatalogError> {
    Catalog::compile(&parse(toml), &settings(), &variables(), &categories())
}

/// One action of `kind` on email and push, with `extra` TOML lines.
pub fn action(id: &str, kind: &str, extra: &str) -> String {
    format!(
        "[[action]]\nid = \"{id}\"\nname = \"{id}\"\nkind = \"{kind}\"\nchannels = [\"email\", \"push\"]\nvalue = 50.0\ncost = 0.1\n{extra}\n"
    )
}

pub fn now() -> DateTime<Utc> {
    // A Monday, 14:00 UTC (10:00 in New York).
    Utc.with_ymd_and_hms(2025, 6, 2, 14, 0, 0).unwrap()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Feature values by name; the rest 0.
pub fn values(pairs: &[(&str, f64)]) -> Vec<f64> {
    let mut v = vec![0.0; VARIABLES.len()];
    for (name, x) in pairs {
        let i = VARIABLES.iter().position(|n| n == name).unwrap();
        v[i] = *x;
    }
    v
}

/// A plain customer: consent everywhere, New York, silver spend, nothing special.
pub fn customer<'a>(values: &'a [f64], affinity: &'a [f64]) -> Customer<'a> {
    Customer {
        id: "c1",
        values,
        scores: Scores {
            churn_probability: 0.2,
            p_alive: 0.8,
            expected_purchases: 1.0,
            clv: 100.0,
            affinity,
        },
        tier: None,
        spend_365d: 300.0,
        points_balance: 0.0,
        tz: chrono_tz::America::New_York,
        consent: PerChannel::all(true),
        ..Customer::default()
    }
}

pub fn explain(limit: usize) -> RankOptions {
    RankOptions {
        limit,
        channel: None,
        explain: true,
    }
}

pub fn decide(catalog: &Catalog, customer: &Customer<'_>) -> Decision {
    rank(catalog, customer, &Context::at(now()), &explain(50))
}

pub fn ranked_ids(d: &Decision) -> Vec<&str> {
    d.actions.iter().map(|a| a.id.as_str()).collect()
}

/// The rule and detail that excluded `id`, if it was excluded.
pub fn exclusion<'d>(d: &'d Decision, id: &str) -> Option<(&'static str, &'d str)> {
    d.excluded
        .as_ref()?
        .iter()
        .find(|e| e.id == id)
        .map(|e| (e.rule.as_str(), e.detail.as_str()))
}
