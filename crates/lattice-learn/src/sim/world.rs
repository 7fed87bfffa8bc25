//! The simulated programme and its customers, and the true response rate of each cell.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_decide::{Catalog, Context, Customer, PerChannel, Scores};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, StandardNormal};

use crate::hash::hash64;
use crate::segment::{Segment, Segments};

use super::{Config, SimError};

/// The simulated programme's actions.
pub const CATALOG: &str = r#"
[[action]]
id = "offer_outerwear"
name = "New season outerwear"
kind = "custom"
channels = ["email"]
category = "outerwear"
value = 40.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_denim"
name = "Denim edit"
kind = "custom"
channels = ["email"]
category = "denim"
value = 30.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_shoes"
name = "Shoes you will like"
kind = "custom"
channels = ["email"]
category = "shoes"
value = 35.0
cost = 0.2
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "offer_beauty"
name = "Beauty picks"
kind = "custom"
channels = ["email"]
category = "beauty"
value = 20.0
cost = 0.1
response = { event = "purchase_in_category", window_days = 7 }

[[action]]
id = "win_back"
name = "We saved you something"
kind = "win_back"
channels = ["email"]
value = 60.0
cost = 0.5
response = { event = "purchase", window_days = 7 }

[[action]]
id = "tier_experience"
name = "A members' evening"
kind = "tier_experience"
channels = ["email"]
value = 25.0
cost = 0.2
response = { event = "app_open", window_days = 7 }

[[action]]
id = "points_newsletter"
name = "Your points this month"
kind = "custom"
channels = ["email"]
value = 12.0
cost = 0.05
response = { event = "click", window_days = 7 }
"#;

pub const CATEGORIES: [&str; 4] = ["outerwear", "denim", "shoes", "beauty"];
pub(super) const TIERS: &str = "[[tier]]\nname = \"bronze\"\nmin_spend = 0\n[[tier]]\nname = \"silver\"\nmin_spend = 250\n[[tier]]\nname = \"gold\"\nmin_spend = 1000\n";
/// Days between a customer's decisions: at least every response window, so a customer's
/// windows never overlap and attribution is exact.
pub(super) const CADENCE_DAYS: u32 = 7;
/// Spread of the true rates around the static propensities (log scale).
pub(super) const TRUTH_SPREAD: f64 = 0.8;

pub(super) struct SimCustomer {
    pub(super) id: String,
    pub(super) spend: f64,
    pub(super) churn: f64,
    pub(super) p_alive: f64,
    pub(super) affinity: [f64; 4],
    pub(super) recency_days: f64,
    pub(super) segment: Segment,
    /// Day of the cadence (0..7) and hour of the decision.
    pub(super) day: u32,
    pub(super) hour: u32,
}

/// The world: programme, customers, the true rate of every action × segment cell.
pub struct World {
    pub catalog: Catalog,
    pub spec: ActionCatalog,
    pub segments: Segments,
    pub(super) customers: Vec<SimCustomer>,
    /// `truth[action × segments + segment]`; NaN where no customer of the cell is eligible.
    pub truth: Vec<f64>,
    pub start: DateTime<Utc>,
}

impl World {
    pub fn new(config: &Config) -> Result<World, SimError> {
        if config.customers == 0 {
            return Err(SimError::Customers(config.customers));
        }
        if !(1..=3650).contains(&config.days) {
            return Err(SimError::Days(config.days));
        }
        let spec = ActionCatalog::parse(CATALOG).map_err(SimError::Catalog)?;
        let settings = Settings::parse(TIERS).map_err(SimError::Catalog)?;
        let categories: Vec<String> = CATEGORIES.iter().map(|c| c.to_string()).collect();
        let catalog = Catalog::compile(&spec, &settings, &[], &categories)
            .map_err(|e| SimError::Catalog(e.to_string()))?;
        let segments = Segments::new(settings.tiers.iter().map(|t| t.name.clone()));
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let spend_dist =
            LogNormal::new(300f64.ln(), 1.0).map_err(|e| SimError::Catalog(e.to_string()))?;
        let churn_dist =
            rand_distr::Beta::new(1.2, 1.8).map_err(|e| SimError::Catalog(e.to_string()))?;
        let customers: Vec<SimCustomer> = (0..config.customers)
            .map(|i| {
                let id = format!("s{i:06}");
                let spend: f64 = spend_dist.sample(&mut rng);
                let churn: f64 = churn_dist.sample(&mut rng);
                let p_alive = (1.0 - 0.7 * churn + rng.gen_range(-0.05..0.05)).clamp(0.01, 1.0);
                let affinity = std::array::from_fn(|_| 0.5 * rng.gen_range(0.0f64..1.0).powi(2));
                let recency_days = 5.0 + 120.0 * churn * rng.gen_range(0.5..1.5);
                let tier = settings.tier_for(spend).0.map(|t| t.name.as_str());
                let h = hash64(&[&id, "schedule"]);
                SimCustomer {
                    segment: segments.of(tier, churn),
                    day: (h % u64::from(CADENCE_DAYS)) as u32,
                    hour: ((h >> 8) % 24) as u32,
                    id,
                    spend,
                    churn,
                    p_alive,
                    affinity,
                    recency_days,
                }
            })
            .collect();
        let start = Utc
            .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
            .single()
            .ok_or_else(|| SimError::Catalog("start date".into()))?;
        let mut world = World {
            catalog,
            spec,
            segments,
            customers,
            truth: Vec::new(),
            start,
        };
        // Plant the truth around each cell's mean static propensity.
        let n_actions = world.spec.actions.len();
        let n_seg = world.segments.len();
        let mut sum = vec![0.0; n_actions * n_seg];
        let mut count = vec![0u32; n_actions * n_seg];
        for c in &world.customers {
            let customer = c.customer(start, &[]);
            let context = Context::at(start);
            for a in 0..n_actions {
                if let Ok(p) = world.catalog.assess(a, &customer, &context, None) {
                    sum[a * n_seg + c.segment.0] += p;
                    count[a * n_seg + c.segment.0] += 1;
                }
            }
        }
        world.truth = (0..n_actions * n_seg)
            .map(|k| {
                let z: f64 = StandardNormal.sample(&mut rng);
                if count[k] == 0 {
                    f64::NAN
                } else {
                    let mean = sum[k] / f64::from(count[k]);
                    (mean * (TRUTH_SPREAD * z).exp()).clamp(0.005, 0.5)
                }
            })
            .collect();
        Ok(world)
    }

    pub(super) fn truth(&self, action: usize, segment: Segment) -> f64 {
        self.truth[action * self.segments.len() + segment.0]
    }

    pub(super) fn expected(&self, action: usize, segment: Segment) -> f64 {
        let a = &self.spec.actions[action];
        self.truth(action, segment) * a.value * a.weight - a.cost
    }
}

impl SimCustomer {
    pub(super) fn customer<'a>(
        &'a self,
        now: DateTime<Utc>,
        contacts: &'a [lattice_decide::Contact<'a>],
    ) -> Customer<'a> {
        Customer {
            id: &self.id,
            values: &[],
            scores: Scores {
                churn_probability: self.churn,
                p_alive: self.p_alive,
                expected_purchases: 1.0,
                clv: self.spend,
                affinity: &self.affinity,
            },
            spend_365d: self.spend,
            consent: PerChannel {
                email: true,
                sms: false,
                push: false,
            },
            last_purchase_at: Some(now - TimeDelta::seconds((self.recency_days * 86_400.0) as i64)),
            contacts,
            ..Customer::default()
        }
    }
}
