//! `report.html`: a trained model directory described for people. One self-contained HTML file
//! (inline CSS and SVG, no scripts, no external assets): the model's identity and training
//! configuration, the backtest metrics as tables, and plots drawn by `plotters` as SVG: ROC
//! curve, reliability curve and lift by decile of the churn backtest, the churn model's
//! strongest coefficients and the population's send-time heatmap.
//!
//! Every interpolated text is HTML-escaped; plot labels are escaped by plotters' SVG backend.
//! Text in the plots is laid out by the browser (plotters is built without font loading).

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use lattice_models::artifact::Manifest;
use lattice_models::calibration::Calibration;
use lattice_models::logistic::LogisticModel;
use lattice_models::metrics::BinaryMetrics;
use lattice_models::pipeline::{AffinityModel, Backtest};
use lattice_models::score::Models;
use lattice_models::sendtime::{BacktestReport, Channel, HitRates, top3_hours_of_week};

/// How many of the churn model's coefficients the bar chart shows.
const TOP_COEFFICIENTS: usize = 15;
/// Width of the full-width plots, in pixels; the small ones are a third of the page.
const WIDE: u32 = 1100;
const SMALL: (u32, u32) = (360, 340);

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(36, 41, 47);
const MUTED: RGBColor = RGBColor(110, 119, 129);
const GRID: RGBColor = RGBColor(225, 228, 232);
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const RED_: RGBColor = RGBColor(214, 39, 40);
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The report of a model: `manifest` for its identity (its `files` are not used, so it can be
/// rendered before the directory is committed), the fitted `models`, and the backtest when
/// one was run.
pub fn render(manifest: &Manifest, models: &Models, backtest: Option<&Backtest>) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("Lattice model report: {}", manifest.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <p class=\"sub\">as of {} &middot; churn horizon {} days &middot; {} customers &middot; \
         created {} by lattice {}</p>\n",
        escape(&title),
        escape(&title),
        escape(&manifest.as_of),
        manifest.horizon_days,
        manifest.customers,
        escape(&manifest.created_at),
        escape(&manifest.lattice_version),
    );
    if backtest.is_none() {
        h.push_str(
            "<p class=\"note\">Metrics were not computed: this model was trained without a \
             backtest (<code>lattice train --no-backtest</code>). Run <code>lattice evaluate</code> \
             or retrain without <code>--no-backtest</code> for AUC, calibration, lift and \
             send-time hit rates.</p>\n",
        );
    }
    model_section(&mut h, manifest, models);
    churn_section(&mut h, models, backtest);
    affinity_section(&mut h, models, backtest);
    clv_section(&mut h, models, backtest);
    send_time_section(&mut h, models, backtest.map(|b| b.send_time.as_ref()));
    h.push_str("</body>\n</html>\n");
    h
}

const CSS: &str = "\
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#24292f;\
max-width:1140px;margin:1.5em auto;padding:0 1.2em}\
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.3em;border-bottom:1px solid #d0d7de;\
padding-bottom:.2em;margin-top:1.8em}h3{font-size:1.05em;margin:1.2em 0 .4em}\
.sub{color:#57606a;margin-top:0}\
table{border-collapse:collapse;margin:.4em 0 1em;font-variant-numeric:tabular-nums}\
th,td{padding:.25em .7em;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}\
thead th{background:#f6f8fa;border-bottom:1px solid #d0d7de}\
th.l,td.l{text-align:left}table.kv th{text-align:left;font-weight:600;background:none}\
table.kv td{text-align:left}\
.figs{display:flex;flex-wrap:wrap;gap:16px}.figs figure{width:360px}figure{margin:0 0 1em}\
figcaption{color:#57606a;font-size:.9em;max-width:1100px}\
svg{max-width:100%;height:auto;display:block}\
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.6em 1em;border-radius:4px}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}\
details{margin:.4em 0 1em}summary{cursor:pointer;color:#0969da}\
.cols{display:flex;flex-wrap:wrap;gap:2.5em}";

// ---- formatting -------------------------------------------------------------------------------

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".into()
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| num(v, decimals))
}

/// A parameter as Rust prints it: 100 → "100", 0.5 → "0.5".
fn short(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        "n/a".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", 100.0 * v)
    } else {
        "n/a".into()
    }
}

