//! Lattice's models: fit and predict churn, category affinity, customer lifetime value and send
//! time; evaluation metrics; model artifacts.
