//! The built-in micro-moment kinds (`lattice_catalog::actions::ACTION_KINDS`).

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    EarlyAccess,
    InsiderPreview,
    Discovery,
    ProgressNudge,
    SurpriseDelight,
    TierExperience,
    CartReminder,
    PostPurchase,
    WinBack,
    PointsExpiry,
    Birthday,
    Gratitude,
    ServiceRecovery,
    Custom,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::EarlyAccess,
        Kind::InsiderPreview,
        Kind::Discovery,
        Kind::ProgressNudge,
        Kind::SurpriseDelight,
        Kind::TierExperience,
        Kind::CartReminder,
        Kind::PostPurchase,
        Kind::WinBack,
        Kind::PointsExpiry,
        Kind::Birthday,
        Kind::Gratitude,
        Kind::ServiceRecovery,
        Kind::Custom,
    ];

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EarlyAccess => "early_access",
            Kind::InsiderPreview => "insider_preview",
            Kind::Discovery => "discovery",
            Kind::ProgressNudge => "progress_nudge",
            Kind::SurpriseDelight => "surprise_delight",
            Kind::TierExperience => "tier_experience",
            Kind::CartReminder => "cart_reminder",
            Kind::PostPurchase => "post_purchase",
            Kind::WinBack => "win_back",
            Kind::PointsExpiry => "points_expiry",
            Kind::Birthday => "birthday",
            Kind::Gratitude => "gratitude",
            Kind::ServiceRecovery => "service_recovery",
            Kind::Custom => "custom",
        }
    }

    /// Whether an action of this kind is promotional when its `promotional` flag is absent:
    /// care messages (service recovery, post-purchase check-ins, thank-yous) are not.
    pub fn promotional_by_default(self) -> bool {
        !matches!(
            self,
            Kind::ServiceRecovery | Kind::PostPurchase | Kind::Gratitude
        )
    }

    /// Features (model variables) the kind's built-in rule cannot do without.
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            Kind::CartReminder => &["carts_30d", "views_30d"],
            _ => &[],
        }
    }

    /// Kinds whose moment passes quickly: sent within `Tuning::urgent_horizon_hours`
    /// instead of waiting up to a week for the customer's best hour.
    pub fn is_urgent(self) -> bool {
        matches!(
            self,
            Kind::CartReminder | Kind::ServiceRecovery | Kind::PostPurchase
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_data_contract() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, lattice_catalog::actions::ACTION_KINDS);
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("spam"), None);
    }
}
