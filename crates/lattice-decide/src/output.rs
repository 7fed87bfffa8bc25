//! What [`rank`](crate::rank) answers; serialised as-is by the server (snake_case JSON).

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::channel::Channel;
use crate::kind::Kind;

/// The ranked next-best actions for one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub customer_id: String,
    /// Best first: score descending, then id ascending.
    pub actions: Vec<RankedAction>,
    /// With `explain`: every action that was not ranked, with the rule that excluded it, in
    /// catalog order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Vec<Exclusion>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedAction {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    /// Probability the customer responds (0..=1).
    pub propensity: f64,
    /// `propensity × value`.
    pub expected_value: f64,
    /// `propensity × value × weight − cost`.
    pub score: f64,
    /// Personalisation merged with the action's own payload (which wins on a shared key).
    pub payload: serde_json::Value,
    /// When to send, in the customer's local offset (RFC 3339).
    pub send_at: DateTime<FixedOffset>,
    /// Short codes for the scores, features and rules behind the action.
    pub reasons: Vec<String>,
}

/// An action left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    pub id: String,
    pub rule: ExclusionRule,
    pub detail: String,
}

/// The rules, in the order they are checked; an action reports the first it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionRule {
    /// Today (customer's local date) is outside `valid_from..=valid_to`.
    OutsideValidity,
    /// None of the action's channels is the one asked for (or, for a cart reminder, the only
    /// one is the channel the customer is on now).
    ChannelFiltered,
    /// No consent on any of the action's channels.
    NoConsent,
    /// Every consented channel is at its 7-day cap (counting higher-ranked actions).
    FrequencyCap,
    /// Sent to this customer within its `cooldown_days`.
    Cooldown,
    /// Promotional (or a win-back) within `suppression_days` of a negative moment.
    SuppressedAfterNegative,
    /// The kind's built-in rule or the `eligible` expression said no.
    NotEligible,
    /// The `eligible` expression failed to evaluate (a type error, an absent context field
    /// read without `has()`).
    EligibilityError,
}

impl ExclusionRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionRule::OutsideValidity => "outside_validity",
            ExclusionRule::ChannelFiltered => "channel_filtered",
            ExclusionRule::NoConsent => "no_consent",
            ExclusionRule::FrequencyCap => "frequency_cap",
            ExclusionRule::Cooldown => "cooldown",
            ExclusionRule::SuppressedAfterNegative => "suppressed_after_negative",
            ExclusionRule::NotEligible => "not_eligible",
            ExclusionRule::EligibilityError => "eligibility_error",
        }
    }
}

impl fmt::Display for ExclusionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
