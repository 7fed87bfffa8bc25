//! What audiences read, laid out once per model load: one contiguous column per score and per
//! filter, so that ranking a category over a million customers is a scan of a few arrays, and
//! no request allocates anything per customer.

use std::path::Path;

use lattice_catalog::settings::Tier;
use lattice_decide::slug;
use lattice_models::artifact::{METRICS, Manifest};
use lattice_models::pipeline::Backtest;
use lattice_models::snapshot::ServingSnapshot;

use crate::calibration::{Calibration, LiftCurve};
use crate::holdout::customer_hash;

pub(crate) const DAY_US: i64 = 86_400_000_000;

/// Consent bits in [`AudienceIndex::consent`].
pub(crate) const EMAIL: u8 = 1;
pub(crate) const SMS: u8 = 2;
pub(crate) const PUSH: u8 = 4;

/// No tier.
pub(crate) const NO_TIER: u16 = u16::MAX;

/// What the index needs to know about the model.
#[derive(Debug, Clone, Copy)]
pub struct ModelFacts<'a> {
    pub name: &'a str,
    /// RFC 3339.
    pub as_of: &'a str,
    pub as_of_us: i64,
    pub horizon_days: i64,
    pub affinity_days: i64,
    pub categories: &'a [String],
}

impl<'a> From<&'a Manifest> for ModelFacts<'a> {
    fn from(m: &'a Manifest) -> Self {
        ModelFacts {
            name: &m.name,
            as_of: &m.as_of,
            as_of_us: m.as_of_us,
            horizon_days: m.horizon_days,
            affinity_days: m.affinity_days,
            categories: &m.categories,
        }
    }
}

/// The backtest of a model directory (`metrics.json`), and a note saying where the
/// calibration comes from (or why there is none).
pub fn read_backtest(dir: &Path) -> (Option<Backtest>, String) {
    let path = dir.join(METRICS);
    match std::fs::read_to_string(&path) {
        Err(_) => (
            None,
            format!(
                "no backtest ({METRICS} is missing): probabilities are the model's own and the \
                 lift over random is unknown"
            ),
        ),
        Ok(text) => match serde_json::from_str::<Backtest>(&text) {
            Ok(b) => {
                let note = format!(
                    "recalibrated on the backtest deciles of {METRICS} (fit at {}, measured on \
                     {})",
                    b.fit_cutoff, b.test_window
                );
                (Some(b), note)
            }
            Err(e) => (
                None,
                format!(
                    "{}: not a backtest report ({e}): probabilities are the model's own and the \
                     lift over random is unknown",
                    path.display()
                ),
            ),
        },
    }
}

/// One score an audience can rank by.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScoreColumn {
    /// The model's probability per customer.
    pub(crate) raw: Vec<f64>,
    /// Recalibrated on the backtest (equal to `raw` without a backtest).
    pub(crate) calibrated: Vec<f64>,
    pub(crate) calibration: Option<Calibration>,
    pub(crate) lift: Option<LiftCurve>,
    /// Mean of `calibrated` over every customer: the rate of a random audience.
    pub(crate) population_mean: f64,
}

impl ScoreColumn {
    fn new(raw: Vec<f64>, deciles: Option<&[lattice_models::metrics::Decile]>) -> Self {
        let calibration = deciles.and_then(Calibration::from_deciles);
        let lift = deciles.and_then(LiftCurve::from_deciles);
        let calibrated: Vec<f64> = match &calibration {
            Some(c) => raw.iter().map(|&p| c.apply(p)).collect(),
            None => raw.iter().map(|&p| prob(p)).collect(),
        };
        let population_mean = calibrated.iter().sum::<f64>() / calibrated.len().max(1) as f64;
        ScoreColumn {
            raw,
            calibrated,
            calibration,
            lift,
            population_mean,
        }
    }

    /// Recalibrates a probability that is not in the column (an action's propensity).
    pub(crate) fn calibrate(&self, p: f64) -> f64 {
        match &self.calibration {
            Some(c) => c.apply(p),
            None => prob(p),
        }
    }
}

