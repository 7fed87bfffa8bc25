//! Compiling an `actions.toml` against a model: every check happens here, once, so that
//! ranking only reads precomputed fields.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::{Settings, Tier};
use serde_json::{Map, Value};

use crate::cel::{ActionRecord, Names, Rule, Scope};
use crate::channel::{Channel, PerChannel};
use crate::error::{CatalogError, CatalogErrorKind};
use crate::input::{Context, Customer, Scores};
use crate::kind::Kind;
use crate::payload::toml_table_to_json;
use crate::send_at::QuietHours;
use crate::tuning::Tuning;

/// An action catalog compiled against one model's variables and categories; what
/// [`rank`](crate::rank) ranks. Cheap to share (`Arc<Catalog>`), immutable.
pub struct Catalog {
    pub(crate) actions: Vec<CompiledAction>,
    pub(crate) policy: CompiledPolicy,
    pub(crate) variables: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) category_slugs: Vec<String>,
    pub(crate) tiers: Vec<Tier>,
    pub(crate) currency: String,
    pub(crate) features: FeatureRefs,
    pub(crate) tuning: Tuning,
    pub(crate) env: Arc<cel::Env>,
    /// Action id → index, to attribute contacts to actions.
    pub(crate) by_id: HashMap<String, usize>,
    /// The longest cooldown in days (`None`: no action has one); older contacts block nothing.
    pub(crate) longest_cooldown_days: Option<u32>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CEL environment has no `Debug`; the actions and policy say what matters.
        f.debug_struct("Catalog")
            .field("actions", &self.actions)
            .field("policy", &self.policy)
            .field("variables", &self.variables.len())
            .field("categories", &self.categories)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    pub(crate) caps: PerChannel<Option<u32>>,
    pub(crate) quiet: QuietHours,
    pub(crate) suppression_days: u32,
    /// Share of recorded decisions that explore (`[policy] explore`).
    pub(crate) explore: f64,
    /// Share of customers in the universal control group (`[policy] control_share`).
    pub(crate) control_share: f64,
}

/// Indices of the features the built-in kinds read, when the model has them.
#[derive(Debug, Default)]
pub(crate) struct FeatureRefs {
    pub(crate) carts_30d: Option<usize>,
    pub(crate) views_30d: Option<usize>,
    pub(crate) days_since_last_event: Option<usize>,
    pub(crate) frequency: Option<usize>,
    /// `share_<category>` per category.
    pub(crate) share: Vec<Option<usize>>,
    /// `view_share_<category>` per category.
    pub(crate) view_share: Vec<Option<usize>>,
}

#[derive(Debug)]
pub(crate) struct CompiledAction {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// In the catalog's order, which is the marketer's channel preference.
    pub(crate) channels: Vec<Channel>,
    pub(crate) category: Option<usize>,
    pub(crate) value: f64,
    pub(crate) cost: f64,
    pub(crate) weight: f64,
    pub(crate) cooldown_days: Option<u32>,
    pub(crate) valid_from: Option<NaiveDate>,
    pub(crate) valid_to: Option<NaiveDate>,
    pub(crate) promotional: bool,
    /// What counts as a response (the catalog's, else the kind's default).
    pub(crate) response: lattice_catalog::actions::Response,
    /// Share of customers held out of this action (per-action control group).
    pub(crate) holdout: f64,
    pub(crate) rule: Option<Rule>,
    pub(crate) payload: Map<String, Value>,
    /// The same payload as JSON, `(key, "\"key\":value")` sorted by key, for the writer.
    pub(crate) payload_json: Vec<(String, String)>,
    /// `{"id":…,"name":…,"kind":"…","channel":"`: how a ranked action's JSON starts.
    pub(crate) json_head: String,
    pub(crate) record: ActionRecord,
}

