//! The synthetic retailer's fixed vocabulary: categories, time zones, the action catalog and the
//! program settings, plus the text of the `actions.toml` and `lattice.toml` it writes.

use std::fmt::Write as _;

/// Product categories, in the order of the `pref_<category>` truth columns.
pub const CATEGORIES: [&str; 8] = [
    "outerwear",
    "footwear",
    "denim",
    "knitwear",
    "accessories",
    "beauty",
    "home",
    "kids",
];

/// Population base shares of the categories (sum to 1); the Dirichlet prior's mean.
pub const CATEGORY_SHARES: [f64; 8] = [0.12, 0.15, 0.14, 0.10, 0.16, 0.13, 0.10, 0.10];

/// IANA zones customers live in, with population weights (sum to 1).
pub const TIMEZONES: [(&str, f64); 12] = [
    ("America/New_York", 0.20),
    ("America/Chicago", 0.12),
    ("America/Denver", 0.05),
    ("America/Phoenix", 0.02),
    ("America/Los_Angeles", 0.13),
    ("America/Toronto", 0.04),
    ("Europe/London", 0.12),
    ("Europe/Berlin", 0.08),
    ("Europe/Paris", 0.07),
    ("Europe/Madrid", 0.04),
    ("Australia/Sydney", 0.08),
    ("Asia/Tokyo", 0.05),
];

/// Contact channels, indexed as in [`lattice_catalog::CHANNELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ch {
    Email = 0,
    Sms = 1,
    Push = 2,
}

impl Ch {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ch::Email => "email",
            Ch::Sms => "sms",
            Ch::Push => "push",
        }
    }
}

/// Why the synthetic retailer sends an action (which process in the world uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Regular campaign calendar (category campaigns and the newsletter).
    Campaign,
    /// Sent in the week of the customer's birthday.
    Birthday,
    /// Sent after a support ticket with negative sentiment.
    ServiceRecovery,
    /// Sent when 120 days pass without a purchase.
    WinBack,
    /// In the catalog for the decision engine; never sent in the history.
    CatalogOnly,
}

pub(crate) struct ActionDef {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub channels: &'static [Ch],
    /// Index into [`CATEGORIES`].
    pub category: Option<usize>,
    pub value: f64,
    pub cost: f64,
    pub promotional: bool,
    pub use_: Use,
    /// Relative frequency in the campaign calendar (only for `Use::Campaign`).
    pub campaign_weight: f64,
    /// Base redemption probability for actions without a category (see docs).
    pub redeem_base: f64,
    pub subject: &'static str,
}

const EPS: &[Ch] = &[Ch::Email, Ch::Push, Ch::Sms];
const EP: &[Ch] = &[Ch::Email, Ch::Push];
const ES: &[Ch] = &[Ch::Email, Ch::Sms];
const E: &[Ch] = &[Ch::Email];

const fn campaign(
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    channels: &'static [Ch],
    category: usize,
    value: f64,
    subject: &'static str,
) -> ActionDef {
    ActionDef {
        id,
        name,
        kind,
        channels,
        category: Some(category),
        value,
        cost: 0.05,
        promotional: true,
        use_: Use::Campaign,
        // 70% of calendar slots are category campaigns, split by the base shares.
        campaign_weight: 0.7 * CATEGORY_SHARES[category],
        redeem_base: 0.0,
        subject,
    }
}

