//! Events through the router (`oneshot`) on the committed demo model with a real SQLite file:
//! decisions that change because of an event, all-or-nothing batches, idempotent retries, cold
//! start, consent withdrawal, the decision log, replay after a restart, and a full database
//! answered 503 without losing an acknowledged event.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, Utc};
use lattice_events::EventStore;
use lattice_runtime::LoadedModel;
use lattice_serve::auth::{ApiKeys, sha256_hex};
use lattice_serve::{AppState, Limits, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "crm-key";
const SCORE_ONLY: &str = "score-only";

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

fn app_at(db: &Path, max_bytes: Option<u64>) -> (Router, AppState) {
    let keys = ApiKeys::from_env_value(&format!(
        "crm:{}:score+events+audience+admin,reader:{}:score",
        sha256_hex(KEY),
        sha256_hex(SCORE_ONLY)
    ))
    .unwrap();
    let model = LoadedModel::load(&demo(), None).unwrap();
    let store = EventStore::open(db, max_bytes).unwrap();
    let state = AppState::with_events(model, keys, store).unwrap();
    (router(state.clone(), Limits::default()), state)
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

async fn post(app: &Router, events: Value) -> (StatusCode, Value) {
    call(app, "POST", "/v1/events", KEY, Some(events.to_string())).await
}

async fn actions(app: &Router, id: &str) -> Vec<(String, String)> {
    let (s, v) = call(
        app,
        "GET",
        &format!("/v1/customers/{id}/next-best-actions?limit=100"),
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ago(hours: i64) -> String {
    (Utc::now() - Duration::hours(hours)).to_rfc3339()
}

/// The first snapshot customer (in snapshot order) whose ranked actions satisfy `pred`.
async fn find(
    app: &Router,
    state: &AppState,
    pred: impl Fn(&[(String, String)]) -> bool,
) -> String {
    let n = state.model().customers();
    for i in 0..n {
        let id = state.model().record(i).id.clone();
        if pred(&actions(app, &id).await) {
            return id;
        }
    }
    panic!("no demo customer fits");
}

fn has(a: &[(String, String)], id: &str) -> bool {
    a.iter().any(|(x, _)| x == id)
}

#[tokio::test]
async fn win_back_disappears_right_after_a_purchase() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = find(&app, &state, |a| has(a, "win_back")).await;
    let (s, v) = post(
        &app,
        json!([{"customer_id": id, "ts": ago(0), "event_type": "purchase", "amount": 60.0,
                "order_id": "o-1", "event_id": "p-1"}]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["stored"].as_u64(), v["applied"].as_u64()),
        (Some(1), Some(1))
    );
    let after = actions(&app, &id).await;
    assert!(!has(&after, "win_back"), "{after:?}");
    let (_, scores) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/scores"),
        KEY,
        None,
    )
    .await;
    assert_eq!(scores["source"], "online");
}

#[tokio::test]
async fn a_negative_ticket_swaps_promotions_for_service_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    // Someone offered promotions, with a channel service recovery can use.
    let id = find(&app, &state, |a| {
        !has(a, "service_recovery") && a.iter().any(|(x, _)| x != "thank_you")
    })
    .await;
    let rec = state
        .model()
        .snapshot
        .get(&id)
        .map(|i| state.model().record(i).consent)
        .unwrap();
    assert!(
        rec[0] || rec[1],
        "needs email or sms consent for service recovery"
    );
    let (s, v) = post(
        &app,
        json!([{"customer_id": id, "ts": ago(1), "event_type": "support", "sentiment": -0.8,
                "channel": "email"}]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = actions(&app, &id).await;
    assert!(has(&after, "service_recovery"), "{after:?}");
    let model = state.model();
    let promotional = model.catalog.promotional_ids();
    assert!(
        after
            .iter()
            .all(|(x, _)| !promotional.contains(&x.as_str())),
        "promotions after a negative ticket: {after:?}"
    );
}

#[tokio::test]
async fn a_fourth_email_in_a_week_is_not_offered_when_the_cap_is_three() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = find(&app, &state, |a| a.iter().any(|(_, ch)| ch == "email")).await;
    let contact = |h: i64, n: usize| {
        json!({"customer_id": id, "ts": ago(h), "event_type": "contact", "channel": "email",
               "action_id": "newsletter", "event_id": format!("c-{n}")})
    };
    post(&app, json!([contact(30, 1), contact(20, 2)])).await;
    let two = actions(&app, &id).await;
    assert!(
        two.iter().any(|(_, ch)| ch == "email"),
        "two emails leave room: {two:?}"
    );
    post(&app, json!([contact(10, 3)])).await;
    let three = actions(&app, &id).await;
    assert!(
        three.iter().all(|(_, ch)| ch != "email"),
        "a fourth email offered: {three:?}"
    );
}

#[tokio::test]
async fn a_bad_batch_is_refused_whole_with_every_problem_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = state.model().record(0).id.clone();
    let (s, v) = post(
        &app,
        json!([
            {"customer_id": id, "ts": ago(1), "event_type": "purchase", "amount": 10},
            {"customer_id": id, "ts": "not a time", "event_type": "view"},
            {"customer_id": "", "ts": ago(1), "event_type": "support", "sentiment": 2}
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let errors: Vec<(u64, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [(1, "ts"), (2, "customer_id"), (2, "sentiment")],
        "{v}"
    );
    let (_, metrics) = call(&app, "GET", "/metrics", KEY, None).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("lattice_events_total{outcome=\"rejected\"} 3"),
        "the whole batch counts as rejected: {metrics}"
    );
    // Nothing applied: the valid first event did not move the customer.
    let (_, scores) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/scores"),
        KEY,
        None,
    )
    .await;
    assert_eq!(scores["source"], "snapshot");
    let (s, v) = call(
        &app,
        "POST",
        "/v1/events",
        KEY,
        Some("{\"customer_id\": 1".into()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = call(&app, "POST", "/v1/events", SCORE_ONLY, Some("[]".into())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_retried_batch_changes_nothing_and_a_new_customer_becomes_known() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _state) = app_at(&dir.path().join("events.db"), None);
    let batch = json!([
        {"customer_id": "walk-in-1", "ts": ago(5), "event_type": "view", "category": "outerwear", "event_id": "w1"},
        {"customer_id": "walk-in-1", "ts": ago(4), "event_type": "purchase", "amount": 120.0,
         "category": "outerwear", "order_id": "w-o1", "event_id": "w2"}
    ]);
    let (s, first) = post(&app, batch.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["new_customers"], 1);
    let features = |app: Router| async move {
        call(&app, "GET", "/v1/customers/walk-in-1/features", KEY, None)
            .await
            .1
    };
    let before = features(app.clone()).await;
    assert_eq!(before["features"]["frequency"], 1.0);
    assert_eq!(before["features"]["monetary_total"], 120.0);
    let (_, retry) = post(&app, batch).await;
    assert_eq!(
        (retry["stored"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(features(app.clone()).await, before);
    let (s, v) = call(
        &app,
        "GET",
        "/v1/customers/walk-in-1/next-best-actions",
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn an_unsubscribe_withdraws_that_channel_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = find(&app, &state, |a| a.iter().any(|(_, ch)| ch == "email")).await;
    post(
        &app,
        json!([{"customer_id": id, "ts": ago(0), "event_type": "unsubscribe", "channel": "email"}]),
    )
    .await;
    let after = actions(&app, &id).await;
    assert!(after.iter().all(|(_, ch)| ch != "email"), "{after:?}");
}

#[tokio::test]
async fn a_recorded_decision_is_closed_by_the_contact_that_follows_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let (app, state) = app_at(&db, None);
    let id = find(&app, &state, |a| !a.is_empty()).await;
    let (s, d) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/next-best-actions?record=true"),
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let decision_id = d["decision_id"].as_str().unwrap().to_string();
    let action = d["actions"][0]["id"].as_str().unwrap().to_string();
    let channel = d["actions"][0]["channel"].as_str().unwrap().to_string();
    post(
        &app,
        json!([{"customer_id": id, "ts": ago(0), "event_type": "contact", "channel": channel,
                "action_id": action, "decision_id": decision_id, "event_id": "k1"}]),
    )
    .await;
    let (s, log) = call(
        &app,
        "GET",
        &format!("/v1/decisions/{decision_id}"),
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(log["actions"][0]["action_id"], action.as_str());
    assert!(log["actions"][0]["contacted_at"].is_string(), "{log}");
    assert!(log["actions"][0]["redeemed_at"].is_null(), "{log}");
    let (s, _) = call(&app, "GET", "/v1/decisions/nope", KEY, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A restart replays the stored events: the online state is the same.
    let before = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await
    .1;
    drop((app, state));
    let (app, _state) = app_at(&db, None);
    let after = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await
    .1;
    assert_eq!(after["source"], "online");
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_full_database_answers_503_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let (app, state) = app_at(&db, Some(256 * 1024));
    let id = state.model().record(0).id.clone();
    let mut acknowledged = 0u64;
    let mut n = 0;
    loop {
        let batch: Vec<Value> = (0..200)
            .map(|_| {
                n += 1;
                json!({"customer_id": id, "ts": ago(1), "event_type": "view",
                       "category": "x".repeat(40), "event_id": format!("e{n}")})
            })
            .collect();
        let (s, v) = post(&app, Value::Array(batch)).await;
        if s == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                v["detail"].as_str().unwrap().contains("cannot take writes"),
                "{v}"
            );
            break;
        }
        assert_eq!(s, StatusCode::OK, "{v}");
        acknowledged += v["stored"].as_u64().unwrap();
        assert!(acknowledged < 1_000_000, "the size cap never bit");
    }
    drop((app, state));
    let store = EventStore::open(&db, None).unwrap();
    let mut stored = 0;
    store.replay(i64::MIN, |_| stored += 1).unwrap();
    assert_eq!(stored, acknowledged);
}

#[tokio::test]
async fn features_cannot_be_evaluated_before_what_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = state.model().record(0).id.clone();
    let (s, v) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features?at=2001-01-01T00:00:00Z"),
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "at");
    let (s, v) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "snapshot");
    assert!(
        v["exact"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "recency_days")
    );
}

#[tokio::test]
async fn ndjson_engagement_moves_the_send_time_profile_and_the_metrics_count() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _state) = app_at(&dir.path().join("events.db"), None);
    // Five email opens of a new customer, one per day at the same hour.
    let lines: Vec<String> = (1..=5)
        .map(|d| {
            json!({"customer_id": "opener", "ts": ago(24 * d), "event_type": "email_open",
                   "channel": "email"})
            .to_string()
        })
        .collect();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(lines.join("\n")))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (s, v) = call(
        &app,
        "GET",
        "/v1/customers/opener/send-time?channel=email",
        KEY,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["observations"], 5, "{v}");
    assert_eq!(v["source"], "channel", "{v}");

    let (_, metrics) = call(&app, "GET", "/metrics", KEY, None).await;
    let text = metrics.as_str().unwrap();
    for line in [
        "lattice_events_total{outcome=\"stored\"} 5",
        "lattice_online_customers 1",
        "lattice_events_db_bytes ",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
}

#[tokio::test]
async fn an_unsubscribed_customer_leaves_every_audience_on_that_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _state) = app_at(&dir.path().join("events.db"), None);
    let request = json!({"target": {"churn": true}, "size": {"top": 5000},
                         "filters": {"channel": "email"}})
    .to_string();
    let ids = |v: &Value| -> Vec<String> {
        v["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customer_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, before) = call(&app, "POST", "/v1/audiences", KEY, Some(request.clone())).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    let before = ids(&before);
    let gone = before[0].clone();
    post(&app, json!([{"customer_id": gone, "ts": ago(0), "event_type": "unsubscribe", "channel": "email"}])).await;
    let (_, after) = call(&app, "POST", "/v1/audiences", KEY, Some(request)).await;
    let after = ids(&after);
    assert!(!after.contains(&gone), "{gone} still in the email audience");
    assert_eq!(after.len(), before.len() - 1);
}

#[tokio::test]
async fn a_read_only_database_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    drop(EventStore::open(&db, None).unwrap());
    let keys = ApiKeys::from_env_value(&format!("crm:{}:events", sha256_hex(KEY))).unwrap();
    let model = LoadedModel::load(&demo(), None).unwrap();
    let store = EventStore::open_read_only(&db).unwrap();
    let state = AppState::with_events(model, keys, store).unwrap();
    let app = router(state, Limits::default());
    let (s, v) = post(
        &app,
        json!([{"customer_id": "x", "ts": ago(0), "event_type": "view"}]),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("nothing of this request was stored"),
        "{v}"
    );
}

#[tokio::test]
async fn events_before_the_snapshot_are_kept_but_not_applied_and_a_reload_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app_at(&dir.path().join("events.db"), None);
    let id = state.model().record(0).id.clone();
    let (_, v) = post(
        &app,
        json!([{"customer_id": id, "ts": "2020-01-01T00:00:00Z", "event_type": "purchase", "amount": 5}]),
    )
    .await;
    assert_eq!(
        (v["stored"].as_u64(), v["before_as_of"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let (_, f) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await;
    assert_eq!(f["source"], "snapshot");

    post(
        &app,
        json!([{"customer_id": id, "ts": ago(2), "event_type": "purchase", "amount": 5}]),
    )
    .await;
    let (_, before) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await;
    let (s, v) = call(&app, "POST", "/v1/admin/reload", KEY, Some("{}".into())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, after) = call(
        &app,
        "GET",
        &format!("/v1/customers/{id}/features"),
        KEY,
        None,
    )
    .await;
    assert_eq!(after["source"], "online");
    assert_eq!(before, after);
}
