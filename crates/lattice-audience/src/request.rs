//! An audience request, as JSON (`POST /v1/audiences`) and as `lattice audience` flags, and
//! its validation into a [`Plan`]: every mistake is a [`FieldError`] naming the field.

use chrono::{DateTime, Timelike, Utc};
use lattice_decide::{Catalog, Channel};
use lattice_models::snapshot::CONTACT_DAYS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::holdout::audience_hash;
use crate::index::{AudienceIndex, DAY_US};

/// Who the audience is for: exactly one of `category`, `action` or `churn`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Customers most likely to buy in this category within the model's affinity window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Customers eligible for this action of the catalog (every rule of next-best-action
    /// ranking: consent, caps, cooldown, suppression, the kind's rule and `eligible`), most
    /// likely to respond first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `true`: customers most likely to churn (a win-back audience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<bool>,
}

/// How many: exactly one of `top`, `min_probability` or `budget`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    /// The N best customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<usize>,
    /// Every customer whose (recalibrated) probability is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_probability: Option<f64>,
    /// As many of the best customers as the budget pays for at `cost_per_contact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
    /// Cost of one contact, with `budget` (default: the action's `cost` for an action target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_contact: Option<f64>,
}

/// Who may be in the audience. Every filter is optional; days count back from the model's
/// as_of (the moment its snapshot describes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Loyalty tiers to keep (names from the programme settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<String>>,
    /// Keep customers with marketing consent on this channel: email, sms or push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_churn_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_churn_probability: Option<f64>,
    /// Keep customers whose CLV (expected spend over the next 365 days) is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_clv: Option<f64>,
    /// Keep customers whose last purchase is at most this many days before as_of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purchase_within_days: Option<u32>,
    /// Keep customers whose last purchase is more than this many days before as_of
    /// (customers who never bought are left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purchase_older_than_days: Option<u32>,
    /// Leave out customers contacted (any action, any channel) in the last N days (at most
    /// 90: the snapshot keeps 90 days of contacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_contacted_within_days: Option<u32>,
}

/// A random control group reserved for measuring incremental lift.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldoutSpec {
    /// Share of the qualifying customers held out, in [0, 1).
    pub share: f64,
    /// Also list the held-out customers (flagged `holdout`), for measuring later.
    #[serde(default)]
    pub include: bool,
}

/// `POST /v1/audiences`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceRequest {
    /// Names the audience and seeds its holdout split: letters, digits, `.`, `_`, `-`, at most
    /// 100. Default: derived from the request, so the same request splits the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_id: Option<String>,
    #[serde(default)]
    pub target: TargetSpec,
    #[serde(default)]
    pub size: SizeSpec,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutSpec>,
    /// When the campaign starts (RFC 3339; default: now). Recorded on every row; `lattice
    /// uplift` counts conversions from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<DateTime<Utc>>,
    /// List only the first N customers (the summary still describes the whole audience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<usize>,
}

/// A request that names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct FieldError {
    /// Dotted path in the JSON request, e.g. `size.top` or `filters.tiers`.
    pub field: String,
    pub detail: String,
}

fn bad(field: &str, detail: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        detail: detail.into(),
    }
}

/// What the audience ranks by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Index into the model's categories.
    Category(usize),
    /// Index into the catalog's actions; the category whose recalibration and lift apply.
    Action {
        index: usize,
        affinity_category: Option<usize>,
    },
    Churn,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Top(usize),
    MinProbability(f64),
    /// The number of contacts the budget pays for, with the budget and cost behind it.
    Budget {
        n: usize,
        budget: f64,
        cost: f64,
    },
}

/// The filters, resolved against the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedFilters {
    /// Per tier code: kept?
    pub tiers: Option<Vec<bool>>,
    pub channel: Option<Channel>,
    pub min_churn: Option<f64>,
    pub max_churn: Option<f64>,
    pub min_clv: Option<f64>,
    pub purchased_within_days: Option<f64>,
    pub purchase_older_than_days: Option<f64>,
    /// Contacts after this instant exclude the customer.
    pub contacted_after_us: Option<i64>,
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub audience_id: String,
    pub audience_hash: u64,
    pub target: Target,
    pub size: Size,
    pub filters: ResolvedFilters,
    pub holdout_share: f64,
    pub include_holdout: bool,
    pub starts_at: DateTime<Utc>,
    pub preview: Option<usize>,
    /// The request as given (for the summary).
    pub request: AudienceRequest,
}

fn probability(field: &str, v: Option<f64>) -> Result<Option<f64>, FieldError> {
    match v {
        Some(p) if !(0.0..=1.0).contains(&p) => Err(bad(
            field,
            format!("{p} is not a probability (expected 0 to 1)"),
        )),
        other => Ok(other),
    }
}

