//! Integration tests of lattice-features, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod features;
mod online;
