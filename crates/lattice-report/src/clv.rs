//! The CLV section: BG/NBD and Gamma-Gamma parameters and their backtest.

use std::fmt::Write as _;

use lattice_models::pipeline::Backtest;
use lattice_models::score::Models;

use crate::format::*;

pub(crate) fn clv_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
    h.push_str("<h2>Customer lifetime value</h2>\n");
    let clv = &models.fitted.clv;
    let g = &clv.bgnbd;
    let gg = clv.gamma_gamma.as_ref().map_or_else(
        || "not fitted (too few repeat customers with spend)".to_string(),
        |gg| {
            format!(
                "p = {}, q = {}, v = {}",
                num(gg.p, 4),
                num(gg.q, 4),
                num(gg.v, 4)
            )
        },
    );
    kv_table(
        h,
        &[
            (
                "BG/NBD (weeks)",
                format!(
                    "r = {}, α = {}, a = {}, b = {}",
                    num(g.r, 4),
                    num(g.alpha, 4),
                    num(g.a, 4),
                    num(g.b, 4)
                ),
            ),
            ("Gamma-Gamma", gg),
        ],
    );
    if let Some(b) = backtest {
        let c = &b.clv;
        let _ = write!(
            h,
            "<p>Backtest of the purchase model: predicted against actual orders per customer \
             within the horizon.</p>\n<table>\n<thead><tr><th>customers</th>\
             <th>predicted orders</th><th>actual orders</th><th>mean absolute error</th>\
             <th>correlation</th></tr></thead>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>\n</table>\n",
            count(c.customers as u64),
            num(c.predicted_orders, 1),
            num(c.actual_orders, 1),
            num(c.mean_absolute_error, 4),
            num(c.correlation, 4)
        );
    }
}