fn finite(field: &str, v: Option<f64>) -> Result<Option<f64>, FieldError> {
    match v {
        Some(x) if !x.is_finite() => Err(bad(field, "expected a finite number")),
        other => Ok(other),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl AudienceRequest {
    /// Checks the request against the model (`index`, `catalog`); `now` is the default start.
    pub fn plan(
        &self,
        index: &AudienceIndex,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Result<Plan, FieldError> {
        let target = self.resolve_target(index, catalog)?;
        let size = self.resolve_size(catalog, target)?;
        let filters = self.resolve_filters(index, catalog, target)?;
        let (holdout_share, include_holdout) = match &self.holdout {
            None => (0.0, false),
            Some(h) => {
                if !(0.0..1.0).contains(&h.share) {
                    return Err(bad(
                        "holdout.share",
                        format!("{} is outside [0, 1) (e.g. 0.1 holds out 10%)", h.share),
                    ));
                }
                (h.share, h.include)
            }
        };
        let audience_id = match &self.audience_id {
            Some(id) if !valid_id(id) => {
                return Err(bad(
                    "audience_id",
                    format!(
                        "{id:?}: use 1 to 100 letters, digits, '.', '_' or '-' (it names files \
                         and seeds the holdout split)"
                    ),
                ));
            }
            Some(id) => id.clone(),
            None => self.derived_id(),
        };
        Ok(Plan {
            audience_hash: audience_hash(&audience_id),
            audience_id,
            target,
            size,
            filters,
            holdout_share,
            include_holdout,
            // Whole seconds: every format writes the same instant.
            starts_at: self
                .starts_at
                .unwrap_or(now)
                .with_nanosecond(0)
                .unwrap_or(now),
            preview: self.preview,
            request: self.clone(),
        })
    }

    /// `aud-` and 16 hex digits of the SHA-256 of what defines the audience (target, size,
    /// filters, holdout share): the same request gets the same id and the same split.
    fn derived_id(&self) -> String {
        let defining = serde_json::json!({
            "target": self.target,
            "size": self.size,
            "filters": self.filters,
            "holdout_share": self.holdout.as_ref().map(|h| h.share),
        });
        let digest = Sha256::digest(defining.to_string().as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("aud-{hex}")
    }

    fn resolve_target(
        &self,
        index: &AudienceIndex,
        catalog: &Catalog,
    ) -> Result<Target, FieldError> {
        let t = &self.target;
        let given = usize::from(t.category.is_some())
            + usize::from(t.action.is_some())
            + usize::from(t.churn.is_some());
        if given != 1 {
            return Err(bad(
                "target",
                format!(
                    "give exactly one of target.category, target.action or target.churn (got \
                     {given})"
                ),
            ));
        }
        if let Some(c) = &t.category {
            let slug = lattice_decide::slug(c);
            return index
                .categories
                .iter()
                .position(|k| k == c)
                .or_else(|| index.slugs.iter().position(|s| *s == slug))
                .map(Target::Category)
                .ok_or_else(|| {
                    bad(
                        "target.category",
                        format!(
                            "unknown category {c:?}; the model's categories are {}",
                            index.categories.join(", ")
                        ),
                    )
                });
        }
        if let Some(a) = &t.action {
            let info = catalog.action(a).ok_or_else(|| {
                let ids: Vec<&str> = catalog.action_ids().collect();
                bad(
                    "target.action",
                    format!(
                        "unknown action {a:?}; the catalog's actions are {}",
                        if ids.is_empty() {
                            "(none)".to_string()
                        } else {
                            ids.join(", ")
                        }
                    ),
                )
            })?;
            return Ok(Target::Action {
                index: info.index,
                affinity_category: info.affinity_category(),
            });
        }
        match t.churn {
            Some(true) => Ok(Target::Churn),
            _ => Err(bad(
                "target.churn",
                "churn must be true (a win-back audience) when given",
            )),
        }
    }

    fn resolve_size(&self, catalog: &Catalog, target: Target) -> Result<Size, FieldError> {
        let s = &self.size;
        let given = usize::from(s.top.is_some())
            + usize::from(s.min_probability.is_some())
            + usize::from(s.budget.is_some());
        if given != 1 {
            return Err(bad(
                "size",
                format!(
                    "give exactly one of size.top, size.min_probability or size.budget (got \
                     {given})"
                ),
            ));
        }
        if s.cost_per_contact.is_some() && s.budget.is_none() {
            return Err(bad(
                "size.cost_per_contact",
                "cost_per_contact goes with size.budget",
            ));
        }
        if let Some(n) = s.top {
            if n == 0 {
                return Err(bad("size.top", "top must be at least 1"));
            }
            return Ok(Size::Top(n));
        }
        if let Some(p) = s.min_probability {
            return Ok(Size::MinProbability(
                probability("size.min_probability", Some(p))?.unwrap_or(0.0),
            ));
        }
        let budget = finite("size.budget", s.budget)?.unwrap_or(0.0);
        if budget < 0.0 {
            return Err(bad(
                "size.budget",
                format!("{budget} is negative (expected an amount >= 0)"),
            ));
        }
        let action_cost = match target {
            Target::Action { index, .. } => catalog.actions().nth(index).map(|a| a.cost),
            _ => None,
        };
        let cost = match finite("size.cost_per_contact", s.cost_per_contact)? {
            Some(c) => c,
            None => action_cost.ok_or_else(|| {
                bad(
                    "size.cost_per_contact",
                    "a budget needs a cost per contact (only an action target has a default: \
                     its cost)",
                )
            })?,
        };
        if cost <= 0.0 {
            return Err(bad(
                "size.cost_per_contact",
                format!("{cost}: the cost per contact must be above 0 to divide a budget"),
            ));
        }
        let n = (budget / cost + 1e-9).floor();
        Ok(Size::Budget {
            n: if n >= usize::MAX as f64 {
                usize::MAX
            } else {
                n as usize
            },
            budget,
            cost,
        })
    }

    fn resolve_filters(
        &self,
        index: &AudienceIndex,
        catalog: &Catalog,
        target: Target,
    ) -> Result<ResolvedFilters, FieldError> {
        let f = &self.filters;
        let tiers = match &f.tiers {
            None => None,
            Some(names) => {
                let mut keep = vec![false; index.tier_names.len()];
                for (k, name) in names.iter().enumerate() {
                    let pos = index
                        .tier_names
                        .iter()
                        .position(|t| t == name)
                        .or_else(|| {
                            index
                                .tier_names
                                .iter()
                                .position(|t| t.eq_ignore_ascii_case(name))
                        })
                        .ok_or_else(|| {
                            bad(
                                &format!("filters.tiers[{k}]"),
                                format!(
                                    "unknown tier {name:?}; the tiers are {}",
                                    index.tier_names.join(", ")
                                ),
                            )
                        })?;
                    keep[pos] = true;
                }
                Some(keep)
            }
        };
        let channel = match &f.channel {
            None => None,
            Some(c) => Some(Channel::parse(c).ok_or_else(|| {
                bad(
                    "filters.channel",
                    format!("unknown channel {c:?} (expected email, sms or push)"),
                )
            })?),
        };
        if let (Some(ch), Target::Action { index: a, .. }) = (channel, target)
            && let Some(info) = catalog.actions().nth(a)
            && !info.channels.contains(&ch)
        {
            let list: Vec<&str> = info.channels.iter().map(|c| c.as_str()).collect();
            return Err(bad(
                "filters.channel",
                format!(
                    "action {:?} is not sent on {ch} (its channels: {})",
                    info.id,
                    list.join(", ")
                ),
            ));
        }
        let min_churn = probability("filters.min_churn_probability", f.min_churn_probability)?;
        let max_churn = probability("filters.max_churn_probability", f.max_churn_probability)?;
        if let (Some(lo), Some(hi)) = (min_churn, max_churn)
            && lo > hi
        {
            return Err(bad(
                "filters.max_churn_probability",
                format!("{hi} is below min_churn_probability {lo}"),
            ));
        }
        let within = f.last_purchase_within_days.map(f64::from);
        let older = f.last_purchase_older_than_days.map(f64::from);
        if let (Some(w), Some(o)) = (within, older)
            && o >= w
        {
            return Err(bad(
                "filters.last_purchase_older_than_days",
                format!(
                    "a last purchase older than {o} days and within {w} days: no customer can \
                     match"
                ),
            ));
        }
        let contacted_after_us = match f.exclude_contacted_within_days {
            None => None,
            Some(d) if i64::from(d) > CONTACT_DAYS => {
                return Err(bad(
                    "filters.exclude_contacted_within_days",
                    format!(
                        "{d} days: the snapshot keeps {CONTACT_DAYS} days of contacts, so at \
                         most {CONTACT_DAYS}"
                    ),
                ));
            }
            Some(d) => Some(index.as_of_us - i64::from(d) * DAY_US),
        };
        Ok(ResolvedFilters {
            tiers,
            channel,
            min_churn,
            max_churn,
            min_clv: finite("filters.min_clv", f.min_clv)?,
            purchased_within_days: within,
            purchase_older_than_days: older,
            contacted_after_us,
        })
    }
}
