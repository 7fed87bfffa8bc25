//! Request and response bodies, as JSON and as OpenAPI schemas. Decision bodies are produced by
//! `lattice-decide` (which has no HTTP or schema dependency); the `*Doc` types here describe
//! them for `/openapi.json` and a test checks that the two agree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A category and the probability of a purchase in it within the affinity window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Affinity {
    pub category: String,
    pub probability: f64,
}

/// What the models say about one customer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoresResponse {
    pub customer_id: String,
    /// P(no purchase within the model's horizon), calibrated.
    pub churn_probability: f64,
    pub horizon_days: i64,
    /// BG/NBD probability that the customer is still active.
    pub p_alive: f64,
    /// Expected purchases within the horizon.
    pub expected_purchases: f64,
    /// Expected spend over the next 365 days.
    pub clv: f64,
    /// Best first, at most 3.
    pub top_affinities: Vec<Affinity>,
    pub tier: Option<String>,
    pub points_balance: Option<f64>,
    /// Groups of features (e.g. `purchase_recency`, `service_experience`) raising the churn
    /// probability above the typical customer's the most, strongest first.
    pub churn_reasons: Vec<String>,
    /// `snapshot` (as of the model's data) or `inline` (features given in the request).
    pub source: &'static str,
}

/// `?limit=&channel=&explain=&record=`, read by hand (`crate::extract`: the hottest route).
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// At most this many actions (1–100, default 5).
    pub limit: Option<usize>,
    /// Only actions sent on this channel: email, sms or push.
    pub channel: Option<String>,
    /// Also list excluded actions with the rule that excluded each.
    pub explain: Option<bool>,
    /// Record the answer in the decision log; the answer then carries a `decision_id`.
    pub record: Option<bool>,
}

/// The moment of an in-the-moment decision.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionContext {
    /// Decision time (RFC 3339); default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub now: Option<DateTime<Utc>>,
    /// The channel the customer is on now: email, sms or push.
    pub channel: Option<String>,
    /// The category being viewed (visible in CEL as `context.category`).
    pub category: Option<String>,
    pub page: Option<String>,
    pub store: Option<String>,
}

/// `POST /v1/customers/{id}/next-best-actions`
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionsRequest {
    #[serde(default)]
    pub context: DecisionContext,
    pub limit: Option<usize>,
    pub channel: Option<String>,
    pub explain: Option<bool>,
    /// Record the answer in the decision log; the answer then carries a `decision_id`.
    pub record: Option<bool>,
}

/// One ranked action (as produced by `lattice_decide::RankedAction`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankedActionDoc {
    pub id: String,
    pub name: String,
    /// Built-in micro-moment kind, e.g. win_back, early_access, service_recovery.
    pub kind: String,
    /// email, sms or push.
    pub channel: String,
    /// Probability the customer responds.
    pub propensity: f64,
    /// propensity × value.
    pub expected_value: f64,
    /// propensity × value × weight − cost.
    pub score: f64,
    /// Personalisation for the message.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When to send: RFC 3339 in the customer's local offset, outside quiet hours.
    pub send_at: String,
    pub reasons: Vec<String>,
}

/// An action left out, and the rule that excluded it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExclusionDoc {
    pub id: String,
    /// outside_validity, channel_filtered, no_consent, frequency_cap, cooldown,
    /// suppressed_after_negative, not_eligible, eligibility_error or control_group.
    pub rule: String,
    pub detail: String,
}

/// Ranked next-best actions (as produced by `lattice_decide::Decision`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionDoc {
    /// With `record=true`: the id under which the decision log keeps this answer; send it back
    /// on the `contact` and `redemption` events that follow (`decision_id`).
    pub decision_id: Option<String>,
    pub customer_id: String,
    /// Best first.
    pub actions: Vec<RankedActionDoc>,
    /// With `explain=true`.
    pub excluded: Option<Vec<ExclusionDoc>>,
}

/// `?channel=`
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SendTimeQuery {
    /// email, sms or push; default: all activity.
    pub channel: Option<String>,
}

/// A slot of the week in the customer's local time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeekSlot {
    /// 0 = Monday 00:00 local.
    pub hour_of_week: u8,
    /// monday … sunday.
    pub day: &'static str,
    pub hour: u8,
    /// Probability that the customer's next engagement falls in this hour.
    pub probability: f64,
    /// The customer's own engagements in this slot.
    pub observations: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DaySlot {
    pub hour: u8,
    pub probability: f64,
}

