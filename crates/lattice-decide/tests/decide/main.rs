//! Integration tests of lattice-decide, one binary (one link) for all of them.

mod common;
mod compile;
mod kinds;
mod properties;
mod ranking;
mod sample;
