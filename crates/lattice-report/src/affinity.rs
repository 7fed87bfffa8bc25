//! The affinity section: per-category metrics and reliability on the test window.

use std::fmt::Write as _;

use lattice_models::pipeline::{AffinityModel, Backtest};
use lattice_models::score::Models;

use crate::format::*;

/// Each category's reliability table on the test window: predicted against observed rates.
fn affinity_reliability(h: &mut String, b: &Backtest) {
    h.push_str(
        "<details><summary>Reliability tables by category</summary>\n<table>\n<thead><tr>\
         <th class=\"l\">category</th><th>bin</th><th>customers</th><th>mean predicted</th>\
         <th>observed rate</th></tr></thead>\n",
    );
    for c in &b.affinity {
        for r in &c.metrics.reliability {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}–{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.category),
                num(r.lower, 1),
                num(r.upper, 1),
                count(r.count as u64),
                num(r.mean_predicted, 4),
                num(r.observed_rate, 4)
            );
        }
    }
    h.push_str("</table>\n</details>\n");
}

pub(crate) fn affinity_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
    h.push_str("<h2>Category affinity</h2>\n");
    match backtest {
        Some(b) => {
            let _ = write!(
                h,
                "<p>Positive = a purchase of the category within the affinity window after the \
                 cutoff. Mean AUC over categories: <b>{}</b>.</p>\n<table>\n<thead><tr>\
                 <th class=\"l\">category</th><th class=\"l\">model</th><th>positives</th>\
                 {BINARY_HEAD}</tr></thead>\n",
                opt(b.affinity_mean_auc, 4)
            );
            for c in &b.affinity {
                let model = match &c.calibration {
                    Some(cal) => format!("{}, {cal}", c.model),
                    None => c.model.clone(),
                };
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>{}</tr>",
                    escape(&c.category),
                    escape(&model),
                    count(c.positives as u64),
                    binary_row(&c.metrics)
                );
            }
            h.push_str("</table>\n");
            affinity_reliability(h, b);
        }
        None => {
            h.push_str(
                "<table>\n<thead><tr><th class=\"l\">category</th><th class=\"l\">model</th>\
                 </tr></thead>\n",
            );
            for c in &models.fitted.affinity {
                let kind = match c.model {
                    AffinityModel::Logistic(_) => "logistic",
                    AffinityModel::Smoothed { .. } => "smoothed",
                };
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{kind}</td></tr>",
                    escape(&c.category)
                );
            }
            h.push_str("</table>\n");
        }
    }
}
