//! Prometheus metrics: request latency histograms and counts per route and status class, the
//! loaded model, reloads. Lock-free counters; the text format is rendered on scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// The routes measured, as their templates (never the customer id).
pub const ROUTES: [&str; 18] = [
    "/v1/customers/{id}/scores",
    "/v1/customers/{id}/next-best-actions",
    "/v1/customers/{id}/send-time",
    "/v1/customers/{id}/features",
    "/v1/events",
    "/v1/decisions/{id}",
    "/v1/score",
    "/v1/models",
    "/v1/admin/reload",
    "/v1/audiences",
    "/v1/audiences/options",
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "other",
    "unmatched",
];

const CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];

#[derive(Default)]
struct Histogram {
    /// Per bucket, not cumulative: one atomic add per request instead of one per bucket
    /// above the latency; the exposition sums them.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_ns: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    latency: [Histogram; ROUTES.len()],
    responses: [[AtomicU64; CLASSES.len()]; ROUTES.len()],
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Events stored by `POST /v1/events`.
    pub events_stored: AtomicU64,
    /// Events skipped because their `event_id` was already stored.
    pub events_duplicates: AtomicU64,
    /// Events in batches refused as invalid (422).
    pub events_rejected: AtomicU64,
    /// Batches refused because the database could not take them (503).
    pub events_unavailable: AtomicU64,
    /// Events refused because their `event_id` was taken by other content (409).
    pub events_conflicts: AtomicU64,
    /// Batches given up at their deadline before they were committed (503, nothing stored).
    pub events_abandoned: AtomicU64,
    /// `record=true` answers not recorded because the decision log was at its quota.
    pub decisions_refused: AtomicU64,
    /// Audience downloads being written now (each holds a blocking thread).
    pub streams_active: AtomicU64,
    /// Downloads cut off because the client took nothing for `--write-timeout-secs`.
    pub streams_timed_out: AtomicU64,
    /// Events applied to online state from the database at start or reload.
    pub events_replayed: AtomicU64,
    pub decisions_recorded: AtomicU64,
}

/// What the scrape reports about the events database, read when it happens.
pub struct EventsGauges {
    pub db_bytes: u64,
    pub online_customers: usize,
    /// `--max-online-customers`.
    pub online_limit: usize,
    /// Events of new customers not kept in online state because it was full.
    pub online_dropped: u64,
    /// Decisions in the log, and `--max-decisions`.
    pub decisions: u64,
    pub decisions_limit: u64,
}

/// Index in [`ROUTES`] of a matched route template (`None`: no route matched).
pub fn route_index(route: Option<&str>) -> usize {
    match route {
        None => ROUTES.len() - 1,
        Some(r) => ROUTES
            .iter()
            .position(|x| *x == r)
            .unwrap_or(ROUTES.len() - 2),
    }
}

