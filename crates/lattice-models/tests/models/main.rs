//! Integration tests of lattice-models, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod artifact;
mod calibration;
mod clv;
mod dump;
mod pipeline;
mod reasons;
mod sendtime;
mod snapshot;
