//! The feature definition: one function from a customer's aggregates and profile, at `as_of`, to
//! a dense vector with a named, ordered schema. Training and serving both call it.

use chrono::{Datelike, NaiveDate};
use lattice_catalog::settings::Tier;
use serde::{Deserialize, Serialize};

use crate::aggregates::{Aggregates, DAY_US, Profile};

/// Days used when something never happened (no negative moment, unknown birthday), so the
/// value stays finite and sorts as "long ago".
pub const NEVER_DAYS: f64 = 3650.0;

/// What the feature vector depends on besides one customer's history: the category vocabulary
/// and the tier ladder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureContext {
    pub categories: Vec<String>,
    pub tiers: Vec<Tier>,
}

/// `Women's Shoes` → `women_s_shoes`: category names as they appear in feature and score names.
pub fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Base features. The customers table's current-state columns (points balance, consent, the
/// stored tier) are left out on purpose: they describe the end of the data, so at a past
/// cutoff they would leak the future (a balance earned by later purchases, an unsubscribe that
/// followed churn). The tier comes from point-in-time spend instead; the current-state columns
/// reach decisioning as customer attributes, not as model inputs.
const BASE: &[&str] = &[
    "has_purchase",
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean",
    "tenure_days",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_prev_90d",
    "trend_90d",
    "gap_mean_days",
    "gap_std_days",
    "recency_over_gap",
    "returns",
    "return_ratio",
    "email_contacts",
    "email_opens",
    "email_clicks",
    "email_open_rate",
    "email_click_rate",
    "push_contacts",
    "push_opens",
    "push_open_rate",
    "sms_contacts",
    "sms_clicks",
    "contacts",
    "redemptions",
    "response_rate",
    "views_30d",
    "carts_30d",
    "app_opens_30d",
    "days_since_last_event",
    "support_90d",
    "sentiment_mean_90d",
    "days_since_negative",
    "spend_365d",
    "tier_index",
    "to_next_tier",
    "days_to_birthday",
    "days_to_anniversary",
];

/// Each category's own purchase rhythm, named `<feature>_<slug>`, category by category (see
/// [`FeatureContext::category_names`]). Counts are of distinct orders holding the category.
pub const CATEGORY_RHYTHM: [&str; 9] = [
    // Days since the last order holding the category ([`NEVER_DAYS`] if none).
    "cat_days_since",
    "cat_orders",
    "cat_orders_30d",
    "cat_orders_90d",
    "cat_orders_365d",
    // The customer's usual gap between orders of the category (0 with fewer than two).
    "cat_gap_days",
    // Days since the last one over the usual gap: about 1 when the next one is due.
    "cat_overdue",
    "cat_spend_365d",
    // Share of the last 90 days' orders holding the category minus its all-time share.
    "cat_share_trend",
];

