//! `actions.toml`, the action catalog. Parsed and structurally checked here; eligibility
//! expressions (CEL) are compiled and checked by `lattice-decide`.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{CHANNELS, ConfigError, Result};

/// Built-in micro-moment kinds; `custom` is for anything else.
pub const ACTION_KINDS: &[&str] = &[
    "early_access",
    "insider_preview",
    "discovery",
    "progress_nudge",
    "surprise_delight",
    "tier_experience",
    "cart_reminder",
    "post_purchase",
    "win_back",
    "points_expiry",
    "birthday",
    "gratitude",
    "service_recovery",
    "custom",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub channels: Vec<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// Expected value if the customer responds.
    #[serde(default)]
    pub value: f64,
    #[serde(default)]
    pub cost: f64,
    /// CEL expression over the customer's features and scores.
    #[serde(default)]
    pub eligible: Option<String>,
    #[serde(default)]
    pub cooldown_days: Option<u32>,
    /// First day the action may be offered (a TOML date or a `"YYYY-MM-DD"` string).
    #[serde(default, deserialize_with = "de_date", serialize_with = "ser_date")]
    pub valid_from: Option<NaiveDate>,
    /// Last day the action may be offered.
    #[serde(default, deserialize_with = "de_date", serialize_with = "ser_date")]
    pub valid_to: Option<NaiveDate>,
    /// Business lever multiplying the score.
    #[serde(default = "one")]
    pub weight: f64,
    /// Promotional actions are suppressed after a negative moment; defaults by kind.
    #[serde(default)]
    pub promotional: Option<bool>,
    /// Free-form message personalisation passed through to the answer.
    #[serde(default)]
    pub payload: Option<toml::Table>,
    /// What counts as a response (`[action.response]`); defaults by kind, see
    /// [`Action::response_rule`].
    #[serde(default)]
    pub response: Option<Response>,
    /// Share of customers (0..=1, by hash of the customer id) held out of this action to
    /// measure its lift; promotional actions only.
    #[serde(default)]
    pub holdout: f64,
}

/// The event that counts as a response to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseEvent {
    /// Any purchase.
    Purchase,
    /// A purchase in the action's `category` (an action without one counts any purchase).
    PurchaseInCategory,
    /// A points or reward redemption (`redemption` events).
    Redemption,
    /// A click on the message (`email_click`, `sms_click`, `push_open`).
    Click,
    /// An app open (`app_open`).
    AppOpen,
}

impl ResponseEvent {
    pub const ALL: [ResponseEvent; 5] = [
        ResponseEvent::Purchase,
        ResponseEvent::PurchaseInCategory,
        ResponseEvent::Redemption,
        ResponseEvent::Click,
        ResponseEvent::AppOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseEvent::Purchase => "purchase",
            ResponseEvent::PurchaseInCategory => "purchase_in_category",
            ResponseEvent::Redemption => "redemption",
            ResponseEvent::Click => "click",
            ResponseEvent::AppOpen => "app_open",
        }
    }
}

/// `[action.response]`: the event that counts and how long after the decision it may come.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub event: ResponseEvent,
    /// Days after the decision during which the event counts (1..=365).
    pub window_days: u32,
}

impl Action {
    /// The response rule: `[action.response]` if given, else the kind's default (see
    /// [`default_response`]).
    pub fn response_rule(&self) -> Response {
        self.response
            .unwrap_or_else(|| default_response(&self.kind, self.category.is_some()))
    }
}

