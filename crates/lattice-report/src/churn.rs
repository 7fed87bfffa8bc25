//! The churn section: backtest metrics, ROC, reliability and lift plots, calibration
//! tables, the strongest coefficients.

use std::fmt::Write as _;

use lattice_models::metrics::BinaryMetrics;
use lattice_models::pipeline::Backtest;
use lattice_models::score::Models;

use crate::charts::{coefficients_svg, figure, lift_svg, reliability_svg, roc_svg};
use crate::format::*;

pub(crate) fn churn_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
    h.push_str("<h2>Churn</h2>\n");
    if let Some(b) = backtest {
        let _ = write!(
            h,
            "<p>Backtest: fitted at <b>{}</b>, measured on the test window <b>{}</b>, which no \
             fitting step saw. Positive = no purchase within the horizon, among customers with a \
             purchase by the cutoff.</p>\n<table>\n<thead><tr><th class=\"l\">model</th>\
             {BINARY_HEAD}</tr></thead>\n<tr><td class=\"l\">churn (L2 α = {}, {})</td>{}</tr>\n\
             </table>\n<p>AUC of BG/NBD's P(no purchase in the horizon) alone: <b>{}</b>.</p>\n",
            escape(&b.fit_cutoff),
            escape(&b.test_window),
            short(b.churn_alpha),
            escape(&b.churn_calibration),
            binary_row(&b.churn),
            opt(b.churn_auc_bgnbd_only, 4),
        );
        let m = &b.churn;
        h.push_str("<div class=\"figs\">\n");
        figure(
            h,
            &roc_svg(m),
            "Share of churners caught (TPR) against share of non-churners flagged (FPR) as the \
             threshold falls.",
        );
        figure(
            h,
            &reliability_svg(m),
            "Observed churn rate against mean predicted probability, 10 equal-width bins; marker \
             area ∝ customers.",
        );
        figure(
            h,
            &lift_svg(m),
            "Churn rate of each score decile (1 = highest scores) over the base rate.",
        );
        h.push_str("</div>\n");
        calibration_tables(h, m);
    }
    h.push_str("<h3>Strongest coefficients</h3>\n");
    figure(
        h,
        &coefficients_svg(models),
        "Change in the calibrated churn log-odds per standard deviation of the feature \
         (weight × the calibration slope: Platt's a, or 1 under isotonic calibration; on the \
         standardised <code>sign(x)·ln(1+|x|)</code> feature); red \
         raises churn risk, blue lowers it. Correlated features share and can trade weight.",
    );
}

fn calibration_tables(h: &mut String, m: &BinaryMetrics) {
    h.push_str(
        "<details><summary>Reliability and decile tables</summary>\n<div class=\"cols\">\n\
         <table>\n<thead><tr><th>bin</th><th>customers</th><th>mean predicted</th>\
         <th>observed rate</th></tr></thead>\n",
    );
    for r in &m.reliability {
        let _ = writeln!(
            h,
            "<tr><td>{}–{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            num(r.lower, 1),
            num(r.upper, 1),
            count(r.count as u64),
            num(r.mean_predicted, 4),
            num(r.observed_rate, 4)
        );
    }
    h.push_str(
        "</table>\n<table>\n<thead><tr><th>decile</th><th>customers</th><th>mean predicted</th>\
         <th>churn rate</th><th>lift</th></tr></thead>\n",
    );
    for d in &m.deciles {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.decile,
            count(d.count as u64),
            num(d.mean_predicted, 4),
            num(d.positive_rate, 4),
            num(d.lift, 2)
        );
    }
    h.push_str("</table>\n</div>\n</details>\n");
}
