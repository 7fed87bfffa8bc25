//! Reason codes a marketer can read: a linear model's logit, measured against the population's
//! typical customer and summed over groups of features that say one thing.
//!
//! Raw logit terms of correlated features mislead: with `frequency` and `monetary_total` both in
//! the churn model, one may take a large negative weight and the other a positive one, so a loyal
//! big spender's `monetary_total` term "raises" churn while the pair lowers it. Summing the terms
//! of a group cancels that, and measuring against the typical customer (the training rows'
//! median, not zero) makes "raises the risk" mean "more than for a typical customer". By
//! linearity a group's contribution is exactly how much the logit falls when its features are set
//! to the typical customer's values, which the tests check.

use serde::{Deserialize, Serialize};

/// The readable reason a feature belongs to; a feature outside every group is its own reason.
pub fn group(feature: &str) -> &str {
    const GROUPS: &[(&str, &[&str])] = &[
        (
            "purchase_recency",
            &[
                "has_purchase",
                "recency_days",
                "recency_over_gap",
                "days_since_last_event",
                "bgnbd_p_alive",
                "bgnbd_p_no_purchase",
            ],
        ),
        (
            "purchase_frequency",
            &[
                "frequency",
                "orders_30d",
                "orders_90d",
                "orders_365d",
                "orders_prev_90d",
                "trend_90d",
                "gap_mean_days",
                "gap_std_days",
                "bgnbd_expected_purchases",
            ],
        ),
        (
            "spend",
            &[
                "monetary_total",
                "monetary_mean",
                "spend_365d",
                "tier_index",
                "to_next_tier",
            ],
        ),
        ("tenure", &["tenure_days", "days_to_anniversary"]),
        (
            "email_engagement",
            &[
                "email_contacts",
                "email_opens",
                "email_clicks",
                "email_open_rate",
                "email_click_rate",
            ],
        ),
        (
            "app_and_push_engagement",
            &[
                "push_contacts",
                "push_opens",
                "push_open_rate",
                "app_opens_30d",
            ],
        ),
        ("sms_engagement", &["sms_contacts", "sms_clicks"]),
        (
            "response_to_offers",
            &["contacts", "redemptions", "response_rate"],
        ),
        ("browsing", &["views_30d", "carts_30d"]),
        (
            "service_experience",
            &[
                "support_90d",
                "sentiment_mean_90d",
                "days_since_negative",
                "returns",
                "return_ratio",
            ],
        ),
    ];
    if feature.starts_with("share_") || feature.starts_with("view_share_") {
        return "category_mix";
    }
    GROUPS
        .iter()
        .find(|(_, members)| members.contains(&feature))
        .map_or(feature, |(name, _)| name)
}

/// The reason groups of a model's features, looked up once when it is fitted rather than on
/// every scored customer: the distinct group names and each feature's index among them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasonGroups {
    pub names: Vec<String>,
    pub of_feature: Vec<usize>,
}

impl ReasonGroups {
    pub fn new(features: &[String]) -> Self {
        let mut names: Vec<String> = Vec::new();
        let of_feature = features
            .iter()
            .map(|f| {
                let g = group(f);
                names.iter().position(|n| n == g).unwrap_or_else(|| {
                    names.push(g.to_string());
                    names.len() - 1
                })
            })
            .collect();
        ReasonGroups { names, of_feature }
    }
}

/// Per column (standardised), the median of `z`'s rows: the typical customer.
pub fn typical(z: &[f64], k: usize) -> Vec<f64> {
    let n = z.len() / k.max(1);
    let mut column = Vec::with_capacity(n);
    (0..k)
        .map(|j| {
            column.clear();
            column.extend(z.iter().skip(j).step_by(k).copied());
            if column.is_empty() {
                return 0.0;
            }
            let mid = column.len() / 2;
            *column.select_nth_unstable_by(mid, f64::total_cmp).1
        })
        .collect()
}
