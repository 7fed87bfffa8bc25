//! `report.html`: a trained model directory described for people. One self-contained HTML file
//! (inline CSS and SVG, no scripts, no external assets): the model's identity and training
//! configuration, the backtest metrics as tables, and plots drawn by `plotters` as SVG: ROC
//! curve, reliability curve and lift by decile of the churn backtest, the churn model's
//! strongest coefficients and the population's send-time heatmap.
//!
//! Every interpolated text is HTML-escaped; plot labels are escaped by plotters' SVG backend.
//! Text in the plots is laid out by the browser (plotters is built without font loading).

mod affinity;
mod charts;
mod churn;
mod clv;
mod format;
mod model;
mod page;
mod send_time;
#[cfg(test)]
mod tests;

pub use format::escape;
pub use page::render;