/// NaN reads as 0; clamped to [0, 1].
pub(crate) fn prob(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// Per-customer columns for audiences, in snapshot order.
#[derive(Debug, Clone, Default)]
pub struct AudienceIndex {
    pub(crate) model: String,
    pub(crate) as_of: String,
    pub(crate) as_of_us: i64,
    pub(crate) horizon_days: i64,
    pub(crate) affinity_days: i64,
    pub(crate) categories: Vec<String>,
    pub(crate) slugs: Vec<String>,
    pub(crate) churn: ScoreColumn,
    pub(crate) affinity: Vec<ScoreColumn>,
    pub(crate) clv: Vec<f64>,
    /// Value of one purchase: the customer's mean order value, else the mean over buyers.
    pub(crate) order_value: Vec<f64>,
    /// Index into `tier_names`, or [`NO_TIER`].
    pub(crate) tier: Vec<u16>,
    /// The settings' ladder, then any other tier seen in the snapshot.
    pub(crate) tier_names: Vec<String>,
    pub(crate) consent: Vec<u8>,
    /// Days from the last purchase to as_of; NaN without a purchase.
    pub(crate) days_since_purchase: Vec<f64>,
    /// Latest contact (µs), `i64::MIN` without one.
    pub(crate) last_contact_us: Vec<i64>,
    pub(crate) id_hash: Vec<u64>,
    /// Feature positions used by reason codes: `share_<slug>`, `view_share_<slug>`.
    pub(crate) share: Vec<Option<usize>>,
    pub(crate) view_share: Vec<Option<usize>>,
    pub(crate) spend_365d: Option<usize>,
    /// Where the calibration comes from.
    pub(crate) calibration_note: String,
}

impl AudienceIndex {
    /// The index of a model directory as `lattice train` wrote it: its manifest, snapshot and
    /// backtest (`metrics.json`, read here).
    pub fn for_model(
        dir: &Path,
        manifest: &Manifest,
        snapshot: &ServingSnapshot,
        tiers: &[Tier],
    ) -> Self {
        let (backtest, note) = read_backtest(dir);
        Self::build(manifest.into(), snapshot, tiers, backtest.as_ref(), note)
    }

    /// Lays the snapshot out in columns. `tiers` is the programme's ladder (settings);
    /// `backtest` the model's `metrics.json` if it has one (see [`read_backtest`]).
    pub fn build(
        model: ModelFacts<'_>,
        snapshot: &ServingSnapshot,
        tiers: &[Tier],
        backtest: Option<&Backtest>,
        calibration_note: String,
    ) -> Self {
        let n = snapshot.customers.len();
        let slugs: Vec<String> = model.categories.iter().map(|c| slug(c)).collect();
        let feature = |name: &str| snapshot.feature_names.iter().position(|f| f == name);
        let monetary_mean = feature("monetary_mean");

        let mut churn = Vec::with_capacity(n);
        let mut clv = Vec::with_capacity(n);
        let mut affinity: Vec<Vec<f64>> = vec![Vec::with_capacity(n); model.categories.len()];
        let mut order_value = Vec::with_capacity(n);
        let mut tier = Vec::with_capacity(n);
        let mut tier_names: Vec<String> = tiers.iter().map(|t| t.name.clone()).collect();
        let mut consent = Vec::with_capacity(n);
        let mut days_since_purchase = Vec::with_capacity(n);
        let mut last_contact_us = Vec::with_capacity(n);
        let mut id_hash = Vec::with_capacity(n);
        for (i, rec) in snapshot.customers.iter().enumerate() {
            let s = snapshot.scores(i);
            churn.push(s[0]);
            clv.push(s[3]);
            for (col, v) in affinity.iter_mut().zip(&s[4..]) {
                col.push(*v);
            }
            let mean = monetary_mean.map_or(0.0, |j| snapshot.features(i)[j]);
            order_value.push(if mean.is_finite() { mean.max(0.0) } else { 0.0 });
            tier.push(match &rec.tier {
                None => NO_TIER,
                Some(t) => match tier_names.iter().position(|x| x == t) {
                    Some(k) => k as u16,
                    None => {
                        tier_names.push(t.clone());
                        (tier_names.len() - 1).min(usize::from(NO_TIER - 1)) as u16
                    }
                },
            });
            let [e, sms, p] = rec.consent;
            consent.push((u8::from(e) * EMAIL) | (u8::from(sms) * SMS) | (u8::from(p) * PUSH));
            days_since_purchase.push(
                rec.last_purchase_us
                    .map_or(f64::NAN, |t| (model.as_of_us - t) as f64 / DAY_US as f64),
            );
            last_contact_us.push(
                rec.contacts
                    .iter()
                    .map(|c| c.at_us)
                    .max()
                    .unwrap_or(i64::MIN),
            );
            id_hash.push(customer_hash(&rec.id));
        }
        // Customers without purchases are valued at the mean order of those with some.
        let buyers: Vec<f64> = order_value.iter().copied().filter(|&v| v > 0.0).collect();
        let fallback = buyers.iter().sum::<f64>() / buyers.len().max(1) as f64;
        for v in &mut order_value {
            if *v <= 0.0 {
                *v = fallback;
            }
        }

        let churn_deciles = backtest.map(|b| b.churn.deciles.as_slice());
        let affinity = affinity
            .into_iter()
            .zip(model.categories)
            .map(|(raw, cat)| {
                let deciles = backtest.and_then(|b| {
                    b.affinity
                        .iter()
                        .find(|m| &m.category == cat)
                        .map(|m| m.metrics.deciles.as_slice())
                });
                ScoreColumn::new(raw, deciles)
            })
            .collect();
        AudienceIndex {
            model: model.name.to_string(),
            as_of: model.as_of.to_string(),
            as_of_us: model.as_of_us,
            horizon_days: model.horizon_days,
            affinity_days: model.affinity_days,
            categories: model.categories.to_vec(),
            share: slugs
                .iter()
                .map(|s| feature(&format!("share_{s}")))
                .collect(),
            view_share: slugs
                .iter()
                .map(|s| feature(&format!("view_share_{s}")))
                .collect(),
            spend_365d: feature("spend_365d"),
            slugs,
            churn: ScoreColumn::new(churn, churn_deciles),
            affinity,
            clv,
            order_value,
            tier,
            tier_names,
            consent,
            days_since_purchase,
            last_contact_us,
            id_hash,
            calibration_note,
        }
    }

    /// Customers indexed.
    pub fn len(&self) -> usize {
        self.id_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_hash.is_empty()
    }

    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Tier names a filter may use.
    pub fn tier_names(&self) -> &[String] {
        &self.tier_names
    }

    pub fn as_of(&self) -> &str {
        &self.as_of
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether probabilities are recalibrated on a backtest, and from what.
    pub fn calibration_note(&self) -> &str {
        &self.calibration_note
    }

    /// The backtest's cumulative lift curve of the churn score (`None`) or a category's
    /// affinity score, when the model has a backtest.
    pub fn lift_curve(&self, category: Option<usize>) -> Option<&LiftCurve> {
        match category {
            None => self.churn.lift.as_ref(),
            Some(c) => self.affinity.get(c)?.lift.as_ref(),
        }
    }
}
