//! The model section: identity, training configuration, features and calibration.

use lattice_models::artifact::Manifest;
use lattice_models::calibration::Calibration;
use lattice_models::logistic::LogisticModel;
use lattice_models::score::Models;

use crate::format::*;

pub(crate) fn model_section(h: &mut String, m: &Manifest, models: &Models) {
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
    h.push_str("<h3>Fitted parameters</h3>\n");
    kv_table(
        h,
        &[
            ("churn L2 strength", short(churn.alpha)),
            ("churn calibration", calibration_text(churn)),
            (
                "send-time smoothing",
                crate::send_time::smoothing_text(models),
            ),
        ],
    );
    h.push_str("</div>\n</div>\n");
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
