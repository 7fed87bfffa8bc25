//! Lattice's data layer: the input data contract (schemas, validation with located errors,
//! streaming Parquet readers and writers), the synthetic world with planted truth, and the CDNOW importer.

pub mod cdnow;
pub mod customers;
pub mod error;
pub mod events;
pub mod issues;
pub mod normalize;
pub mod output;
pub mod schema;
pub mod synth;
pub mod table;
pub mod validate;
pub mod write;

pub use error::{DataError, Result};

/// The one arrow and parquet in the tree (DataFusion's), for crates that do not depend on it.
pub use datafusion::{arrow, parquet};
