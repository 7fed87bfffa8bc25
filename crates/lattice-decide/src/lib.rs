//! Lattice decisioning: which action to take next for a customer, on which channel, and when.
//! No I/O: the server hands in a compiled [`Catalog`], a [`Customer`] and a [`Context`], and
//! gets a serialisable [`Decision`] back.
//!
//! # Compiling a catalog
//!
//! [`Catalog::compile`] checks an `actions.toml` (parsed by `lattice_catalog`) against the model
//! being served: the names of its value row (`variables`, the features and optionally the
//! scores) and its categories. It rejects, naming the action and field:
//! duplicate ids, unknown kinds, channels and categories, bad numbers, a kind whose built-in rule
//! needs a feature the model lacks, and `eligible` expressions that do not parse, use an unknown
//! identifier, function or `context`/`action` field, or are not boolean (with the line and column
//! inside the expression). Everything ranking needs is precomputed: each expression binds only the
//! names it uses to where their values live.
//!
//! # What an expression sees
//!
//! * every name in `variables` (read from [`Customer::values`]);
//! * the scores `churn_probability`, `p_alive`, `expected_purchases`, `clv` and
//!   `affinity_<category slug>` (from [`Scores`], unless `variables` names them too);
//! * `tier` (a string, `null` without one);
//! * `context.channel`, `context.category`, `context.page`, `context.store`: an absent value is
//!   absent, so test it with `has(context.category)`; reading it without makes the expression
//!   fail, which excludes the action as `eligibility_error`;
//! * `action.id`, `action.name`, `action.kind`, `action.category` (absent when none),
//!   `action.value`, `action.cost`, `action.weight`;
//! * the CEL standard library (`size`, `startsWith`, `matches`, `exists`, `has`, ...).
//!
//! Numbers are doubles: `recency_days > 30` and `orders_90d == 0` work as written.
//!
//! Expressions made of comparisons, `has(...)`, `&&`, `||` and `!` (most rules) are compiled to a
//! native plan and run without the interpreter; other parts (function calls, comprehensions,
//! arithmetic) are interpreted by the `cel` crate. The semantics are the same, errors included
//! (a unit test checks the two against each other on random expressions).
//!
//! # Eligibility
//!
//! Every built-in kind has a rule (below). An explicit `eligible` expression is **ANDed** with
//! it: it narrows a kind, never widens it, so a `birthday` action can only go out in the birth
//! month however its expression is written. For full control use kind `custom`, whose only rule
//! is its expression (always eligible without one). Thresholds live in [`Tuning`].
//!
//! | kind | eligible when | propensity | payload |
//! |---|---|---|---|
//! | `early_access` | its category (else the customer's strongest) is in their top 3 by affinity, affinity ≥ 0.02 | affinity | `category` |
//! | `insider_preview` | as early access, and the tier is in the upper half of the ladder | affinity | `category`, `tier` |
//! | `discovery` | as early access, and (with a category) under 20% of their purchases are in it | affinity | `category`, `top_categories` |
//! | `progress_nudge` | the spend still needed for the next tier is ≤ 25% of the gap between tiers | p_alive × progress | `tier`, `next_tier`, `amount_to_go`, `currency`, `reward` |
//! | `surprise_delight` | CLV ≥ 300, no purchase for 60+ days, p_alive ≥ 0.5 (a silent advocate) | 0.5 × p_alive | `suggested_points`, `days_since_purchase` |
//! | `tier_experience` | a tier above the entry tier | 0.3 × p_alive | `tier`, `tier_reward`, `next_tier` |
//! | `cart_reminder` | a cart or 2+ views in 30 days, active in the last 7 days; sent on another channel than the one the customer is on | min(0.6, 0.15 × carts + 0.03 × views) | `category` (viewed), `carts_30d`, `views_30d` |
//! | `post_purchase` | a purchase in the last 14 days (a check-in, not a sale) | 0.4 × p_alive | `message`, `days_since_purchase`, `favourite_category` |
//! | `win_back` | last purchase 30+ days ago, churn ≥ 0.6, p_alive ≥ 0.05 | churn × p_alive | `days_since_purchase`, `favourite_category` |
//! | `points_expiry` | a points balance and churn ≥ 0.5 | churn × p_alive | `points_balance` |
//! | `birthday` | the birth month (customer's local date) | 0.5 × p_alive | `reward_points` (100 × tier step), `tier`, `favourite_category` |
//! | `gratitude` | within 7 days after a signup anniversary (1+ years) | 0.3 × p_alive | `years`, `orders`, `favourite_category` |
//! | `service_recovery` | a negative moment within `suppression_days` | 0.6 | `days_since_negative` |
//! | `custom` | its expression | its category's affinity, else 0.1 × p_alive | `category` |
//!
//! Scores are clamped to [0, 1] (NaN reads as 0). The action's own `payload` is merged over the
//! personalisation: on a shared key the catalog wins. The favourite category is the one with the
//! largest purchase share (`share_<slug>`), else the strongest affinity.
//!
//! # Rules, in order
//!
//! Each action is screened by these rules; the first one it fails excludes it, and with
//! `explain` the [`Decision`] lists it with that rule ([`ExclusionRule`]) and a detail:
//!
//! 1. `outside_validity`: the customer's local date is outside `valid_from..=valid_to`;
//! 2. `channel_filtered`: none of its channels is the requested one (a cart reminder also skips
//!    the channel the customer is on now);
//! 3. `no_consent`: no consent on any remaining channel;
//! 4. `frequency_cap`: every consented channel has had its `max_contacts_per_7d` (contacts dated
//!    in the last 7 days, scheduled ones included);
//! 5. `cooldown`: this action reached the customer within its `cooldown_days`;
//! 6. `suppressed_after_negative`: within `suppression_days` of the last negative moment, a
//!    promotional action (the `promotional` flag, else by kind: all but `service_recovery`,
//!    `post_purchase` and `gratitude`) is held back, and a `win_back` always is;
//! 7. `not_eligible`: the kind's rule, then the `eligible` expression, said no
//!    (`eligibility_error` when the expression failed to evaluate);
//! 8. `control_group`: with [`rank_with`], the customer is in the control group of this
//!    promotional action ([`Learned::control`]); last, so that a control group holds exactly
//!    the customers who would have been eligible.
//!
//! # Ranking
//!
//! `expected_value = propensity × value` and `score = expected_value × weight − cost`. The
//! propensity is the kind's (table above) or, with [`rank_with`], the learned one
//! ([`Learned::propensities`], from `lattice-learn`). Actions
//! are sorted by score descending, then id ascending (deterministic). Channels are then handed
//! out best-first: the channel the customer is on now if the action can use it, else the first
//! of the action's channels (catalog order is the marketer's preference) that is consented,
//! allowed by the filter and still under its cap **counting the actions ranked above** — so the
//! whole returned list could be sent without breaking a cap. An action that finds no channel
//! left is excluded as `frequency_cap`. At most `limit` actions are returned.
//!
//! # Send time
//!
//! `send_at` is an RFC 3339 instant in the customer's local offset: now, if the customer is on
//! that channel now and it is outside quiet hours; else the local hour with the highest weight
//! in their hour-of-week profile for the channel (0 = Monday 00:00 local) among the next week's
//! hours outside quiet hours (the next 24 for `cart_reminder`, `post_purchase` and
//! `service_recovery`), the earliest on ties; without a profile, the first hour outside quiet
//! hours. Hours are local wall-clock hours, so daylight-saving changes keep slots in place.
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use lattice_catalog::actions::ActionCatalog;
//! use lattice_catalog::settings::Settings;
//! use lattice_decide::{Catalog, Channel, Context, Customer, PerChannel, RankOptions, Scores, rank};
//!
//! let actions = ActionCatalog::parse(r#"
//!     [[action]]
//!     id = "win_back"
//!     name = "We saved you something"
//!     kind = "win_back"
//!     channels = ["email"]
//!     value = 30.0
//!     cost = 0.5
//!     eligible = "recency_days > 45"
//! "#).unwrap();
//! let variables = vec!["recency_days".to_string()];
//! let catalog = Catalog::compile(&actions, &Settings::default(), &variables, &[]).unwrap();
//!
//! let now = Utc.with_ymd_and_hms(2025, 6, 2, 12, 0, 0).unwrap();
//! let customer = Customer {
//!     id: "c1",
//!     values: &[90.0],
//!     scores: Scores { churn_probability: 0.8, p_alive: 0.5, ..Scores::default() },
//!     consent: PerChannel { email: true, ..PerChannel::default() },
//!     last_purchase_at: Some(now - chrono::TimeDelta::days(90)),
//!     ..Customer::default()
//! };
//! let decision = rank(&catalog, &customer, &Context::at(now), &RankOptions::default());
//! assert_eq!(decision.actions[0].id, "win_back");
//! assert_eq!(decision.actions[0].channel, Channel::Email);
//! assert!(decision.actions[0].reasons.contains(&"churn_probability=0.80".to_string()));
//! ```

