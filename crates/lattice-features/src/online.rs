//! Online updates: one event applied to a customer's [`Aggregates`], so a server can move
//! features as events arrive instead of waiting for the next training run. The rules mirror the
//! aggregation query in [`crate::sql`] event by event; `tests/features/online.rs` checks that aggregates
//! at T1 plus the events of (T1, T2] equal the query's aggregates at T2.
//!
//! Exact (equal to the query, for events that arrive in time order): first and last event,
//! orders and their first/last instants, revenue, the squared order gaps, the first order's
//! amount, purchase lines, returns, per-category lines and views, channel contacts, opens and
//! clicks, contacts, redemptions and the last negative moment. **Windowed counts** (orders in
//! 30/90/365 days and the quarter before, spend in 365 days, views/carts/app opens in 30 days,
//! support tickets and their sentiment in 90 days) gain each new event but nothing ages out of
//! them until the next training run: a snapshot holds counts, not the instants behind them.

use std::collections::HashMap;

use crate::aggregates::{Aggregates, DAY_US, NEGATIVE_SENTIMENT, utc_day};

/// One event as the online state sees it (the contract's columns, borrowed).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventView<'a> {
    pub ts_us: i64,
    pub event_type: &'a str,
    pub channel: Option<&'a str>,
    pub category: Option<&'a str>,
    pub amount: Option<f64>,
    pub order_id: Option<&'a str>,
    pub sentiment: Option<f64>,
}

/// Orders first seen online, by the query's order key (`order_id`, or the instant when it is
/// null): later lines of the same order add to it instead of counting a new order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderMemo {
    /// Order key → whether it is the customer's first order ever, and the categories it
    /// already counted (an order is one purchase of each category it holds).
    orders: HashMap<String, (bool, Vec<u16>)>,
}

impl Aggregates {
    /// The aggregates of a customer with no history yet (the first applied event sets the
    /// instants); `categories` is the feature context's category count.
    pub fn empty(categories: usize) -> Self {
        Aggregates {
            first_event_us: i64::MAX,
            last_event_us: i64::MIN,
            category_lines: vec![0.0; categories],
            category_views: vec![0.0; categories],
            category_orders: vec![0.0; categories],
            category_orders_30d: vec![0.0; categories],
            category_orders_90d: vec![0.0; categories],
            category_orders_365d: vec![0.0; categories],
            category_first_us: vec![None; categories],
            category_last_us: vec![None; categories],
            category_spend_365d: vec![0.0; categories],
            ..Default::default()
        }
    }

    /// Applies one event. `categories` is the feature context's vocabulary (the order of
    /// `category_lines`).
    pub fn apply(&mut self, e: &EventView<'_>, categories: &[String], memo: &mut OrderMemo) {
        let t = e.ts_us;
        self.first_event_us = self.first_event_us.min(t);
        self.last_event_us = self.last_event_us.max(t);
        let category = e
            .category
            .and_then(|c| categories.iter().position(|k| k == c));
        let negative = e.sentiment.is_some_and(|s| s <= NEGATIVE_SENTIMENT);
        match e.event_type {
            "purchase" => self.apply_purchase(e, category, memo),
            "return" => {
                self.returns += 1.0;
                self.mark_negative(t);
            }
            "view" | "cart" => {
                if let Some(c) = category {
                    self.category_views[c] += 1.0;
                }
                if e.event_type == "view" {
                    self.views_30d += 1.0;
                } else {
                    self.carts_30d += 1.0;
                }
            }
            "email_open" => self.email_opens += 1.0,
            "email_click" => self.email_clicks += 1.0,
            "push_open" => self.push_opens += 1.0,
            "sms_click" => self.sms_clicks += 1.0,
            "app_open" => self.app_opens_30d += 1.0,
            "contact" => {
                self.contacts += 1.0;
                match e.channel {
                    Some("email") => self.email_contacts += 1.0,
                    Some("push") => self.push_contacts += 1.0,
                    Some("sms") => self.sms_contacts += 1.0,
                    _ => {}
                }
            }
            "redemption" => self.redemptions += 1.0,
            "support" => {
                self.support_90d += 1.0;
                if let Some(s) = e.sentiment {
                    self.sentiment_sum_90d += s;
                    self.sentiment_n_90d += 1.0;
                }
                if negative {
                    self.mark_negative(t);
                }
            }
            "review" if negative => self.mark_negative(t),
            _ => {}
        }
    }

    fn mark_negative(&mut self, t: i64) {
        self.last_negative_us = Some(self.last_negative_us.map_or(t, |n| n.max(t)));
    }