impl FeatureContext {
    /// Feature names, in vector order: the base features, then `share_<category>` (share of
    /// purchase lines) and `view_share_<category>` (share of views and carts) per category.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
        names.extend(self.categories.iter().map(|c| format!("share_{}", slug(c))));
        names.extend(
            self.categories
                .iter()
                .map(|c| format!("view_share_{}", slug(c))),
        );
        names
    }

    pub fn len(&self) -> usize {
        BASE.len() + 2 * self.categories.len()
    }

    /// Names of the per-category rhythm features ([`CATEGORY_RHYTHM`]), category-major: the
    /// features of category `c` are `c·9 .. (c+1)·9`.
    pub fn category_names(&self) -> Vec<String> {
        self.categories
            .iter()
            .flat_map(|c| {
                let s = slug(c);
                CATEGORY_RHYTHM.iter().map(move |f| format!("{f}_{s}"))
            })
            .collect()
    }

    pub fn category_len(&self) -> usize {
        CATEGORY_RHYTHM.len() * self.categories.len()
    }

    /// Writes the per-category rhythm features of one customer into `out` (of length
    /// [`Self::category_len`]). Missing per-category aggregates read as no purchase.
    pub fn write_categories(&self, a: &Aggregates, as_of_us: i64, out: &mut [f64]) {
        assert_eq!(out.len(), self.category_len(), "category buffer length");
        let days = |us: i64| ((as_of_us - us) as f64 / DAY_US as f64).max(0.0);
        let ratio = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
        let at = |v: &[f64], c: usize| v.get(c).copied().unwrap_or(0.0);
        for (c, o) in out.chunks_exact_mut(CATEGORY_RHYTHM.len()).enumerate() {
            let last = a.category_last_us.get(c).copied().flatten();
            let first = a.category_first_us.get(c).copied().flatten();
            let n = at(&a.category_orders, c);
            let since = last.map_or(NEVER_DAYS, days);
            let gap = match (first, last) {
                (Some(f), Some(l)) if n > 1.0 => (l - f) as f64 / DAY_US as f64 / (n - 1.0),
                _ => 0.0,
            };
            let o90 = at(&a.category_orders_90d, c);
            o.copy_from_slice(&[
                since,
                n,
                at(&a.category_orders_30d, c),
                o90,
                at(&a.category_orders_365d, c),
                gap,
                if gap > 0.0 { since / gap } else { 0.0 },
                at(&a.category_spend_365d, c),
                ratio(o90, a.orders_90d) - ratio(n, a.orders),
            ]);
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Index of the current tier (0 = entry; −1 = below every tier or no tiers) and the spend
    /// still needed for the next one (0 at the top).
    pub fn tier_position(&self, spend_365d: f64) -> (f64, f64) {
        let idx = self.tiers.iter().rposition(|t| spend_365d >= t.min_spend);
        let next = match idx {
            Some(i) => self.tiers.get(i + 1),
            None => self.tiers.first(),
        };
        let to_next = next.map_or(0.0, |t| (t.min_spend - spend_365d).max(0.0));
        (idx.map_or(-1.0, |i| i as f64), to_next)
    }

    /// Writes the features of one customer into `out` (of length [`Self::len`]).
    pub fn write(&self, a: &Aggregates, p: &Profile, as_of_us: i64, out: &mut [f64]) {
        assert_eq!(out.len(), self.len(), "feature buffer length");
        let days = |us: i64| (as_of_us - us) as f64 / DAY_US as f64;
        let ratio = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };

        let has_purchase = a.orders > 0.0;
        let first = p
            .signup_us
            .map_or(a.first_event_us, |s| s.min(a.first_event_us));
        let tenure = days(first).max(0.0);
        let recency = a.last_order_us.map_or(days(a.first_event_us), days);
        let gap_mean = match (a.first_order_us, a.last_order_us) {
            (Some(f), Some(l)) if a.orders > 1.0 => {
                (l - f) as f64 / DAY_US as f64 / (a.orders - 1.0)
            }
            _ => 0.0,
        };
        let gap_std = if a.orders > 1.0 {
            (a.gap_sq_sum_days / (a.orders - 1.0) - gap_mean * gap_mean)
                .max(0.0)
                .sqrt()
        } else {
            0.0
        };
        let (tier_index, to_next) = self.tier_position(a.spend_365d);
        let as_of_date = chrono::DateTime::from_timestamp_micros(as_of_us)
            .map(|t| t.date_naive())
            .unwrap_or_default();
        let birthday = p
            .birth_date
            .and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163))
            .map_or(NEVER_DAYS, |d| days_to_next_anniversary(d, as_of_date));
        let anniversary = p
            .signup_us
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map_or(NEVER_DAYS, |t| {
                days_to_next_anniversary(t.date_naive(), as_of_date)
            });

        let base = [
            f64::from(u8::from(has_purchase)),
            recency.max(0.0),
            a.orders,
            a.revenue,
            ratio(a.revenue, a.orders),
            tenure,
            a.orders_30d,
            a.orders_90d,
            a.orders_365d,
            a.orders_prev_90d,
            (a.orders_90d - a.orders_prev_90d) / (a.orders_90d + a.orders_prev_90d + 1.0),
            gap_mean,
            gap_std,
            if gap_mean > 0.0 {
                recency / gap_mean
            } else {
                0.0
            },
            a.returns,
            ratio(a.returns, a.purchase_lines),
            a.email_contacts,
            a.email_opens,
            a.email_clicks,
            ratio(a.email_opens, a.email_contacts).min(1.0),
            ratio(a.email_clicks, a.email_contacts).min(1.0),
            a.push_contacts,
            a.push_opens,
            ratio(a.push_opens, a.push_contacts).min(1.0),
            a.sms_contacts,
            a.sms_clicks,
            a.contacts,
            a.redemptions,
            ratio(a.redemptions, a.contacts).min(1.0),
            a.views_30d,
            a.carts_30d,
            a.app_opens_30d,
            days(a.last_event_us).max(0.0),
            a.support_90d,
            ratio(a.sentiment_sum_90d, a.sentiment_n_90d),
            a.last_negative_us.map_or(NEVER_DAYS, |t| days(t).max(0.0)),
            a.spend_365d,
            tier_index,
            to_next,
            birthday,
            anniversary,
        ];
        out[..BASE.len()].copy_from_slice(&base);
        let k = self.categories.len();
        let lines: f64 = a.category_lines.iter().sum();
        let views: f64 = a.category_views.iter().sum();
        for i in 0..k {
            out[BASE.len() + i] = ratio(a.category_lines.get(i).copied().unwrap_or(0.0), lines);
            out[BASE.len() + k + i] = ratio(a.category_views.get(i).copied().unwrap_or(0.0), views);
        }
    }
}