/// Digits grouped by thousands: 12345 → "12,345".
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A two-column table of already-escaped HTML values.
fn kv_table(h: &mut String, rows: &[(&str, String)]) {
    h.push_str("<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    }
    h.push_str("</table>\n");
}

/// A JSON value as short text: arrays joined with ", ", strings unquoted.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

// ---- sections ---------------------------------------------------------------------------------

fn model_section(h: &mut String, m: &Manifest, models: &Models) {
    h.push_str("<h2>Model</h2>\n<div class=\"cols\">\n<div>\n<h3>Identity</h3>\n");
    kv_table(
        h,
        &[
            ("name", escape(&m.name)),
            ("as_of", escape(&m.as_of)),
            ("churn horizon", format!("{} days", m.horizon_days)),
            ("affinity window", format!("{} days", m.affinity_days)),
            ("customers scored", count(m.customers)),
            (
                "categories",
                format!(
                    "{} ({})",
                    m.categories.len(),
                    escape(&m.categories.join(", "))
                ),
            ),
            ("features", m.feature_schema.len().to_string()),
            (
                "feature transform",
                format!("<code>{}</code>", escape(&m.feature_transform)),
            ),
            ("format version", m.format_version.to_string()),
            ("lattice version", escape(&m.lattice_version)),
            ("created at", escape(&m.created_at)),
        ],
    );
    h.push_str("<h3>Data fingerprint</h3>\n");
    kv_table(
        h,
        &[
            ("events", count(m.data.events)),
            ("first event", escape(&m.data.first_event)),
            ("last event", escape(&m.data.last_event)),
            (
                "input files SHA-256",
                format!("<code>{}</code>", escape(&m.data.files_sha256)),
            ),
        ],
    );
    h.push_str("</div>\n<div>\n<h3>Training config</h3>\n");
    let config = serde_json::to_value(&m.training_config).unwrap_or_default();
    let rows: Vec<(String, String)> = match &config {
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), escape(&json_text(v))))
            .collect(),
        other => vec![("config".into(), escape(&other.to_string()))],
    };
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    kv_table(h, &rows);
    let churn = &models.fitted.churn;
    let st = &models.send_time;
    h.push_str("<h3>Fitted parameters</h3>\n");
    kv_table(
        h,
        &[
            ("churn L2 strength", short(churn.alpha)),
            ("churn calibration", calibration_text(churn)),
            (
                "send-time smoothing",
                format!("κ = {}, β = {}", short(st.kappa()), short(st.beta())),
            ),
        ],
    );
    h.push_str("</div>\n</div>\n");
}

fn binary_row(m: &BinaryMetrics) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        count(m.n as u64),
        pct(m.base_rate),
        opt(m.auc, 4),
        num(m.log_loss, 4),
        num(m.brier, 4),
        num(m.ece, 4),
        num(m.top_decile_lift, 2),
        pct(m.top_decile_precision),
    )
}

const BINARY_HEAD: &str = "<th>n</th><th>base rate</th><th>AUC</th><th>log loss</th>\
<th>Brier</th><th>ECE</th><th>top-decile lift</th><th>top-decile precision</th>";

fn churn_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
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

fn affinity_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
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

fn clv_section(h: &mut String, models: &Models, backtest: Option<&Backtest>) {
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
fn send_time_section(h: &mut String, models: &Models, report: Option<Option<&BacktestReport>>) {
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

fn figure(h: &mut String, svg: &str, caption: &str) {
    let _ = write!(
        h,
        "<figure>\n{svg}<figcaption>{caption}</figcaption>\n</figure>\n"
    );
}

// ---- plots ------------------------------------------------------------------------------------

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into an SVG string of `size` pixels; a drawing error becomes a note in the page.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> String {
    let mut buf = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let res = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drop(root);
        res
    };
    match res {
        Ok(()) => buf,
        Err(e) => format!(
            "<p class=\"note\">The plot could not be drawn: {}</p>\n",
            escape(&e.to_string())
        ),
    }
}

fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

fn caption(size: u32) -> TextStyle<'static> {
    (FONT, size, FontStyle::Bold).into_font().color(&INK)
}

fn no_data(area: &DrawingArea<SVGBackend<'_>, Shift>, title: &str, message: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Center);
    area.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, 20),
        caption(16).pos(centre),
    ))?;
    area.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        text(14).color(&MUTED).pos(centre),
    ))?;
    Ok(())
}

/// A titled chart over [0, 1] × [0, 1] with its grid and axis labels drawn: the frame of the
/// ROC and reliability plots.
fn unit_square<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
) -> Result<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, caption(16))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(text(12))
        .axis_desc_style(text(13))
        .draw()?;
    Ok(chart)
}

