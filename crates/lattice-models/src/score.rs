//! Scoring one customer with fitted models: churn probability with reasons, CLV quantities,
//! category affinities and send times. The batch `score` command and the server share it.

use lattice_features::{Aggregates, Profile};
use serde::{Deserialize, Serialize};

use crate::logistic::Reason;
use crate::pipeline::{CategoryModel, ClvModels, Fitted};
use crate::sendtime::{Channel, CustomerCounts, SendTimeModel, SendTimeRecommendation};

/// Everything the models say about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerScore {
    /// P(no purchase in the model's horizon), calibrated.
    pub churn_probability: f64,
    pub churn_reasons: Vec<Reason>,
    pub p_alive: f64,
    /// Expected purchases in the horizon.
    pub expected_purchases: f64,
    /// Expected spend over the next 365 days.
    pub clv: f64,
    /// Per category, in the order of the model's categories.
    pub affinity: Vec<f64>,
}

/// Models needed to score, as stored in the artifact's weights file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub fitted: Fitted,
    pub send_time: SendTimeModel,
}

pub const CLV_DAYS: i64 = 365;

impl Models {
    /// Scores one feature row (context features then the BG/NBD ones, as in a snapshot).
    /// `scratch` must have the row's length.
    pub fn score(&self, row: &[f64], a: &Aggregates, scratch: &mut [f64]) -> CustomerScore {
        self.score_at(row, a, self.fitted.cutoff_us, scratch)
    }

    /// [`Self::score`] with the CLV quantities evaluated at `at_us` rather than the model's
    /// cutoff (a server scoring a customer whose history moved on since).
    pub fn score_at(
        &self,
        row: &[f64],
        a: &Aggregates,
        at_us: i64,
        scratch: &mut [f64],
    ) -> CustomerScore {
        let f = &self.fitted;
        let horizon = f.config.horizon_days;
        let clv: &ClvModels = &f.clv;
        let [p_alive, _, expected] = clv.features(a, at_us, horizon);
        // One pass of logarithms for the churn model and every category's.
        for (c, x) in scratch.iter_mut().zip(row) {
            *c = crate::logistic::compress(*x);
        }
        let compressed = &scratch[..row.len()];
        // The churn model reads a prefix of the row (the category rhythms come after it).
        let churn = f.churn.features.len();
        CustomerScore {
            churn_probability: f
                .churn
                .calibration
                .apply(f.churn.logit_compressed(&compressed[..churn])),
            churn_reasons: f.churn.reasons_compressed(&compressed[..churn], 3),
            p_alive,
            expected_purchases: expected,
            clv: clv.value(a, at_us, CLV_DAYS),
            affinity: f
                .affinity
                .iter()
                .enumerate()
                .map(|(c, m): (usize, &CategoryModel)| m.predict_with(row, Some(compressed), a, c))
                .collect(),
        }
    }

    /// The model's feature row of a customer at `at_us`
    /// ([`crate::pipeline::model_feature_names`]), as training computes it: `out` has the
    /// model's feature count.
    pub fn feature_row(&self, a: &Aggregates, p: &Profile, at_us: i64, out: &mut [f64]) {
        let f = &self.fitted;
        crate::pipeline::write_row(&f.context, &f.clv, a, p, at_us, f.config.horizon_days, out);
    }

    /// Send-time recommendations per channel (email, sms, push, then all activity).
    pub fn send_times(&self, counts: &CustomerCounts<'_>) -> [SendTimeRecommendation; 4] {
        Channel::ALL.map(|c| self.send_time.recommend(counts, c))
    }

