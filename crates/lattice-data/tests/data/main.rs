//! Integration tests of lattice-data, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod cdnow;
mod contract;
mod synth;
