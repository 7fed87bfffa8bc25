//! `POST /v1/events`, `GET /v1/customers/{id}/features` and `GET /v1/decisions/{id}`: events
//! in (stored, then applied to online state), the features they moved, and the decision log.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lattice_events::{BatchError, Decision, Event, StoreError, parse_batch};
use lattice_features::online::is_exact_feature;

use crate::api::*;
use crate::deadline::{CommitGate, RequestTimeout, run_gated, timed_out};
use crate::guard::{EVENTS, SCORE, Scoped};
use crate::problem::Problem;
use crate::state::AppState;

fn unavailable(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "events-unavailable",
        detail,
    )
}

/// A store error as the client sees it: 503 (retry later; nothing was acknowledged) when the
/// database cannot take writes, 500 otherwise. Logged with the path and SQLite's reason.
pub fn store_problem(e: &StoreError) -> Problem {
    if e.is_unavailable() {
        tracing::error!(error = %e, "events database refused a write; answering 503");
        unavailable(
            "the events database cannot take writes (disk full, size limit or read-only); \
             nothing of this request was stored; retry later",
        )
    } else {
        tracing::error!(error = %e, "events database error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "events-error",
            "the events database failed; nothing of this request was stored",
        )
    }
}

fn problem_json(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

fn refused(errors: Vec<lattice_events::FieldError>, errors_total: usize) -> Response {
    let mut idx: Vec<usize> = errors.iter().map(|e| e.index).collect();
    idx.dedup();
    let detail = if errors_total > errors.len() {
        format!(
            "{errors_total} problem(s), the first {} listed (in {} event(s)); nothing of the \
             batch was stored",
            errors.len(),
            idx.len()
        )
    } else {
        format!(
            "{errors_total} problem(s) in {} event(s); nothing of the batch was stored",
            idx.len()
        )
    };
    let body = EventsProblem {
        kind: "https://lattice.dev/problems/invalid-events".into(),
        title: "Unprocessable Entity".into(),
        status: 422,
        detail,
        errors_total,
        errors: errors
            .into_iter()
            .map(|e| EventErrorDoc {
                index: e.index,
                field: e.field,
                rule: e.rule.to_string(),
                message: e.message,
            })
            .collect(),
    };
    problem_json(StatusCode::UNPROCESSABLE_ENTITY, body)
}

fn conflicted(conflicts: Vec<lattice_events::Conflict>) -> Response {
    let body = EventsConflict {
        kind: "https://lattice.dev/problems/event-id-conflict".into(),
        title: "Conflict".into(),
        status: 409,
        detail: format!(
            "{} event id(s) already stored (or repeated in this batch) with different content; \
             an event id names one event: give a different event its own id. Nothing of the \
             batch was stored",
            conflicts.len()
        ),
        conflicts: conflicts
            .into_iter()
            .map(|c| ConflictDoc {
                index: c.index,
                event_id: c.event_id,
            })
            .collect(),
    };
    problem_json(StatusCode::CONFLICT, body)
}

#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body(content = Vec<EventDoc>, description = "A JSON array of events, or NDJSON (`Content-Type: application/x-ndjson`), at most 10,000"),
    responses(
        (status = 200, body = EventsAccepted, description = "Stored (committed to disk) and applied"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "The body is not a JSON array or NDJSON"),
        (status = 409, body = EventsConflict, content_type = "application/problem+json", description = "Event ids reused with different content, each listed; nothing stored"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "The body or the batch is too large"),
        (status = 422, body = EventsProblem, content_type = "application/problem+json", description = "Invalid events, the first 100 listed; nothing stored"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The events database cannot take writes, or the deadline passed: nothing stored, retry"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn post_events(
    _: Scoped<EVENTS>,
    State(state): State<AppState>,
    Extension(RequestTimeout(timeout)): Extension<RequestTimeout>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, Problem> {
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson"));
    if state.0.events.is_none() {
        return Err(unavailable(
            "this server was started without an events database",
        ));
    }
    // The batch must arrive within the deadline too; what is left of it decides the commit.
    let (body, left) =
        match crate::deadline::receive::<Bytes>(req, timeout, "receiving the batch").await {
            Ok(received) => received,
            Err(p) => {
                if p.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
                    state
                        .0
                        .metrics
                        .events_abandoned
                        .fetch_add(1, Ordering::Relaxed);
                }
                return Err(p);
            }
        };
    let now = Utc::now().timestamp_micros();
    let st = state.clone();
    // Parsing a 32 MiB batch is real CPU: it runs on the blocking thread with the commit.
    run_gated(left, "storing the batch", move |gate| {
        let events = match parse_batch(&body, ndjson, now) {
            Ok(e) => e,
            Err(BatchError::Invalid {
                events,
                errors,
                errors_total,
            }) => {
                // The whole batch is refused, not only its bad events.
                st.0.metrics
                    .events_rejected
                    .fetch_add(events as u64, Ordering::Relaxed);
                return Ok(refused(errors, errors_total));
            }
            Err(BatchError::Body(m)) => return Err(Problem::bad_request("body", m)),
            Err(BatchError::Empty) => {
                // The documented 422 body of this route: an events problem with nothing listed.
                return Ok(problem_json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    EventsProblem {
                        kind: "https://lattice.dev/problems/invalid-events".into(),
                        title: "Unprocessable Entity".into(),
                        status: 422,
                        detail: "the batch holds no events (expected a JSON array of 1 to \
                                 10,000 events, or NDJSON lines)"
                            .into(),
                        errors: Vec::new(),
                        errors_total: 0,
                    },
                ));
            }
            Err(BatchError::TooMany { got, max }) => {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-many-events",
                    format!("{got} events in one batch; at most {max}"),
                ));
            }
        };
        drop(body);
        match ingest(&st, &events, now, gate) {
            Ok(accepted) => Ok(Json(accepted).into_response()),
            Err(StoreError::Conflict(c)) => {
                st.0.metrics
                    .events_conflicts
                    .fetch_add(c.len() as u64, Ordering::Relaxed);
                Ok(conflicted(c))
            }
            Err(StoreError::Abandoned) => {
                st.0.metrics
                    .events_abandoned
                    .fetch_add(1, Ordering::Relaxed);
                Err(timed_out("storing the batch", timeout))
            }
            Err(e) => {
                st.0.metrics
                    .events_unavailable
                    .fetch_add(1, Ordering::Relaxed);
                Err(store_problem(&e))
            }
        }
    })
    .await
}

