//! Health, readiness, Prometheus metrics and the answer for unknown paths.

use crate::api::*;
use crate::metrics::EventsGauges;
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::sync::atomic::Ordering;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        model: None,
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ready",
        model: Some(state.model().manifest.name.clone()),
    })
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.model();
    let events = state.0.events.as_ref().map(|e| EventsGauges {
        db_bytes: lattice_events::store::db_bytes(&e.path),
        online_customers: m.online.len(),
        online_limit: m.online.limit(),
        online_dropped: m.online.dropped(),
        decisions: e.decisions.load(Ordering::Relaxed),
        decisions_limit: e.max_decisions,
    });
    let body = state
        .0
        .metrics
        .render(&m.manifest.name, &m.manifest.as_of, m.customers(), events);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Unknown paths: problem+json rather than an empty 404.
pub async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such endpoint (GET /openapi.json lists them)",
    )
}
