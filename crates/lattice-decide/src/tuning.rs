//! Thresholds of the built-in kinds. The defaults suit the demo model; a retailer whose CLV or
//! affinity levels differ tunes them here rather than rewriting every kind as `custom`.

/// Thresholds and constants of the built-in micro-moment kinds (see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// A category is one of the customer's when it ranks within their top N by affinity.
    pub top_categories: usize,
    /// ... and its affinity is at least this.
    pub min_affinity: f64,
    /// `discovery` only offers a category below this share of the customer's purchases.
    pub discovery_max_share: f64,
    /// `progress_nudge`: the amount still to spend is at most this share of the distance
    /// between the current tier and the next.
    pub progress_share: f64,
    /// `surprise_delight`: CLV (in the programme's currency) that makes a customer high-value.
    pub high_clv: f64,
    /// `surprise_delight`: days without a purchase that make a customer quiet.
    pub quiet_days: f64,
    /// `surprise_delight`: an advocate is still alive (p_alive at least this).
    pub advocate_p_alive: f64,
    /// `surprise_delight`: suggested points per unit of CLV (rounded to 50, 100..=1000).
    pub delight_points_per_clv: f64,
    /// `cart_reminder`: the last activity is at most this many days old (`days_since_last_event`).
    pub cart_recent_days: f64,
    /// `post_purchase`: the last purchase is at most this many days old.
    pub post_purchase_days: f64,
    /// `win_back`: churn probability at least this.
    pub win_back_churn: f64,
    /// `win_back`: the last purchase is at least this many days old.
    pub win_back_after_days: f64,
    /// `win_back`: still reachable (p_alive at least this).
    pub min_p_alive: f64,
    /// `points_expiry`: churn probability at least this.
    pub points_expiry_churn: f64,
    /// `gratitude`: days after the signup anniversary during which it may go out.
    pub anniversary_window_days: i64,
    /// `birthday`: points per tier step (entry tier 1×, next 2×, ...).
    pub birthday_points_per_tier: f64,
    /// `cart_reminder`, `service_recovery` and `post_purchase` go out within this many hours.
    pub urgent_horizon_hours: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            top_categories: 3,
            min_affinity: 0.02,
            discovery_max_share: 0.2,
            progress_share: 0.25,
            high_clv: 300.0,
            quiet_days: 60.0,
            advocate_p_alive: 0.5,
            delight_points_per_clv: 0.5,
            cart_recent_days: 7.0,
            post_purchase_days: 14.0,
            win_back_churn: 0.6,
            win_back_after_days: 30.0,
            min_p_alive: 0.05,
            points_expiry_churn: 0.5,
            anniversary_window_days: 7,
            birthday_points_per_tier: 100.0,
            urgent_horizon_hours: 24,
        }
    }
}
