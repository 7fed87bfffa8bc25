//! Text of the page: escaping, numbers as the tables show them, and the shared tables (a
//! key-value table, a row of binary-classifier metrics).

use std::fmt::Write as _;

use lattice_models::metrics::BinaryMetrics;

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

pub(crate) fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".into()
    }
}

pub(crate) fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| num(v, decimals))
}

/// A parameter as Rust prints it: 100 → "100", 0.5 → "0.5".
pub(crate) fn short(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        "n/a".into()
    }
}

pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", 100.0 * v)
    } else {
        "n/a".into()
    }
}

/// Digits grouped by thousands: 12345 → "12,345".
pub(crate) fn count(n: u64) -> String {
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
pub(crate) fn kv_table(h: &mut String, rows: &[(&str, String)]) {
    h.push_str("<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    }
    h.push_str("</table>\n");
}

/// A JSON value as short text: arrays joined with ", ", strings unquoted.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

pub(crate) fn binary_row(m: &BinaryMetrics) -> String {
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

pub(crate) const BINARY_HEAD: &str = "<th>n</th><th>base rate</th><th>AUC</th><th>log loss</th>\
<th>Brier</th><th>ECE</th><th>top-decile lift</th><th>top-decile precision</th>";