/// The slug a category takes in variable names (`affinity_<slug>`, `share_<slug>`); the same
/// rule as `lattice_features::slug`.
pub fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Catalog {
    /// Compiles `catalog` for a model whose value rows are named by `variables` (features, and
    /// optionally scores) and whose affinity scores follow `categories`, with default
    /// [`Tuning`].
    pub fn compile(
        catalog: &ActionCatalog,
        settings: &Settings,
        variables: &[String],
        categories: &[String],
    ) -> Result<Catalog, CatalogError> {
        Self::compile_with(catalog, settings, variables, categories, Tuning::default())
    }

    /// [`Catalog::compile`] with the built-in kinds' thresholds set by `tuning`.
    pub fn compile_with(
        catalog: &ActionCatalog,
        settings: &Settings,
        variables: &[String],
        categories: &[String],
        tuning: Tuning,
    ) -> Result<Catalog, CatalogError> {
        let policy = compile_policy(catalog)?;
        let category_slugs: Vec<String> = categories.iter().map(|c| slug(c)).collect();
        let position = |name: &str| variables.iter().position(|v| v == name);
        let features = FeatureRefs {
            carts_30d: position("carts_30d"),
            views_30d: position("views_30d"),
            days_since_last_event: position("days_since_last_event"),
            frequency: position("frequency"),
            share: category_slugs
                .iter()
                .map(|s| position(&format!("share_{s}")))
                .collect(),
            view_share: category_slugs
                .iter()
                .map(|s| position(&format!("view_share_{s}")))
                .collect(),
        };
        let env = Arc::new(cel::Env::stdlib());
        let names = Names::new(variables, &category_slugs);
        let trial = Trial::new(variables.len(), categories.len(), &settings.tiers);

        let mut actions = Vec::with_capacity(catalog.actions.len());
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for (i, a) in catalog.actions.iter().enumerate() {
            let id = a.id.as_str();
            let err = |field, kind, msg: String| CatalogError::new(Some(id), field, kind, msg);
            if id.trim().is_empty() {
                return Err(CatalogError::new(
                    None,
                    "id",
                    CatalogErrorKind::InvalidValue,
                    format!("action #{} has an empty id", i + 1),
                ));
            }
            if let Some(j) = by_id.insert(a.id.clone(), i) {
                return Err(err(
                    "id",
                    CatalogErrorKind::DuplicateId,
                    format!("duplicate action id (actions #{} and #{})", j + 1, i + 1),
                ));
            }
            let kind = Kind::parse(&a.kind).ok_or_else(|| {
                err(
                    "kind",
                    CatalogErrorKind::UnknownKind,
                    format!("unknown kind {:?}", a.kind),
                )
            })?;
            let mut channels = Vec::with_capacity(a.channels.len());
            for c in &a.channels {
                let ch = Channel::parse(c).ok_or_else(|| {
                    err(
                        "channels",
                        CatalogErrorKind::UnknownChannel,
                        format!("unknown channel {c:?} (expected email, sms or push)"),
                    )
                })?;
                if !channels.contains(&ch) {
                    channels.push(ch);
                }
            }
            if channels.is_empty() {
                return Err(err(
                    "channels",
                    CatalogErrorKind::InvalidValue,
                    "no channels (expected e.g. [\"email\"])".into(),
                ));
            }
            let category = match &a.category {
                None => None,
                Some(c) => Some(
                    categories
                        .iter()
                        .position(|k| k == c)
                        .or_else(|| category_slugs.iter().position(|k| *k == slug(c)))
                        .ok_or_else(|| {
                            err(
                                "category",
                                CatalogErrorKind::UnknownCategory,
                                format!(
                                    "unknown category {c:?}: the model's categories are {}",
                                    categories.join(", ")
                                ),
                            )
                        })?,
                ),
            };
            for (field, v) in [("value", a.value), ("cost", a.cost), ("weight", a.weight)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(err(
                        field,
                        CatalogErrorKind::InvalidValue,
                        format!("{v} (expected a finite number >= 0)"),
                    ));
                }
            }
            if !(a.holdout.is_finite() && (0.0..=1.0).contains(&a.holdout)) {
                return Err(err(
                    "holdout",
                    CatalogErrorKind::InvalidValue,
                    format!("{} (expected a share between 0 and 1)", a.holdout),
                ));
            }
            if let (Some(from), Some(to)) = (a.valid_from, a.valid_to)
                && to < from
            {
                return Err(err(
                    "valid_to",
                    CatalogErrorKind::InvalidValue,
                    format!("{to} is before valid_from {from}"),
                ));
            }
            if let Some(missing) = kind
                .required_features()
                .iter()
                .find(|f| position(f).is_none())
            {
                return Err(err(
                    "kind",
                    CatalogErrorKind::MissingFeature,
                    format!(
                        "kind {kind} needs the feature `{missing}`, which this model does not \
                         provide (use kind \"custom\" with an `eligible` expression instead)"
                    ),
                ));
            }
            let record = ActionRecord {
                id: a.id.clone(),
                name: a.name.clone(),
                kind: kind.as_str(),
                category: category.map(|c| categories[c].clone()),
                value: a.value,
                cost: a.cost,
                weight: a.weight,
            };
            let rule = match &a.eligible {
                None => None,
                Some(src) => {
                    let rule = Rule::compile(&env, &names, id, src)?;
                    trial.check(&env, &rule, &record)?;
                    Some(rule)
                }
            };
            let payload = a
                .payload
                .as_ref()
                .map(toml_table_to_json)
                .unwrap_or_default();
            let payload_json = payload_entries(&payload);
            let json_head = format!(
                "{{\"id\":{},\"name\":{},\"kind\":\"{}\",\"channel\":\"",
                json_string(&a.id),
                json_string(&a.name),
                kind.as_str()
            );
            actions.push(CompiledAction {
                id: a.id.clone(),
                name: a.name.clone(),
                kind,
                channels,
                category,
                value: a.value,
                cost: a.cost,
                weight: a.weight,
                cooldown_days: a.cooldown_days,
                valid_from: a.valid_from,
                valid_to: a.valid_to,
                promotional: a
                    .promotional
                    .unwrap_or_else(|| kind.promotional_by_default()),
                response: a.response_rule(),
                holdout: a.holdout,
                rule,
                payload,
                payload_json,
                json_head,
                record,
            });
        }
        let longest_cooldown_days = actions.iter().filter_map(|a| a.cooldown_days).max();
        Ok(Catalog {
            actions,
            policy,
            variables: variables.to_vec(),
            categories: categories.to_vec(),
            category_slugs,
            tiers: settings.tiers.clone(),
            currency: settings.currency.clone(),
            features,
            tuning,
            env,
            by_id,
            longest_cooldown_days,
        })
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Action ids, in catalog order.
    pub fn action_ids(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|a| a.id.as_str())
    }

    /// Share of recorded decisions that explore by Thompson sampling (`[policy] explore`).
    pub fn explore(&self) -> f64 {
        self.policy.explore
    }

    /// Share of customers in the universal control group (`[policy] control_share`).
    pub fn control_share(&self) -> f64 {
        self.policy.control_share
    }

    /// Ids of the promotional actions (suppressed after a negative moment), in catalog order.
    pub fn promotional_ids(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|a| a.promotional)
            .map(|a| a.id.as_str())
            .collect()
    }

    /// The variable names `Customer::values` must follow.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The category order `Scores::affinity` must follow.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }
}

