//! Segments: the cells response rates are learned in. Tier × churn band is small enough that
//! every cell fills within weeks for a mid-sized programme, and the two traits are the ones
//! whose response differs most (a gold customer about to leave is not a bronze one).

use serde::Serialize;

/// Churn-probability bands: low below 0.3, medium below 0.6, high from 0.6 (the built-in
/// win-back threshold).
pub const CHURN_BANDS: [&str; 3] = ["low", "medium", "high"];

/// A segment index, `tier × 3 + band`; tier 0 is "no tier".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Segment(pub usize);

/// The segments of one programme: its tiers (from `lattice.toml`) × the churn bands.
#[derive(Debug, Clone, PartialEq)]
pub struct Segments {
    /// Tier names, entry tier first; index 0 of a segment's tier is "none".
    pub tiers: Vec<String>,
}

impl Segments {
    pub fn new(tiers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Segments {
            tiers: tiers.into_iter().map(Into::into).collect(),
        }
    }

    pub fn len(&self) -> usize {
        (self.tiers.len() + 1) * CHURN_BANDS.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The segment of a customer with this tier (`None` or an unknown name: no tier) and churn
    /// probability (NaN reads as low).
    pub fn of(&self, tier: Option<&str>, churn_probability: f64) -> Segment {
        let t = tier
            .and_then(|name| self.tiers.iter().position(|x| x == name))
            .map_or(0, |i| i + 1);
        Segment(t * CHURN_BANDS.len() + band(churn_probability))
    }

    /// `gold/high`, `none/low`.
    pub fn name(&self, s: Segment) -> String {
        let t = s.0 / CHURN_BANDS.len();
        let tier = if t == 0 {
            "none"
        } else {
            self.tiers.get(t - 1).map_or("?", String::as_str)
        };
        format!("{tier}/{}", CHURN_BANDS[s.0 % CHURN_BANDS.len()])
    }
}

fn band(churn: f64) -> usize {
    if churn >= 0.6 {
        2
    } else if churn >= 0.3 {
        1
    } else {
        0
    }
}
