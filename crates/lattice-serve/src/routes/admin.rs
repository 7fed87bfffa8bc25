//! The served models: what is loaded, reload, and promoting the challenger.

use crate::api::*;
use crate::guard::{ADMIN, SCORE, Scoped};
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lattice_runtime::Runtime;

pub fn model_info(m: &Runtime) -> ModelInfo {
    let man = &m.manifest;
    ModelInfo {
        name: man.name.clone(),
        lattice_version: man.lattice_version.clone(),
        as_of: man.as_of.clone(),
        created_at: man.created_at.clone(),
        horizon_days: man.horizon_days,
        customers: m.customers(),
        categories: man.categories.clone(),
        features: man.feature_schema.iter().map(|f| f.name.clone()).collect(),
        variables: m.snapshot.variables.clone(),
        actions: m.catalog.len(),
        metrics: man.metrics.clone().into_iter().collect(),
    }
}

#[utoipa::path(
    get, path = "/v1/models", tag = "operations",
    responses((status = 200, body = ModelsResponse), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("api_key" = []))
)]
pub async fn models(_: Scoped<SCORE>, State(state): State<AppState>) -> Json<ModelsResponse> {
    Json(ModelsResponse {
        models: vec![model_info(&state.model())],
    })
}

#[utoipa::path(
    post, path = "/v1/admin/reload", tag = "operations",
    request_body(content = ReloadRequest, description = "Optional: another model directory"),
    responses(
        (status = 200, body = ReloadResponse),
        (status = 422, description = "The new model was refused; the old one keeps serving", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A path outside the reload roots, or a key without the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another reload is running; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Abandoned at the deadline; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn reload(
    _: Scoped<ADMIN>,
    State(state): State<AppState>,
    axum::Extension(crate::deadline::RequestTimeout(timeout)): axum::Extension<
        crate::deadline::RequestTimeout,
    >,
    req: axum::extract::Request,
) -> Result<Json<ReloadResponse>, Problem> {
    let (body, left) =
        crate::deadline::receive::<axum::body::Bytes>(req, timeout, "receiving the reload request")
            .await?;
    // The body is optional: empty means "reload what is served".
    let req: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                format!("reload body: {e} (expected {{\"model\": DIR, \"actions\": FILE}}, both optional)"),
            )
        })?
    };
    let m = state
        .reload(
            req.model.map(Into::into),
            req.actions.map(Into::into),
            Some(left),
        )
        .await?;
    Ok(Json(ReloadResponse {
        reloaded: true,
        model: model_info(&m),
    }))
}

#[utoipa::path(
    post, path = "/v1/admin/promote", tag = "operations",
    responses(
        (status = 200, body = ReloadResponse, description = "The challenger now serves every customer"),
        (status = 409, body = Problem, description = "No challenger is served"),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn promote(
    _: Scoped<ADMIN>,
    State(state): State<AppState>,
) -> Result<Json<ReloadResponse>, Problem> {
    let m = state.promote().await.ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "no-challenger",
            "no challenger to promote (start the server with --challenger DIR)",
        )
    })?;
    Ok(Json(ReloadResponse {
        reloaded: true,
        model: model_info(&m),
    }))
}
