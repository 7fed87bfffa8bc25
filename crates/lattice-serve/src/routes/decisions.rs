//! Next-best actions: ranked for a customer, and recorded (chosen, logged with its probability,
//! its response window opened) when asked to.

use crate::api::*;
use crate::deadline::RequestTimeout;
use crate::extract::ApiJson;
use crate::guard::{SCORE, Scoped};
use crate::problem::Problem;
use crate::state::{AppState, Arm};
use axum::extract::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lattice_decide::{Context, Learned, RankOptions};
use lattice_runtime::{Runtime, Scratch};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{customer_index, parse_channel};

/// Most actions in one answer.
pub const MAX_LIMIT: usize = 100;

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
        (status = 429, body = Problem, description = "record=true past the decision quota (--max-decisions): nothing recorded; ask without record=true"),
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
        (status = 429, body = Problem, description = "record=true past the decision quota (--max-decisions): nothing recorded; ask without record=true"),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn next_best_actions_in_context(
    _: Scoped<SCORE>,
    State(state): State<AppState>,
    Extension(RequestTimeout(timeout)): Extension<RequestTimeout>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, Problem> {
    // No outer timer on this route (a recorded answer decides its deadline with the commit),
    // so the body must arrive within the deadline here.
    let (ApiJson(req), timeout) = crate::deadline::receive::<ApiJson<ActionsRequest>>(
        request,
        timeout,
        "receiving the request",
    )
    .await?;
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