mod assess;
mod catalog;
mod cel;
mod channel;
mod error;
mod facts;
mod input;
mod json;
mod kind;
mod kinds;
mod output;
mod payload;
mod pick;
mod rank;
mod send_at;
mod tuning;

pub use assess::ActionInfo;
pub use catalog::{Catalog, slug};
pub use channel::{Channel, PerChannel};
pub use error::{CatalogError, CatalogErrorKind, Position};
pub use input::{
    Contact, Context, Customer, HOURS_PER_WEEK, Learned, RankOptions, Scores, SendTimeProfile,
    SendTimeSource,
};
pub use kind::Kind;
pub use output::{Decision, Exclusion, ExclusionRule, RankedAction};
pub use rank::{Screening, rank, rank_json, rank_json_with, rank_with};
pub use tuning::Tuning;

impl Catalog {
    /// [`rank`] as a method.
    pub fn rank(
        &self,
        customer: &Customer<'_>,
        context: &Context<'_>,
        options: &RankOptions,
    ) -> Decision {
        rank(self, customer, context, options)
    }

    /// [`rank_json`] as a method: the decision appended to `out` as JSON.
    pub fn rank_json(
        &self,
        customer: &Customer<'_>,
        context: &Context<'_>,
        options: &RankOptions,
        out: &mut Vec<u8>,
    ) {
        rank_json(self, customer, context, options, out)
    }
}

impl Catalog {
    /// When to send on a channel with `profile` (the customer's hour-of-week weights, local
    /// time): the best slot of the coming week outside the catalog's quiet hours, as ranked
    /// actions get it; `now` if the customer is on the channel now and it is not quiet.
    pub fn send_at(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
        profile: Option<&SendTimeProfile>,
        on_channel_now: bool,
    ) -> chrono::DateTime<chrono::FixedOffset> {
        send_at::send_at(
            now.with_timezone(&tz),
            profile,
            self.policy.quiet,
            on_channel_now,
            HOURS_PER_WEEK as u32,
        )
        .fixed_offset()
    }
}