/// The synthetic retailer's action catalog. Ids are stable: tests and notebooks refer to them.
pub(crate) const ACTIONS: &[ActionDef] = &[
    campaign(
        "early_access_outerwear",
        "Early access: the new coat edit",
        "early_access",
        EPS,
        0,
        60.0,
        "Your early access to the coat edit",
    ),
    campaign(
        "early_access_footwear",
        "Early access: new-season footwear",
        "early_access",
        EPS,
        1,
        55.0,
        "New-season shoes, before everyone else",
    ),
    campaign(
        "insider_preview_denim",
        "Insider preview: denim fits",
        "insider_preview",
        EP,
        2,
        45.0,
        "A first look at this season's fits",
    ),
    campaign(
        "early_access_knitwear",
        "Early access: knitwear",
        "early_access",
        EP,
        3,
        50.0,
        "Knitwear, yours first",
    ),
    campaign(
        "discovery_accessories",
        "Discover: accessories",
        "discovery",
        EP,
        4,
        30.0,
        "Finishing touches we think you'll like",
    ),
    campaign(
        "discovery_beauty",
        "Discover: beauty",
        "discovery",
        EP,
        5,
        30.0,
        "New in beauty",
    ),
    campaign(
        "discovery_home",
        "Discover: home",
        "discovery",
        EP,
        6,
        40.0,
        "New in home",
    ),
    campaign(
        "insider_preview_kids",
        "Insider preview: kids",
        "insider_preview",
        EP,
        7,
        35.0,
        "Kids' collection preview",
    ),
    ActionDef {
        id: "newsletter",
        name: "Monthly newsletter",
        kind: "custom",
        channels: E,
        category: None,
        value: 5.0,
        cost: 0.01,
        promotional: true,
        use_: Use::Campaign,
        campaign_weight: 0.3,
        redeem_base: 0.01,
        subject: "What's new this month",
    },
    ActionDef {
        id: "birthday_treat",
        name: "Birthday treat",
        kind: "birthday",
        channels: ES,
        category: None,
        value: 25.0,
        cost: 5.0,
        promotional: true,
        use_: Use::Birthday,
        campaign_weight: 0.0,
        redeem_base: 0.12,
        subject: "Happy birthday - a treat from us",
    },
    ActionDef {
        id: "service_recovery",
        name: "We're sorry - let us make it right",
        kind: "service_recovery",
        channels: ES,
        category: None,
        value: 40.0,
        cost: 10.0,
        promotional: false,
        use_: Use::ServiceRecovery,
        campaign_weight: 0.0,
        redeem_base: 0.10,
        subject: "We're sorry",
    },
    ActionDef {
        id: "win_back",
        name: "We saved you something",
        kind: "win_back",
        channels: EP,
        category: None,
        value: 35.0,
        cost: 8.0,
        promotional: true,
        use_: Use::WinBack,
        campaign_weight: 0.0,
        redeem_base: 0.04,
        subject: "It's been a while",
    },
    ActionDef {
        id: "cart_reminder",
        name: "You left something behind",
        kind: "cart_reminder",
        channels: EP,
        category: None,
        value: 45.0,
        cost: 0.05,
        promotional: true,
        use_: Use::CatalogOnly,
        campaign_weight: 0.0,
        redeem_base: 0.0,
        subject: "Still thinking about it?",
    },
    ActionDef {
        id: "tier_progress",
        name: "You're close to the next tier",
        kind: "progress_nudge",
        channels: EP,
        category: None,
        value: 30.0,
        cost: 0.05,
        promotional: true,
        use_: Use::CatalogOnly,
        campaign_weight: 0.0,
        redeem_base: 0.0,
        subject: "So close to your next tier",
    },
    ActionDef {
        id: "points_expiry",
        name: "Your points are about to expire",
        kind: "points_expiry",
        channels: E,
        category: None,
        value: 20.0,
        cost: 0.01,
        promotional: true,
        use_: Use::CatalogOnly,
        campaign_weight: 0.0,
        redeem_base: 0.0,
        subject: "Use your points before they go",
    },
    ActionDef {
        id: "thank_you",
        name: "Thank you for being a member",
        kind: "gratitude",
        channels: EP,
        category: None,
        value: 10.0,
        cost: 0.0,
        promotional: false,
        use_: Use::CatalogOnly,
        campaign_weight: 0.0,
        redeem_base: 0.0,
        subject: "Thank you",
    },
];

pub(crate) fn action_index(use_: Use) -> Option<usize> {
    ACTIONS.iter().position(|a| a.use_ == use_)
}

/// Tiers: (name, trailing-365-day spend threshold, reward).
pub const TIERS: [(&str, f64, &str); 4] = [
    ("bronze", 0.0, "Free standard shipping"),
    ("silver", 250.0, "Free returns and a birthday treat"),
    ("gold", 750.0, "Early access to every drop"),
    (
        "platinum",
        2000.0,
        "Personal stylist and free express delivery",
    ),
];

fn toml_str(s: &str) -> String {
    // Our literals are plain ASCII without quotes or backslashes; escape anyway.
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `actions.toml` of the synthetic retailer.
pub fn actions_toml() -> String {
    let mut s = String::new();
    s.push_str(
        "# Action catalog of the synthetic retailer, written by `lattice generate`.\n\
         # Actions with a `category` are the campaign calendar; the `contact` events in\n\
         # events.parquet carry these ids in `action_id`. See docs/synthetic-data.md.\n\n\
         [policy]\n\
         max_contacts_per_7d = { email = 3, sms = 1, push = 4 }\n\
         quiet_hours_start = 21\n\
         quiet_hours_end = 8\n\
         suppression_days = 14\n",
    );
    for a in ACTIONS {
        let channels: Vec<String> = a.channels.iter().map(|c| toml_str(c.name())).collect();
        // `write!` to a String cannot fail.
        let _ = write!(
            s,
            "\n[[action]]\nid = {}\nname = {}\nkind = {}\nchannels = [{}]\n",
            toml_str(a.id),
            toml_str(a.name),
            toml_str(a.kind),
            channels.join(", ")
        );
        if let Some(k) = a.category {
            let _ = writeln!(s, "category = {}", toml_str(CATEGORIES[k]));
        }
        let _ = write!(
            s,
            "value = {:.1}\ncost = {:.2}\npromotional = {}\n",
            a.value, a.cost, a.promotional
        );
        if a.category.is_some() || a.id == "win_back" {
            s.push_str("cooldown_days = 14\n");
        }
        let _ = writeln!(s, "payload = {{ subject = {} }}", toml_str(a.subject));
    }
    s
}

/// The `lattice.toml` of the synthetic retailer.
pub fn lattice_toml() -> String {
    let mut s = String::from(
        "# Program settings of the synthetic retailer, written by `lattice generate`.\n\
         currency = \"USD\"\n\
         default_timezone = \"America/New_York\"\n",
    );
    for (name, min_spend, reward) in TIERS {
        let _ = write!(
            s,
            "\n[[tier]]\nname = {}\nmin_spend = {min_spend:.1}\nreward = {}\n",
            toml_str(name),
            toml_str(reward)
        );
    }
    s
}
