//! The HTTP API through `tower::ServiceExt::oneshot` on the committed demo model: every
//! endpoint, every 4xx a user can cause, authentication and scopes, reload.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lattice_runtime::LoadedModel;
use lattice_serve::auth::{ApiKeys, sha256_hex};
use lattice_serve::{AppState, Limits, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const SCORE_KEY: &str = "score-key";
const ADMIN_KEY: &str = "admin-key";

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

fn keys() -> ApiKeys {
    ApiKeys::from_env_value(&format!(
        "crm:{}:score,ops:{}:admin",
        sha256_hex(SCORE_KEY),
        sha256_hex(ADMIN_KEY)
    ))
    .unwrap()
}

fn app() -> (Router, AppState) {
    let model = LoadedModel::load(&demo(), None).unwrap();
    let state = AppState::new(model, keys());
    (router(state.clone(), Limits::default()), state)
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, ctype, v)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, Value) {
    call(app, "GET", uri, Some(SCORE_KEY), None).await
}

fn some_customer(state: &AppState) -> String {
    state.model().record(0).id.clone()
}

fn assert_problem(r: &(StatusCode, String, Value), status: StatusCode, needle: &str) {
    assert_eq!(r.0, status, "{:?}", r.2);
    assert_eq!(r.1, "application/problem+json", "{:?}", r.2);
    let text = r.2.to_string();
    assert!(text.contains(needle), "{needle:?} not in {text}");
    assert_eq!(r.2["status"], status.as_u16());
}

#[tokio::test]
async fn scores_of_a_known_and_an_unknown_customer() {
    let (app, state) = app();
    let id = some_customer(&state);
    let (s, _, v) = get(&app, &format!("/v1/customers/{id}/scores")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["customer_id"], id.as_str());
    let p = v["churn_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(v["top_affinities"].as_array().unwrap().len(), 3);
    let a = &v["top_affinities"];
    assert!(a[0]["probability"].as_f64() >= a[1]["probability"].as_f64());
    assert_eq!(v["source"], "snapshot");

    let r = get(&app, "/v1/customers/nobody/scores").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "POST /v1/score");
    assert!(r.2["detail"].as_str().unwrap().contains("\"nobody\""));
}