fn roc_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("ROC curve (AUC {})", opt(m.auc, 3));
        if m.roc.is_empty() {
            return no_data(root, &title, "no ROC points (one class only)");
        }
        let mut chart = unit_square(root, &title, "false positive rate", "true positive rate")?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            5,
            4,
            MUTED.stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(
                m.roc
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite()),
                BLUE_.stroke_width(2),
            ))?
            .label("churn model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE_.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(text(12))
            .draw()?;
        Ok(())
    })
}

fn reliability_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("Reliability (ECE {})", num(m.ece, 3));
        let bins: Vec<(f64, f64, usize)> = m
            .reliability
            .iter()
            .filter(|b| b.mean_predicted.is_finite() && b.observed_rate.is_finite())
            .map(|b| (b.mean_predicted, b.observed_rate, b.count))
            .collect();
        if bins.is_empty() {
            return no_data(root, &title, "no predictions");
        }
        let mut chart = unit_square(
            root,
            &title,
            "mean predicted probability",
            "observed churn rate",
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                5,
                4,
                MUTED.stroke_width(1),
            ))?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], MUTED.stroke_width(1)));
        chart
            .draw_series(LineSeries::new(
                bins.iter().map(|&(x, y, _)| (x, y)),
                BLUE_.stroke_width(2),
            ))?
            .label("churn model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE_.stroke_width(2)));
        let biggest = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
        chart.draw_series(bins.iter().map(|&(x, y, n)| {
            let r = 2.5 + 6.0 * (n as f64 / biggest).sqrt();
            Circle::new((x, y), r.round() as i32, BLUE_.mix(0.55).filled())
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(text(12))
            .draw()?;
        Ok(())
    })
}

fn lift_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("Lift by decile (top {})", num(m.top_decile_lift, 2));
        let lifts: Vec<(i32, f64)> = m
            .deciles
            .iter()
            .filter(|d| d.lift.is_finite())
            .map(|d| (d.decile as i32, d.lift))
            .collect();
        if lifts.is_empty() {
            return no_data(root, &title, "no deciles");
        }
        let top = lifts.iter().map(|d| d.1).fold(1.0, f64::max) * 1.15;
        let last = lifts.iter().map(|d| d.0).max().unwrap_or(10);
        let mut chart = ChartBuilder::on(root)
            .caption(&title, caption(16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d((1..last).into_segmented(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GRID.mix(0.6))
            .bold_line_style(GRID)
            .x_desc("score decile (1 = highest risk)")
            .y_desc("lift over base rate")
            .x_labels(lifts.len())
            .y_labels(6)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(d) => d.to_string(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        chart.draw_series(lifts.iter().map(|&(d, lift)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(d), 0.0),
                    (SegmentValue::Exact(d + 1), lift),
                ],
                BLUE_.mix(0.8).filled(),
            );
            bar.set_margin(0, 0, 4, 4);
            bar
        }))?;
        chart.draw_series(DashedLineSeries::new(
            [(SegmentValue::Exact(1), 1.0), (SegmentValue::Last, 1.0)],
            5,
            4,
            RED_.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((SegmentValue::Last, 1.0))
                + Text::new(
                    "base rate",
                    (-4, -3),
                    text(11)
                        .color(&RED_)
                        .pos(Pos::new(HPos::Right, VPos::Bottom)),
                ),
        ))?;
        let label = text(11).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(lifts.iter().map(|&(d, lift)| {
            EmptyElement::at((SegmentValue::CenterOf(d), lift))
                + Text::new(num(lift, 2), (0, -3), label.clone())
        }))?;
        Ok(())
    })
}

/// The calibration a model applies, and the cross-fitted validation log loss that chose it.
fn calibration_text(m: &LogisticModel) -> String {
    let method = match &m.calibration {
        Calibration::Platt(p) => format!("Platt, a = {}, b = {}", num(p.a, 4), num(p.b, 4)),
        Calibration::Isotonic(i) => format!("isotonic, {} steps", i.logits.len()),
    };
    match &m.calibration_choice {
        Some(c) => format!(
            "{method} (validation log loss, two-fold: Platt {}, isotonic {})",
            num(c.platt_log_loss, 4),
            num(c.isotonic_log_loss, 4)
        ),
        None => method,
    }
}

