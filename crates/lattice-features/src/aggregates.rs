//! Per-customer aggregates of history up to `as_of`: the raw counts, sums and instants from which
//! every feature is derived. Batch training fills them with DataFusion SQL
//! ([`crate::sql`]); the features themselves are one Rust function of them ([`crate::features`]).

use serde::{Deserialize, Serialize};

pub const DAY_US: i64 = 86_400_000_000;

/// The UTC calendar day of an instant, in days since the Unix epoch: the day BG/NBD's repeat
/// purchase days are counted in (the SQL's `t / DAY_US` agrees for instants after 1970).
pub fn utc_day(t_us: i64) -> i64 {
    t_us.div_euclid(DAY_US)
}

/// A support ticket or review at or below this sentiment is a negative moment.
pub const NEGATIVE_SENTIMENT: f64 = -0.3;

/// Window lengths, in days, of the windowed counts.
pub const RECENT_DAYS: i64 = 30;
pub const QUARTER_DAYS: i64 = 90;
pub const YEAR_DAYS: i64 = 365;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    pub first_event_us: i64,
    pub last_event_us: i64,
    /// Distinct orders (purchase rows sharing an `order_id`, or an instant when it is null).
    pub orders: f64,
    pub first_order_us: Option<i64>,
    pub last_order_us: Option<i64>,
    /// Sum of purchase amounts.
    pub revenue: f64,
    pub orders_30d: f64,
    pub orders_90d: f64,
    pub orders_365d: f64,
    /// Orders in (as_of − 180d, as_of − 90d], the quarter before the last.
    pub orders_prev_90d: f64,
    pub spend_365d: f64,
    /// Sum over consecutive orders of the squared gap, in days².
    pub gap_sq_sum_days: f64,
    /// Amount of the first order (the one without a previous order): Gamma-Gamma models the
    /// mean of the repeat orders only.
    pub first_order_amount: f64,
    /// Distinct days (UTC) with an order: BG/NBD's repeat purchase days, as the paper and
    /// `lifetimes` count them, are this minus one.
    pub purchase_days: f64,
    /// Spend on the first of those days (every order on it).
    pub first_day_amount: f64,
    pub purchase_lines: f64,
    pub returns: f64,
    /// Purchase lines per category, aligned with the feature context's categories.
    pub category_lines: Vec<f64>,
    /// Views and carts per category.
    pub category_views: Vec<f64>,
    /// Per category, the category's own purchase rhythm: distinct orders holding a line of it
    /// (all time and in the 30/90/365-day windows), the first and last of those orders, and the
    /// spend on its lines in 365 days.
    pub category_orders: Vec<f64>,
    pub category_orders_30d: Vec<f64>,
    pub category_orders_90d: Vec<f64>,
    pub category_orders_365d: Vec<f64>,
    pub category_first_us: Vec<Option<i64>>,
    pub category_last_us: Vec<Option<i64>>,
    pub category_spend_365d: Vec<f64>,
    pub email_contacts: f64,
    pub email_opens: f64,
    pub email_clicks: f64,
    pub push_contacts: f64,
    pub push_opens: f64,
    pub sms_contacts: f64,
    pub sms_clicks: f64,
    pub contacts: f64,
    pub redemptions: f64,
    pub views_30d: f64,
    pub carts_30d: f64,
    pub app_opens_30d: f64,
    pub support_90d: f64,
    pub sentiment_sum_90d: f64,
    pub sentiment_n_90d: f64,
    /// Last return, or support ticket / review with negative sentiment.
    pub last_negative_us: Option<i64>,
}

/// What the customers table says about a customer (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub signup_us: Option<i64>,
    /// Days since the Unix epoch.
    pub birth_date: Option<i32>,
    pub tier: Option<String>,
    pub points_balance: Option<f64>,
    pub timezone: Option<String>,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub consent_push: bool,
}