impl Metrics {
    /// Records one response; `r` from [`route_index`].
    pub fn observe(&self, r: usize, status: u16, elapsed: Duration) {
        let h = &self.latency[r];
        let secs = elapsed.as_secs_f64();
        if let Some(k) = BUCKETS.iter().position(|&le| secs <= le) {
            h.buckets[k].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let class = match status {
            200..=299 => 0,
            400..=499 => 1,
            500..=599 => 2,
            _ => 3,
        };
        self.responses[r][class].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(
        &self,
        model: &str,
        model_as_of: &str,
        customers: usize,
        events: Option<EventsGauges>,
    ) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let _ = writeln!(
            out,
            "# HELP lattice_http_request_duration_seconds Request latency by route.\n\
             # TYPE lattice_http_request_duration_seconds histogram"
        );
        for (route, h) in ROUTES.iter().zip(&self.latency) {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (b, le) in h.buckets.iter().zip(BUCKETS) {
                cumulative += b.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "lattice_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            // Requests recorded between the two reads: +Inf is never below a finite bucket.
            let count = count.max(cumulative);
            let _ = writeln!(
                out,
                "lattice_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
                 lattice_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 lattice_http_request_duration_seconds_count{{route=\"{route}\"}} {count}",
                h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
        }
        let _ = writeln!(
            out,
            "# HELP lattice_http_responses_total Responses by route and status class.\n\
             # TYPE lattice_http_responses_total counter"
        );
        for (route, classes) in ROUTES.iter().zip(&self.responses) {
            for (class, n) in CLASSES.iter().zip(classes) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "lattice_http_responses_total{{route=\"{route}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP lattice_model_info The model being served.\n\
             # TYPE lattice_model_info gauge\n\
             lattice_model_info{{name=\"{}\",as_of=\"{}\",version=\"{}\"}} 1\n\
             # HELP lattice_model_customers Customers in the served snapshot.\n\
             # TYPE lattice_model_customers gauge\n\
             lattice_model_customers {customers}\n\
             # HELP lattice_model_reloads_total Model reloads by outcome.\n\
             # TYPE lattice_model_reloads_total counter\n\
             lattice_model_reloads_total{{outcome=\"ok\"}} {}\n\
             lattice_model_reloads_total{{outcome=\"refused\"}} {}\n\
             # HELP lattice_streams_active Streamed downloads being written (each holds a blocking thread).\n\
             # TYPE lattice_streams_active gauge\n\
             lattice_streams_active {}\n\
             # HELP lattice_streams_timed_out_total Streamed downloads cut off because the client stopped reading.\n\
             # TYPE lattice_streams_timed_out_total counter\n\
             lattice_streams_timed_out_total {}",
            esc(model),
            esc(model_as_of),
            env!("CARGO_PKG_VERSION"),
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
            self.streams_active.load(Ordering::Relaxed),
            self.streams_timed_out.load(Ordering::Relaxed),
        );
        if let Some(g) = events {
            let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP lattice_events_total Posted events by outcome.\n\
                 # TYPE lattice_events_total counter\n\
                 lattice_events_total{{outcome=\"stored\"}} {}\n\
                 lattice_events_total{{outcome=\"duplicate\"}} {}\n\
                 lattice_events_total{{outcome=\"rejected\"}} {}\n\
                 lattice_events_total{{outcome=\"conflict\"}} {}\n\
                 # HELP lattice_events_abandoned_total Batches given up at their deadline before commit (nothing stored).\n\
                 # TYPE lattice_events_abandoned_total counter\n\
                 lattice_events_abandoned_total {}\n\
                 # HELP lattice_events_unavailable_total Batches refused because the events database could not take writes.\n\
                 # TYPE lattice_events_unavailable_total counter\n\
                 lattice_events_unavailable_total {}\n\
                 # HELP lattice_events_replayed_total Stored events applied to online state at start or reload.\n\
                 # TYPE lattice_events_replayed_total counter\n\
                 lattice_events_replayed_total {}\n\
                 # HELP lattice_decisions_recorded_total Next-best-actions answers recorded in the decision log.\n\
                 # TYPE lattice_decisions_recorded_total counter\n\
                 lattice_decisions_recorded_total {}\n\
                 # HELP lattice_events_db_bytes Size of the events database (with its write-ahead log).\n\
                 # TYPE lattice_events_db_bytes gauge\n\
                 lattice_events_db_bytes {}\n\
                 # HELP lattice_online_customers Customers whose state events changed since the snapshot.\n\
                 # TYPE lattice_online_customers gauge\n\
                 lattice_online_customers {}\n\
                 # HELP lattice_online_customers_limit Most customers online state keeps (--max-online-customers).\n\
                 # TYPE lattice_online_customers_limit gauge\n\
                 lattice_online_customers_limit {}\n\
                 # HELP lattice_online_events_dropped_total Events of new customers not kept because online state was full (scored from the snapshot or cold start).\n\
                 # TYPE lattice_online_events_dropped_total counter\n\
                 lattice_online_events_dropped_total {}\n\
                 # HELP lattice_decisions_stored Decisions in the decision log.\n\
                 # TYPE lattice_decisions_stored gauge\n\
                 lattice_decisions_stored {}\n\
                 # HELP lattice_decisions_limit Most decisions the log keeps (--max-decisions).\n\
                 # TYPE lattice_decisions_limit gauge\n\
                 lattice_decisions_limit {}\n\
                 # HELP lattice_decisions_refused_total record=true answers not recorded: the decision log was full.\n\
                 # TYPE lattice_decisions_refused_total counter\n\
                 lattice_decisions_refused_total {}",
                n(&self.events_stored),
                n(&self.events_duplicates),
                n(&self.events_rejected),
                n(&self.events_conflicts),
                n(&self.events_abandoned),
                n(&self.events_unavailable),
                n(&self.events_replayed),
                n(&self.decisions_recorded),
                g.db_bytes,
                g.online_customers,
                g.online_limit,
                g.online_dropped,
                g.decisions,
                g.decisions_limit,
                n(&self.decisions_refused),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(text: &str, le: &str) -> u64 {
        let key = format!(
            "lattice_http_request_duration_seconds_bucket{{route=\"/v1/models\",le=\"{le}\"}} "
        );
        let line = text.lines().find(|l| l.starts_with(&key)).expect(&key);
        line[key.len()..].parse().expect("a count")
    }

    #[test]
    fn buckets_are_cumulative_in_the_exposition() {
        let m = Metrics::default();
        let r = route_index(Some("/v1/models"));
        for us in [40, 90, 90, 700, 3_000_000] {
            m.observe(r, 200, Duration::from_micros(us));
        }
        let text = m.render("demo", "2025-01-01", 1, None);
        assert_eq!(bucket(&text, "0.00005"), 1);
        assert_eq!(bucket(&text, "0.0001"), 3);
        assert_eq!(bucket(&text, "0.00025"), 3);
        assert_eq!(bucket(&text, "0.001"), 4);
        assert_eq!(bucket(&text, "1"), 4);
        assert_eq!(bucket(&text, "+Inf"), 5);
        assert!(
            text.contains("lattice_http_request_duration_seconds_count{route=\"/v1/models\"} 5")
        );
    }
}