/// Best send times on one channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SendTimeResponse {
    pub customer_id: String,
    /// email, sms, push, or any (all activity).
    pub channel: String,
    /// IANA time zone the hours are in.
    pub timezone: String,
    /// Where the profile comes from: channel, all_activity or population.
    pub source: String,
    /// The customer's engagements behind the profile.
    pub observations: u32,
    /// Best three hours of the week, best first.
    pub hours_of_week: Vec<WeekSlot>,
    /// Best three hours of the day, best first.
    pub hours_of_day: Vec<DaySlot>,
    /// Probability mass of the top three hours of the week: a confidence.
    pub confidence: f64,
    /// The next best slot outside the catalog's quiet hours (RFC 3339, local offset).
    pub send_at: String,
}

/// A customer not in the snapshot, with feature values as of the model's as_of.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineCustomer {
    pub customer_id: String,
    /// Every model feature except the `bgnbd_*` ones, which are computed (see `GET /v1/models`
    /// for the names).
    pub features: BTreeMap<String, f64>,
}

/// `POST /v1/score`: ids from the snapshot and/or inline feature records, 10,000 at most.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[serde(default)]
    pub customer_ids: Vec<String>,
    #[serde(default)]
    pub customers: Vec<InlineCustomer>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResponse {
    pub model: String,
    pub scores: Vec<ScoresResponse>,
    /// Requested ids that are not in the snapshot.
    pub not_found: Vec<String>,
}

/// The model being served.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub lattice_version: String,
    pub as_of: String,
    pub created_at: String,
    pub horizon_days: i64,
    pub customers: usize,
    pub categories: Vec<String>,
    /// Model feature names, in order.
    pub features: Vec<String>,
    /// Names an `eligible` expression may use: features, scores and customer attributes.
    pub variables: Vec<String>,
    pub actions: usize,
    /// Headline backtest metrics.
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelsResponse {
    pub models: Vec<ModelInfo>,
}

/// `POST /v1/admin/reload`: a new model directory (default: the one being served).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    pub model: Option<String>,
    /// An action catalog overriding the model directory's own.
    pub actions: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadResponse {
    pub reloaded: bool,
    pub model: ModelInfo,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub model: Option<String>,
}

/// What `POST /v1/events` did with an accepted batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsAccepted {
    /// Events stored now (committed to disk before this answer).
    pub stored: usize,
    /// Events skipped: their `event_id` was already stored with the same content (a retried
    /// batch). An id reused with other content is a conflict (409), never a duplicate.
    pub duplicates: usize,
    /// Stored events that changed online state (later than the model's as_of).
    pub applied: usize,
    /// Stored events at or before the model's as_of: kept for retraining, not applied.
    pub before_as_of: usize,
    /// Customers the snapshot did not know, now known from these events.
    pub new_customers: usize,
    /// Stored events not applied because online state holds its most customers
    /// (`--max-online-customers`): their customers are answered from the snapshot (or cold
    /// start) until the next retrain.
    pub dropped: usize,
}

/// One problem with one posted event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventErrorDoc {
    /// Position of the event in the batch (0-based).
    pub index: usize,
    pub field: String,
    /// The `lattice validate` rule, e.g. bad-timestamp, sentiment-range, null-customer-id.
    pub rule: String,
    pub message: String,
}

/// A refused batch (422): the first 100 problems (bad event and field) and how many there
/// are in all. Nothing of the batch was stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<EventErrorDoc>,
    /// Every problem found; `errors` lists at most the first 100.
    pub errors_total: usize,
}

/// An event whose `event_id` is already stored (or repeated in the batch) with other content.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConflictDoc {
    /// Position of the event in the batch (0-based).
    pub index: usize,
    pub event_id: String,
}

/// A refused batch (409): event ids reused with different content. Nothing of the batch was
/// stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsConflict {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub conflicts: Vec<ConflictDoc>,
}

/// `?at=`
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeaturesQuery {
    /// Evaluate the features at this instant (RFC 3339; not before the customer's latest
    /// event or the model's as_of). Default: the instant the served values were computed at.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<DateTime<Utc>>,
}

/// A customer's feature vector as the models see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeaturesResponse {
    pub customer_id: String,
    /// When the features are evaluated.
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `snapshot` (the model's as_of) or `online` (events since then applied).
    pub source: &'static str,
    /// By name, in the model's order.
    pub features: BTreeMap<String, f64>,
    /// Features online events keep equal to what training would compute; the others (windowed
    /// counts and what is built on them) move with events but are refreshed by retraining.
    pub exact: Vec<String>,
}

