//! Point-in-time features: one definition, used at train and at serve time.
//!
//! History up to `as_of` is aggregated per customer by DataFusion SQL ([`sql`], run by
//! [`History`]); [`FeatureContext::write`] turns a customer's [`Aggregates`] and [`Profile`]
//! into the feature vector. An event after `as_of` never reaches an aggregate.

pub mod aggregates;
pub mod error;
pub mod features;
pub mod frame;
pub mod history;
pub mod local_time;
pub mod online;
pub mod sample;
pub mod sql;

pub use aggregates::{Aggregates, Profile};
/// The session type a caller hands [`History::open_on`] to run queries on a cluster.
pub use datafusion::prelude::SessionContext;
pub use error::{FeatureError, Result};
pub use features::FeatureContext;
pub use frame::{FeatureFrame, feature_frame};
pub use history::{History, Labels, load_profiles};
pub use local_time::{TimeZones, hour_of_week};
