//! Fitting and backtesting on a customer history with the time-split protocol.
//!
//! For a cutoff `T` and horizon `h`: models are fitted on features at `T − 2h` with labels from
//! `(T − 2h, T − h]`, and the L2 strength and Platt calibration are chosen on features at
//! `T − h` with labels from `(T − h, T]`. Nothing after `T` is read. `lattice train` uses the
//! end of the data as `T`; `lattice evaluate` uses `T = end − h` and measures on the labels of
//! `(T, end]`, which fitting never saw.

use std::collections::HashMap;

use lattice_features::features::slug;
use lattice_features::history::SharedAggregates;
use lattice_features::{Aggregates, FeatureContext, History, Labels, Profile};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::affinity::{CategoryInputs, CategoryLogistic, InputSet};
use crate::clv::{BgNbd, FitOptions, GammaGamma, RfmRow};
use crate::logistic::{ALPHAS, Examples, LogisticModel, fit_calibrated};
use crate::metrics::{BinaryMetrics, auc};
use crate::sendtime::{
    Channel, Engagement, Grid, Hyper, SendTimeCounts, SendTimeError, measure, select,
};

const DAY_US: i64 = lattice_features::aggregates::DAY_US;

/// Names of the BG/NBD quantities appended to the feature vector of the churn and affinity
/// models.
pub const CLV_FEATURES: [&str; 3] = [
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_expected_purchases",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Churn horizon: churn means no purchase in the next `horizon_days`.
    pub horizon_days: i64,
    /// Affinity window: a purchase of the category in the next `affinity_days`.
    pub affinity_days: i64,
    /// Fewer positives than this in a category's training or validation window: fall back to
    /// the smoothed own-history model.
    pub min_positives: usize,
    /// Models are fitted on at most this many customers (a deterministic sample).
    pub max_fit_rows: usize,
    /// At most this many categories get models (the most purchased).
    pub max_categories: usize,
    pub alphas: Vec<f64>,
    /// What BG/NBD counts as a repeat purchase.
    #[serde(default)]
    pub clv_frequency: RepeatCount,
}

/// What the BG/NBD frequency counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatCount {
    /// Distinct days (UTC) with an order after the first, with recency and age in whole days:
    /// the definition of Fader, Hardie and Lee (2005) and of `lifetimes`. Orders on one day are
    /// one purchase occasion.
    #[default]
    PurchaseDays,
    /// Orders after the first, at their instants.
    Orders,
}

impl std::str::FromStr for RepeatCount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "purchase-days" | "purchase_days" => Ok(RepeatCount::PurchaseDays),
            "orders" => Ok(RepeatCount::Orders),
            _ => Err(format!("expected purchase-days or orders, not {s:?}")),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            horizon_days: 60,
            affinity_days: 28,
            min_positives: 30,
            max_fit_rows: 50_000,
            max_categories: 30,
            alphas: ALPHAS.to_vec(),
            clv_frequency: RepeatCount::default(),
        }
    }
}

/// Everything known about customers at one cutoff.
pub struct Snapshot {
    pub as_of_us: i64,
    /// Each customer's id and aggregates, sorted by id: the history's result, shared rather
    /// than copied (a million of them are half a gigabyte).
    pub customers: SharedAggregates,
    /// Row-major, one row per customer: the context's features, then [`CLV_FEATURES`], then
    /// each category's rhythm ([`FeatureContext::category_names`]).
    pub x: Vec<f64>,
    pub width: usize,
    /// The leading columns the churn model reads: the context's features and CLV_FEATURES.
    pub churn_width: usize,
}

impl Snapshot {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.width..(i + 1) * self.width]
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    pub fn id(&self, i: usize) -> &str {
        &self.customers[i].0
    }

    pub fn aggregate(&self, i: usize) -> &Aggregates {
        &self.customers[i].1
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.customers.iter().map(|(id, _)| id.as_str())
    }

    pub fn aggregates(&self) -> impl Iterator<Item = &Aggregates> {
        self.customers.iter().map(|(_, a)| a)
    }

    /// Row of each customer id, for scans that meet customers by id.
    pub fn index(&self) -> HashMap<String, u32> {
        self.ids()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i as u32))
            .collect()
    }
}