/// A recorded next-best-actions answer and what followed it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionRecordDoc {
    pub decision_id: String,
    pub customer_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: DateTime<Utc>,
    /// `name@as_of` of the model that decided.
    pub model: String,
    /// The probability with which the first action was chosen: 1 without exploration, else
    /// explore × P(Thompson picks it) + (1 − explore) × [greedy picks it], P integrated
    /// numerically (docs/learning.md); absent for decisions recorded before learning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    pub actions: Vec<DecidedActionDoc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecidedActionDoc {
    pub rank: u32,
    pub action_id: String,
    pub channel: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub send_at: Option<DateTime<Utc>>,
    pub score: f64,
    /// The first `contact` event of this customer and action after the decision.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub contacted_at: Option<DateTime<Utc>>,
    /// The first `redemption` event of this customer and action after the decision.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// One event of `POST /v1/events`: the data contract's events columns (docs/data-contract.md),
/// checked with the rules of `lattice validate`.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct EventDoc {
    /// A non-empty string or an integer.
    pub customer_id: String,
    /// RFC 3339 (`2026-11-25T10:00:00Z`), `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` (UTC); at most
    /// 24 hours after the server's clock.
    pub ts: String,
    /// purchase, return, view, cart, email_open, email_click, sms_click, push_open, app_open,
    /// support, review, contact, redemption, unsubscribe (other types are stored, not used).
    pub event_type: String,
    /// email, sms or push for contact, unsubscribe (required) and engagement events.
    pub channel: Option<String>,
    pub category: Option<String>,
    pub amount: Option<f64>,
    /// Not negative on a purchase.
    pub quantity: Option<f64>,
    pub order_id: Option<String>,
    /// In [-1, 1]; at or below -0.3 on a support ticket or review is a negative moment.
    pub sentiment: Option<f64>,
    /// The action a contact or redemption is about.
    pub action_id: Option<String>,
    /// Makes a retry a no-op: an event whose id is already stored is skipped.
    pub event_id: Option<String>,
    /// The `decision_id` of the recorded answer this contact or redemption follows.
    pub decision_id: Option<String>,
}

/// What counts as a response to an action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseRuleDoc {
    /// purchase, purchase_in_category, redemption, click or app_open.
    pub event: String,
    pub window_days: u32,
}

/// One action × segment cell: closed decisions, responses, the learned response rate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CellDoc {
    /// `tier/churn band`, e.g. `gold/high` (`none` without a tier).
    pub segment: String,
    /// Decisions whose window has closed.
    pub decisions: u64,
    pub responses: u64,
    /// The centre of the prior: the mean static propensity (model's or kind's) of those decisions.
    pub prior: f64,
    /// The posterior mean (the propensity ranking serves) and its 95% interval.
    pub rate: f64,
    pub rate_low: f64,
    pub rate_high: f64,
}

/// One action's learned performance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionPerformanceDoc {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Held out of control groups (and suppressed after a negative moment).
    pub promotional: bool,
    /// Its own holdout share, on top of the universal control.
    pub holdout: f64,
    pub response: ResponseRuleDoc,
    /// All segments together.
    pub decisions: u64,
    pub responses: u64,
    /// responses / decisions, with a 95% interval (Beta(1 + responses, 1 + non-responses)).
    pub response_rate: Option<f64>,
    pub response_rate_low: Option<f64>,
    pub response_rate_high: Option<f64>,
    /// Value per decision: response rate × value − cost.
    pub value_per_decision: Option<f64>,
    /// The control arm: recorded decisions whose customer was held out of this action when
    /// it would have been chosen (greedily), and how many of them responded anyway.
    pub control_decisions: u64,
    pub control_responses: u64,
    /// Response rate minus the control arm's, with a 95% interval (both arms needed).
    pub lift: Option<f64>,
    pub lift_low: Option<f64>,
    pub lift_high: Option<f64>,
    /// Cells with at least one closed decision.
    pub segments: Vec<CellDoc>,
}

/// `?arm=`
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PerformanceQuery {
    /// champion (default) or challenger.
    pub arm: Option<String>,
}

/// `GET /v1/actions/performance`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PerformanceDoc {
    /// Whose decisions: `champion`, or `challenger` (also after its promotion).
    pub arm: String,
    /// Share of recorded decisions that explore (`[policy] explore`).
    pub explore: f64,
    /// Share of customers in the universal control group (`[policy] control_share`).
    pub control_share: f64,
    /// Recorded decisions whose response window is still open.
    pub open_decisions: usize,
    pub actions: Vec<ActionPerformanceDoc>,
}
