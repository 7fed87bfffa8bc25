//! Integration tests of lattice-serve, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod api;
mod audiences;
mod events;
mod learning;
mod openapi;
mod parity;
mod reload_under_load;
mod runtime;