/// BG/NBD (purchase process) and Gamma-Gamma (spend) fitted at one cutoff, in weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvModels {
    pub bgnbd: BgNbd,
    /// `None` when too few customers have repeat purchases with spend.
    pub gamma_gamma: Option<GammaGamma>,
    /// How the frequency both models were fitted on was counted; scoring counts the same way.
    pub repeat: RepeatCount,
}

/// The BG/NBD summary of a customer at `as_of`, in weeks; `None` without purchases. Frequency
/// counts repeat purchases as `repeat` says; monetary is their mean value (the first purchase
/// left out, as Gamma-Gamma and `lifetimes` define it).
pub fn rfm(a: &Aggregates, as_of_us: i64, repeat: RepeatCount) -> Option<RfmRow> {
    use lattice_features::aggregates::utc_day;
    let (first, last) = (a.first_order_us?, a.last_order_us?);
    let (x, recency_days, age_days, first_amount) = match repeat {
        RepeatCount::PurchaseDays => (
            (a.purchase_days - 1.0).max(0.0),
            (utc_day(last) - utc_day(first)) as f64,
            (utc_day(as_of_us) - utc_day(first)) as f64,
            a.first_day_amount,
        ),
        RepeatCount::Orders => (
            (a.orders - 1.0).max(0.0),
            (last - first) as f64 / DAY_US as f64,
            (as_of_us - first) as f64 / DAY_US as f64,
            a.first_order_amount,
        ),
    };
    Some(RfmRow {
        frequency: x,
        recency: if x > 0.0 { recency_days / 7.0 } else { 0.0 },
        age: (age_days / 7.0).max(0.0),
        monetary: if x > 0.0 {
            ((a.revenue - first_amount) / x).max(0.0)
        } else {
            0.0
        },
    })
}

pub use lattice_features::sample::id_unit;

impl ClvModels {
    /// Fits both models on (a sample of) the customers with purchases.
    pub fn fit(
        snap_aggs: &[(&str, &Aggregates)],
        as_of_us: i64,
        max_rows: usize,
        repeat: RepeatCount,
    ) -> Result<Self, ModelError> {
        let rows: Vec<(f64, RfmRow)> = snap_aggs
            .iter()
            .filter_map(|(id, a)| Some((id_unit(id), rfm(a, as_of_us, repeat)?)))
            .collect();
        let keep = (max_rows as f64 / rows.len().max(1) as f64).min(1.0);
        let sample: Vec<RfmRow> = rows
            .iter()
            .filter(|(u, _)| *u < keep)
            .map(|(_, r)| *r)
            .collect();
        if sample.len() < 10 {
            return Err(ModelError::Data(format!(
                "only {} customers with purchases before {}: too few to fit the purchase model",
                sample.len(),
                lattice_features::history::fmt_day(as_of_us)
            )));
        }
        let opts = FitOptions::default();
        let bgnbd = BgNbd::fit_with(&sample, &opts)
            .or_else(|_| {
                BgNbd::fit_with(
                    &sample,
                    &FitOptions {
                        penalizer: 0.1,
                        ..opts
                    },
                )
            })
            .map_err(|e| ModelError::Fit(format!("BG/NBD: {e}")))?;
        let pairs: Vec<(f64, f64)> = sample
            .iter()
            .filter(|r| r.frequency > 0.0 && r.monetary > 0.0)
            .map(|r| (r.frequency, r.monetary))
            .collect();
        let gamma_gamma = if pairs.len() >= 10 {
            GammaGamma::fit(&pairs).ok()
        } else {
            None
        };
        Ok(ClvModels {
            bgnbd,
            gamma_gamma,
            repeat,
        })
    }

    /// P(alive), P(no purchase in `horizon_days`) and expected purchases in it. Customers with
    /// no purchase yet get (0, 1, 0): the other features describe them.
    pub fn features(&self, a: &Aggregates, as_of_us: i64, horizon_days: i64) -> [f64; 3] {
        let Some(r) = rfm(a, as_of_us, self.repeat) else {
            return [0.0, 1.0, 0.0];
        };
        let t = horizon_days as f64 / 7.0;
        let b = &self.bgnbd;
        let alive = b.p_alive(r.frequency, r.recency, r.age).unwrap_or(0.0);
        let none = b
            .p_no_purchase(t, r.frequency, r.recency, r.age)
            .unwrap_or(1.0);
        let n = b
            .expected_purchases(t, r.frequency, r.recency, r.age)
            .unwrap_or(0.0);
        [alive, none, n]
    }

