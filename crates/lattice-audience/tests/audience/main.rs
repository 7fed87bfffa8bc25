//! Integration tests of lattice-audience, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

mod common;
mod formats;
mod select;
mod streaming;
mod uplift;