    fn apply_purchase(&mut self, e: &EventView<'_>, category: Option<usize>, memo: &mut OrderMemo) {
        let t = e.ts_us;
        let amount = e.amount.unwrap_or(0.0);
        self.revenue += amount;
        self.purchase_lines += 1.0;
        self.spend_365d += amount;
        let key = e.order_id.map_or_else(|| t.to_string(), str::to_string);
        let known = memo.orders.get_mut(&key);
        if let Some(c) = category {
            self.category_lines[c] += 1.0;
            self.category_spend_365d[c] += amount;
            let counted = known
                .as_ref()
                .is_some_and(|(_, cats)| cats.contains(&(c as u16)));
            if !counted {
                self.category_orders[c] += 1.0;
                self.category_orders_30d[c] += 1.0;
                self.category_orders_90d[c] += 1.0;
                self.category_orders_365d[c] += 1.0;
                self.category_first_us[c] = Some(self.category_first_us[c].map_or(t, |f| f.min(t)));
                self.category_last_us[c] = Some(self.category_last_us[c].map_or(t, |l| l.max(t)));
            }
        }
        if let Some((first, cats)) = known {
            if let Some(c) = category
                && !cats.contains(&(c as u16))
            {
                cats.push(c as u16);
            }
            if *first {
                self.first_order_amount += amount;
            }
            if self.first_order_us.map(utc_day) == Some(utc_day(t)) {
                self.first_day_amount += amount;
            }
            return;
        }
        let first = self.last_order_us.is_none();
        let cats = category.map(|c| vec![c as u16]).unwrap_or_default();
        memo.orders.insert(key, (first, cats));
        if let Some(last) = self.last_order_us {
            // In time order the new order follows the last one; a late one is paired with the
            // last order too (the exact neighbour is not known online).
            let gap = (t - last).abs() as f64 / DAY_US as f64;
            self.gap_sq_sum_days += gap * gap;
            // A new purchase day unless it shares the last order's day (or, late, the first's).
            let (day, first_day) = (utc_day(t), self.first_order_us.map(utc_day));
            if day != utc_day(last) && Some(day) != first_day {
                self.purchase_days += 1.0;
            }
            if Some(day) == first_day {
                self.first_day_amount += amount;
            }
        } else {
            self.first_order_amount += amount;
            self.first_day_amount += amount;
            self.purchase_days = 1.0;
        }
        self.orders += 1.0;
        self.first_order_us = Some(self.first_order_us.map_or(t, |f| f.min(t)));
        self.last_order_us = Some(self.last_order_us.map_or(t, |l| l.max(t)));
        self.orders_30d += 1.0;
        self.orders_90d += 1.0;
        self.orders_365d += 1.0;
    }
}

/// The names of [`Aggregates::to_row`]'s values, for `categories` categories: the scalar fields,
/// then lines and views per category.
pub fn row_names(categories: usize) -> Vec<String> {
    let mut names: Vec<String> = SCALARS.iter().map(|s| s.to_string()).collect();
    names.extend((0..categories).map(|c| format!("category_lines_{c}")));
    names.extend((0..categories).map(|c| format!("category_views_{c}")));
    for per in CATEGORY_VECTORS {
        names.extend((0..categories).map(|c| format!("category_{per}_{c}")));
    }
    names
}

/// The per-category vectors after lines and views, in row order.
const CATEGORY_VECTORS: [&str; 7] = [
    "orders",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "first_us",
    "last_us",
    "spend_365d",
];

const SCALARS: [&str; 33] = [
    "first_event_us",
    "last_event_us",
    "orders",
    "first_order_us",
    "last_order_us",
    "revenue",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_prev_90d",
    "spend_365d",
    "gap_sq_sum_days",
    "first_order_amount",
    "purchase_days",
    "first_day_amount",
    "purchase_lines",
    "returns",
    "email_contacts",
    "email_opens",
    "email_clicks",
    "push_contacts",
    "push_opens",
    "sms_contacts",
    "sms_clicks",
    "contacts",
    "redemptions",
    "views_30d",
    "carts_30d",
    "app_opens_30d",
    "support_90d",
    "sentiment_sum_90d",
    "sentiment_n_90d",
    "last_negative_us",
];

/// Instants are microseconds, exact in an f64 (below 2^53); `None` is NaN.
fn opt(v: Option<i64>) -> f64 {
    v.map_or(f64::NAN, |t| t as f64)
}