    /// Expected spend over `horizon_days`: expected purchases × expected order value.
    pub fn value(&self, a: &Aggregates, as_of_us: i64, horizon_days: i64) -> f64 {
        let t = horizon_days as f64 / 7.0;
        let (n, spend) = match rfm(a, as_of_us, self.repeat) {
            None => (0.0, 0.0),
            Some(r) => {
                let n = self
                    .bgnbd
                    .expected_purchases(t, r.frequency, r.recency, r.age)
                    .unwrap_or(0.0);
                let spend = match &self.gamma_gamma {
                    Some(g) if r.frequency > 0.0 => g.expected_spend(r.frequency, r.monetary),
                    Some(g) => g.mean_spend(),
                    None => Ok(a.revenue / a.orders.max(1.0)),
                };
                (n, spend.unwrap_or(0.0))
            }
        };
        n * spend
    }
}

/// Features of every customer with history at `as_of`, with the BG/NBD quantities of `clv`
/// (`Err(repeat)`: fitted here, counting repeat purchases so).
pub async fn snapshot(
    history: &History,
    profiles: &HashMap<String, Profile>,
    ctx: &FeatureContext,
    as_of_us: i64,
    horizon_days: i64,
    clv: Result<&ClvModels, RepeatCount>,
) -> Result<(Snapshot, ClvModels), ModelError> {
    sampled_snapshot(
        history,
        profiles,
        ctx,
        as_of_us,
        horizon_days,
        clv,
        usize::MAX,
    )
    .await
}

/// The share of customers a fit or backtest window keeps: about `max_rows` of them.
pub async fn fit_fraction(history: &History, max_rows: usize) -> Result<f64, ModelError> {
    if max_rows == usize::MAX {
        return Ok(1.0);
    }
    let n = history
        .customers()
        .await
        .map_err(|e| ModelError::Data(e.to_string()))?;
    Ok(lattice_features::sample::fraction(max_rows, n))
}

/// [`snapshot`] of a deterministic sample of about `max_rows` customers (by [`id_unit`]):
/// fitting and measuring need a sample, not every customer, so the other customers' events are
/// not even aggregated. The BG/NBD fit, when `clv` is `None`, sees the same sample.
pub async fn sampled_snapshot(
    history: &History,
    profiles: &HashMap<String, Profile>,
    ctx: &FeatureContext,
    as_of_us: i64,
    horizon_days: i64,
    clv: Result<&ClvModels, RepeatCount>,
    max_rows: usize,
) -> Result<(Snapshot, ClvModels), ModelError> {
    let fraction = fit_fraction(history, max_rows).await?;
    let aggs = history
        .sampled_aggregates(as_of_us, &ctx.categories, fraction)
        .await
        .map_err(|e| ModelError::Data(e.to_string()))?;
    let fitted;
    let clv = match clv {
        Ok(c) => c,
        Err(repeat) => {
            let refs: Vec<(&str, &Aggregates)> =
                aggs.iter().map(|(i, a)| (i.as_str(), a)).collect();
            fitted = ClvModels::fit(&refs, as_of_us, 50_000, repeat)?;
            &fitted
        }
    };
    let width = row_width(ctx);
    let mut x = vec![0.0; aggs.len() * width];
    let empty = Profile::default();
    for ((id, a), row) in aggs.iter().zip(x.chunks_exact_mut(width)) {
        let p = profiles.get(id).unwrap_or(&empty);
        write_row(ctx, clv, a, p, as_of_us, horizon_days, row);
    }
    Ok((
        Snapshot {
            as_of_us,
            customers: aggs.clone(),
            x,
            width,
            churn_width: ctx.len() + CLV_FEATURES.len(),
        },
        clv.clone(),
    ))
}

/// Width of a model's feature row for `ctx`: [`model_feature_names`]' length.
pub fn row_width(ctx: &FeatureContext) -> usize {
    ctx.len() + CLV_FEATURES.len() + ctx.category_len()
}

/// The names of a model's feature row: the context's features, [`CLV_FEATURES`], then each
/// category's rhythm. The churn model reads the first two parts (a prefix); each category
/// model reads its own choice of columns ([`CategoryInputs`]).
pub fn model_feature_names(ctx: &FeatureContext) -> Vec<String> {
    let mut names = ctx.names();
    names.extend(CLV_FEATURES.iter().map(|s| s.to_string()));
    names.extend(ctx.category_names());
    names
}

