//! Integration tests of lattice-decide, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod common;
mod compile;
mod kinds;
mod properties;
mod ranking;
mod sample;
