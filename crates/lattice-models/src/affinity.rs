//! Category affinity as a logistic model over the shared feature row plus a few inputs specific
//! to the category.
//!
//! A purchase in category c soon is roughly "buys at all" × "picks c when buying", a product:
//! additive in log space, which a linear model over compressed features cannot express on its
//! own. So each category model also sees log(expected purchases × smoothed share of c), log
//! share of c and log recent interest in c. They are functions of the row only, so a baseline
//! given the same row has the same information.

use lattice_features::features::CATEGORY_RHYTHM;
use serde::{Deserialize, Serialize};

use crate::logistic::{LogisticModel, compress};

/// Names of the inputs derived from the row for a category model, after its columns.
pub const CATEGORY_INPUTS: [&str; 5] = [
    "category_expected_purchases_log",
    "category_share_log",
    "category_recent_interest_log",
    // exp(−½·ln²((days since + 1) / (usual gap + 1))): 1 when the next purchase of the
    // category is due by the customer's own rhythm, towards 0 either side, 0 without a rhythm.
    "category_due",
    // ln(0.01 + window × orders of the category per day of tenure).
    "category_rate_log",
];

/// Which columns of the shared row a category model reads. Both are fitted and the one with the
/// lower validation log loss is kept, per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSet {
    /// Every feature the churn model reads (all categories' shares among them) and this
    /// category's rhythm: other categories say something about this one (baby food, nappies).
    Wide,
    /// The customer-level features and only this category's share, view share and rhythm: with
    /// few customers or many categories, other categories' columns are mostly noise.
    Own,
}

impl InputSet {
    pub const ALL: [InputSet; 2] = [InputSet::Wide, InputSet::Own];
}

/// Where a category model's inputs come from in the shared feature row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryInputs {
    pub set: InputSet,
    /// Columns of the shared row, in the model's order.
    columns: Vec<usize>,
    share: usize,
    view_share: usize,
    frequency: usize,
    expected: usize,
    views: usize,
    carts: usize,
    tenure: usize,
    since: usize,
    gap: usize,
    orders: usize,
    /// Share assumed for a customer with no purchases: one over the number of categories.
    prior: f64,
    /// The affinity window, in days.
    window_days: f64,
}

impl CategoryInputs {
    /// Finds the columns for `slug` in the shared feature names (`churn_width` leading columns
    /// shared with the churn model, then every category's rhythm); `None` if one is missing.
    pub fn new(
        names: &[String],
        churn_width: usize,
        slug: &str,
        categories: usize,
        set: InputSet,
        window_days: i64,
    ) -> Option<Self> {
        let at = |n: &str| names.iter().position(|x| x == n);
        let (share, view_share) = (
            at(&format!("share_{slug}"))?,
            at(&format!("view_share_{slug}"))?,
        );
        let rhythm: Vec<usize> = CATEGORY_RHYTHM
            .iter()
            .map(|f| at(&format!("{f}_{slug}")))
            .collect::<Option<_>>()?;
        let shared = names.get(..churn_width)?.iter().enumerate();
        let mut columns: Vec<usize> = match set {
            InputSet::Wide => shared.map(|(j, _)| j).collect(),
            InputSet::Own => shared
                .filter(|(j, n)| {
                    !(n.starts_with("share_") || n.starts_with("view_share_"))
                        || *j == share
                        || *j == view_share
                })
                .map(|(j, _)| j)
                .collect(),
        };
        columns.extend(&rhythm);
        Some(CategoryInputs {
            set,
            columns,
            share,
            view_share,
            frequency: at("frequency")?,
            expected: at("bgnbd_expected_purchases")?,
            views: at("views_30d")?,
            carts: at("carts_30d")?,
            tenure: at("tenure_days")?,
            since: at(&format!("cat_days_since_{slug}"))?,
            gap: at(&format!("cat_gap_days_{slug}"))?,
            orders: at(&format!("cat_orders_{slug}"))?,
            prior: 1.0 / categories.max(1) as f64,
            window_days: window_days.max(1) as f64,
        })
    }

    /// The model's width: its columns and the derived inputs.
    pub fn width(&self) -> usize {
        self.columns.len() + CATEGORY_INPUTS.len()
    }

    /// The names of the model's inputs, given the shared row's names.
    pub fn names(&self, shared: &[String]) -> Vec<String> {
        let mut names: Vec<String> = self.columns.iter().map(|&j| shared[j].clone()).collect();
        names.extend(CATEGORY_INPUTS.iter().map(|n| n.to_string()));
        names
    }

    /// The derived inputs of one row.
    pub fn values(&self, row: &[f64]) -> [f64; CATEGORY_INPUTS.len()] {
        let orders = row[self.frequency].max(0.0);
        let share = row[self.share].clamp(0.0, 1.0);
        // One pseudo-order at the prior share, so a first purchase does not read as certainty.
        let smoothed = (share * orders + self.prior) / (orders + 1.0);
        let expected = row[self.expected].max(0.0);
        let interest = row[self.view_share].clamp(0.0, 1.0) * (row[self.views] + row[self.carts]);
        let (since, gap) = (row[self.since].max(0.0), row[self.gap].max(0.0));
        let due = if gap > 0.0 {
            let r = ((since + 1.0) / (gap + 1.0)).ln();
            (-0.5 * r * r).exp()
        } else {
            0.0
        };
        let rate = row[self.orders].max(0.0) / row[self.tenure].max(self.window_days);
        [
            (0.01 + expected * smoothed).ln(),
            (0.01 + share).ln(),
            interest.max(0.0).ln_1p(),
            due,
            (0.01 + self.window_days * rate).ln(),
        ]
    }