/// The response a kind's action is judged by when the catalog says nothing: the behaviour the
/// message asks for, over the time such a message takes to work (a cart reminder works within
/// days, a win-back within a month).
pub fn default_response(kind: &str, has_category: bool) -> Response {
    use ResponseEvent::*;
    let category_purchase = if has_category {
        PurchaseInCategory
    } else {
        Purchase
    };
    let (event, window_days) = match kind {
        "early_access" | "insider_preview" | "discovery" | "custom" => (category_purchase, 14),
        "progress_nudge" => (Purchase, 14),
        "cart_reminder" => (Purchase, 3),
        "win_back" => (Purchase, 30),
        "points_expiry" | "birthday" => (Redemption, 30),
        "surprise_delight" | "tier_experience" | "service_recovery" => (AppOpen, 14),
        // post_purchase, gratitude: care messages, judged by engagement.
        _ => (Click, 7),
    };
    Response { event, window_days }
}

/// Accepts a bare TOML date (`2025-09-01`) or a string (`"2025-09-01"`).
fn de_date<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<NaiveDate>, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Date(toml::value::Datetime),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Date(dt) => dt.to_string(),
        Raw::Text(s) => s,
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| D::Error::custom("not a date (expected YYYY-MM-DD)"))
}

fn ser_date<S: serde::Serializer>(
    d: &Option<NaiveDate>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

fn one() -> f64 {
    1.0
}

/// Global contact policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Maximum contacts per channel in any 7 days.
    #[serde(default)]
    pub max_contacts_per_7d: HashMap<String, u32>,
    /// Local hour at which quiet hours start (inclusive), 0-23.
    #[serde(default = "quiet_start")]
    pub quiet_hours_start: u8,
    /// Local hour at which quiet hours end (exclusive), 0-23.
    #[serde(default = "quiet_end")]
    pub quiet_hours_end: u8,
    /// Days after a negative moment during which promotional actions are suppressed.
    #[serde(default = "suppression_days")]
    pub suppression_days: u32,
    /// Share of recorded decisions (0..=1) that explore by Thompson sampling instead of
    /// taking the best posterior mean; 0 turns exploration off.
    #[serde(default)]
    pub explore: f64,
    /// Share of customers (0..=1, by hash of the customer id) in the universal control group:
    /// no promotional action at all.
    #[serde(default)]
    pub control_share: f64,
}

