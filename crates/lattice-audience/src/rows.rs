//! One row of an audience as written out: the customer, the probability, the expected value
//! and the reason codes. Computed only for the rows written, while they are written.

use lattice_decide::Contact;
use serde::Serialize;
use utoipa::ToSchema;

use crate::request::Target;
use crate::select::{Audience, Pick, Source};

/// A customer of the audience.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Row<'a> {
    #[schema(value_type = String)]
    pub customer_id: &'a str,
    /// 1-based position in the ranking of the audience and its control group together.
    pub rank: usize,
    /// Probability of the target event, recalibrated on the backtest (see the summary's
    /// `calibration`).
    pub probability: f64,
    /// The model's own probability (for an action, its propensity): what the ranking sorts.
    pub score: f64,
    pub expected_value: f64,
    /// Short codes for the scores and features behind the rank.
    pub reasons: Vec<String>,
    /// In the control group: do not contact.
    pub holdout: bool,
}

/// A number in a reason code: integers bare, the rest with two decimals (as next-best-action
/// reasons write them).
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() && x == x.round() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// Builds rows, reusing its buffers.
pub(crate) struct RowMaker<'s> {
    src: Source<'s>,
    contacts: Vec<Contact<'s>>,
}

impl<'s> RowMaker<'s> {
    pub(crate) fn new(src: Source<'s>) -> Self {
        RowMaker {
            src,
            contacts: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, aud: &Audience, rank: usize, p: &Pick) -> Row<'s> {
        let i = p.index as usize;
        Row {
            customer_id: &self.src.snapshot.customers[i].id,
            rank,
            probability: p.probability,
            score: p.score,
            expected_value: p.expected_value,
            reasons: self.reasons(aud, i),
            holdout: p.control,
        }
    }

    fn reasons(&mut self, aud: &Audience, i: usize) -> Vec<String> {
        let src = self.src;
        let ix = src.index;
        let snap = src.snapshot;
        let feature = |j: Option<usize>| j.map(|j| snap.features(i)[j]).filter(|v| *v > 0.0);
        match aud.plan.target {
            Target::Category(c) => {
                let affinity = &snap.scores(i)[4..];
                let a = affinity[c];
                let rank = 1 + affinity
                    .iter()
                    .enumerate()
                    .filter(|&(o, &b)| b > a || (b == a && o < c))
                    .count();
                let slug = &ix.slugs[c];
                let mut out = vec![
                    format!("affinity_{slug}={}", num(a)),
                    format!("category_rank={rank}"),
                ];
                if let Some(v) = feature(ix.share[c]) {
                    out.push(format!("share_{slug}={}", num(v)));
                }
                if let Some(v) = feature(ix.view_share[c]) {
                    out.push(format!("view_share_{slug}={}", num(v)));
                }
                out
            }
            Target::Churn => {
                let rec = &snap.customers[i];
                let mut out = vec![format!("churn_probability={}", num(ix.churn.raw[i]))];
                for name in &rec.churn_reasons {
                    match snap.feature_names.iter().position(|f| f == name) {
                        Some(j) => out.push(format!("{name}={}", num(snap.features(i)[j]))),
                        None => out.push(name.clone()),
                    }
                }
                out
            }
            Target::Action { index, .. } => {
                src.fill_contacts(i, &mut self.contacts);
                let customer = src.customer(i, &self.contacts);
                src.catalog.action_reasons(index, &customer, &src.context())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.4123), "0.41");
        assert_eq!(num(f64::NAN), "NaN");
    }
}
