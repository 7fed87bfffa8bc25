//! Control groups: customers held out of promotional actions so that their behaviour shows
//! what would have happened anyway. Membership is a hash of the customer id (and the action
//! id, for per-action holdouts): stable across restarts, replicas and retrains, with no
//! table to keep, and independent between actions.

use crate::hash::{hash64, unit};

/// Where a customer's universal-control hash is salted; a different salt would reshuffle
/// every customer.
const UNIVERSAL: &str = "lattice/control/universal";
const PER_ACTION: &str = "lattice/control/action";

/// The holdout shares of a programme.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holdouts {
    /// Share of customers (0..=1) who get no promotional action at all.
    pub universal: f64,
    /// Per action (catalog order): share of the remaining customers held out of that action.
    pub per_action: Vec<f64>,
}

impl Holdouts {
    /// Checks the shares; the error names the field.
    pub fn new(universal: f64, per_action: Vec<f64>) -> Result<Self, String> {
        let ok = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        if !ok(universal) {
            return Err(format!(
                "universal holdout = {universal} (expected a share between 0 and 1)"
            ));
        }
        if let Some((i, x)) = per_action.iter().enumerate().find(|(_, x)| !ok(**x)) {
            return Err(format!(
                "holdout of action #{} = {x} (expected a share between 0 and 1)",
                i + 1
            ));
        }
        Ok(Holdouts {
            universal,
            per_action,
        })
    }

    /// Whether the customer is in the universal control group.
    pub fn universal_control(&self, customer_id: &str) -> bool {
        self.universal > 0.0 && unit(hash64(&[UNIVERSAL, customer_id])) < self.universal
    }

    /// Whether the customer is held out of action `index` (id `action_id`): in the universal
    /// control, or in the action's own holdout.
    pub fn held_out(&self, customer_id: &str, index: usize, action_id: &str) -> bool {
        self.universal_control(customer_id)
            || self.held_out_of_action(customer_id, index, action_id)
    }

    fn held_out_of_action(&self, customer_id: &str, index: usize, action_id: &str) -> bool {
        self.per_action.get(index).is_some_and(|&share| {
            share > 0.0 && unit(hash64(&[PER_ACTION, action_id, customer_id])) < share
        })
    }

    /// `held_out` for every action of a catalog, in its order: what
    /// `lattice_decide::Learned::control` takes.
    pub fn control_for<'a>(
        &self,
        customer_id: &str,
        action_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<bool> {
        // The universal draw once, not once per action; per-action draws only where a
        // holdout is set.
        let universal = self.universal_control(customer_id);
        action_ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| universal || self.held_out_of_action(customer_id, i, id))
            .collect()
    }
}
