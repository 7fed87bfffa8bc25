//! Handlers: thin glue from HTTP to the loaded model and `lattice-decide`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lattice_decide::{Context, RankOptions};
use lattice_models::sendtime::{Channel as SendChannel, ProfileSource};

use crate::api::*;
use crate::extract::{ApiJson, ApiQuery};
use crate::guard::{ADMIN, SCORE, Scoped};
use crate::model::{LoadedModel, Scratch, send_channel};
use crate::problem::Problem;
use crate::state::AppState;

/// Most ids (and inline records) in one `POST /v1/score`.
pub const MAX_BATCH: usize = 10_000;
/// Most actions in one answer.
pub const MAX_LIMIT: usize = 100;

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn customer_index(m: &LoadedModel, id: &str) -> Result<usize, Problem> {
    m.snapshot
        .get(id)
        .ok_or_else(|| Problem::unknown_customer(id))
}

fn parse_channel(field: &str, v: Option<&str>) -> Result<Option<lattice_decide::Channel>, Problem> {
    match v {
        None => Ok(None),
        Some(s) => lattice_decide::Channel::parse(s).map(Some).ok_or_else(|| {
            Problem::bad_request(
                field,
                format!("unknown channel {s:?} (expected email, sms or push)"),
            )
        }),
    }
}

fn top_affinities(m: &LoadedModel, affinity: &[f64]) -> Vec<Affinity> {
    let mut all: Vec<Affinity> = m
        .manifest
        .categories
        .iter()
        .zip(affinity)
        .map(|(c, p)| Affinity {
            category: c.clone(),
            probability: *p,
        })
        .collect();
    all.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then_with(|| a.category.cmp(&b.category))
    });
    all.truncate(3);
    all
}

