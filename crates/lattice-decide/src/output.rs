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
    #[serde(serialize_with = "rfc3339")]
    pub send_at: DateTime<FixedOffset>,
    /// Short codes for the scores, features and rules behind the action.
    pub reasons: Vec<String>,
}

/// `send_at` as chrono writes it (`2026-11-26T09:00:00-05:00`, `Z` for UTC), without going through
/// `fmt` a character at a time: the formatting was a visible share of a decision's cost. Times
/// with fractional seconds or offsets in seconds, which send times never have, go to chrono.
fn rfc3339<S: serde::Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    match Rfc3339::new(t) {
        // Only ASCII digits and separators were written.
        Some(r) => s.serialize_str(r.as_str()),
        None => t.serialize(s),
    }
}

/// A time written as chrono's RFC 3339 serialisation writes it, when it has whole seconds and
/// an offset in whole minutes (`None` otherwise: leave those to chrono).
pub(crate) struct Rfc3339 {
    bytes: [u8; 25],
    len: usize,
}

impl Rfc3339 {
    pub(crate) fn new(t: &DateTime<FixedOffset>) -> Option<Rfc3339> {
        use chrono::{Datelike, Timelike};
        let offset = t.offset().local_minus_utc();
        let year = t.year();
        if t.nanosecond() != 0 || offset % 60 != 0 || !(0..=9999).contains(&year) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00+00:00";
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year as u32, 4);
        put(5, t.month(), 2);
        put(8, t.day(), 2);
        put(11, t.hour(), 2);
        put(14, t.minute(), 2);
        put(17, t.second(), 2);
        let minutes = offset.unsigned_abs() / 60;
        put(20, minutes / 60, 2);
        put(23, minutes % 60, 2);
        if offset < 0 {
            b[19] = b'-';
        }
        // chrono writes a zero offset as `Z`.
        let len = if offset == 0 {
            b[19] = b'Z';
            20
        } else {
            b.len()
        };
        Some(Rfc3339 { bytes: b, len })
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
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
    /// Eligible, but the customer is in the control group of this promotional action (see
    /// [`Learned::control`](crate::Learned::control)).
    ControlGroup,
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
            ExclusionRule::ControlGroup => "control_group",
        }
    }
}

impl fmt::Display for ExclusionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, TimeZone};

    #[derive(serde::Serialize)]
    struct At(#[serde(serialize_with = "super::rfc3339")] chrono::DateTime<FixedOffset>);

    #[test]
    fn send_at_is_written_as_chrono_writes_it() {
        for (secs, offset) in [
            (1_795_000_000_i64, -5 * 3600),
            (1_795_000_000, 0),
            (1_795_003_600, 5 * 3600 + 30 * 60),
            (1_795_003_600, -(9 * 3600 + 30 * 60)),
            (0, 13 * 3600),
            (1_795_000_000, 45), // an offset in seconds: chrono's own output
        ] {
            let tz = FixedOffset::east_opt(offset).unwrap();
            let t = tz.timestamp_opt(secs, 0).unwrap();
            assert_eq!(
                serde_json::to_string(&At(t)).unwrap(),
                serde_json::to_string(&t).unwrap()
            );
        }
        let t = FixedOffset::east_opt(3600)
            .unwrap()
            .timestamp_opt(1_795_000_000, 500)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&At(t)).unwrap(),
            serde_json::to_string(&t).unwrap()
        );
    }
}