    /// The model's input row: its columns of `row`, then the derived inputs.
    pub fn extend(&self, row: &[f64], out: &mut Vec<f64>) {
        out.extend(self.columns.iter().map(|&j| row[j]));
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
    /// [`Self::predict`] given also the row passed through [`compress`] (shared by every model
    /// scoring the row).
    pub fn predict_compressed(&self, row: &[f64], compressed: &[f64]) -> f64 {
        let width = self.inputs.width();
        if width > STACK_WIDTH {
            return self.predict(row);
        }
        let mut c = [0.0; STACK_WIDTH];
        let n = self.inputs.columns.len();
        for (o, &j) in c.iter_mut().zip(&self.inputs.columns) {
            *o = compressed[j];
        }
        for (o, x) in c[n..width].iter_mut().zip(self.inputs.values(row)) {
            *o = compress(x);
        }
        self.model
            .calibration
            .apply(self.model.logit_compressed(&c[..width]))
    }

    /// Calibrated probability of one shared feature row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let width = self.inputs.width();
        if width <= STACK_WIDTH {
            let (mut x, mut z) = ([0.0; STACK_WIDTH], [0.0; STACK_WIDTH]);
            let n = self.inputs.columns.len();
            for (o, &j) in x.iter_mut().zip(&self.inputs.columns) {
                *o = row[j];
            }
            x[n..width].copy_from_slice(&self.inputs.values(row));
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

    /// A shared row: customer features, two categories' shares, CLV; then both rhythms.
    fn names() -> Vec<String> {
        let mut n: Vec<String> = [
            "frequency",
            "views_30d",
            "carts_30d",
            "tenure_days",
            "share_shoes",
            "share_bags",
            "view_share_shoes",
            "view_share_bags",
            "bgnbd_expected_purchases",
        ]
        .map(String::from)
        .to_vec();
        for slug in ["shoes", "bags"] {
            n.extend(CATEGORY_RHYTHM.iter().map(|f| format!("{f}_{slug}")));
        }
        n
    }

    const CHURN_WIDTH: usize = 9;

    fn row() -> Vec<f64> {
        // 3 orders, half of the lines in shoes, 2 expected purchases, 4 recent views of which
        // a quarter are shoes, 100 days of tenure.
        let mut r = vec![3.0, 3.0, 1.0, 100.0, 0.5, 0.5, 0.25, 0.75, 2.0];
        // Shoes: 20 days since the last of 2 orders, 20 days apart.
        r.extend([20.0, 2.0, 1.0, 2.0, 2.0, 20.0, 1.0, 40.0, 0.0]);
        r.extend([50.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 10.0, 0.0]);
        r
    }

    #[test]
    fn inputs_are_products_in_log_space_and_the_rhythm_is_due() {
        let inputs =
            CategoryInputs::new(&names(), CHURN_WIDTH, "shoes", 4, InputSet::Wide, 28).unwrap();
        let v = inputs.values(&row());
        let smoothed: f64 = (0.5 * 3.0 + 0.25) / 4.0;
        assert!((v[0] - (0.01 + 2.0 * smoothed).ln()).abs() < 1e-12);
        assert!((v[1] - 0.51f64.ln()).abs() < 1e-12);
        assert!((v[2] - 2.0f64.ln()).abs() < 1e-12);
        assert_eq!(v[3], 1.0, "due: 20 days since, 20 days usual");
        assert!((v[4] - (0.01 + 28.0 * 2.0 / 100.0f64).ln()).abs() < 1e-12);
        // No purchases: the prior share, finite values, nothing due.
        let v = inputs.values(&[0.0; 27]);
        assert!(v.iter().all(|x| x.is_finite()));
        assert_eq!(v[3], 0.0);
    }

    #[test]
    fn sets_choose_columns() {
        let n = names();
        let wide = CategoryInputs::new(&n, CHURN_WIDTH, "bags", 2, InputSet::Wide, 28).unwrap();
        let own = CategoryInputs::new(&n, CHURN_WIDTH, "bags", 2, InputSet::Own, 28).unwrap();
        let bags_rhythm = CATEGORY_RHYTHM.map(|f| format!("{f}_bags"));
        let (w, o) = (wide.names(&n), own.names(&n));
        assert_eq!(w.len(), wide.width());
        assert!(w.contains(&"share_shoes".to_string()));
        assert!(!o.contains(&"share_shoes".to_string()));
        assert!(o.contains(&"share_bags".to_string()) && o.contains(&"frequency".to_string()));
        for names in [&w, &o] {
            assert!(bags_rhythm.iter().all(|r| names.contains(r)));
            assert!(
                !names
                    .iter()
                    .any(|x| x.ends_with("_shoes") && x.starts_with("cat_"))
            );
        }
        let mut x = Vec::new();
        own.extend(&row(), &mut x);
        assert_eq!(x.len(), own.width());
        assert_eq!(
            x[o.iter().position(|n| n == "cat_days_since_bags").unwrap()],
            50.0
        );
    }

    #[test]
    fn a_missing_column_is_none() {
        assert!(CategoryInputs::new(&names(), CHURN_WIDTH, "hats", 4, InputSet::Own, 28).is_none());
    }
}