/// Writes one customer's model feature row ([`model_feature_names`]) into `row`.
pub fn write_row(
    ctx: &FeatureContext,
    clv: &ClvModels,
    a: &Aggregates,
    p: &Profile,
    as_of_us: i64,
    horizon_days: i64,
    row: &mut [f64],
) {
    let k = ctx.len();
    let c = k + CLV_FEATURES.len();
    ctx.write(a, p, as_of_us, &mut row[..k]);
    row[k..c].copy_from_slice(&clv.features(a, as_of_us, horizon_days));
    ctx.write_categories(a, as_of_us, &mut row[c..]);
}

/// A category's affinity model: calibrated logistic, or smoothed own history when the category
/// has too few positives to learn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AffinityModel {
    Logistic(Box<CategoryLogistic>),
    /// p = base_rate × (lines_c + m·share) / (lines + m) / share, clipped to [0, 1].
    Smoothed {
        base_rate: f64,
        population_share: f64,
        strength: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryModel {
    pub category: String,
    pub model: AffinityModel,
}

impl CategoryModel {
    pub fn predict(&self, row: &[f64], a: &Aggregates, index: usize) -> f64 {
        self.predict_with(row, None, a, index)
    }

    /// [`Self::predict`], with the row's [`crate::logistic::compress`]ed values if the caller
    /// has them (scoring every category of one customer).
    pub fn predict_with(
        &self,
        row: &[f64],
        compressed: Option<&[f64]>,
        a: &Aggregates,
        index: usize,
    ) -> f64 {
        match &self.model {
            AffinityModel::Logistic(m) => match compressed {
                Some(c) => m.predict_compressed(row, c),
                None => m.predict(row),
            },
            AffinityModel::Smoothed {
                base_rate,
                population_share,
                strength,
            } => {
                let lines: f64 = a.category_lines.iter().sum();
                let own = a.category_lines.get(index).copied().unwrap_or(0.0);
                let share = (own + strength * population_share) / (lines + strength);
                (base_rate * share / population_share.max(1e-9)).clamp(0.0, 1.0)
            }
        }
    }
}

/// The models fitted at one cutoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub cutoff_us: i64,
    pub config: TrainConfig,
    pub context: FeatureContext,
    pub feature_names: Vec<String>,
    pub churn: LogisticModel,
    pub affinity: Vec<CategoryModel>,
    /// Purchase and spend models fitted at the cutoff, for scoring at the cutoff.
    pub clv: ClvModels,
}

/// Churn examples: customers with a purchase by `as_of`; positive = no purchase in the horizon.
/// Returns row-major features, labels and the snapshot row of each example.
pub fn churn_examples(
    s: &Snapshot,
    labels: &HashMap<String, Labels>,
) -> (Vec<f64>, Vec<bool>, Vec<usize>) {
    let (mut x, mut y, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (id, a)) in s.customers.iter().enumerate() {
        if a.orders <= 0.0 {
            continue;
        }
        x.extend_from_slice(&s.row(i)[..s.churn_width]);
        y.push(labels.get(id).is_none_or(|l| l.purchases_in_horizon <= 0.0));
        rows.push(i);
    }
    (x, y, rows)
}

pub fn affinity_labels(s: &Snapshot, labels: &HashMap<String, Labels>, c: usize) -> Vec<bool> {
    s.ids()
        .map(|id| {
            labels
                .get(id)
                .is_some_and(|l| l.categories.get(c).is_some_and(|&v| v > 0.0))
        })
        .collect()
}

/// Every row as a category model reads it: its columns, then its derived inputs.
fn with_inputs(s: &Snapshot, inputs: &CategoryInputs) -> Vec<f64> {
    let mut x = Vec::with_capacity(s.len() * inputs.width());
    for i in 0..s.len() {
        inputs.extend(s.row(i), &mut x);
    }
    x
}

/// Labels after `as_of` of the sample of `fraction` ([`fit_fraction`]).
pub async fn labels(
    history: &History,
    as_of_us: i64,
    cfg: &TrainConfig,
    ctx: &FeatureContext,
    fraction: f64,
) -> Result<lattice_features::history::SharedLabels, ModelError> {
    history
        .sampled_labels(
            as_of_us,
            cfg.horizon_days,
            cfg.affinity_days,
            &ctx.categories,
            fraction,
        )
        .await
        .map_err(|e| ModelError::Data(e.to_string()))
}