fn unopt(v: f64) -> Option<i64> {
    v.is_finite().then_some(v as i64)
}

impl Aggregates {
    /// The aggregates as one row of f64, named by [`row_names`] (how a snapshot stores them).
    pub fn to_row(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(&[
            self.first_event_us as f64,
            self.last_event_us as f64,
            self.orders,
            opt(self.first_order_us),
            opt(self.last_order_us),
            self.revenue,
            self.orders_30d,
            self.orders_90d,
            self.orders_365d,
            self.orders_prev_90d,
            self.spend_365d,
            self.gap_sq_sum_days,
            self.first_order_amount,
            self.purchase_days,
            self.first_day_amount,
            self.purchase_lines,
            self.returns,
            self.email_contacts,
            self.email_opens,
            self.email_clicks,
            self.push_contacts,
            self.push_opens,
            self.sms_contacts,
            self.sms_clicks,
            self.contacts,
            self.redemptions,
            self.views_30d,
            self.carts_30d,
            self.app_opens_30d,
            self.support_90d,
            self.sentiment_sum_90d,
            self.sentiment_n_90d,
            opt(self.last_negative_us),
        ]);
        out.extend_from_slice(&self.category_lines);
        out.extend_from_slice(&self.category_views);
        out.extend_from_slice(&self.category_orders);
        out.extend_from_slice(&self.category_orders_30d);
        out.extend_from_slice(&self.category_orders_90d);
        out.extend_from_slice(&self.category_orders_365d);
        out.extend(self.category_first_us.iter().map(|&t| opt(t)));
        out.extend(self.category_last_us.iter().map(|&t| opt(t)));
        out.extend_from_slice(&self.category_spend_365d);
    }

    /// The inverse of [`Self::to_row`]; `None` if the row's length does not fit `categories`.
    pub fn from_row(row: &[f64], categories: usize) -> Option<Self> {
        if row.len() != SCALARS.len() + (2 + CATEGORY_VECTORS.len()) * categories {
            return None;
        }
        let (s, cats) = row.split_at(SCALARS.len());
        let mut per = cats.chunks_exact(categories.max(1));
        let mut next = || {
            if categories == 0 {
                &[][..]
            } else {
                per.next().unwrap_or(&[])
            }
        };
        let (lines, views) = (next(), next());
        let (orders, o30, o90, o365) = (next(), next(), next(), next());
        let (first, last, spend) = (next(), next(), next());
        Some(Aggregates {
            first_event_us: s[0] as i64,
            last_event_us: s[1] as i64,
            orders: s[2],
            first_order_us: unopt(s[3]),
            last_order_us: unopt(s[4]),
            revenue: s[5],
            orders_30d: s[6],
            orders_90d: s[7],
            orders_365d: s[8],
            orders_prev_90d: s[9],
            spend_365d: s[10],
            gap_sq_sum_days: s[11],
            first_order_amount: s[12],
            purchase_days: s[13],
            first_day_amount: s[14],
            purchase_lines: s[15],
            returns: s[16],
            email_contacts: s[17],
            email_opens: s[18],
            email_clicks: s[19],
            push_contacts: s[20],
            push_opens: s[21],
            sms_contacts: s[22],
            sms_clicks: s[23],
            contacts: s[24],
            redemptions: s[25],
            views_30d: s[26],
            carts_30d: s[27],
            app_opens_30d: s[28],
            support_90d: s[29],
            sentiment_sum_90d: s[30],
            sentiment_n_90d: s[31],
            last_negative_us: unopt(s[32]),
            category_lines: lines.to_vec(),
            category_views: views.to_vec(),
            category_orders: orders.to_vec(),
            category_orders_30d: o30.to_vec(),
            category_orders_90d: o90.to_vec(),
            category_orders_365d: o365.to_vec(),
            category_first_us: first.iter().map(|&t| unopt(t)).collect(),
            category_last_us: last.iter().map(|&t| unopt(t)).collect(),
            category_spend_365d: spend.to_vec(),
        })
    }
}

/// Features that online events keep equal to a training run's, by name (the rest, built on the
/// windowed counts, are refreshed by retraining). The parity tests compare exactly these.
pub const EXACT_FEATURES: &[&str] = &[
    "has_purchase",
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean",
    "tenure_days",
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
    "days_since_last_event",
    "days_since_negative",
    "days_to_birthday",
    "days_to_anniversary",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_expected_purchases",
];

