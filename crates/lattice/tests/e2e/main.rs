//! End-to-end tests of the `lattice` binary against real files and a real socket, one test
//! binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod architecture;
mod audience;
mod browser;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod events;
mod hardening;
mod learning;
mod outputs;
mod serve;
mod simulate;