/// Fits churn, affinity and CLV models with cutoff `cutoff_us` (see the module docs).
pub async fn fit(
    history: &History,
    profiles: &HashMap<String, Profile>,
    tiers: Vec<lattice_catalog::settings::Tier>,
    cfg: &TrainConfig,
    cutoff_us: i64,
) -> Result<Fitted, ModelError> {
    fit_with(history, profiles, tiers, cfg, cutoff_us, None).await
}

/// The L2 strength of each model: `earlier`'s choice where it fitted the same model (the
/// backtest's fit, chosen on its own later window), else the configured grid. Refitting at the
/// end of the data then costs one fit per model instead of one per grid point.
fn alphas_for<'a>(cfg: &'a TrainConfig, chosen: Option<f64>) -> std::borrow::Cow<'a, [f64]> {
    match chosen {
        Some(a) => std::borrow::Cow::Owned(vec![a]),
        None => std::borrow::Cow::Borrowed(&cfg.alphas),
    }
}

/// [`fit`], reusing the regularisation `earlier` chose for each model it has in common.
pub async fn fit_with(
    history: &History,
    profiles: &HashMap<String, Profile>,
    tiers: Vec<lattice_catalog::settings::Tier>,
    cfg: &TrainConfig,
    cutoff_us: i64,
    earlier: Option<&Fitted>,
) -> Result<Fitted, ModelError> {
    let h = cfg.horizon_days.max(cfg.affinity_days);
    let (t_train, t_valid) = (cutoff_us - 2 * h * DAY_US, cutoff_us - h * DAY_US);
    if t_train <= history.first_event_us {
        return Err(ModelError::Data(format!(
            "the history from {} to {} is too short for a {h}-day horizon: fitting needs features \
             at {} with labels up to {}, so at least {} days of history before the cutoff",
            lattice_features::history::fmt_day(history.first_event_us),
            lattice_features::history::fmt_day(cutoff_us),
            lattice_features::history::fmt_day(t_train),
            lattice_features::history::fmt_day(cutoff_us),
            2 * h + 1
        )));
    }
    let mut categories = history
        .categories(cutoff_us)
        .await
        .map_err(|e| ModelError::Data(e.to_string()))?;
    categories.truncate(cfg.max_categories);
    let context = FeatureContext { categories, tiers };
    let (train, _) = sampled_snapshot(
        history,
        profiles,
        &context,
        t_train,
        cfg.horizon_days,
        Err(cfg.clv_frequency),
        cfg.max_fit_rows,
    )
    .await?;
    let (valid, _) = sampled_snapshot(
        history,
        profiles,
        &context,
        t_valid,
        cfg.horizon_days,
        Err(cfg.clv_frequency),
        cfg.max_fit_rows,
    )
    .await?;
    let fraction = fit_fraction(history, cfg.max_fit_rows).await?;
    let (l_train, l_valid) = (
        labels(history, t_train, cfg, &context, fraction).await?,
        labels(history, t_valid, cfg, &context, fraction).await?,
    );
    let feature_names = model_feature_names(&context);
    let churn_names = &feature_names[..train.churn_width];

    // The churn model and each category's model are independent: fit them on all cores
    // (job 0 is churn, job c + 1 category c).
    let jobs: Vec<usize> = (0..=context.categories.len()).collect();
    let mut results = crate::parallel::map(jobs, |job| match job {
        0 => {
            let (xt, yt, _) = churn_examples(&train, &l_train);
            let (xv, yv, _) = churn_examples(&valid, &l_valid);
            fit_calibrated(
                churn_names,
                Examples { x: &xt, y: &yt },
                Examples { x: &xv, y: &yv },
                &alphas_for(cfg, earlier.map(|f| f.churn.alpha)),
                earlier.map(|f| &f.churn),
            )
            .map(Fit::Churn)
            .map_err(|e| ModelError::Fit(format!("churn model: {e}")))
        }
        j => fit_category(
            &context,
            &feature_names,
            j - 1,
            (&train, &l_train),
            (&valid, &l_valid),
            cfg,
            earlier,
        )
        .map(Fit::Category),
    })
    .into_iter();
    let churn = match results.next() {
        Some(Ok(Fit::Churn(m))) => m,
        Some(Err(e)) => return Err(e),
        _ => return Err(ModelError::Fit("churn model: not fitted".into())),
    };
    let mut affinity = Vec::new();
    for r in results {
        match r? {
            Fit::Category(m) => affinity.push(m),
            Fit::Churn(_) => return Err(ModelError::Fit("churn model fitted twice".into())),
        }
    }

    let aggs = history
        .sampled_aggregates(cutoff_us, &context.categories, fraction)
        .await
        .map_err(|e| ModelError::Data(e.to_string()))?;
    let refs: Vec<(&str, &Aggregates)> = aggs.iter().map(|(i, a)| (i.as_str(), a)).collect();
    let clv = ClvModels::fit(&refs, cutoff_us, 50_000, cfg.clv_frequency)?;
    Ok(Fitted {
        cutoff_us,
        config: cfg.clone(),
        context,
        feature_names,
        churn,
        affinity,
        clv,
    })
}

