//! Handlers: thin glue from HTTP to the loaded model and `lattice-decide`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lattice_decide::{Context, Learned, RankOptions};
use lattice_models::sendtime::{Channel as SendChannel, ProfileSource};
use lattice_models::snapshot::CustomerRecord;

use crate::api::*;
use crate::deadline::RequestTimeout;
use crate::extract::{ApiJson, ApiQuery};
use crate::guard::{ADMIN, SCORE, Scoped};
use crate::metrics::EventsGauges;
use crate::problem::Problem;
use crate::state::{AppState, Arm};
use axum::extract::Extension;
use lattice_runtime::{Runtime, Scratch, send_channel};
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

fn customer_index(m: &Runtime, id: &str) -> Result<usize, Problem> {
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

/// Calls `f` with the customer as the decision layer sees them: from online state if events
/// changed the customer since the snapshot, else from the snapshot.
fn with_customer<T>(
    m: &Runtime,
    id: &str,
    f: impl FnOnce(&lattice_decide::Customer<'_>) -> T,
) -> Result<T, Problem> {
    let mut scratch = Scratch::default();
    let online = m.online.get(id);
    let customer = match &online {
        Some(c) => c.customer(m, &mut scratch),
        None => m.customer(customer_index(m, id)?, &mut scratch),
    };
    Ok(f(&customer))
}

fn decide(
    m: &Runtime,
    id: &str,
    context: &Context<'_>,
    options: &RankOptions,
) -> Result<Response, Problem> {
    // The decision written straight into the body, sized for a typical answer (~400 bytes an
    // action), so it is allocated once.
    let mut body = Vec::with_capacity(512 + 512 * options.limit.min(8));
    with_customer(m, id, |c| {
        // What outcomes taught: posterior means where cells have closed decisions, and the
        // control groups the customer is in.
        let (propensities, observed) = m.learning.means(m.learning.segment(c));
        let control = m.learning.control(&m.catalog, id);
        let learned = Learned {
            propensities: &propensities,
            control: &control,
            observed: &observed,
        };
        lattice_decide::rank_json_with(&m.catalog, c, context, options, &learned, &mut body)
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// [`decide`], and the answer recorded in the decision log (committed before it is sent) under
/// a new `decision_id`, which the answer carries.
async fn decide_and_record(
    state: &AppState,
    (arm, m): (Arm, Arc<Runtime>),
    id: &str,
    context: &Context<'_>,
    options: &RankOptions,
    timeout: std::time::Duration,
) -> Result<Response, Problem> {
    let decision_id = format!("{:032x}", rand::random::<u128>());
    // Greedy or Thompson (`[policy] explore`), seeded by the decision id; the probability of
    // the first action is recorded for off-policy evaluation.
    let (decision, chosen, segment) = with_customer(&m, id, |c| {
        m.learning
            .decide(&m.catalog, c, context, options, &decision_id)
    })?;
    // The chooser's pick is the first action unless ranking disagreed (a channel filled by
    // higher-ranked actions): then no probability is claimed.
    let first = decision
        .actions
        .first()
        .and_then(|a| m.catalog.action(&a.id))
        .map(|a| a.index);
    let held_out = chosen.held_out;
    let logged = chosen.action.filter(|(a, ..)| Some(*a) == first);
    let record = lattice_events::Decision {
        decision_id: decision_id.clone(),
        customer_id: id.to_string(),
        decided_us: context.now.timestamp_micros(),
        model: format!("{}@{}", m.manifest.name, m.manifest.as_of),
        probability: logged.map(|(_, p, _)| p),
        segment: (logged.is_some() || held_out.is_some()).then_some(segment.0 as u32),
        prior: logged.map(|(.., prior)| prior),
        held_out: held_out
            .and_then(|a| m.catalog.actions().nth(a))
            .map(|a| a.id.to_owned()),
        arm: m.arm.clone(),
        actions: decision
            .actions
            .iter()
            .enumerate()
            .map(|(k, a)| lattice_events::DecidedAction {
                rank: k as u32 + 1,
                action_id: a.id.clone(),
                channel: a.channel.as_str().to_string(),
                send_at_us: Some(a.send_at.timestamp_micros()),
                score: a.score,
                contacted_us: None,
                redeemed_us: None,
            })
            .collect(),
    };
    let st = state.clone();
    let now = context.now;
    let decided_by = m.clone();
    // The record is committed only if the answer will be sent: a 503 at the deadline means
    // nothing was recorded (`deadline::run_gated`).
    let stored = crate::deadline::run_gated(timeout, "recording the decision", move |gate| {
        let Some(ev) = st.0.events.as_ref() else {
            return Ok(None);
        };
        let mut store = ev.store.lock().unwrap_or_else(|p| p.into_inner());
        // Checked and counted under the store's lock: concurrent requests cannot overshoot.
        if ev.decisions.load(Ordering::Relaxed) >= ev.max_decisions {
            return Ok(Some(Ok(false)));
        }
        if !gate.proceed(true) {
            return Err(crate::deadline::timed_out(
                "recording the decision",
                timeout,
            ));
        }
        let done = store.record_decision(&record);
        if done.is_ok() {
            ev.decisions.fetch_add(1, Ordering::Relaxed);
        }
        // Under the store's lock: a reload replays the log and swaps before or after this,
        // so the decision's window is open in whichever model serves next.
        if done.is_ok()
            && let Some(segment) = record.segment
        {
            // The champion as it is now (a reload may have swapped it); a challenger as decided.
            let current = st.model();
            let m: &Runtime = if decided_by.arm.is_some() {
                &decided_by
            } else {
                &current
            };
            let recorded = |action, prior| lattice_runtime::Recorded {
                decision_id: &record.decision_id,
                customer_id: &record.customer_id,
                action,
                at: now,
                segment: lattice_runtime::learn::Segment(segment as usize),
                prior,
            };
            if let Some((action, _, prior)) = logged {
                m.learning.opened(&m.catalog, recorded(action, prior));
            }
            if let Some(action) = held_out {
                m.learning.opened_control(&m.catalog, recorded(action, 0.0));
            }
        }
        Ok(Some(done.map(|()| true)))
    })
    .await?;
    match stored {
        None => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "events-unavailable",
                "record=true needs an events database (this server was started without one)",
            ));
        }
        Some(Err(e)) => return Err(crate::events::store_problem(&e)),
        Some(Ok(false)) => {
            state
                .0
                .metrics
                .decisions_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "decision-quota",
                "the decision log holds its quota of decisions (--max-decisions); this answer \
                 was not recorded; ask without record=true, or have an operator export and \
                 rotate the events database or raise the quota",
            ));
        }
        Some(Ok(true)) => {}
    }
    state
        .0
        .metrics
        .decisions_recorded
        .fetch_add(1, Ordering::Relaxed);
    let mut body = Vec::with_capacity(4096);
    body.extend_from_slice(b"{\"decision_id\":\"");
    body.extend_from_slice(decision_id.as_bytes());
    body.extend_from_slice(b"\",");
    if let Some(arm) = arm.as_str() {
        body.extend_from_slice(b"\"arm\":\"");
        body.extend_from_slice(arm.as_bytes());
        body.extend_from_slice(b"\",");
    }
    let rest =
        serde_json::to_vec(&decision).map_err(|e| Problem::internal("writing the decision", &e))?;
    // `rest` is an object: splice the id in as its first member.
    body.extend_from_slice(&rest[1..]);
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
    Extension(RequestTimeout(timeout)): Extension<RequestTimeout>,
    Path(id): Path<String>,
    q: ActionsQuery,
) -> Result<Response, Problem> {
    let options = rank_options(q.limit, q.channel.as_deref(), q.explain)?;
    let context = Context::at(Utc::now());
    let (arm, m) = state.for_customer(&id);
    if q.record == Some(true) {
        return decide_and_record(&state, (arm, m), &id, &context, &options, timeout).await;
    }
    with_arm(arm, decide(&m, &id, &context, &options))
}

