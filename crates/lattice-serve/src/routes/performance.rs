//! `/v1/actions/performance`: what learning has seen per action and segment, and lift.

use crate::api::*;
use crate::extract::ApiQuery;
use crate::guard::{SCORE, Scoped};
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lattice_runtime::Runtime;
use std::sync::Arc;

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
