//! Integration tests of lattice-learn, one binary (one link) for all of them.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod attribution;
mod control;
mod ope;
mod posterior;
mod sim;
mod thompson;
