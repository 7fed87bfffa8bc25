//! Scores and send times: one customer (`/v1/customers/{id}/scores`, `/send-time`) and a batch
//! (`POST /v1/score`).

use crate::api::*;
use crate::extract::{ApiJson, ApiQuery};
use crate::guard::{SCORE, Scoped};
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use lattice_models::sendtime::{Channel as SendChannel, ProfileSource};
use lattice_models::snapshot::CustomerRecord;
use lattice_runtime::{Runtime, send_channel};

use super::{customer_index, parse_channel};

/// Most ids (and inline records) in one `POST /v1/score`.
pub const MAX_BATCH: usize = 10_000;

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn top_affinities(m: &Runtime, affinity: &[f64]) -> Vec<Affinity> {
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

/// The scores part of a value row (after the features), as the API answers them.
fn scores_response(
    m: &Runtime,
    rec: &CustomerRecord,
    values: &[f64],
    source: &'static str,
) -> ScoresResponse {
    let nf = m.snapshot.feature_names.len();
    let s = &values[nf..nf + m.snapshot.score_names.len()];
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
        source,
    }
}

fn snapshot_scores(m: &Runtime, i: usize) -> ScoresResponse {
    scores_response(m, m.record(i), m.snapshot.values(i), "snapshot")
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
    if let Some(c) = m.online.get(&id) {
        return Ok(Json(scores_response(&m, &c.record, &c.values, "online")));
    }
    let i = customer_index(&m, &id)?;
    Ok(Json(snapshot_scores(&m, i)))
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
    let online = m.online.get(&id);
    let (record, tz) = match &online {
        Some(c) => (&c.record, c.tz),
        None => {
            let i = customer_index(&m, &id)?;
            (m.record(i), m.timezone(i))
        }
    };
    let sc = channel.map_or(SendChannel::Any, send_channel);
    let counts = record.counts();
    let rec = m.models.send_time.recommend(&counts, sc);
    // The weights next-best-actions chooses from, so both answer the same instant.
    let mut weights = [0.0; lattice_decide::HOURS_PER_WEEK];
    m.models.send_time.weights_into(&counts, sc, &mut weights);
    let send_at = m
        .catalog
        .send_at(Utc::now(), tz, Some(&weights), false)
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

fn inline_scores(m: &Runtime, k: usize, c: &InlineCustomer) -> Result<ScoresResponse, Problem> {
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
            if !e.out_of_range.is_empty() {
                detail.push_str(&format!(
                    " features outside their range: {}",
                    e.out_of_range.join(", ")
                ));
            }
            // The field: the one feature at fault when there is one.
            let one = match (&e.missing[..], &e.invalid[..], &e.out_of_range[..]) {
                ([m], [], []) | ([], [m], []) => Some(m.as_str()),
                ([], [], [r]) => r.split(' ').next(),
                _ => None,
            };
            let field = match one {
                Some(name) => format!("customers[{k}].features.{name}"),
                None => format!("customers[{k}].features"),
            };
            Problem::unprocessable(&field, detail)
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
