//! The page: the HTML document, its style sheet, and the order of its sections.

use std::fmt::Write as _;

use lattice_models::artifact::Manifest;
use lattice_models::pipeline::Backtest;
use lattice_models::score::Models;

use crate::affinity::affinity_section;
use crate::churn::churn_section;
use crate::clv::clv_section;
use crate::format::escape;
use crate::model::model_section;
use crate::send_time::send_time_section;

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