    /// Scores a customer who is not in the snapshot, from named feature values at the model's
    /// as_of (the caller's own feature pipeline, or `lattice features`). The BG/NBD features
    /// are computed here from `frequency`, `recency_days`, `gap_mean_days` and `monetary_total`;
    /// every other feature of the model is required. Returns the full row and the score, or
    /// the names that are missing or not finite.
    pub fn score_inline(
        &self,
        value: impl Fn(&str) -> Option<f64>,
    ) -> Result<(Vec<f64>, CustomerScore), InlineError> {
        let f = &self.fitted;
        let clv = f.context.len()..f.context.len() + crate::pipeline::CLV_FEATURES.len();
        let mut row = vec![0.0; f.feature_names.len()];
        let (mut missing, mut invalid, mut out_of_range) = (Vec::new(), Vec::new(), Vec::new());
        for (j, name) in f.feature_names.iter().enumerate() {
            if clv.contains(&j) {
                continue;
            }
            match value(name) {
                Some(v) if !v.is_finite() => invalid.push(name.clone()),
                Some(v) if !sane_range(name).contains(&v) => {
                    let r = sane_range(name);
                    out_of_range.push(format!(
                        "{name} = {v} (expected {} to {})",
                        r.start(),
                        r.end()
                    ));
                }
                Some(v) => row[j] = v,
                None => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() || !invalid.is_empty() || !out_of_range.is_empty() {
            return Err(InlineError {
                missing,
                invalid,
                out_of_range,
            });
        }
        let at = |n: &str| {
            f.feature_names
                .iter()
                .position(|x| x == n)
                .map_or(0.0, |j| row[j])
        };
        let a = inline_aggregates(f, &at);
        let horizon = f.config.horizon_days;
        let bg = f.clv.features(&a, f.cutoff_us, horizon);
        row[clv].copy_from_slice(&bg);
        let mut scratch = vec![0.0; row.len()];
        let score = self.score(&row, &a, &mut scratch);
        Ok((row, score))
    }
}

/// Features an inline record lacks, gives as NaN/infinite, or gives outside [`sane_range`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("missing features: {missing:?}; not finite: {invalid:?}; out of range: {out_of_range:?}")]
pub struct InlineError {
    pub missing: Vec<String>,
    pub invalid: Vec<String>,
    /// `name = value (expected a to b)`, one per feature.
    pub out_of_range: Vec<String>,
}

/// The values a feature can take, generously: an inline value outside it is a mistake to
/// refuse, not a number to cut or wrap silently (days become microseconds in `i64`, counts
/// become order numbers).
pub fn sane_range(name: &str) -> std::ops::RangeInclusive<f64> {
    const DAYS: f64 = 100.0 * 366.0;
    const COUNT: f64 = 1e9;
    const MONEY: f64 = 1e12;
    if name == "has_purchase"
        || name.starts_with("share_")
        || name.starts_with("view_share_")
        || name.ends_with("_rate")
    {
        0.0..=1.0
    } else if name == "sentiment_mean_90d"
        || name == "trend_90d"
        || name.starts_with("cat_share_trend_")
    {
        -1.0..=1.0
    } else if name.ends_with("_days") || name.starts_with("days_") {
        0.0..=DAYS
    } else if name.starts_with("monetary_")
        || name == "spend_365d"
        || name.starts_with("cat_spend_365d_")
        || name == "to_next_tier"
    {
        -MONEY..=MONEY
    } else if name.starts_with("bgnbd_") {
        0.0..=COUNT
    } else {
        // Counts (orders, contacts, opens, views), tier_index, ratios of counts.
        0.0..=COUNT
    }
}

/// The purchase summary implied by the features: orders, first and last order (from recency
/// and the mean gap), revenue, and purchase lines per category (shares × orders).
fn inline_aggregates(f: &Fitted, at: &dyn Fn(&str) -> f64) -> Aggregates {
    const DAY: f64 = lattice_features::aggregates::DAY_US as f64;
    let orders = at("frequency").max(0.0).round();
    let (first, last) = if orders > 0.0 {
        let last = f.cutoff_us - (at("recency_days").max(0.0) * DAY) as i64;
        let span = at("gap_mean_days").max(0.0) * (orders - 1.0) * DAY;
        (Some(last - span as i64), Some(last))
    } else {
        (None, None)
    };
    let category_lines = f
        .context
        .categories
        .iter()
        .map(|c| at(&format!("share_{}", lattice_features::features::slug(c))) * orders)
        .collect();
    Aggregates {
        orders,
        first_order_us: first,
        last_order_us: last,
        revenue: at("monetary_total"),
        // Unknown from the features: the mean order, so the repeat orders' mean is the mean,
        // and one order a day.
        first_order_amount: at("monetary_total") / orders.max(1.0),
        purchase_days: orders,
        first_day_amount: at("monetary_total") / orders.max(1.0),
        category_lines,
        ..Default::default()
    }
}