fn quiet_start() -> u8 {
    21
}
fn quiet_end() -> u8 {
    8
}
fn suppression_days() -> u32 {
    14
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_contacts_per_7d: HashMap::new(),
            quiet_hours_start: quiet_start(),
            quiet_hours_end: quiet_end(),
            suppression_days: suppression_days(),
            explore: 0.0,
            control_share: 0.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionCatalog {
    #[serde(default)]
    pub policy: Policy,
    #[serde(default, rename = "action")]
    pub actions: Vec<Action>,
}

impl ActionCatalog {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Self::parse(&text).map_err(|m| ConfigError::invalid(path, m))
    }

    /// Parses and checks a catalog; the error says which action and field are wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let catalog: ActionCatalog =
            toml::from_str(text).map_err(|e| crate::describe_toml_error(&e, text))?;
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, a) in self.actions.iter().enumerate() {
            let at = format!("action #{} (id {:?})", i + 1, a.id);
            if a.id.trim().is_empty() {
                return Err(format!("action #{}: `id` is empty", i + 1));
            }
            if let Some(j) = first.insert(a.id.as_str(), i) {
                return Err(format!(
                    "{at}: duplicate action id, first defined by action #{}",
                    j + 1
                ));
            }
            if a.name.trim().is_empty() {
                return Err(format!("{at}: `name` is empty"));
            }
            if !ACTION_KINDS.contains(&a.kind.as_str()) {
                return Err(format!(
                    "{at}: unknown `kind` {:?} (expected one of {})",
                    a.kind,
                    ACTION_KINDS.join(", ")
                ));
            }
            if a.channels.is_empty() {
                return Err(format!(
                    "{at}: `channels` is empty (expected e.g. [\"email\"])"
                ));
            }
            if let Some(c) = a.channels.iter().find(|c| !CHANNELS.contains(&c.as_str())) {
                return Err(format!(
                    "{at}: unknown channel {c:?} (expected one of {})",
                    CHANNELS.join(", ")
                ));
            }
            for (field, v) in [("value", a.value), ("cost", a.cost), ("weight", a.weight)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "{at}: `{field}` = {v} (expected a finite number >= 0)"
                    ));
                }
            }
            if !(a.holdout.is_finite() && (0.0..=1.0).contains(&a.holdout)) {
                return Err(format!(
                    "{at}: `holdout` = {} (expected a share between 0 and 1)",
                    a.holdout
                ));
            }
            if let Some(r) = &a.response
                && !(1..=365).contains(&r.window_days)
            {
                return Err(format!(
                    "{at}: `response.window_days` = {} (expected 1 to 365 days)",
                    r.window_days
                ));
            }
            // A cooldown longer than the contact history kept would silently shrink to it.
            if let Some(d) = a.cooldown_days
                && d > crate::CONTACT_HISTORY_DAYS
            {
                return Err(format!(
                    "{at}: `cooldown_days` = {d} is longer than the {} days of contact history \
                     Lattice keeps (expected at most {})",
                    crate::CONTACT_HISTORY_DAYS,
                    crate::CONTACT_HISTORY_DAYS
                ));
            }
            if let (Some(from), Some(to)) = (a.valid_from, a.valid_to)
                && to < from
            {
                return Err(format!(
                    "{at}: `valid_to` {to} is before `valid_from` {from}"
                ));
            }
        }
        let p = &self.policy;
        for (field, v) in [("explore", p.explore), ("control_share", p.control_share)] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(format!(
                    "[policy] {field} = {v} (expected a share between 0 and 1)"
                ));
            }
        }
        if p.quiet_hours_start > 23 || p.quiet_hours_end > 23 {
            return Err("[policy]: quiet hours must be hours 0-23".into());
        }
        if let Some(c) = p
            .max_contacts_per_7d
            .keys()
            .find(|c| !CHANNELS.contains(&c.as_str()))
        {
            return Err(format!(
                "[policy] max_contacts_per_7d: unknown channel {c:?} (expected one of {})",
                CHANNELS.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[policy]
max_contacts_per_7d = { email = 3, push = 5 }

[[action]]
id = "win_back"
name = "We saved you something"
kind = "win_back"
channels = ["email"]
value = 30.0
cost = 0.2
eligible = "churn_probability > 0.5"
"#;

    #[test]
    fn parses_a_catalog() {
        let c = ActionCatalog::parse(GOOD).unwrap();
        assert_eq!(c.actions.len(), 1);
        assert_eq!(c.actions[0].weight, 1.0);
        assert_eq!(c.policy.max_contacts_per_7d["email"], 3);
        assert_eq!(c.policy.quiet_hours_start, 21);
    }

    #[test]
    fn dates_as_toml_dates_or_strings() {
        let c = ActionCatalog::parse(&format!(
            "{GOOD}valid_from = 2025-09-01\nvalid_to = \"2025-10-31\"\n"
        ))
        .unwrap();
        assert_eq!(c.actions[0].valid_from.unwrap().to_string(), "2025-09-01");
        assert_eq!(c.actions[0].valid_to.unwrap().to_string(), "2025-10-31");
        let err = ActionCatalog::parse(&format!(
            "{GOOD}valid_to = 2025-01-01\nvalid_from = 2025-02-01\n"
        ))
        .unwrap_err();
        assert!(err.contains("before `valid_from`"), "{err}");
        let err = ActionCatalog::parse(&format!("{GOOD}valid_to = \"soon\"\n")).unwrap_err();
        assert!(err.contains("not a date"), "{err}");
        assert!(!err.contains("soon"), "no file content in errors: {err}");
    }

    #[test]
    fn response_rule_from_the_catalog_or_the_kind() {
        let c = ActionCatalog::parse(GOOD).unwrap();
        assert_eq!(
            c.actions[0].response_rule(),
            Response {
                event: ResponseEvent::Purchase,
                window_days: 30
            }
        );
        let c = ActionCatalog::parse(&format!(
            "{GOOD}[action.response]\nevent = \"redemption\"\nwindow_days = 10\n"
        ))
        .unwrap();
        assert_eq!(
            c.actions[0].response_rule().event,
            ResponseEvent::Redemption
        );
        assert_eq!(c.actions[0].response_rule().window_days, 10);
        let err = ActionCatalog::parse(&format!(
            "{GOOD}[action.response]\nevent = \"redemption\"\nwindow_days = 0\n"
        ))
        .unwrap_err();
        assert!(err.contains("`response.window_days` = 0"), "{err}");
        let err = ActionCatalog::parse(&format!(
            "{GOOD}[action.response]\nevent = \"visit\"\nwindow_days = 3\n"
        ))
        .unwrap_err();
        // The expected names are listed; the file's own value is not echoed (docs/security.md).
        assert!(
            err.contains("unknown variant") && err.contains("purchase_in_category"),
            "{err}"
        );
        assert!(!err.contains("visit"), "{err}");
        for kind in ACTION_KINDS {
            assert!(default_response(kind, true).window_days >= 1);
        }
        assert_eq!(
            default_response("early_access", false).event,
            ResponseEvent::Purchase
        );
    }

    #[test]
    fn learning_settings_are_shares() {
        let c = ActionCatalog::parse(GOOD).unwrap();
        assert_eq!((c.policy.explore, c.policy.control_share), (0.0, 0.0));
        assert_eq!(c.actions[0].holdout, 0.0);
        let with = GOOD.replace(
            "[policy]\n",
            "[policy]\nexplore = 0.1\ncontrol_share = 0.05\n",
        );
        let c = ActionCatalog::parse(&format!("{with}holdout = 0.2\n")).unwrap();
        assert_eq!((c.policy.explore, c.policy.control_share), (0.1, 0.05));
        assert_eq!(c.actions[0].holdout, 0.2);
        let err = ActionCatalog::parse(&GOOD.replace("[policy]\n", "[policy]\nexplore = 1.5\n"))
            .unwrap_err();
        assert!(err.contains("[policy] explore = 1.5"), "{err}");
        let err = ActionCatalog::parse(&format!("{GOOD}holdout = -0.1\n")).unwrap_err();
        assert!(err.contains("`holdout` = -0.1"), "{err}");
    }

    #[test]
    fn rejects_duplicate_ids() {
        let text = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[action]]").unwrap()..]);
        let err = ActionCatalog::parse(&text).unwrap_err();
        assert!(err.contains("action #2"), "{err}");
        assert!(err.contains("duplicate action id"), "{err}");
    }

    #[test]
    fn rejects_missing_required_field() {
        let err = ActionCatalog::parse(
            "[[action]]\nid = \"a\"\nkind = \"custom\"\nchannels = [\"email\"]\n",
        )
        .unwrap_err();
        assert!(err.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn rejects_unknown_channel_and_kind() {
        let err = ActionCatalog::parse(&GOOD.replace("[\"email\"]", "[\"fax\"]")).unwrap_err();
        assert!(err.contains("unknown channel \"fax\""), "{err}");
        let err = ActionCatalog::parse(&GOOD.replace("kind = \"win_back\"", "kind = \"spam\""))
            .unwrap_err();
        assert!(err.contains("unknown `kind`"), "{err}");
    }

    #[test]
    fn rejects_unknown_field_with_position() {
        let err = ActionCatalog::parse(&GOOD.replace("cost = 0.2", "costs = 0.2")).unwrap_err();
        // Where and what was expected, never the file's own text (a server reads catalogs at
        // a client's request).
        assert!(err.contains("line 11, column 1: unknown field"), "{err}");
        assert!(err.contains("expected one of `id`"), "{err}");
        assert!(!err.contains("costs"), "{err}");
    }
}