/// A string as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A payload's entries written once as JSON (`"key":value`), sorted by key, which is the order
/// a JSON object map keeps and the order the writer merges the personalisation in.
fn payload_entries(payload: &Map<String, Value>) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = payload
        .iter()
        .map(|(k, v)| {
            let value = serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned());
            (k.clone(), format!("{}:{value}", json_string(k)))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn compile_policy(catalog: &ActionCatalog) -> Result<CompiledPolicy, CatalogError> {
    let p = &catalog.policy;
    let bad = |msg: String| CatalogError::new(None, "policy", CatalogErrorKind::InvalidValue, msg);
    let mut caps = PerChannel::<Option<u32>>::default();
    for (name, max) in &p.max_contacts_per_7d {
        let ch = Channel::parse(name).ok_or_else(|| {
            CatalogError::new(
                None,
                "policy",
                CatalogErrorKind::UnknownChannel,
                format!(
                    "max_contacts_per_7d: unknown channel {name:?} (expected email, sms or push)"
                ),
            )
        })?;
        *caps.get_mut(ch) = Some(*max);
    }
    for (field, v) in [("explore", p.explore), ("control_share", p.control_share)] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(bad(format!(
                "{field} = {v} (expected a share between 0 and 1)"
            )));
        }
    }
    if p.quiet_hours_start > 23 || p.quiet_hours_end > 23 {
        return Err(bad(format!(
            "quiet hours {}-{}: expected hours 0-23",
            p.quiet_hours_start, p.quiet_hours_end
        )));
    }
    Ok(CompiledPolicy {
        caps,
        quiet: QuietHours {
            start: u32::from(p.quiet_hours_start),
            end: u32::from(p.quiet_hours_end),
        },
        suppression_days: p.suppression_days,
        explore: p.explore,
        control_share: p.control_share,
    })
}

/// Neutral inputs for the compile-time trial evaluation of each rule: zeros everywhere,
/// every context field present.
struct Trial {
    values: Vec<f64>,
    affinity: Vec<f64>,
    tier: String,
}

impl Trial {
    fn new(n_values: usize, n_categories: usize, tiers: &[Tier]) -> Trial {
        Trial {
            values: vec![0.0; n_values],
            affinity: vec![0.0; n_categories],
            tier: tiers
                .first()
                .map_or_else(|| "member".to_owned(), |t| t.name.clone()),
        }
    }

    fn customer(&self) -> Customer<'_> {
        Customer {
            id: "trial",
            values: &self.values,
            scores: Scores {
                affinity: &self.affinity,
                ..Scores::default()
            },
            ..Customer::default()
        }
    }

    fn context() -> Context<'static> {
        Context {
            now: Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
            channel: Some(Channel::Email),
            category: Some("trial"),
            page: Some("trial"),
            store: Some("trial"),
        }
    }

    /// Checks `rule` against the neutral inputs.
    fn check(
        &self,
        env: &Arc<cel::Env>,
        rule: &Rule,
        record: &ActionRecord,
    ) -> Result<(), CatalogError> {
        let customer = self.customer();
        let context = Trial::context();
        let scope = Scope {
            customer: &customer,
            context: &context,
            tier: Some(&self.tier),
            action: record,
        };
        rule.trial(env, &scope, &record.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Catalog>();
        shared::<crate::Decision>();
    }

    #[test]
    fn slugs_match_feature_names() {
        assert_eq!(slug("Women's Shoes"), "women_s_shoes");
        assert_eq!(slug("home"), "home");
    }
}
