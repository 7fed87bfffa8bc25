//! The send-time section: hit rates against the baseline, per channel, and the population's
//! heatmap.

use std::fmt::Write as _;

use lattice_models::score::Models;
use lattice_models::sendtime::{BacktestReport, HitRates};

use crate::charts::{figure, heatmap_svg};
use crate::format::*;

fn hit_cells(model: &HitRates, base: &HitRates) -> String {
    [
        (model.hour_of_week_hit_at_1, base.hour_of_week_hit_at_1),
        (model.hour_of_week_hit_at_3, base.hour_of_week_hit_at_3),
        (model.hour_of_day_hit_at_1, base.hour_of_day_hit_at_1),
        (model.hour_of_day_hit_at_3, base.hour_of_day_hit_at_3),
    ]
    .iter()
    .map(|(m, b)| format!("<td>{}</td><td class=\"base\">{}</td>", pct(*m), pct(*b)))
    .collect()
}

/// `report`: `None` without a backtest, `Some(None)` when the backtest had no held-out
/// engagements.
pub(crate) fn send_time_section(
    h: &mut String,
    models: &Models,
    report: Option<Option<&BacktestReport>>,
) {
    h.push_str("<h2>Send time</h2>\n");
    if let Some(Some(r)) = report {
        let _ = write!(
            h,
            "<p>Share of held-out engagements (the affinity window after the backtest cutoff) \
             that fall in the model's top 1 or top 3 slots for the customer, against the \
             population's best slots for everyone. Selected smoothing: κ = {}, β = {}.</p>\n\
             <table>\n<thead><tr><th class=\"l\" rowspan=\"2\">held-out engagements</th>\
             <th rowspan=\"2\">n</th><th colspan=\"4\">hour of week</th>\
             <th colspan=\"4\">hour of day</th></tr>\n<tr><th>hit@1</th><th>population</th>\
             <th>hit@3</th><th>population</th><th>hit@1</th><th>population</th><th>hit@3</th>\
             <th>population</th></tr></thead>\n",
            short(r.kappa),
            short(r.beta)
        );
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">all</td><td>{}</td>{}</tr>",
            count(r.n_heldout),
            hit_cells(&r.model, &r.baseline)
        );
        let w = &r.with_history;
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">customers with history</td><td>{}</td>{}</tr>",
            count(w.n_heldout),
            hit_cells(&w.model, &w.baseline)
        );
        for c in &r.per_channel {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td>{}</tr>",
                escape(c.channel.name()),
                count(c.comparison.n_heldout),
                hit_cells(&c.comparison.model, &c.comparison.baseline)
            );
        }
        h.push_str("</table>\n");
    } else if report.is_some() {
        h.push_str(
            "<p>No send-time backtest: the backtest's test window has no engagements (opens, \
             clicks) to hold out.</p>\n",
        );
    }
    figure(
        h,
        &heatmap_svg(models),
        "Population send-time profile over all channels, in customers' local time (hour of \
         week 0 = Monday 00:00). Colour = engagement rate relative to an even spread over the \
         168 hours of the week; outlined: the three best hours of the week.",
    );
}