fn snapshot_scores(m: &LoadedModel, i: usize) -> ScoresResponse {
    let rec = m.record(i);
    let s = m.snapshot.scores(i);
    ScoresResponse {
        customer_id: rec.id.clone(),
        churn_probability: s[0],
        horizon_days: m.manifest.horizon_days,
        p_alive: s[1],
        expected_purchases: s[2],
        clv: s[3],
        top_affinities: top_affinities(m, &s[4..]),
        tier: rec.tier.clone(),
        points_balance: rec.points_balance,
        churn_reasons: rec.churn_reasons.clone(),
        source: "snapshot",
    }
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/scores", tag = "scores",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, body = ScoresResponse),
        (status = 404, description = "Unknown customer", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn scores(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScoresResponse>, Problem> {
    let m = state.model();
    let i = customer_index(&m, &id)?;
    Ok(Json(snapshot_scores(&m, i)))
}

fn rank_options(
    limit: Option<usize>,
    channel: Option<&str>,
    explain: Option<bool>,
) -> Result<RankOptions, Problem> {
    let limit = limit.unwrap_or(5);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::unprocessable(
            "limit",
            format!("limit must be 1 to {MAX_LIMIT} (got {limit})"),
        ));
    }
    Ok(RankOptions {
        limit,
        channel: parse_channel("channel", channel)?,
        explain: explain.unwrap_or(false),
    })
}

fn decide(
    m: &LoadedModel,
    id: &str,
    context: &Context<'_>,
    options: &RankOptions,
) -> Result<Response, Problem> {
    let i = customer_index(m, id)?;
    let mut scratch = Scratch::default();
    let customer = m.customer(i, &mut scratch);
    // The decision written straight into the body, sized for a typical answer (~400 bytes an
    // action), so it is allocated once.
    let mut body = Vec::with_capacity(512 + 512 * options.limit.min(8));
    m.catalog.rank_json(&customer, context, options, &mut body);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/next-best-actions", tag = "decisions",
    params(("id" = String, Path, description = "Customer id"), ActionsQuery),
    responses(
        (status = 200, body = DecisionDoc),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn next_best_actions(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ActionsQuery>,
) -> Result<Response, Problem> {
    let options = rank_options(q.limit, q.channel.as_deref(), q.explain)?;
    let m = state.model();
    decide(&m, &id, &Context::at(Utc::now()), &options)
}

#[utoipa::path(
    post, path = "/v1/customers/{id}/next-best-actions", tag = "decisions",
    params(("id" = String, Path, description = "Customer id")),
    request_body = ActionsRequest,
    responses(
        (status = 200, body = DecisionDoc),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn next_best_actions_in_context(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ActionsRequest>,
) -> Result<Response, Problem> {
    let options = rank_options(req.limit, req.channel.as_deref(), req.explain)?;
    let c = &req.context;
    let context = Context {
        now: c.now.unwrap_or_else(Utc::now),
        channel: parse_channel("context.channel", c.channel.as_deref())?,
        category: c.category.as_deref(),
        page: c.page.as_deref(),
        store: c.store.as_deref(),
    };
    let m = state.model();
    decide(&m, &id, &context, &options)
}

#[utoipa::path(
    get, path = "/v1/customers/{id}/send-time", tag = "send time",
    params(("id" = String, Path, description = "Customer id"), SendTimeQuery),
    responses(
        (status = 200, body = SendTimeResponse),
        (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn send_time(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SendTimeQuery>,
) -> Result<Json<SendTimeResponse>, Problem> {
    let channel = parse_channel("channel", q.channel.as_deref())?;
    let m = state.model();
    let i = customer_index(&m, &id)?;
    let sc = channel.map_or(SendChannel::Any, send_channel);
    let counts = m.record(i).counts();
    let rec = m.models.send_time.recommend(&counts, sc);
    let profile = m.profile(i, sc);
    let tz = m.timezone(i);
    let send_at = m
        .catalog
        .send_at(Utc::now(), tz, Some(&profile), false)
        .to_rfc3339();
    Ok(Json(SendTimeResponse {
        customer_id: id,
        channel: sc.name().to_string(),
        timezone: tz.name().to_string(),
        source: match rec.source {
            ProfileSource::Channel => "channel",
            ProfileSource::AllActivity => "all_activity",
            ProfileSource::Population => "population",
        }
        .to_string(),
        observations: rec.observations,
        hours_of_week: rec
            .hours_of_week
            .iter()
            .map(|s| WeekSlot {
                hour_of_week: s.slot,
                day: DAYS[usize::from(s.slot / 24) % 7],
                hour: s.slot % 24,
                probability: s.probability,
                observations: s.observations,
            })
            .collect(),
        hours_of_day: rec
            .hours_of_day
            .iter()
            .map(|s| DaySlot {
                hour: s.slot,
                probability: s.probability,
            })
            .collect(),
        confidence: rec.top3_hours_of_week_mass(),
        send_at,
    }))
}

fn inline_scores(m: &LoadedModel, k: usize, c: &InlineCustomer) -> Result<ScoresResponse, Problem> {
    let (row, s) = m
        .models
        .score_inline(|name| c.features.get(name).copied())
        .map_err(|e| {
            let mut detail = format!("customer {:?}:", c.customer_id);
            if !e.missing.is_empty() {
                detail.push_str(&format!(" missing features {:?}", e.missing));
            }
            if !e.invalid.is_empty() {
                detail.push_str(&format!(" non-finite features {:?}", e.invalid));
            }
            Problem::unprocessable(&format!("customers[{k}].features"), detail)
        })?;
    if let Some(extra) = c
        .features
        .keys()
        .find(|n| !m.models.fitted.feature_names.contains(n))
    {
        return Err(Problem::unprocessable(
            &format!("customers[{k}].features.{extra}"),
            format!("unknown feature {extra:?} (GET /v1/models lists the model's features)"),
        ));
    }
    let spend = m.spend_365d(&row);
    Ok(ScoresResponse {
        customer_id: c.customer_id.clone(),
        churn_probability: s.churn_probability,
        horizon_days: m.manifest.horizon_days,
        p_alive: s.p_alive,
        expected_purchases: s.expected_purchases,
        clv: s.clv,
        top_affinities: top_affinities(m, &s.affinity),
        tier: m.settings.tier_for(spend).0.map(|t| t.name.clone()),
        points_balance: None,
        churn_reasons: s.churn_reasons.into_iter().map(|r| r.feature).collect(),
        source: "inline",
    })
}

#[utoipa::path(
    post, path = "/v1/score", tag = "scores",
    request_body = BatchRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 400, body = Problem), (status = 422, body = Problem), (status = 413, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn score_batch(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, Problem> {
    let n = req.customer_ids.len() + req.customers.len();
    if n > MAX_BATCH {
        return Err(Problem::unprocessable(
            "customer_ids",
            format!("at most {MAX_BATCH} customers per call (got {n}); split the request"),
        ));
    }
    if n == 0 {
        return Err(Problem::unprocessable(
            "customer_ids",
            "give `customer_ids` and/or inline `customers`",
        ));
    }
    let m = state.model();
    let mut scores = Vec::with_capacity(n);
    let mut not_found = Vec::new();
    for id in &req.customer_ids {
        match m.snapshot.get(id) {
            Some(i) => scores.push(snapshot_scores(&m, i)),
            None => not_found.push(id.clone()),
        }
    }
    for (k, c) in req.customers.iter().enumerate() {
        scores.push(inline_scores(&m, k, c)?);
    }
    Ok(Json(BatchResponse {
        model: m.manifest.name.clone(),
        scores,
        not_found,
    }))
}

pub fn model_info(m: &LoadedModel) -> ModelInfo {
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
        (status = 422, description = "The new model was refused; the old one keeps serving", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn reload(
    _: Scoped<ADMIN>,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ReloadResponse>, Problem> {
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
        .reload(req.model.map(Into::into), req.actions.map(Into::into))
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "model-refused",
                format!("{e} (the previous model keeps serving)"),
            )
        })?;
    Ok(Json(ReloadResponse {
        reloaded: true,
        model: model_info(&m),
    }))
}

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
    let body = state
        .0
        .metrics
        .render(&m.manifest.name, &m.manifest.as_of, m.customers());
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
