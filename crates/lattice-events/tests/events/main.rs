//! Integration tests of lattice-events, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod parse;
mod store;
