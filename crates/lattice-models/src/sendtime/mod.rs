//! Send-time model: when in the week is a customer most likely to engage on a channel?
//!
//! Time is the hour of the week in the customer's **local** time, `0` = Monday 00:00–00:59,
//! `167` = Sunday 23:00–23:59. Time zones are converted by the caller; this module does no I/O.
//!
//! # Counts
//!
//! [`SendTimeCounts`] holds, per customer and [`Channel`], the customer's engagements as a sparse
//! sorted list of `(hour_of_week, count)` pairs (a customer has a handful of events and there may
//! be millions of customers, so nothing dense is kept per customer). Every engagement of a
//! specific channel (email, SMS, push) is **also** counted under [`Channel::Any`]: `Any` is all
//! of the customer's activity, channel engagements included. An engagement given with channel
//! `Any` (a view, a purchase…) counts only there.
//!
//! # Population profile
//!
//! Per channel, 168 probabilities from all customers' counts. `Any` gets a floor of one
//! pseudo-event per slot, so no slot has zero mass; each specific channel is shrunk toward the
//! `Any` population by 168 pseudo-events, so a channel with little data looks like overall
//! activity rather than like noise (and one with no data at all is exactly the `Any` profile).
//!
//! # Customer profile (empirical Bayes)
//!
//! For a customer, channel `c` and hour of week `h`,
//!
//! ```text
//! score[h] = ñ[h] + β · ñ_hod[h mod 24] / 7 + κ · pop_c[h],   profile = score / Σ score
//! ```
//!
//! where `ñ` are the customer's counts from the *source* below, each count also lending a share
//! `γ` (smoothing) of itself to the hour before and the hour after (circularly: Sunday 23:00
//! neighbours Monday 00:00; someone who opens at 20:00 may well open at 19:00 or 21:00),
//! `ñ_hod[d]` their total at hour of day `d` over the seven days (a customer who opens at 20:00
//! on Tuesdays probably also reads at 20:00 on other days: β pools that, and a large β makes the
//! profile an hour-of-day profile repeated over the week), `pop_c` the channel's population
//! profile and κ the prior strength in pseudo-events. κ, β and γ ([`Hyper`]) are per channel.
//! The source is, in order:
//!
//! 1. the customer's engagements on channel `c`, if there is at least one;
//! 2. otherwise all the customer's activity (their `Any` counts), if there is any;
//! 3. otherwise none: the profile is exactly `pop_c`.
//!
//! For `c = Any` steps 1 and 2 coincide. The prior is always the requested channel's population.
//!
//! # Choosing κ, β and γ
//!
//! [`select`] fits on earlier counts and scores later, held-out activity by hit@1 and hit@3 (at
//! hour-of-week and at hour-of-day level) over a [`Grid`], per channel, against two baselines:
//! the population's best hours and the customer's own raw best hours. Data without channel
//! engagements (purchases and visits only) still gets its `any` hyper-parameters chosen on
//! held-out activity; channels with no held-out engagements take `any`'s.

mod backtest;
mod counts;
mod model;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use backtest::{
    BacktestReport, ChannelReport, Comparison, Grid, GridPoint, HeldOut, HitRates, measure, select,
};
pub use counts::{
    CustomerCounts, Engagement, SendTimeCounts, hour_of_week, hour_of_week_from_local_seconds,
};
pub use model::{
    Hyper, ProfileSource, SendTimeModel, SendTimeRecommendation, SlotChoice, best_hour_of_day,
    hour_of_day_profile, top_k_slots, top3_hours_of_day, top3_hours_of_week,
};

/// Slots in a week profile.
pub const HOURS_PER_WEEK: usize = 168;
/// Slots in a day profile.
pub const HOURS_PER_DAY: usize = 24;
const N_CHANNELS: usize = 4;

/// Why send-time counts, a model or a backtest could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SendTimeError {
    /// An input engagement is unusable.
    #[error("engagement {index}: {problem}")]
    InvalidEngagement { index: usize, problem: String },
    /// A hyper-parameter is unusable.
    #[error("{name} = {value}: {problem}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        problem: String,
    },
    /// Counts or model weights (e.g. hand-edited JSON) are inconsistent.
    #[error("invalid send-time {what}: {problem}")]
    Invalid { what: &'static str, problem: String },
    /// A backtest cannot be run on these inputs.
    #[error("send-time backtest: {0}")]
    Backtest(String),
}

type Result<T> = std::result::Result<T, SendTimeError>;

/// The channel an engagement happened on; `Any` is all activity, the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
    Any,
}

impl Channel {
    pub const ALL: [Channel; N_CHANNELS] =
        [Channel::Email, Channel::Sms, Channel::Push, Channel::Any];

    /// Position in [`Channel::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Any => "any",
        }
    }

    /// The inverse of [`Channel::name`].
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The channel a contract event type is an engagement on: `email_open`/`email_click` →
    /// email, `sms_click` → SMS, `push_open`/`app_open` → push; other customer-initiated
    /// activity (purchase, return, view, cart, review, redemption, support) → `Any`; `None` for
    /// events that say nothing about when the customer is active (`contact` is our own send,
    /// `unsubscribe` a reaction to it) and for unknown types.
    pub fn from_event_type(event_type: &str) -> Option<Channel> {
        match event_type {
            "email_open" | "email_click" => Some(Channel::Email),
            "sms_click" => Some(Channel::Sms),
            "push_open" | "app_open" => Some(Channel::Push),
            "purchase" | "return" | "view" | "cart" | "review" | "redemption" | "support" => {
                Some(Channel::Any)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
