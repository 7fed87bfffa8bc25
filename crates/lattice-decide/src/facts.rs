//! What ranking derives once per customer and moment: local time, tier standing, days since
//! the last purchase and negative moment, contacts per channel, category standing.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use lattice_catalog::settings::Tier;

use crate::catalog::Catalog;
use crate::channel::{Channel, PerChannel};
use crate::input::{Context, Customer};

pub(crate) const DAY_SECONDS: f64 = 86_400.0;

/// A probability from a score: NaN (missing) reads as 0, anything else is clamped to [0, 1].
pub(crate) fn prob(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// A non-negative amount: NaN and negatives read as 0.
pub(crate) fn amount(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.max(0.0) }
}

/// `days` days before `now`, saturating at the earliest instant (a huge cooldown is no panic).
pub(crate) fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    TimeDelta::try_days(i64::from(days))
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn days_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    ((later - earlier).num_seconds() as f64 / DAY_SECONDS).max(0.0)
}

pub(crate) struct Facts<'a> {
    pub(crate) now: DateTime<Utc>,
    pub(crate) local_now: DateTime<Tz>,
    pub(crate) today: NaiveDate,
    /// Tier name: the customer's own, else the one their spend qualifies for.
    pub(crate) tier: Option<&'a str>,
    /// Position of that tier in the settings' ladder.
    pub(crate) tier_index: Option<usize>,
    /// The next tier up and the spend still needed to reach it (> 0).
    pub(crate) next_tier: Option<(&'a Tier, f64)>,
    /// Spend between the current tier's threshold (or 0) and the next one's.
    pub(crate) tier_gap: f64,
    pub(crate) churn: f64,
    pub(crate) p_alive: f64,
    pub(crate) clv: f64,
    pub(crate) days_since_purchase: Option<f64>,
    pub(crate) days_since_negative: Option<f64>,
    /// Within `suppression_days` of the last negative moment.
    pub(crate) after_negative: bool,
    /// Contacts per channel in the last 7 days (future-dated, scheduled ones included).
    pub(crate) sent_7d: PerChannel<u32>,
}

impl<'a> Facts<'a> {
    pub(crate) fn new(
        catalog: &'a Catalog,
        customer: &Customer<'a>,
        context: &Context<'_>,
    ) -> Self {
        let now = context.now;
        let local_now = now.with_timezone(&customer.tz);
        let tiers = &catalog.tiers;
        let spend = amount(customer.spend_365d);
        let by_spend = tiers.iter().rposition(|t| spend >= t.min_spend);
        let (tier, tier_index) = match customer.tier {
            Some(name) => (
                Some(name),
                tiers.iter().position(|t| t.name == name).or(by_spend),
            ),
            None => (by_spend.map(|i| tiers[i].name.as_str()), by_spend),
        };
        let next = match tier_index {
            Some(i) => tiers.get(i + 1),
            None => tiers.first(),
        };
        let floor = tier_index.map_or(0.0, |i| tiers[i].min_spend);
        let next_tier = next
            .map(|t| (t, t.min_spend - spend))
            .filter(|(_, to_go)| *to_go > 0.0);
        let tier_gap = next.map_or(0.0, |t| t.min_spend - floor);

        let days_since_purchase = customer.last_purchase_at.map(|t| days_between(t, now));
        let days_since_negative = customer.last_negative_at.map(|t| days_between(t, now));
        let after_negative =
            days_since_negative.is_some_and(|d| d < f64::from(catalog.policy.suppression_days));

        let week_ago = days_before(now, 7);
        let mut sent_7d = PerChannel::<u32>::default();
        for c in customer.contacts.iter().filter(|c| c.at > week_ago) {
            *sent_7d.get_mut(c.channel) += 1;
        }
        Facts {
            now,
            local_now,
            today: local_now.date_naive(),
            tier,
            tier_index,
            next_tier,
            tier_gap,
            churn: prob(customer.scores.churn_probability),
            p_alive: prob(customer.scores.p_alive),
            clv: amount(customer.scores.clv),
            days_since_purchase,
            days_since_negative,
            after_negative,
            sent_7d,
        }
    }

    /// Whether `channel` still has room under the weekly cap.
    pub(crate) fn under_cap(&self, catalog: &Catalog, channel: Channel) -> bool {
        catalog
            .policy
            .caps
            .get(channel)
            .is_none_or(|cap| *self.sent_7d.get(channel) < cap)
    }
}

/// The customer's standing in each category.
pub(crate) struct Categories<'a> {
    pub(crate) affinity: &'a [f64],
}

impl Categories<'_> {
    pub(crate) fn affinity(&self, c: usize) -> f64 {
        prob(self.affinity.get(c).copied().unwrap_or(f64::NAN))
    }

    /// 0 for the customer's strongest category; ties go to the earlier category.
    pub(crate) fn rank(&self, c: usize, n: usize) -> usize {
        let a = self.affinity(c);
        (0..n)
            .filter(|&o| {
                let b = self.affinity(o);
                b > a || (b == a && o < c)
            })
            .count()
    }

    /// The `k` strongest categories, strongest first.
    pub(crate) fn top(&self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&x, &y| {
            self.affinity(y)
                .total_cmp(&self.affinity(x))
                .then(x.cmp(&y))
        });
        idx.truncate(k);
        idx
    }
}
