//! What the caller hands [`rank`](crate::rank): the customer, the moment, the options.
//! Everything is borrowed from the caller's snapshot so that a request allocates nothing here.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::channel::{Channel, PerChannel};

/// Hours in a week: a send-time profile has one weight per local hour-of-week.
pub const HOURS_PER_WEEK: usize = 168;

/// A send-time profile: engagement weight per local hour-of-week, 0 = Monday 00:00 local.
pub type SendTimeProfile = [f64; HOURS_PER_WEEK];

/// Model scores of one customer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores<'a> {
    pub churn_probability: f64,
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub clv: f64,
    /// One probability per category, in the order of the `categories` given to
    /// [`Catalog::compile`](crate::Catalog::compile).
    pub affinity: &'a [f64],
}

/// One message the customer received: what, where, when.
#[derive(Debug, Clone, Copy)]
pub struct Contact<'a> {
    pub action_id: &'a str,
    pub channel: Channel,
    pub at: DateTime<Utc>,
}

/// One customer, as the server knows them at request time.
///
/// `Customer { id, values, scores, ..Customer::default() }` leaves the rest empty: no
/// consent, no contacts, UTC.
#[derive(Debug, Clone, Copy)]
pub struct Customer<'a> {
    pub id: &'a str,
    /// Feature (and any other) values, aligned with the `variables` given to
    /// [`Catalog::compile`](crate::Catalog::compile). A missing trailing value reads as NaN.
    pub values: &'a [f64],
    pub scores: Scores<'a>,
    /// Current loyalty tier name; when `None` (or not a tier of the settings) the tier is
    /// derived from `spend_365d`.
    pub tier: Option<&'a str>,
    /// Qualifying spend over the trailing 365 days (tiers, progress nudges).
    pub spend_365d: f64,
    /// Current points balance (points expiry).
    pub points_balance: f64,
    pub tz: Tz,
    /// Marketing consent per channel; no consent, no message.
    pub consent: PerChannel<bool>,
    pub birth_date: Option<NaiveDate>,
    pub signup_date: Option<NaiveDate>,
    /// Last negative moment: a return, or a support ticket or review with negative sentiment.
    pub last_negative_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    /// Recent contacts, any order; at least the last 7 days and the longest cooldown.
    pub contacts: &'a [Contact<'a>],
    /// Send-time profile per channel, when the customer has one.
    pub send_time: PerChannel<Option<&'a SendTimeProfile>>,
    /// Where the profiles of the channels without one in `send_time` come from, computed only
    /// for the channels a ranked action goes out on (and not at all when it goes out now).
    pub send_time_source: Option<&'a dyn SendTimeSource>,
}

/// Send-time profiles computed on demand: [`rank`](crate::rank) asks for a channel's profile
/// only when a ranked action needs a send time on it, at most once per channel.
pub trait SendTimeSource: std::fmt::Debug + Sync {
    /// Writes the customer's profile on `channel` into `profile`; `false` without one. Only
    /// the order of the hours matters, so weights of any positive scale will do.
    fn profile(&self, channel: Channel, profile: &mut SendTimeProfile) -> bool;
}

impl Default for Customer<'_> {
    fn default() -> Self {
        Customer {
            id: "",
            values: &[],
            scores: Scores::default(),
            tier: None,
            spend_365d: 0.0,
            points_balance: 0.0,
            tz: Tz::UTC,
            consent: PerChannel::default(),
            birth_date: None,
            signup_date: None,
            last_negative_at: None,
            last_purchase_at: None,
            contacts: &[],
            send_time: PerChannel::default(),
            send_time_source: None,
        }
    }
}

/// The moment of the decision. Visible in CEL as `context.channel`, `context.category`,
/// `context.page` and `context.store`; an absent value is absent (test with `has(...)`).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    /// The channel the customer is on right now (they just opened an email, are in the app).
    pub channel: Option<Channel>,
    /// The category being viewed.
    pub category: Option<&'a str>,
    pub page: Option<&'a str>,
    pub store: Option<&'a str>,
}

impl Context<'_> {
    /// A context with only the time.
    pub fn at(now: DateTime<Utc>) -> Self {
        Context {
            now,
            channel: None,
            category: None,
            page: None,
            store: None,
        }
    }
}

/// How many actions, on which channel, and whether to list the excluded ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankOptions {
    /// At most this many ranked actions (0 returns none).
    pub limit: usize,
    /// Only actions that can go out on this channel, sent on it.
    pub channel: Option<Channel>,
    /// List every excluded action with the rule that excluded it.
    pub explain: bool,
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            limit: 5,
            channel: None,
            explain: false,
        }
    }
}

/// What outcomes taught, for one customer, indexed by action (catalog order). The default
/// (empty slices) is ranking without learning.
#[derive(Debug, Clone, Copy, Default)]
pub struct Learned<'a> {
    /// A learned response probability per action; `None`, or an index past the end, keeps the
    /// kind's propensity. Clamped to [0, 1] like the kinds' (NaN reads as 0).
    pub propensities: &'a [Option<f64>],
    /// Whether the customer is in the action's control group; a promotional action is then
    /// excluded as `control_group` (after every other rule). Non-promotional actions (service
    /// recovery, check-ins, thank-yous) are never held out.
    pub control: &'a [bool],
    /// Closed decisions and responses (n, r) behind a learned propensity, per action: ranked
    /// actions using the learned propensity then carry the reason `observed r of n`.
    pub observed: &'a [Option<(u64, u64)>],
}
