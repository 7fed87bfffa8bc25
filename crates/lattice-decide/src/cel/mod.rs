//! CEL eligibility expressions: compiling an action's `eligible` expression once, against the
//! names the model offers, and evaluating it per customer.
//!
//! [`names`] is the vocabulary (what an expression may name, where each value lives);
//! [`check`] binds an expression's names to it, [`plan`] turns the common shapes into a native
//! tree, and [`env`] puts them together into a [`Rule`] and evaluates it.

mod check;
mod env;
mod names;
mod plan;

pub(crate) use env::{ActionRecord, Rule, Scope, number};
pub(crate) use names::Names;