/// The arm that decided, in a `lattice-arm` header, when a challenger is served.
fn with_arm(arm: Arm, res: Result<Response, Problem>) -> Result<Response, Problem> {
    let mut res = res?;
    if let Some(a) = arm.as_str() {
        res.headers_mut()
            .insert("lattice-arm", header::HeaderValue::from_static(a));
    }
    Ok(res)
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
    Extension(RequestTimeout(timeout)): Extension<RequestTimeout>,
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
    let (arm, m) = state.for_customer(&id);
    if req.record == Some(true) {
        return decide_and_record(&state, (arm, m), &id, &context, &options, timeout).await;
    }
    with_arm(arm, decide(&m, &id, &context, &options))
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
        .reload(
            req.model.map(Into::into),
            req.actions.map(Into::into),
            Some(timeout),
        )
        .await?;
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

#[utoipa::path(
    get, path = "/v1/actions/performance", tag = "decisions",
    params(PerformanceQuery),
    responses(
        (status = 200, body = PerformanceDoc, description = "Per action and segment: closed decisions, responses, learned response rate with a 95% interval, lift against control"),
        (status = 404, body = Problem, description = "arm=challenger without a challenger"),
        (status = 422, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn performance(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PerformanceQuery>,
) -> Result<Json<PerformanceDoc>, Problem> {
    let m: Arc<Runtime> = match q.arm.as_deref() {
        None | Some("champion") => state.model().clone(),
        Some("challenger") => state.0.challenger.load_full().ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "no-challenger",
                "no challenger is served (start the server with --challenger DIR)",
            )
        })?,
        Some(other) => {
            return Err(Problem::unprocessable(
                "arm",
                format!("arm must be champion or challenger (got {other:?})"),
            ));
        }
    };
    let (perf, open) = m.learning.performance(&m.catalog, Utc::now());
    let infos: Vec<_> = m.catalog.actions().collect();
    let actions = perf
        .into_iter()
        .map(|p| {
            let a = &infos[p.index];
            ActionPerformanceDoc {
                id: a.id.to_owned(),
                name: a.name.to_owned(),
                kind: a.kind.as_str().to_owned(),
                promotional: a.promotional,
                holdout: a.holdout,
                response: ResponseRuleDoc {
                    event: a.response.event.as_str().to_owned(),
                    window_days: a.response.window_days,
                },
                decisions: p.decisions,
                responses: p.responses,
                response_rate: p.rate.map(|r| r.0),
                response_rate_low: p.rate.map(|r| r.1),
                response_rate_high: p.rate.map(|r| r.2),
                value_per_decision: p.value_per_decision,
                control_decisions: p.control.0,
                control_responses: p.control.1,
                lift: p.lift.map(|l| l.0),
                lift_low: p.lift.map(|l| l.1),
                lift_high: p.lift.map(|l| l.2),
                segments: p
                    .segments
                    .into_iter()
                    .map(|c| CellDoc {
                        segment: c.segment,
                        decisions: c.decisions,
                        responses: c.responses,
                        prior: c.prior,
                        rate: c.rate,
                        rate_low: c.low,
                        rate_high: c.high,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(PerformanceDoc {
        arm: m.arm.clone().unwrap_or_else(|| "champion".to_owned()),
        explore: m.catalog.explore(),
        control_share: m.catalog.control_share(),
        open_decisions: open,
        actions,
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