#[tokio::test]
async fn next_best_actions_ranked_explained_and_filtered() {
    let (app, state) = app();
    // Scan customers until one has a ranked action: the demo catalog targets many of them.
    let n = state.model().customers();
    let mut found = None;
    for i in 0..n.min(300) {
        let id = state.model().record(i).id.clone();
        let (s, _, v) = get(
            &app,
            &format!("/v1/customers/{id}/next-best-actions?limit=3&explain=true"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let actions = v["actions"].as_array().unwrap();
        assert!(actions.len() <= 3);
        let excluded = v["excluded"].as_array().unwrap();
        let total = state.model().catalog.len();
        assert!(actions.len() + excluded.len() <= total);
        for w in actions.windows(2) {
            assert!(w[0]["score"].as_f64() >= w[1]["score"].as_f64());
        }
        if !actions.is_empty() {
            found = Some((id, v));
            break;
        }
    }
    let (id, v) = found.expect("some customer gets an action");
    let a = &v["actions"][0];
    for field in [
        "id",
        "kind",
        "channel",
        "propensity",
        "expected_value",
        "send_at",
        "reasons",
        "payload",
    ] {
        assert!(!a[field].is_null(), "{field} missing in {a}");
    }
    chrono::DateTime::parse_from_rfc3339(a["send_at"].as_str().unwrap()).unwrap();

    // Channel filter: every action goes out on that channel.
    let (s, _, v) = get(
        &app,
        &format!("/v1/customers/{id}/next-best-actions?channel=email&limit=10"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for a in v["actions"].as_array().unwrap() {
        assert_eq!(a["channel"], "email");
    }
    // Without explain there is no excluded list.
    let (_, _, v) = get(&app, &format!("/v1/customers/{id}/next-best-actions")).await;
    assert!(v.get("excluded").is_none());

    // In the moment: POST with a context.
    let body = json!({"context": {"now": "2025-07-01T15:00:00Z", "channel": "push", "category": "denim"}, "limit": 5});
    let (s, _, v) = call(
        &app,
        "POST",
        &format!("/v1/customers/{id}/next-best-actions"),
        Some(SCORE_KEY),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["customer_id"], id.as_str());
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (app, state) = app();
    let id = some_customer(&state);
    let nba = format!("/v1/customers/{id}/next-best-actions");
    assert_problem(
        &get(&app, &format!("{nba}?channel=fax")).await,
        StatusCode::BAD_REQUEST,
        "fax",
    );
    assert_problem(
        &get(&app, &format!("{nba}?limit=0")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit",
    );
    assert_problem(
        &get(&app, &format!("{nba}?limit=many")).await,
        StatusCode::BAD_REQUEST,
        "limit",
    );
    assert_problem(
        &get(&app, &format!("{nba}?colour=red")).await,
        StatusCode::BAD_REQUEST,
        "colour",
    );
    assert_problem(
        &get(
            &app,
            &format!("/v1/customers/{id}/send-time?channel=pigeon"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "pigeon",
    );

    let post = |body: &'static str| {
        let app = app.clone();
        let nba = nba.clone();
        async move { call(&app, "POST", &nba, Some(SCORE_KEY), Some(body)).await }
    };
    assert_problem(&post("{not json").await, StatusCode::BAD_REQUEST, "");
    assert_problem(
        &post(r#"{"limit": "three"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit",
    );
    let r = post(r#"{"context": {"channel": "fax"}}"#).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "fax");
    assert_eq!(r.2["field"], "context.channel");
    assert_problem(
        &post(r#"{"context": {"now": "yesterday"}}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "context.now",
    );

    // Wrong content type.
    let req = Request::builder()
        .method("POST")
        .uri(&nba)
        .header(header::AUTHORIZATION, format!("Bearer {SCORE_KEY}"))
        .body(Body::from("{}"))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Unknown path: problem+json too.
    assert_problem(
        &get(&app, "/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "openapi",
    );
}

#[tokio::test]
async fn batch_scores_by_id_and_inline() {
    let (app, state) = app();
    let m = state.model();
    let ids: Vec<String> = (0..5).map(|i| m.record(i).id.clone()).collect();
    // Inline: customer 0's own features, so the answer must match its snapshot scores.
    let names = &m.models.fitted.feature_names;
    let row = m.snapshot.features(0);
    let features: serde_json::Map<String, Value> = names
        .iter()
        .zip(row)
        .filter(|(n, _)| !n.starts_with("bgnbd_"))
        .map(|(n, v)| (n.clone(), json!(v)))
        .collect();
    let body = json!({
        "customer_ids": [ids[0], ids[1], "ghost"],
        "customers": [{"customer_id": "new-1", "features": features}],
    });
    let (s, _, v) = call(
        &app,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let scores = v["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    assert_eq!(v["not_found"], json!(["ghost"]));
    assert_eq!(scores[2]["source"], "inline");
    let (a, b) = (
        scores[0]["churn_probability"].as_f64().unwrap(),
        scores[2]["churn_probability"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "inline {b} vs snapshot {a}");

    // Missing and unknown features, too many ids, an empty request.
    let mut partial = features.clone();
    partial.remove("recency_days");
    let body = json!({"customers": [{"customer_id": "x", "features": partial}]});
    let r = call(
        &app,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(&body.to_string()),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "recency_days");
    assert_eq!(r.2["field"], "customers[0].features.recency_days");
    let mut extra = features.clone();
    extra.insert("shoe_size".into(), json!(42));
    let body = json!({"customers": [{"customer_id": "x", "features": extra}]});
    let r = call(
        &app,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(&body.to_string()),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "shoe_size");
    let many: Vec<String> = (0..10_001).map(|i| format!("c{i}")).collect();
    let body = json!({ "customer_ids": many });
    let r = call(
        &app,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(&body.to_string()),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "10000");
    let r = call(&app, "POST", "/v1/score", Some(SCORE_KEY), Some("{}")).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "customer_ids");
    let r = call(
        &app,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(r#"{"customer_ids": "c1"}"#),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "customer_ids");
}

#[tokio::test]
async fn send_time_in_local_time() {
    let (app, state) = app();
    let id = some_customer(&state);
    let (s, _, v) = get(&app, &format!("/v1/customers/{id}/send-time?channel=email")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["channel"], "email");
    let slots = v["hours_of_week"].as_array().unwrap();
    assert_eq!(slots.len(), 3);
    let h = slots[0]["hour_of_week"].as_u64().unwrap();
    assert!(h < 168);
    assert_eq!(slots[0]["hour"].as_u64().unwrap(), h % 24);
    let c = v["confidence"].as_f64().unwrap();
    assert!(c > 0.0 && c <= 1.0);
    let at = chrono::DateTime::parse_from_rfc3339(v["send_at"].as_str().unwrap()).unwrap();
    assert!(at.timestamp() >= chrono::Utc::now().timestamp() - 5);
    let (s, _, v) = get(&app, &format!("/v1/customers/{id}/send-time")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["channel"], "any");
}

#[tokio::test]
async fn authentication_and_scopes() {
    let (app, state) = app();
    let uri = format!("/v1/customers/{}/scores", some_customer(&state));
    assert_problem(
        &call(&app, "GET", &uri, None, None).await,
        StatusCode::UNAUTHORIZED,
        "API key",
    );
    assert_problem(
        &call(&app, "GET", &uri, Some("wrong"), None).await,
        StatusCode::UNAUTHORIZED,
        "API key",
    );
    assert_problem(
        &call(&app, "GET", &uri, Some(ADMIN_KEY), None).await,
        StatusCode::FORBIDDEN,
        "score",
    );
    assert_problem(
        &call(&app, "POST", "/v1/admin/reload", Some(SCORE_KEY), None).await,
        StatusCode::FORBIDDEN,
        "admin",
    );
    // X-API-Key works too.
    let req = Request::builder()
        .uri(&uri)
        .header("x-api-key", SCORE_KEY)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    // Health, readiness, metrics and the API description are open.
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(
            call(&app, "GET", open, None, None).await.0,
            StatusCode::OK,
            "{open}"
        );
    }
}

#[tokio::test]
async fn models_metrics_and_openapi() {
    let (app, state) = app();
    let (s, _, v) = get(&app, "/v1/models").await;
    assert_eq!(s, StatusCode::OK);
    let m = &v["models"][0];
    assert_eq!(m["name"], "demo");
    assert_eq!(
        m["customers"].as_u64().unwrap() as usize,
        state.model().customers()
    );
    assert!(
        m["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "points_balance")
    );

    let id = some_customer(&state);
    get(&app, &format!("/v1/customers/{id}/scores")).await;
    get(&app, "/v1/customers/nobody/scores").await;
    let (_, ctype, v) = call(&app, "GET", "/metrics", None, None).await;
    assert!(ctype.starts_with("text/plain"));
    let text = v.as_str().unwrap();
    assert!(
        text.contains(
            r#"lattice_http_request_duration_seconds_count{route="/v1/customers/{id}/scores"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"lattice_http_responses_total{route="/v1/customers/{id}/scores",status="4xx"} 1"#
    ));
    assert!(text.contains("lattice_model_info{name=\"demo\""));
    assert!(!text.contains(&id), "no customer id in metrics");

    let (_, _, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    for path in [
        "/v1/customers/{id}/scores",
        "/v1/customers/{id}/next-best-actions",
        "/v1/customers/{id}/send-time",
        "/v1/score",
        "/v1/models",
        "/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
    assert!(
        doc["paths"]["/v1/customers/{id}/next-best-actions"]
            .get("post")
            .is_some()
    );
    for schema in [
        "ScoresResponse",
        "DecisionDoc",
        "RankedActionDoc",
        "Problem",
        "BatchRequest",
        "SendTimeResponse",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
}

/// The documented decision schema lists exactly the fields `lattice-decide` serialises.
#[tokio::test]
async fn decision_doc_matches_the_decision() {
    let (app, state) = app();
    let (_, _, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    let props = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    };
    let n = state.model().customers();
    for i in 0..n.min(300) {
        let id = state.model().record(i).id.clone();
        let (_, _, v) = get(
            &app,
            &format!("/v1/customers/{id}/next-best-actions?explain=true&limit=1"),
        )
        .await;
        let mut top: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        top.sort();
        // `decision_id` comes only with record=true (tests/events.rs).
        let mut want = props("DecisionDoc");
        want.retain(|k| k != "decision_id");
        assert_eq!(top, want);
        if let Some(a) = v["actions"].as_array().unwrap().first() {
            let mut keys: Vec<String> = a.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, props("RankedActionDoc"));
            let e = &v["excluded"][0];
            if let Some(o) = e.as_object() {
                let mut keys: Vec<String> = o.keys().cloned().collect();
                keys.sort();
                assert_eq!(keys, props("ExclusionDoc"));
            }
            return;
        }
    }
    panic!("no customer with a ranked action");
}

#[tokio::test]
async fn reload_swaps_good_models_and_refuses_bad_ones() {
    let (app, state) = app();
    let r = call(&app, "POST", "/v1/admin/reload", Some(ADMIN_KEY), None).await;
    assert_eq!(r.0, StatusCode::OK, "{:?}", r.2);
    assert_eq!(r.2["model"]["name"], "demo");

    // A tampered copy is refused, and the old model keeps serving.
    let dir = tempfile::tempdir().unwrap();
    state.set_reload_roots(&[dir.path().to_path_buf()]).unwrap();
    let bad = dir.path().join("bad");
    copy_dir(&demo(), &bad);
    std::fs::write(bad.join("weights.json"), "{}").unwrap();
    let body = json!({"model": bad}).to_string();
    let r = call(
        &app,
        "POST",
        "/v1/admin/reload",
        Some(ADMIN_KEY),
        Some(&body),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "weights.json");
    assert!(
        r.2["detail"]
            .as_str()
            .unwrap()
            .contains("previous model keeps serving")
    );
    let id = some_customer(&state);
    assert_eq!(
        get(&app, &format!("/v1/customers/{id}/scores")).await.0,
        StatusCode::OK
    );

    // A catalog with an unknown feature in an expression is refused with the action id.
    let good = dir.path().join("good");
    copy_dir(&demo(), &good);
    let actions = dir.path().join("actions.toml");
    std::fs::write(
        &actions,
        "[[action]]\nid = \"vip\"\nname = \"VIP\"\nkind = \"custom\"\nchannels = [\"email\"]\neligible = \"shoe_size > 3\"\n",
    )
    .unwrap();
    let body = json!({"model": good, "actions": actions}).to_string();
    let r = call(
        &app,
        "POST",
        "/v1/admin/reload",
        Some(ADMIN_KEY),
        Some(&body),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "vip");
    assert!(r.2["detail"].as_str().unwrap().contains("shoe_size"));
    assert_eq!(
        state
            .0
            .metrics
            .reloads_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test]
async fn limits_answer_413_and_503_as_problems() {
    let model = LoadedModel::load(&demo(), None).unwrap();
    let state = AppState::new(model, keys());
    let small = router(
        state.clone(),
        Limits {
            body_bytes: 64,
            ..Limits::default()
        },
    );
    let big = format!(r#"{{"customer_ids": ["{}"]}}"#, "x".repeat(200));
    let r = call(&small, "POST", "/v1/score", Some(SCORE_KEY), Some(&big)).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
    // Under the limit, the same route answers.
    let r = call(
        &small,
        "POST",
        "/v1/score",
        Some(SCORE_KEY),
        Some(r#"{"customer_ids": []}"#),
    )
    .await;
    assert_ne!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.2);

    // No request may be in flight: every one is shed at once.
    let closed = router(
        state.clone(),
        Limits {
            concurrency: 0,
            ..Limits::default()
        },
    );
    let id = some_customer(&state);
    let r = get(&closed, &format!("/v1/customers/{id}/scores")).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    let r = get(&app().0, &format!("/v1/customers/{id}/scores")).await;
    assert_eq!(
        r.0,
        StatusCode::OK,
        "the in-flight count is per router: {:?}",
        r.2
    );
}
