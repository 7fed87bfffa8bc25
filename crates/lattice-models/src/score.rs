//! Scoring one customer with fitted models: churn probability with reasons, CLV quantities,
//! category affinities and send times. The batch `score` command and the server share it.

use lattice_features::Aggregates;
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
        let f = &self.fitted;
        let horizon = f.config.horizon_days;
        let clv: &ClvModels = &f.clv;
        let [p_alive, _, expected] = clv.features(a, f.cutoff_us, horizon);
        CustomerScore {
            churn_probability: f.churn.predict(row, scratch),
            churn_reasons: f.churn.reasons(row, 3),
            p_alive,
            expected_purchases: expected,
            clv: clv.value(a, f.cutoff_us, CLV_DAYS),
            affinity: f
                .affinity
                .iter()
                .enumerate()
                .map(|(c, m): (usize, &CategoryModel)| m.predict(row, a, c, scratch))
                .collect(),
        }
    }

    /// Send-time recommendations per channel (email, sms, push, then all activity).
    pub fn send_times(&self, counts: &CustomerCounts<'_>) -> [SendTimeRecommendation; 4] {
        Channel::ALL.map(|c| self.send_time.recommend(counts, c))
    }
}
