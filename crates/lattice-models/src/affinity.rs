//! Category affinity as a logistic model over the shared feature row plus a few inputs specific
//! to the category.
//!
//! A purchase in category c soon is roughly "buys at all" × "picks c when buying", a product:
//! additive in log space, which a linear model over compressed features cannot express on its
//! own. So each category model also sees log(expected purchases × smoothed share of c), log
//! share of c and log recent interest in c. They are functions of the row only, so a baseline
//! given the same row has the same information.

use serde::{Deserialize, Serialize};

use crate::logistic::LogisticModel;

/// Names of the inputs appended to the row for a category model.
pub const CATEGORY_INPUTS: [&str; 3] = [
    "category_expected_purchases_log",
    "category_share_log",
    "category_recent_interest_log",
];

/// Where a category's inputs come from in the shared feature row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryInputs {
    share: usize,
    view_share: usize,
    frequency: usize,
    expected: usize,
    views: usize,
    carts: usize,
    /// Share assumed for a customer with no purchases: one over the number of categories.
    prior: f64,
}

impl CategoryInputs {
    /// Finds the columns for `slug` in the shared feature names; `None` if one is missing.
    pub fn new(names: &[String], slug: &str, categories: usize) -> Option<Self> {
        let at = |n: &str| names.iter().position(|x| x == n);
        Some(CategoryInputs {
            share: at(&format!("share_{slug}"))?,
            view_share: at(&format!("view_share_{slug}"))?,
            frequency: at("frequency")?,
            expected: at("bgnbd_expected_purchases")?,
            views: at("views_30d")?,
            carts: at("carts_30d")?,
            prior: 1.0 / categories.max(1) as f64,
        })
    }

    /// The category inputs of one row.
    pub fn values(&self, row: &[f64]) -> [f64; 3] {
        let orders = row[self.frequency].max(0.0);
        let share = row[self.share].clamp(0.0, 1.0);
        // One pseudo-order at the prior share, so a first purchase does not read as certainty.
        let smoothed = (share * orders + self.prior) / (orders + 1.0);
        let expected = row[self.expected].max(0.0);
        let interest = row[self.view_share].clamp(0.0, 1.0) * (row[self.views] + row[self.carts]);
        [
            (0.01 + expected * smoothed).ln(),
            (0.01 + share).ln(),
            interest.max(0.0).ln_1p(),
        ]
    }

    /// The row followed by its category inputs.
    pub fn extend(&self, row: &[f64], out: &mut Vec<f64>) {
        out.extend_from_slice(row);
        out.extend_from_slice(&self.values(row));
    }
}

/// A category's calibrated logistic model and where its extra inputs come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryLogistic {
    pub model: LogisticModel,
    pub inputs: CategoryInputs,
}

/// Rows up to this width are scored without allocating.
const STACK_WIDTH: usize = 256;

impl CategoryLogistic {
    /// [`Self::predict`] given also the row passed through [`crate::logistic::compress`]
    /// (shared by every model scoring the row).
    pub fn predict_compressed(&self, row: &[f64], compressed: &[f64]) -> f64 {
        let width = row.len() + CATEGORY_INPUTS.len();
        if width > STACK_WIDTH {
            return self.predict(row);
        }
        let extra = self.inputs.values(row);
        let mut c = [0.0; STACK_WIDTH];
        c[..row.len()].copy_from_slice(compressed);
        for (o, x) in c[row.len()..width].iter_mut().zip(extra) {
            *o = crate::logistic::compress(x);
        }
        self.model
            .platt
            .apply(self.model.logit_compressed(&c[..width]))
    }

    /// Calibrated probability of one shared feature row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let width = row.len() + CATEGORY_INPUTS.len();
        let extra = self.inputs.values(row);
        if width <= STACK_WIDTH {
            let mut x = [0.0; STACK_WIDTH];
            let mut z = [0.0; STACK_WIDTH];
            x[..row.len()].copy_from_slice(row);
            x[row.len()..width].copy_from_slice(&extra);
            self.model.predict(&x[..width], &mut z[..width])
        } else {
            let mut x = Vec::with_capacity(width);
            self.inputs.extend(row, &mut x);
            let mut z = vec![0.0; width];
            self.model.predict(&x, &mut z)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "frequency",
            "views_30d",
            "carts_30d",
            "share_shoes",
            "view_share_shoes",
            "bgnbd_expected_purchases",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn inputs_are_products_in_log_space() {
        let inputs = CategoryInputs::new(&names(), "shoes", 4).unwrap();
        // 3 orders, half of the lines in shoes, 2 expected purchases, 4 recent views of which
        // a quarter are shoes.
        let v = inputs.values(&[3.0, 3.0, 1.0, 0.5, 0.25, 2.0]);
        let smoothed: f64 = (0.5 * 3.0 + 0.25) / 4.0;
        assert!((v[0] - (0.01 + 2.0 * smoothed).ln()).abs() < 1e-12);
        assert!((v[1] - 0.51f64.ln()).abs() < 1e-12);
        assert!((v[2] - 2.0f64.ln()).abs() < 1e-12);
        // No purchases: the prior share, finite values.
        let v = inputs.values(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn a_missing_column_is_none() {
        assert!(CategoryInputs::new(&names(), "hats", 4).is_none());
    }
}