enum Fit {
    Churn(LogisticModel),
    Category(CategoryModel),
}

/// One window of fitting examples: the snapshot and its labels.
type Window<'a> = (&'a Snapshot, &'a HashMap<String, Labels>);

/// Category `c`'s affinity model: calibrated logistic with enough positives in both windows,
/// else the smoothed own-history model.
fn fit_category(
    context: &FeatureContext,
    feature_names: &[String],
    c: usize,
    (train, l_train): Window<'_>,
    (valid, l_valid): Window<'_>,
    cfg: &TrainConfig,
    earlier: Option<&Fitted>,
) -> Result<CategoryModel, ModelError> {
    let name = &context.categories[c];
    let yt = affinity_labels(train, l_train, c);
    let yv = affinity_labels(valid, l_valid, c);
    let pos = |y: &[bool]| y.iter().filter(|&&v| v).count();
    let model = if pos(&yt) >= cfg.min_positives && pos(&yv) >= cfg.min_positives {
        let before = earlier
            .and_then(|f| f.affinity.iter().find(|m| &m.category == name))
            .and_then(|m| match &m.model {
                AffinityModel::Logistic(l) => Some(l),
                AffinityModel::Smoothed { .. } => None,
            });
        // Both input sets, unless an earlier cutoff already chose (the refit at the end of the
        // data reuses the backtest's choice, made on its own validation window).
        let sets = before.map_or(InputSet::ALL.to_vec(), |b| vec![b.inputs.set]);
        let mut best: Option<(f64, CategoryLogistic)> = None;
        for set in sets {
            let inputs = CategoryInputs::new(
                feature_names,
                train.churn_width,
                &slug(name),
                context.categories.len(),
                set,
                cfg.affinity_days,
            )
            .ok_or_else(|| {
                ModelError::Fit(format!("affinity model for {name:?}: no share column"))
            })?;
            let (xt, xv) = (with_inputs(train, &inputs), with_inputs(valid, &inputs));
            let init = before.filter(|b| b.inputs == inputs).map(|b| &b.model);
            let model = fit_calibrated(
                &inputs.names(feature_names),
                Examples { x: &xt, y: &yt },
                Examples { x: &xv, y: &yv },
                &alphas_for(cfg, init.map(|m| m.alpha)),
                init,
            )
            .map_err(|e| ModelError::Fit(format!("affinity model for {name:?}: {e}")))?;
            let loss = crate::metrics::log_loss(&model.predict_all(&xv), &yv);
            if best.as_ref().is_none_or(|(l, _)| loss < *l) {
                best = Some((loss, CategoryLogistic { model, inputs }));
            }
        }
        match best {
            Some((_, m)) => AffinityModel::Logistic(Box::new(m)),
            None => {
                return Err(ModelError::Fit(format!(
                    "affinity model for {name:?}: no fit"
                )));
            }
        }
    } else {
        let lines: f64 = train
            .aggregates()
            .map(|a| a.category_lines.get(c).copied().unwrap_or(0.0))
            .sum();
        let total: f64 = train
            .aggregates()
            .map(|a| a.category_lines.iter().sum::<f64>())
            .sum();
        AffinityModel::Smoothed {
            base_rate: (pos(&yt) as f64 + 1.0) / (yt.len() as f64 + 2.0),
            population_share: if total > 0.0 {
                (lines / total).max(1e-6)
            } else {
                1.0 / context.categories.len() as f64
            },
            strength: 5.0,
        }
    };
    Ok(CategoryModel {
        category: name.clone(),
        model,
    })
}