/// Days from `today` to the next anniversary of `date` (0 if it is today). Feb 29 falls on
/// Feb 28 in common years.
pub fn days_to_next_anniversary(date: NaiveDate, today: NaiveDate) -> f64 {
    let on = |year: i32| {
        NaiveDate::from_ymd_opt(year, date.month(), date.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
    };
    let next = match on(today.year()) {
        Some(d) if d >= today => Some(d),
        _ => on(today.year() + 1),
    };
    next.map_or(NEVER_DAYS, |d| (d - today).num_days() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_vector_length() {
        let ctx = FeatureContext {
            categories: vec!["Women's Shoes".into(), "home".into()],
            tiers: vec![],
        };
        let names = ctx.names();
        assert_eq!(names.len(), ctx.len());
        assert!(names.contains(&"share_women_s_shoes".to_string()));
        let mut seen = std::collections::HashSet::new();
        assert!(names.iter().all(|n| seen.insert(n)), "names are unique");
    }

    #[test]
    fn anniversaries() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            days_to_next_anniversary(d(1990, 3, 10), d(2025, 3, 10)),
            0.0
        );
        assert_eq!(days_to_next_anniversary(d(1990, 3, 10), d(2025, 3, 9)), 1.0);
        assert_eq!(
            days_to_next_anniversary(d(1990, 3, 10), d(2025, 3, 11)),
            364.0
        );
        assert_eq!(
            days_to_next_anniversary(d(1992, 2, 29), d(2025, 2, 1)),
            27.0
        );
    }

    #[test]
    fn tiers() {
        let t = |n: &str, m| Tier {
            name: n.into(),
            min_spend: m,
            reward: None,
        };
        let ctx = FeatureContext {
            categories: vec![],
            tiers: vec![t("bronze", 0.0), t("silver", 250.0), t("gold", 750.0)],
        };
        assert_eq!(ctx.tier_position(100.0), (0.0, 150.0));
        assert_eq!(ctx.tier_position(800.0), (2.0, 0.0));
    }
}
