//! Events in the customer's own clock: hour of week in their IANA time zone, for send-time
//! profiles. Streamed from DataFusion, so memory stays flat however long the history.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{Datelike, TimeZone, Timelike};
use chrono_tz::Tz;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use futures::StreamExt;

use crate::aggregates::Profile;
use crate::error::{FeatureError, Result};
use crate::history::{History, TS_US};

/// Hour of week (0 = Monday 00:00) of instant `us` in `tz`.
pub fn hour_of_week(us: i64, tz: &Tz) -> Option<u8> {
    let t = chrono::DateTime::from_timestamp_micros(us)?;
    let local = tz.from_utc_datetime(&t.naive_utc());
    Some((local.weekday().num_days_from_monday() * 24 + local.hour()) as u8)
}

/// Each customer's time zone, from their profile or the default.
pub struct TimeZones {
    default: Tz,
    by_customer: HashMap<String, Tz>,
}

impl TimeZones {
    pub fn new(profiles: &HashMap<String, Profile>, default: &str) -> Result<Self> {
        let default = Tz::from_str(default)
            .map_err(|_| FeatureError::Invalid(format!("unknown default time zone {default:?}")))?;
        // Profiles were validated on read, so an unparseable zone cannot occur; fall back anyway.
        let by_customer = profiles
            .iter()
            .filter_map(|(id, p)| {
                let tz = Tz::from_str(p.timezone.as_deref()?).ok()?;
                Some((id.clone(), tz))
            })
            .collect();
        Ok(TimeZones {
            default,
            by_customer,
        })
    }

    pub fn of(&self, customer: &str) -> &Tz {
        self.by_customer.get(customer).unwrap_or(&self.default)
    }
}

impl History {
    /// Calls `f(customer_id, event_type, local hour of week, ts_us)` for every event a customer
    /// made in `(from_us, to_us]` (contacts, which the business sends, are left out), for the
    /// customers in the sample of `fraction` ([`crate::sample`]).
    pub async fn for_each_local_event(
        &self,
        zones: &TimeZones,
        from_us: i64,
        to_us: i64,
        fraction: f64,
        mut f: impl FnMut(&str, &str, u8, i64),
    ) -> Result<()> {
        let sql = format!(
            "SELECT arrow_cast(customer_id, 'Utf8') AS customer_id, arrow_cast(event_type, 'Utf8') AS event_type, {TS_US} AS t \
             FROM events WHERE {TS_US} > {from_us} AND {TS_US} <= {to_us} AND event_type <> 'contact'{}",
            crate::sample::sql_filter(fraction)
        );
        let mut stream = self.sql(&sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let ids = b.column(0).as_string::<i32>();
            let types = b.column(1).as_string::<i32>();
            let ts = b.column(2).as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                let id = ids.value(r);
                if let Some(how) = hour_of_week(ts.value(r), zones.of(id)) {
                    f(id, types.value(r), how, ts.value(r));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_week_in_local_time() {
        // 2024-01-01 was a Monday. 14:00 UTC is 09:00 in New York (EST) and 01:00 Tuesday in
        // Auckland (NZDT).
        let us = 1_704_117_600_000_000;
        assert_eq!(hour_of_week(us, &Tz::UTC), Some(14));
        assert_eq!(hour_of_week(us, &chrono_tz::America::New_York), Some(9));
        assert_eq!(
            hour_of_week(us, &chrono_tz::Pacific::Auckland),
            Some(24 + 3)
        );
    }
}
