//! The send-time section: hit rates against the baseline, per channel, and the population's
//! heatmap.

use std::fmt::Write as _;

use lattice_models::score::Models;
use lattice_models::sendtime::{BacktestReport, Channel, Comparison, HeldOut, Hyper};

use crate::charts::{figure, heatmap_svg};
use crate::format::*;

fn hit_cells(c: &Comparison) -> String {
    let mut out = String::new();
    for (m, b, o) in [
        (
            c.model.hour_of_week_hit_at_3,
            c.baseline.hour_of_week_hit_at_3,
            c.own.hour_of_week_hit_at_3,
        ),
        (
            c.model.hour_of_day_hit_at_3,
            c.baseline.hour_of_day_hit_at_3,
            c.own.hour_of_day_hit_at_3,
        ),
    ] {
        let _ = write!(
            out,
            "<td>{}</td><td class=\"base\">{}</td><td class=\"base\">{}</td>",
            pct(m),
            pct(b),
            pct(o)
        );
    }
    out
}

fn hyper_text(h: &Hyper) -> String {
    format!(
        "κ = {}, β = {}, γ = {}",
        short(h.kappa),
        short(h.beta),
        short(h.smoothing)
    )
}

/// `report`: `None` without a backtest, `Some(None)` when the backtest had no held-out
/// activity.
/// Each channel's smoothing, for the model summary.
pub(crate) fn smoothing_text(models: &Models) -> String {
    Channel::ALL
        .map(|c| format!("{c}: {}", hyper_text(&models.send_time.hyper(c))))
        .join("; ")
}

pub(crate) fn send_time_section(
    h: &mut String,
    models: &Models,
    report: Option<Option<&BacktestReport>>,
) {
    h.push_str("<h2>Send time</h2>\n");
    if let Some(Some(r)) = report {
        let what = match r.heldout {
            HeldOut::Engagements => "engagements (opens and clicks)",
            HeldOut::AllActivity => "activity (purchases, visits: the data has no engagements)",
        };
        let _ = write!(
            h,
            "<p>Share of held-out {what} in the affinity window after the backtest cutoff that \
             fall in the customer's top 3 hours, against the population's best hours for \
             everyone and the customer's own raw best hours. Each channel's smoothing (κ prior \
             strength, β hour-of-day pooling, γ neighbouring hours) was chosen by hour-of-day \
             hit@3 on its held-out activity in the earlier, validation window, and is measured \
             here on the test window; <code>any</code> is all activity.</p>\n\
             <table>\n<thead><tr><th class=\"l\" rowspan=\"2\">held out</th>\
             <th rowspan=\"2\">n</th><th rowspan=\"2\">smoothing</th>\
             <th colspan=\"3\">hour of week hit@3</th><th colspan=\"3\">hour of day hit@3</th>\
             </tr>\n<tr><th>model</th><th>population</th><th>own</th><th>model</th>\
             <th>population</th><th>own</th></tr></thead>\n"
        );
        for (label, c, hyper) in [
            ("all", &r.comparison, String::new()),
            ("customers with history", &r.with_history, String::new()),
        ] {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{label}</td><td>{}</td><td>{hyper}</td>{}</tr>",
                count(c.n_heldout),
                hit_cells(c)
            );
        }
        for c in &r.per_channel {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>{}</tr>",
                escape(c.channel.name()),
                count(c.comparison.n_heldout),
                escape(&hyper_text(&c.hyper)),
                hit_cells(&c.comparison)
            );
        }
        h.push_str("</table>\n");
    } else if report.is_some() {
        h.push_str(
            "<p>No send-time backtest: the backtest's test window has no activity to hold \
             out.</p>\n",
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