/// Backtest metrics of one category's affinity model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMetrics {
    pub category: String,
    pub model: String,
    /// `platt` or `isotonic`, chosen on the validation window; `None` for the smoothed rate.
    #[serde(default)]
    pub calibration: Option<String>,
    pub positives: usize,
    pub metrics: BinaryMetrics,
}

/// Backtest of the CLV purchase model: predicted vs actual orders in the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvMetrics {
    pub customers: usize,
    pub predicted_orders: f64,
    pub actual_orders: f64,
    pub mean_absolute_error: f64,
    pub correlation: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub fit_cutoff: String,
    pub test_window: String,
    pub churn: BinaryMetrics,
    /// AUC of BG/NBD's P(no purchase in the horizon) alone, the classic BTYD churn score.
    pub churn_auc_bgnbd_only: Option<f64>,
    pub churn_alpha: f64,
    /// `platt` or `isotonic`, chosen on the validation window.
    #[serde(default)]
    pub churn_calibration: String,
    pub affinity: Vec<CategoryMetrics>,
    pub affinity_mean_auc: Option<f64>,
    pub clv: ClvMetrics,
    /// Send time: hit@k of held-out activity (the affinity window after the cutoff) with the
    /// smoothing chosen on the validation window, against the population's and the customers'
    /// own best hours; `None` without any activity there.
    pub send_time: Option<crate::sendtime::BacktestReport>,
    /// How the send-time smoothing was chosen: every grid point on the validation window's
    /// held-out activity (`None` without any there: the defaults were used).
    #[serde(default)]
    pub send_time_selection: Option<crate::sendtime::BacktestReport>,
}

