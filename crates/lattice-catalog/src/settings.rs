//! `lattice.toml`, optional program settings: currency, tiers.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{ConfigError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    /// Qualifying spend over the trailing 365 days needed to hold this tier.
    pub min_spend: f64,
    /// What reaching the tier unlocks (shown in progress nudges).
    #[serde(default)]
    pub reward: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "currency")]
    pub currency: String,
    /// Time zone for customers with none recorded.
    #[serde(default = "utc")]
    pub default_timezone: String,
    /// Tiers, ascending by `min_spend`; the first is the entry tier.
    #[serde(default, rename = "tier")]
    pub tiers: Vec<Tier>,
}

fn currency() -> String {
    "USD".into()
}
fn utc() -> String {
    "UTC".into()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            currency: currency(),
            default_timezone: utc(),
            tiers: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads `path` if it exists, else the defaults.
    pub fn load_or_default(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Settings::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Self::parse(&text).map_err(|m| ConfigError::invalid(path, m))
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let s: Settings = toml::from_str(text).map_err(|e| crate::describe_toml_error(&e, text))?;
        if !crate::is_valid_timezone(&s.default_timezone) {
            return Err(format!(
                "default_timezone: unknown time zone {:?} (expected an IANA name)",
                s.default_timezone
            ));
        }
        for (i, w) in s.tiers.windows(2).enumerate() {
            if w[1].min_spend <= w[0].min_spend {
                return Err(format!(
                    "tier #{} ({:?}): min_spend {} must be above the previous tier's {}",
                    i + 2,
                    w[1].name,
                    w[1].min_spend,
                    w[0].min_spend
                ));
            }
        }
        Ok(s)
    }

    /// The tier a trailing-365-day spend qualifies for, and the next tier up, if any.
    pub fn tier_for(&self, spend_365d: f64) -> (Option<&Tier>, Option<&Tier>) {
        let idx = self.tiers.iter().rposition(|t| spend_365d >= t.min_spend);
        let next = match idx {
            Some(i) => self.tiers.get(i + 1),
            None => self.tiers.first(),
        };
        (idx.map(|i| &self.tiers[i]), next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_next_tier() {
        let s = Settings::parse(
            "[[tier]]\nname=\"bronze\"\nmin_spend=0\n[[tier]]\nname=\"silver\"\nmin_spend=250\n",
        )
        .unwrap();
        let (t, n) = s.tier_for(100.0);
        assert_eq!(t.unwrap().name, "bronze");
        assert_eq!(n.unwrap().name, "silver");
        let (t, n) = s.tier_for(300.0);
        assert_eq!(t.unwrap().name, "silver");
        assert!(n.is_none());
    }

    #[test]
    fn rejects_unordered_tiers_and_bad_zone() {
        let e = Settings::parse(
            "[[tier]]\nname=\"a\"\nmin_spend=10\n[[tier]]\nname=\"b\"\nmin_spend=5\n",
        )
        .unwrap_err();
        assert!(e.contains("tier #2"), "{e}");
        let e = Settings::parse("default_timezone = \"Mars/Olympus\"").unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }
}
