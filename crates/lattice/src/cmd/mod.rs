pub mod audience;
pub mod cluster;
pub mod evaluate;
pub mod export_decisions;
pub mod export_events;
pub mod features;
pub mod generate;
pub mod import;
pub mod performance;
pub mod policy_eval;
pub mod progress;
pub mod quickstart;
pub mod score;
#[cfg(feature = "cluster")]
pub mod score_cluster;
pub mod serve;
pub mod simulate;
pub mod train;
pub mod uplift;
pub mod validate;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

/// Parses an `--as-of` style instant: RFC 3339, or a date meaning the end of that day (UTC).
pub fn parse_instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let end = d
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .context("valid time")?;
        return Ok(end.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp"))
}
