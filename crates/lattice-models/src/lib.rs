//! Lattice's models: fit and predict churn, category affinity, customer lifetime value and send
//! time; evaluation metrics; model artifacts.
pub mod affinity;
pub mod artifact;
pub mod calibration;
pub mod clv;
pub mod dump;
pub mod logistic;
pub mod metrics;
pub mod parallel;
pub mod pipeline;
pub mod reasons;
pub mod score;
pub mod train;

/// Why a model could not be fitted or used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Fit(String),
}
pub mod sendtime;
pub mod snapshot;