/// Stores a batch (committed before returning, unless `gate` says the request was given up)
/// and applies its new events to online state, in the order batches were stored
/// (hand-over-hand: the apply lock is taken before the store's is released, and a reload takes
/// both).
fn ingest(
    state: &AppState,
    events: &[Event],
    now_us: i64,
    gate: &CommitGate,
) -> Result<EventsAccepted, StoreError> {
    let Some(ev) = &state.0.events else {
        unreachable!("checked by the handler");
    };
    let mut store = ev.store.lock().unwrap_or_else(|p| p.into_inner());
    let mut fresh = Vec::with_capacity(events.len());
    let appended = store.append(events, now_us, &mut fresh, &|c| gate.proceed(c))?;
    let new: Vec<&Event> = events
        .iter()
        .zip(&fresh)
        .filter_map(|(e, &f)| f.then_some(e))
        .collect();
    let applying = ev.apply.lock().unwrap_or_else(|p| p.into_inner());
    drop(store);
    let model = state.model();
    let applied = model.online.apply(&model, &new);
    // Responses to recorded decisions, and windows that have ended.
    let now = DateTime::from_timestamp_micros(now_us).unwrap_or_else(Utc::now);
    model.learning.observe(&new, now);
    // A challenger keeps its own online state and learning from the same events.
    if let Some(c) = &*state.0.challenger.load() {
        c.online.apply(c, &new);
        c.learning.observe(&new, now);
    }
    drop(applying);
    let m = &state.0.metrics;
    m.events_stored
        .fetch_add(appended.stored as u64, Ordering::Relaxed);
    m.events_duplicates
        .fetch_add(appended.duplicates as u64, Ordering::Relaxed);
    Ok(EventsAccepted {
        stored: appended.stored,
        duplicates: appended.duplicates,
        applied: applied.events,
        before_as_of: applied.before_as_of,
        new_customers: applied.new_customers,
        dropped: applied.dropped,
    })
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/features", tag = "scores",
    params(("id" = String, Path, description = "Customer id"), FeaturesQuery),
    responses(
        (status = 200, body = FeaturesResponse),
        (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn features(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<FeaturesQuery>,
) -> Result<Json<FeaturesResponse>, Problem> {
    let m = state.model();
    let online = m.online.get(&id);
    // The snapshot position, or `None` for a customer only the online state knows.
    let (values, from, source, at_snapshot) = match &online {
        Some(c) => (&c.values[..], c.at_us, "online", None),
        None => {
            let i = m
                .snapshot
                .get(&id)
                .ok_or_else(|| Problem::unknown_customer(&id))?;
            (m.snapshot.values(i), m.as_of_us(), "snapshot", Some(i))
        }
    };
    let names = &m.snapshot.feature_names;
    let (at, row) = match q.at {
        None => (from, values[..names.len()].to_vec()),
        Some(t) => {
            let at = t.timestamp_micros();
            if at < from {
                return Err(Problem::unprocessable(
                    "at",
                    format!(
                        "features can be evaluated from {} on (the customer's latest event or \
                         the model's as_of), not at {}",
                        fmt_us(from),
                        t.to_rfc3339()
                    ),
                ));
            }
            let mut row = vec![0.0; names.len()];
            match (&online, at_snapshot) {
                (Some(c), _) => {
                    m.models
                        .feature_row(&c.aggregates, &c.record.profile(), at, &mut row)
                }
                (None, Some(i)) => {
                    let a = m.snapshot.aggregates(i).ok_or_else(|| {
                        Problem::unprocessable(
                            "at",
                            "this snapshot carries no aggregates to evaluate",
                        )
                    })?;
                    m.models
                        .feature_row(&a, &m.record(i).profile(), at, &mut row)
                }
                (None, None) => unreachable!("a customer is online or in the snapshot"),
            }
            (at, row)
        }
    };
    Ok(Json(FeaturesResponse {
        customer_id: id,
        at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
        source,
        features: names.iter().cloned().zip(row).collect::<BTreeMap<_, _>>(),
        exact: names
            .iter()
            .filter(|n| is_exact_feature(n))
            .cloned()
            .collect(),
    }))
}

fn fmt_us(us: i64) -> String {
    DateTime::from_timestamp_micros(us).map_or_else(|| us.to_string(), |t| t.to_rfc3339())
}

fn ts(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.and_then(DateTime::from_timestamp_micros)
}

#[utoipa::path(
    get, path = "/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path, description = "The decision_id of a recorded answer")),
    responses(
        (status = 200, body = DecisionRecordDoc),
        (status = 404, body = Problem), (status = 503, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn decision(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DecisionRecordDoc>, Problem> {
    let st = state.clone();
    let id2 = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        let ev = st.0.events.as_ref()?;
        let store = ev.store.lock().unwrap_or_else(|p| p.into_inner());
        Some(store.decision(&id2))
    })
    .await
    .map_err(|e| Problem::internal("reading the decision", &e))?;
    let d: Decision = match found {
        None => {
            return Err(unavailable(
                "this server was started without an events database",
            ));
        }
        Some(Err(e)) => return Err(store_problem(&e)),
        Some(Ok(None)) => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-decision",
                format!("no recorded decision {id:?} (record one with record=true)"),
            ));
        }
        Some(Ok(Some(d))) => d,
    };
    Ok(Json(DecisionRecordDoc {
        decision_id: d.decision_id,
        customer_id: d.customer_id,
        decided_at: DateTime::from_timestamp_micros(d.decided_us).unwrap_or_default(),
        model: d.model,
        probability: d.probability,
        actions: d
            .actions
            .into_iter()
            .map(|a| DecidedActionDoc {
                rank: a.rank,
                action_id: a.action_id,
                channel: a.channel,
                send_at: ts(a.send_at_us),
                score: a.score,
                contacted_at: ts(a.contacted_us),
                redeemed_at: ts(a.redeemed_us),
            })
            .collect(),
    }))
}
