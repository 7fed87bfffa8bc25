//! What an audience answer says about itself: the funnel, the expected conversions with an
//! interval, and the lift over a random audience of the same size.

use serde::Serialize;
use utoipa::ToSchema;

use crate::calibration::LiftPoint;
use crate::request::AudienceRequest;

/// What the audience targets, and what its numbers mean.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TargetSummary {
    /// category, action or churn.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// What one conversion is (what `probability` is the probability of).
    pub event: String,
    /// What a row's `expected_value` is.
    pub expected_value: String,
}

/// One step of the funnel: customers before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FunnelStep {
    /// customers, tiers, channel, min_churn_probability, max_churn_probability, min_clv,
    /// last_purchase_within_days, last_purchase_older_than_days, exclude_contacted_within_days,
    /// eligible (action targets), holdout, size.
    pub step: String,
    /// The filter as applied, e.g. `tier in gold, platinum`.
    pub detail: String,
    pub before: usize,
    pub after: usize,
}

/// An expected count with a 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Estimate {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// How the interval is computed, and what it leaves out.
    pub method: String,
}

/// The audience against random audiences of the same size.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Lift {
    /// The audience's size over all customers of the model.
    pub depth: f64,
    /// The backtest's cumulative lift at `depth`: how many times the overall rate the top
    /// `depth` of customers by this score converted at, out of sample. Absent without a
    /// backtest of the score.
    pub backtest: Option<f64>,
    /// The audience's mean probability over the mean of all customers: the expected lift over
    /// a random audience drawn from the whole customer base.
    pub estimated: Option<f64>,
    /// The same against a random audience drawn from the customers who pass every filter.
    pub vs_filtered_pool: Option<f64>,
    /// The backtest's overall rate of the event.
    pub base_rate: Option<f64>,
    /// The backtest's cumulative lift curve (deciles), for charts.
    pub curve: Vec<LiftPoint>,
}

/// Everything about an audience but its rows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub audience_id: String,
    pub model: String,
    /// The moment the model's snapshot describes; filters in days count back from it.
    pub as_of: String,
    /// When the campaign starts (RFC 3339).
    pub starts_at: String,
    pub target: TargetSummary,
    /// Customers to contact (the holdout is not counted).
    pub size: usize,
    /// Customers held out as a control group: they qualify exactly as the audience does.
    pub control_size: usize,
    pub holdout_share: f64,
    /// Rows in this answer (the audience, plus the control group when included, up to the
    /// preview).
    pub rows: usize,
    pub funnel: Vec<FunnelStep>,
    /// Expected conversions in the audience (the holdout excluded).
    pub expected_conversions: Estimate,
    /// Sum of the rows' expected values.
    pub expected_value: f64,
    pub mean_probability: f64,
    pub lift: Lift,
    /// Whether and how probabilities are recalibrated on the backtest.
    pub calibration: String,
    pub request: AudienceRequest,
}

/// Expected conversions from independent probabilities: the sum, and a 95% interval from the
/// Poisson-binomial variance Σ p(1 − p) by the normal approximation, clamped to [0, n].
pub fn expected_conversions(probabilities: impl Iterator<Item = f64>) -> Estimate {
    let (mut n, mut mean, mut var) = (0usize, 0.0, 0.0);
    for p in probabilities {
        n += 1;
        mean += p;
        var += p * (1.0 - p);
    }
    let half = 1.959_963_984_540_054 * var.sqrt();
    Estimate {
        mean,
        low: (mean - half).max(0.0),
        high: (mean + half).min(n as f64),
        method: "sum of the customers' probabilities; 95% interval: sum ± 1.96·√Σp(1−p) \
                 (Poisson-binomial variance, normal approximation), clamped to [0, size]. It \
                 takes the probabilities as exact: error in the model itself is not included."
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_binomial_interval() {
        let e = expected_conversions([0.5; 100].into_iter());
        assert!((e.mean - 50.0).abs() < 1e-12);
        // √(100 · 0.25) = 5.
        assert!((e.high - e.mean - 1.959_963_984_540_054 * 5.0).abs() < 1e-9);
        let e = expected_conversions([0.0, 1.0, 1.0].into_iter());
        assert_eq!((e.mean, e.low, e.high), (2.0, 2.0, 2.0));
        let e = expected_conversions([0.01; 10].into_iter());
        assert_eq!(e.low, 0.0);
        let e = expected_conversions(std::iter::empty());
        assert_eq!((e.mean, e.low, e.high), (0.0, 0.0, 0.0));
    }
}