/// Whether online events keep feature `name` exact: [`EXACT_FEATURES`], the per-category
/// shares of lines and views, and each category's all-time rhythm (orders, days since the last
/// one, usual gap, how overdue).
pub fn is_exact_feature(name: &str) -> bool {
    let windowed = ["cat_orders_30d_", "cat_orders_90d_", "cat_orders_365d_"];
    if windowed.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    EXACT_FEATURES.contains(&name)
        || [
            "share_",
            "view_share_",
            "cat_orders_",
            "cat_days_since_",
            "cat_gap_days_",
            "cat_overdue_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase<'a>(t: i64, order: Option<&'a str>, amount: f64) -> EventView<'a> {
        EventView {
            ts_us: t,
            event_type: "purchase",
            order_id: order,
            amount: Some(amount),
            category: Some("shoes"),
            ..Default::default()
        }
    }

    #[test]
    fn orders_on_one_day_are_one_purchase_day() {
        let cats = vec!["shoes".to_string()];
        let mut a = Aggregates::empty(1);
        let mut memo = OrderMemo::default();
        let hour = DAY_US / 24;
        a.apply(&purchase(9 * hour, Some("o1"), 10.0), &cats, &mut memo);
        a.apply(&purchase(15 * hour, Some("o2"), 4.0), &cats, &mut memo);
        a.apply(&purchase(DAY_US + hour, Some("o3"), 7.0), &cats, &mut memo);
        a.apply(
            &purchase(DAY_US + 2 * hour, Some("o4"), 1.0),
            &cats,
            &mut memo,
        );
        // A late line of the first order still counts towards the first day.
        a.apply(&purchase(9 * hour, Some("o1"), 2.0), &cats, &mut memo);
        assert_eq!(a.orders, 4.0);
        assert_eq!(a.purchase_days, 2.0);
        assert_eq!(a.first_day_amount, 16.0);
        assert_eq!(a.first_order_amount, 12.0);
    }

    #[test]
    fn lines_of_one_order_count_one_order_and_gaps_square_days() {
        let cats = vec!["shoes".to_string()];
        let mut a = Aggregates::empty(1);
        let mut memo = OrderMemo::default();
        a.apply(&purchase(0, Some("o1"), 10.0), &cats, &mut memo);
        a.apply(&purchase(0, Some("o1"), 5.0), &cats, &mut memo);
        a.apply(&purchase(3 * DAY_US, None, 20.0), &cats, &mut memo);
        assert_eq!(a.orders, 2.0);
        assert_eq!(a.purchase_lines, 3.0);
        assert_eq!(a.revenue, 35.0);
        assert_eq!(a.first_order_amount, 15.0);
        assert_eq!(a.gap_sq_sum_days, 9.0);
        assert_eq!((a.purchase_days, a.first_day_amount), (2.0, 15.0));
        assert_eq!(a.category_lines, vec![3.0]);
        assert_eq!(
            (a.first_order_us, a.last_order_us),
            (Some(0), Some(3 * DAY_US))
        );
    }

    #[test]
    fn negative_moments_and_contacts() {
        let cats: Vec<String> = vec![];
        let mut a = Aggregates::empty(0);
        let mut memo = OrderMemo::default();
        let ev = |t, ty, s: Option<f64>, ch: Option<&'static str>| EventView {
            ts_us: t,
            event_type: ty,
            sentiment: s,
            channel: ch,
            ..Default::default()
        };
        a.apply(&ev(5, "support", Some(0.5), None), &cats, &mut memo);
        assert_eq!(a.last_negative_us, None);
        a.apply(&ev(7, "support", Some(-0.8), None), &cats, &mut memo);
        a.apply(&ev(9, "contact", None, Some("email")), &cats, &mut memo);
        assert_eq!(a.last_negative_us, Some(7));
        assert_eq!((a.contacts, a.email_contacts), (1.0, 1.0));
        assert_eq!((a.first_event_us, a.last_event_us), (5, 9));
        assert_eq!(a.support_90d, 2.0);
        assert!((a.sentiment_sum_90d + 0.3).abs() < 1e-12);
    }

    #[test]
    fn rows_round_trip() {
        let mut a = Aggregates::empty(2);
        a.apply(
            &purchase(42, Some("o"), 3.5),
            &["shoes".into(), "bags".into()],
            &mut OrderMemo::default(),
        );
        let mut row = Vec::new();
        a.to_row(&mut row);
        assert_eq!(row.len(), row_names(2).len());
        assert_eq!(Aggregates::from_row(&row, 2), Some(a));
        assert_eq!(Aggregates::from_row(&row, 3), None);
    }
}
