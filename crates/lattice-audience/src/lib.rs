//! Lattice predicted audiences: "who should get early access to the new outerwear collection?"
//! answered with a ranked, consent-clean list, the expected number of conversions with an
//! interval, and the lift over a random audience of the same size. One implementation behind
//! `POST /v1/audiences` and `lattice audience`.
//!
//! # How an audience is built
//!
//! 1. The request ([`AudienceRequest`]) is checked against the model into a [`Plan`]; a
//!    mistake is a [`FieldError`] naming the field (`size.top`, `target.category`, …).
//! 2. [`select`] makes one pass over the customers through the filters, in funnel order
//!    (tiers, channel consent, churn probability, CLV, last purchase, recent contacts; then,
//!    for an action target, every rule of next-best-action ranking), counting who each step
//!    removes.
//! 3. Qualifying customers are split by a stable hash into the audience and, if asked, a
//!    control group ([`holdout`]).
//! 4. The audience is the best of the rest by the target's score — the top N (a bounded heap:
//!    each score is read once and only N are sorted), everyone above a probability, or as many
//!    as a budget pays for. The control group is the held-out customers who would have made the
//!    same cut, so the two groups are comparable.
//! 5. [`write`] streams the rows as JSON, CSV or Parquet.
//!
//! # What the numbers mean
//!
//! * A **category** target ranks by the affinity score: the probability of a purchase in the
//!   category within the model's affinity window. An **action** target keeps the customers
//!   eligible for the action and ranks by the propensity next-best-action ranking gives it
//!   (its category's affinity for early access, insider preview, discovery and custom actions
//!   with a category; a rule of the kind otherwise, e.g. churn × p_alive for a win-back). A
//!   **churn** target ranks by the churn probability.
//! * Each row's `probability` is the score recalibrated on the model's backtest
//!   (`metrics.json`): the deciles' observed rate against their mean prediction, made monotone
//!   ([`calibration::Calibration`]). Expected conversions are the sum of these probabilities,
//!   with a 95% interval from the Poisson-binomial variance.
//! * The lift over random is read from the backtest's cumulative lift curve at the audience's
//!   depth (its size over all customers), and also estimated directly as the audience's mean
//!   probability over the mean of all customers and of the filtered pool.
//!
//! Filters in days count back from the model's as_of, the moment its snapshot describes.

pub mod calibration;
pub mod holdout;
mod index;
mod request;
mod rows;
mod select;
mod summary;
pub mod uplift;
mod write;

pub use index::{AudienceIndex, ModelFacts, read_backtest};
pub use request::{
    AudienceRequest, FieldError, Filters, HoldoutSpec, Plan, ResolvedFilters, Size, SizeSpec,
    Target, TargetSpec,
};
pub use rows::Row;
pub use select::{Audience, Pick, Source, select};
pub use summary::{Estimate, FunnelStep, Lift, Summary, TargetSummary, expected_conversions};
pub use write::{COLUMNS, Format, ROW_GROUP, SUMMARY_KEY, write};