/// The churn model's strongest coefficients on the calibrated log-odds scale, strongest first.
fn top_coefficients(models: &Models, n: usize) -> Vec<(String, f64)> {
    let churn = &models.fitted.churn;
    let mut c: Vec<(String, f64)> = churn
        .features
        .iter()
        .zip(&churn.weights)
        .map(|(f, w)| (f.clone(), w * churn.calibration.slope()))
        .filter(|(_, v)| v.is_finite())
        .collect();
    c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    c.truncate(n);
    c
}

fn coefficients_svg(models: &Models) -> String {
    let coefs = top_coefficients(models, TOP_COEFFICIENTS);
    let rows = coefs.len().max(1) as u32;
    svg((WIDE, 90 + 26 * rows), |root| {
        let title = format!("Churn model: top {} coefficients by size", coefs.len());
        if coefs.is_empty() {
            return no_data(root, &title, "no coefficients");
        }
        let longest = coefs
            .iter()
            .map(|c| c.0.chars().count())
            .max()
            .unwrap_or(10) as u32;
        let extent = coefs.iter().map(|c| c.1.abs()).fold(0.0, f64::max);
        let extent = if extent > 0.0 { extent * 1.2 } else { 1.0 };
        let n = coefs.len() as i32;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, caption(16))
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size((24 + 7 * longest).min(360))
            .build_cartesian_2d(-extent..extent, (0..n - 1).into_segmented())?;
        // Row 0 at the bottom: the strongest coefficient goes to the top row.
        let name_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(r) if (0..n).contains(r) => {
                coefs[(n - 1 - r) as usize].0.clone()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(GRID.mix(0.6))
            .bold_line_style(GRID)
            .x_desc("change in churn log-odds per +1 SD of the feature")
            .x_labels(9)
            .y_labels(coefs.len())
            .x_label_formatter(&|v| {
                if v.abs() < 1e-9 {
                    "0".into()
                } else {
                    format!("{v:+.2}")
                }
            })
            .y_label_formatter(&name_of)
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        chart.draw_series(coefs.iter().enumerate().map(|(i, (_, v))| {
            let r = n - 1 - i as i32;
            let colour = if *v >= 0.0 { RED_ } else { BLUE_ };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(r)),
                    (*v, SegmentValue::Exact(r + 1)),
                ],
                colour.mix(0.8).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(LineSeries::new(
            [(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Last)],
            INK.stroke_width(1),
        ))?;
        chart.draw_series(coefs.iter().enumerate().map(|(i, (_, v))| {
            let r = n - 1 - i as i32;
            let (h, dx) = if *v >= 0.0 {
                (HPos::Left, 4)
            } else {
                (HPos::Right, -4)
            };
            EmptyElement::at((*v, SegmentValue::CenterOf(r)))
                + Text::new(
                    format!("{v:+.3}"),
                    (dx, 0),
                    text(11).color(&MUTED).pos(Pos::new(h, VPos::Center)),
                )
        }))?;
        Ok(())
    })
}

/// A perceptually ordered colour ramp (viridis, 5 stops) at `t` in [0, 1].
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn heatmap_svg(models: &Models) -> String {
    let st = &models.send_time;
    let profile = st.population(Channel::Any);
    let events = st.population_events(Channel::Any);
    svg((WIDE, 340), |root| {
        let title = format!(
            "Population send-time profile, all channels ({} engagements)",
            count(events)
        );
        let (chart_area, legend_area) = root.split_horizontally(WIDE - 110);
        // Relative to an even spread over the week: 1 = an average hour.
        let rel: Vec<f64> = profile.iter().map(|p| p * profile.len() as f64).collect();
        let lo = rel.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(&title, caption(16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(48)
            .build_cartesian_2d((0..23).into_segmented(), (0..6).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("local hour of day")
            .x_labels(24)
            .y_labels(7)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(h) => format!("{h:02}"),
                _ => String::new(),
            })
            // Row 0 at the bottom: Monday goes to the top row.
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(r) if (0..7).contains(r) => DAYS[(6 - r) as usize].into(),
                _ => String::new(),
            })
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        let cell = |how: usize| {
            let (day, hour) = ((how / 24) as i32, (how % 24) as i32);
            let row = 6 - day;
            [
                (SegmentValue::Exact(hour), SegmentValue::Exact(row)),
                (SegmentValue::Exact(hour + 1), SegmentValue::Exact(row + 1)),
            ]
        };
        chart.draw_series(rel.iter().enumerate().map(|(how, v)| {
            let mut r = Rectangle::new(cell(how), ramp((v - lo) / span).filled());
            r.set_margin(1, 0, 1, 0);
            r
        }))?;
        chart.draw_series(
            top3_hours_of_week(profile)
                .iter()
                .map(|&(how, _)| Rectangle::new(cell(usize::from(how)), INK.stroke_width(2))),
        )?;

        // Colour legend: a vertical ramp with its end values.
        let (top, bottom, x0) = (60, 260, 14);
        legend_area.draw(&Text::new(
            "× even spread",
            (x0 - 6, top - 22),
            text(12).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let steps = 50;
        for s in 0..steps {
            let y0 = bottom - (bottom - top) * (s + 1) / steps;
            let y1 = bottom - (bottom - top) * s / steps;
            let t = f64::from(s) / f64::from(steps - 1);
            legend_area.draw(&Rectangle::new([(x0, y0), (x0 + 18, y1)], ramp(t).filled()))?;
        }
        let side = text(12).pos(Pos::new(HPos::Left, VPos::Center));
        for (y, v) in [
            (top, hi),
            ((top + bottom) / 2, (lo + hi) / 2.0),
            (bottom, lo),
        ] {
            legend_area.draw(&Text::new(format!("{v:.2}"), (x0 + 24, y), side.clone()))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lattice_features::FeatureContext;

    use super::*;
    use lattice_models::artifact::{DataFingerprint, FORMAT_VERSION, FeatureSpec};
    use lattice_models::calibration::Calibration;
    use lattice_models::clv::BgNbd;
    use lattice_models::logistic::{LogisticModel, Standardizer};
    use lattice_models::pipeline::{
        CategoryMetrics, CategoryModel, ClvMetrics, ClvModels, Fitted, TrainConfig,
    };
    use lattice_models::sendtime::{
        ChannelComparison, Comparison, Engagement, SendTimeCounts, SendTimeModel,
    };

    const ODD: &str = "Toys <&> \"Games\"";

    fn models() -> Models {
        let features: Vec<String> = (0..20).map(|j| format!("feature_{j}")).collect();
        let churn = LogisticModel {
            features: features.clone(),
            scaler: Standardizer {
                mean: vec![0.0; 20],
                std: vec![1.0; 20],
            },
            weights: (0..20).map(|j| (j as f64 - 9.5) / 10.0).collect(),
            intercept: -0.3,
            alpha: 1.0,
            calibration: Calibration::IDENTITY,
            calibration_choice: None,
        };
        let eng: Vec<Engagement> = (0..300)
            .map(|i| Engagement {
                customer: i % 3,
                channel: Channel::Email,
                how: (i % 168) as u8,
            })
            .collect();
        let counts = SendTimeCounts::from_engagements(3, &eng).unwrap();
        Models {
            fitted: Fitted {
                cutoff_us: 0,
                config: TrainConfig::default(),
                context: FeatureContext {
                    categories: vec![ODD.into()],
                    tiers: vec![],
                },
                feature_names: features,
                churn,
                affinity: vec![CategoryModel {
                    category: ODD.into(),
                    model: AffinityModel::Smoothed {
                        base_rate: 0.1,
                        population_share: 1.0,
                        strength: 5.0,
                    },
                }],
                clv: ClvModels {
                    bgnbd: BgNbd {
                        r: 0.24,
                        alpha: 4.4,
                        a: 0.79,
                        b: 2.4,
                    },
                    gamma_gamma: None,
                },
            },
            send_time: SendTimeModel::fit(&counts, 16.0, 0.5).unwrap(),
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            lattice_version: "0.1.0".into(),
            name: "demo <script>".into(),
            created_at: "2025-07-01T00:00:00Z".into(),
            as_of: "2025-06-30T23:59:59Z".into(),
            as_of_us: 0,
            horizon_days: 60,
            affinity_days: 28,
            customers: 12345,
            categories: vec![ODD.into()],
            data: DataFingerprint {
                events: 1_000_000,
                first_event: "2024-01-01".into(),
                last_event: "2025-06-30".into(),
                files_sha256: "ab".repeat(32),
            },
            feature_transform: "z = (sign(x)*ln(1+|x|) - mean) / std".into(),
            feature_schema: vec![FeatureSpec {
                name: "feature_0".into(),
                mean: Some(0.0),
                std: Some(1.0),
            }],
            files: BTreeMap::new(),
            metrics: BTreeMap::new(),
            training_config: TrainConfig::default(),
        }
    }

    fn backtest() -> Backtest {
        let p: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let y: Vec<bool> = (0..1000).map(|i| (i * 7919) % 1000 < i).collect();
        let metrics = BinaryMetrics::compute(&p, &y);
        let hits = HitRates {
            hour_of_week_hit_at_1: 0.05,
            hour_of_week_hit_at_3: 0.12,
            hour_of_day_hit_at_1: 0.2,
            hour_of_day_hit_at_3: 0.45,
        };
        let cmp = Comparison {
            n_heldout: 500,
            model: hits,
            baseline: HitRates::default(),
        };
        Backtest {
            fit_cutoff: "2025-03-01".into(),
            test_window: "2025-03-02 .. 2025-06-30".into(),
            churn: metrics.clone(),
            churn_auc_bgnbd_only: Some(0.7),
            churn_alpha: 1.0,
            churn_calibration: "platt".into(),
            affinity: vec![CategoryMetrics {
                category: ODD.into(),
                model: "smoothed".into(),
                calibration: None,
                positives: 42,
                metrics,
            }],
            affinity_mean_auc: Some(0.8),
            clv: ClvMetrics {
                customers: 900,
                predicted_orders: 1234.5,
                actual_orders: 1200.0,
                mean_absolute_error: 0.8,
                correlation: f64::NAN,
            },
            send_time: Some(BacktestReport {
                kappa: 16.0,
                beta: 0.5,
                n_heldout: 500,
                model: hits,
                baseline: HitRates::default(),
                with_history: cmp,
                per_channel: vec![ChannelComparison {
                    channel: Channel::Email,
                    comparison: cmp,
                }],
                grid: vec![],
            }),
        }
    }

    #[test]
    fn full_report_has_every_plot_and_escapes_text() {
        let b = backtest();
        let html = render(&manifest(), &models(), Some(&b));
        // ROC, reliability, lift, coefficients, heatmap.
        assert_eq!(html.matches("<svg").count(), 5, "{html}");
        assert_eq!(html.matches("</svg>").count(), 5);
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert!(html.contains("Toys &lt;&amp;&gt; &quot;Games&quot;"));
        assert!(!html.contains(ODD) && !html.contains("<script"));
        assert!(html.contains("demo &lt;script&gt;"));
        // Self-contained: no scripts, no external resources.
        for banned in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!html.contains(banned), "{banned}");
        }
        assert!(!html.contains("could not be drawn"));
        assert!(!html.contains("Metrics were not computed"));
        // The calibration chosen for churn, and every category's reliability table.
        assert!(html.contains("churn (L2 α = 1, platt)"), "{html}");
        assert!(html.contains("Reliability tables by category"));
        assert!(html.contains("<th>churn calibration</th><td>Platt, a = 1"));
        for heading in [
            "AUC",
            "log loss",
            "Brier",
            "ECE",
            "top-decile lift",
            "hit@3",
        ] {
            assert!(html.contains(heading), "{heading}");
        }
        assert!(html.contains("n/a"), "a NaN correlation reads as n/a");
        // Top 15 coefficients, strongest first: feature_0 and feature_19 (|w| = 0.95).
        let top = top_coefficients(&models(), TOP_COEFFICIENTS);
        assert_eq!(top.len(), 15);
        assert_eq!(top[0].0, "feature_0");
        assert!(top.windows(2).all(|w| w[0].1.abs() >= w[1].1.abs()));
        assert!(html.contains(">\nfeature_0\n<") || html.contains(">feature_0<"));
    }

    #[test]
    fn report_without_backtest_says_so() {
        let html = render(&manifest(), &models(), None);
        assert!(html.contains("Metrics were not computed"));
        // Coefficients and heatmap only.
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        assert!(html.contains("Toys &lt;&amp;&gt; &quot;Games&quot;</td><td class=\"l\">smoothed"));
        assert!(!html.contains("could not be drawn"));
    }

    #[test]
    fn old_metrics_without_roc_render_a_note() {
        let mut b = backtest();
        b.churn.roc.clear();
        let html = render(&manifest(), &models(), Some(&b));
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("no ROC points"));
    }

    #[test]
    fn helpers() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
        assert_eq!(ramp(0.0), RGBColor(68, 1, 84));
        assert_eq!(ramp(1.0), RGBColor(253, 231, 37));
    }
}