/// Engagements of the customers in `ids` (drawn from the sample of `fraction`), in local hours
/// of week, for each window `(split, end)` of `windows`: those at or before `split` (the
/// training counts) and those in `(split, end]` (held out). Every kind of activity on both
/// sides: the send-time backtest scores engagements per channel and all activity under `Any`.
/// One pass over the history for all windows.
pub async fn engagements(
    history: &History,
    zones: &lattice_features::TimeZones,
    ids: &HashMap<String, u32>,
    fraction: f64,
    windows: &[(i64, i64)],
) -> Result<Vec<(Vec<Engagement>, Vec<Engagement>)>, ModelError> {
    let mut out: Vec<(Vec<Engagement>, Vec<Engagement>)> =
        windows.iter().map(|_| Default::default()).collect();
    let end_us = windows.iter().map(|w| w.1).max().unwrap_or(i64::MIN);
    history
        .for_each_local_event(
            zones,
            i64::MIN,
            end_us,
            fraction,
            |id, event_type, how, ts| {
                let (Some(&customer), Some(channel)) =
                    (ids.get(id), Channel::from_event_type(event_type))
                else {
                    return;
                };
                let e = Engagement {
                    customer,
                    channel,
                    how,
                };
                for (&(split, end), (train, held)) in windows.iter().zip(out.iter_mut()) {
                    if ts <= split {
                        train.push(e);
                    } else if ts <= end {
                        held.push(e);
                    }
                }
            },
        )
        .await
        .map_err(|e| ModelError::Data(e.to_string()))?;
    Ok(out)
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

/// The end of the data as a whole day: the last instant of the last event's day.
pub fn data_end(history: &History) -> i64 {
    (history.last_event_us.div_euclid(DAY_US) + 1) * DAY_US - 1
}

/// Fits at `end − horizon` and measures on the labels of `(end − horizon, end]`, where `end`
/// is `end_us` (e.g. `lattice train --as-of`) or the end of the data: nothing after `end` is
/// read.
pub async fn backtest(
    history: &History,
    profiles: &HashMap<String, Profile>,
    settings: &lattice_catalog::settings::Settings,
    cfg: &TrainConfig,
    end_us: Option<i64>,
) -> Result<(Fitted, Backtest), ModelError> {
    let tiers = settings.tiers.clone();
    let h = cfg.horizon_days.max(cfg.affinity_days);
    let end = end_us.map_or(data_end(history), |e| e.min(data_end(history)));
    let t = end - h * DAY_US;
    let fitted = fit(history, profiles, tiers, cfg, t).await?;
    let (test, _) = sampled_snapshot(
        history,
        profiles,
        &fitted.context,
        t,
        cfg.horizon_days,
        Ok(&fitted.clv),
        cfg.max_fit_rows,
    )
    .await?;
    let fraction = fit_fraction(history, cfg.max_fit_rows).await?;
    let l_test = labels(history, t, cfg, &fitted.context, fraction).await?;

    let (x, y, rows) = churn_examples(&test, &l_test);
    let p = fitted.churn.predict_all(&x);
    // The churn rows end with CLV_FEATURES: P(no purchase), then expected purchases.
    let k = test.churn_width;
    let p_bg: Vec<f64> = x.chunks_exact(k).map(|r| r[k - 2]).collect();
    let churn = BinaryMetrics::compute(&p, &y);

    let mut affinity = Vec::new();
    for (c, m) in fitted.affinity.iter().enumerate() {
        let yc = affinity_labels(&test, &l_test, c);
        let pc: Vec<f64> = (0..test.len())
            .map(|i| m.predict(test.row(i), test.aggregate(i), c))
            .collect();
        affinity.push(CategoryMetrics {
            category: m.category.clone(),
            model: match m.model {
                AffinityModel::Logistic(_) => "logistic".into(),
                AffinityModel::Smoothed { .. } => "smoothed".into(),
            },
            calibration: match &m.model {
                AffinityModel::Logistic(l) => Some(l.model.calibration.method().into()),
                AffinityModel::Smoothed { .. } => None,
            },
            positives: yc.iter().filter(|&&v| v).count(),
            metrics: BinaryMetrics::compute(&pc, &yc),
        });
    }
    let aucs: Vec<f64> = affinity.iter().filter_map(|a| a.metrics.auc).collect();

    let (mut pred, mut act) = (Vec::new(), Vec::new());
    for &i in &rows {
        pred.push(test.row(i)[k - 1]);
        act.push(
            l_test
                .get(test.id(i))
                .map_or(0.0, |l| l.purchases_in_horizon),
        );
    }
    let clv = ClvMetrics {
        customers: pred.len(),
        predicted_orders: pred.iter().sum(),
        actual_orders: act.iter().sum(),
        mean_absolute_error: pred
            .iter()
            .zip(&act)
            .map(|(p, a)| (p - a).abs())
            .sum::<f64>()
            / pred.len().max(1) as f64,
        correlation: pearson(&pred, &act),
    };
    let zones = lattice_features::TimeZones::new(profiles, &settings.default_timezone)
        .map_err(|e| ModelError::Data(e.to_string()))?;
    // Send time: smoothing chosen on the validation window (the fit's), measured on the test
    // window, as for every other model.
    let t_valid = t - h * DAY_US;
    let aff = cfg.affinity_days * DAY_US;
    let mut windows = engagements(
        history,
        &zones,
        &test.index(),
        fraction,
        &[(t_valid, t_valid + aff), (t, t + aff)],
    )
    .await?
    .into_iter();
    let send_err = |e: SendTimeError| ModelError::Fit(format!("send time: {e}"));
    let counts = |events: &[Engagement]| {
        SendTimeCounts::from_engagements(test.len(), events)
            .map_err(|e| ModelError::Data(e.to_string()))
    };
    let (train_v, held_v) = windows.next().unwrap_or_default();
    let selection = if held_v.is_empty() {
        None
    } else {
        Some(
            select(&counts(&train_v)?, &held_v, &Grid::DEFAULT)
                .map_err(send_err)?
                .1,
        )
    };
    drop((train_v, held_v));
    let (train_t, held_t) = windows.next().unwrap_or_default();
    let send_time = if held_t.is_empty() {
        None
    } else {
        let hyper = selection.as_ref().map_or([Hyper::DEFAULT; 4], |s| s.hyper);
        Some(measure(&counts(&train_t)?, &held_t, hyper).map_err(send_err)?)
    };
    let fmt = lattice_features::history::fmt_day;
    let report = Backtest {
        send_time,
        send_time_selection: selection,
        fit_cutoff: fmt(t),
        test_window: format!("{} .. {}", fmt(t + DAY_US), fmt(end)),
        churn_auc_bgnbd_only: auc(&p_bg, &y),
        churn_alpha: fitted.churn.alpha,
        churn_calibration: fitted.churn.calibration.method().into(),
        churn,
        affinity_mean_auc: (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64),
        affinity,
        clv,
    };
    Ok((fitted, report))
}
