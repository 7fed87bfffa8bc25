//! Small hand-made worlds (every customer's numbers known) and the demo model, as sources.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use lattice_audience::{AudienceIndex, AudienceRequest, ModelFacts, Plan, Source};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::{Settings, Tier};
use lattice_decide::Catalog;
use lattice_models::artifact::{ACTIONS, SETTINGS, SNAPSHOT, load};
use lattice_models::snapshot::{Contact, CustomerRecord, ServingSnapshot};

pub const DAY_US: i64 = 86_400_000_000;

pub fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 23, 59, 59).unwrap()
}

pub struct World {
    pub snapshot: ServingSnapshot,
    pub index: AudienceIndex,
    pub catalog: Catalog,
    pub zones: Vec<Tz>,
}

impl World {
    pub fn source(&self) -> Source<'_> {
        Source {
            index: &self.index,
            snapshot: &self.snapshot,
            catalog: &self.catalog,
            zones: &self.zones,
            withdrawn: None,
        }
    }

    pub fn plan(&self, json: serde_json::Value) -> Plan {
        self.try_plan(json).unwrap()
    }

    pub fn try_plan(&self, json: serde_json::Value) -> Result<Plan, lattice_audience::FieldError> {
        let req: AudienceRequest = serde_json::from_value(json).unwrap();
        req.plan(&self.index, &self.catalog, as_of())
    }
}

/// One hand-made customer.
#[derive(Clone)]
pub struct C {
    pub id: String,
    pub tier: Option<&'static str>,
    /// email, sms, push.
    pub consent: [bool; 3],
    pub churn: f64,
    pub clv: f64,
    /// outerwear, denim.
    pub affinity: [f64; 2],
    pub days_since_purchase: Option<i64>,
    /// (action id, channel, days before as_of).
    pub contacts: Vec<(&'static str, &'static str, i64)>,
    pub monetary_mean: f64,
}

impl C {
    pub fn new(id: &str, outerwear: f64) -> C {
        C {
            id: id.to_string(),
            tier: Some("bronze"),
            consent: [true, false, false],
            churn: 0.5,
            clv: 100.0,
            affinity: [outerwear, 0.01],
            days_since_purchase: Some(40),
            contacts: vec![],
            monetary_mean: 50.0,
        }
    }
}

pub const FEATURES: [&str; 5] = [
    "recency_days",
    "monetary_mean",
    "spend_365d",
    "share_outerwear",
    "share_denim",
];

pub const CATALOG: &str = r#"
[[action]]
id = "coats"
name = "Early access: coats"
kind = "early_access"
channels = ["email", "push"]
category = "outerwear"
value = 60.0
cost = 0.5
cooldown_days = 14

[[action]]
id = "win_back"
name = "We saved you something"
kind = "win_back"
channels = ["email"]
value = 35.0
cost = 8.0
"#;

pub fn tiers() -> Vec<Tier> {
    ["bronze", "silver", "gold"]
        .iter()
        .enumerate()
        .map(|(k, n)| Tier {
            name: n.to_string(),
            min_spend: 250.0 * k as f64,
            reward: None,
        })
        .collect()
}

pub fn world(customers: &[C]) -> World {
    let features: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
    let categories = vec!["outerwear".to_string(), "denim".to_string()];
    let mut snapshot = ServingSnapshot::empty(&features, &categories);
    let as_of_us = as_of().timestamp_micros();
    for c in customers {
        let values = [
            c.days_since_purchase.unwrap_or(999) as f64,
            c.monetary_mean,
            0.0,
            0.0,
            0.0,
            c.churn,
            0.5,
            1.0,
            c.clv,
            c.affinity[0],
            c.affinity[1],
            0.0,
            f64::from(u8::from(c.consent[0])),
            f64::from(u8::from(c.consent[1])),
            f64::from(u8::from(c.consent[2])),
        ];
        let record = CustomerRecord {
            id: c.id.clone(),
            churn_reasons: vec!["recency_days".into()],
            tier: c.tier.map(str::to_string),
            consent: c.consent,
            timezone: "UTC".into(),
            last_purchase_us: c.days_since_purchase.map(|d| as_of_us - d * DAY_US),
            contacts: c
                .contacts
                .iter()
                .map(|(a, ch, d)| Contact {
                    action_id: a.to_string(),
                    channel: ch.to_string(),
                    at_us: as_of_us - d * DAY_US,
                })
                .collect(),
            ..Default::default()
        };
        snapshot.push(record, &values).unwrap();
    }
    let settings = Settings {
        tiers: tiers(),
        ..Settings::default()
    };
    let catalog = Catalog::compile(
        &ActionCatalog::parse(CATALOG).unwrap(),
        &settings,
        &snapshot.variables,
        &categories,
    )
    .unwrap();
    let as_of_text = as_of().to_rfc3339();
    let index = AudienceIndex::build(
        ModelFacts {
            name: "hand-made",
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
    let zones = vec![Tz::UTC; customers.len()];
    World {
        snapshot,
        index,
        catalog,
        zones,
    }
}

pub fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

/// The committed demo model, loaded as the server loads it.
pub fn demo() -> World {
    let dir = demo_dir();
    let (manifest, _) = load(&dir).unwrap();
    let features: Vec<String> = manifest
        .feature_schema
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let snapshot =
        ServingSnapshot::read(&dir.join(SNAPSHOT), &features, &manifest.categories).unwrap();
    let settings = Settings::load_or_default(&dir.join(SETTINGS)).unwrap();
    let catalog = Catalog::compile(
        &ActionCatalog::from_file(&dir.join(ACTIONS)).unwrap(),
        &settings,
        &snapshot.variables,
        &manifest.categories,
    )
    .unwrap();
    let index = AudienceIndex::for_model(&dir, &manifest, &snapshot, &settings.tiers);
    let zones = snapshot
        .customers
        .iter()
        .map(|c| c.timezone.parse().unwrap_or(Tz::UTC))
        .collect();
    World {
        snapshot,
        index,
        catalog,
        zones,
    }
}
