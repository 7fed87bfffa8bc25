#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Data(#[from] lattice_data::DataError),
    #[error("query engine: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
