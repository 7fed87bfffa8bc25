//! Learning through the router on the committed demo model with a real SQLite file: recorded
//! decisions carry the probability of their first action, posted events close them as
//! responses, windows that end close them as non-responses, the performance endpoint counts
//! them, a restart rebuilds the same posteriors from the store, and a control group never
//! receives a promotional action.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, SecondsFormat, Utc};
use lattice_events::EventStore;
use lattice_runtime::LoadedModel;
use lattice_serve::auth::{ApiKeys, sha256_hex};
use lattice_serve::{AppState, Limits, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "crm-key";

const CATALOG: &str = r#"
[policy]
explore = 0.5

[[action]]
id = "offer_a"
name = "Offer A"
kind = "custom"
channels = ["email", "sms", "push"]
value = 20.0
cost = 0.1
[action.response]
event = "purchase"
window_days = 2

[[action]]
id = "offer_b"
name = "Offer B"
kind = "custom"
channels = ["email", "sms", "push"]
value = 19.0
cost = 0.1
[action.response]
event = "purchase"
window_days = 2

[[action]]
id = "thanks"
name = "Thank you"
kind = "custom"
channels = ["email", "sms", "push"]
value = 1.0
promotional = false
[action.response]
event = "click"
window_days = 2
"#;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

fn app(db: &Path, actions: &Path) -> Router {
    let keys =
        ApiKeys::from_env_value(&format!("crm:{}:score+events+admin", sha256_hex(KEY))).unwrap();
    let model = LoadedModel::load(&demo(), Some(actions)).unwrap();
    let store = EventStore::open(db, None).unwrap();
    router(
        AppState::with_events(model, keys, store).unwrap(),
        Limits::default(),
    )
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Per action id: (decisions, responses).
fn counts(perf: &Value) -> Vec<(String, u64, u64)> {
    perf["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["decisions"].as_u64().unwrap(),
                a["responses"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn decisions_learn_from_responses_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, actions) = (
        dir.path().join("events.db"),
        dir.path().join("actions.toml"),
    );
    std::fs::write(&actions, CATALOG).unwrap();
    let app = app(&db, &actions);

    // 60 decisions for 60 customers ten days ago; every other customer buys an hour later,
    // one buys twice (one response, not two), one buys after the window (none).
    let at = Utc::now() - Duration::days(10);
    let mut decided = Vec::new();
    for i in 1..=60 {
        let id = format!("c{i:04}");
        let (s, v) = call(
            &app,
            "POST",
            &format!("/v1/customers/{id}/next-best-actions"),
            Some(json!({"record": true, "limit": 1, "context": {"now": rfc(at)}})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let Some(first) = v["actions"].as_array().and_then(|a| a.first()) else {
            continue;
        };
        let decision_id = v["decision_id"].as_str().unwrap().to_string();
        let (s, logged) = call(&app, "GET", &format!("/v1/decisions/{decision_id}"), None).await;
        assert_eq!(s, StatusCode::OK);
        let p = logged["probability"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{logged}");
        decided.push((id, first["id"].as_str().unwrap().to_string()));
    }
    assert!(decided.len() >= 40, "{}", decided.len());
    let mut events = Vec::new();
    let mut responders = 0;
    for (k, (id, action)) in decided.iter().enumerate() {
        if k % 2 == 0 && action != "thanks" {
            responders += 1;
            events.push(json!({"customer_id": id, "ts": rfc(at + Duration::hours(1)), "event_type": "purchase", "amount": 30.0}));
            if k == 0 {
                events.push(json!({"customer_id": id, "ts": rfc(at + Duration::hours(2)), "event_type": "purchase", "amount": 30.0}));
            }
        }
        if k == 1 && action != "thanks" {
            events.push(json!({"customer_id": id, "ts": rfc(at + Duration::days(3)), "event_type": "purchase", "amount": 30.0}));
        }
    }
    let (s, v) = call(&app, "POST", "/v1/events", Some(Value::Array(events))).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, perf) = call(&app, "GET", "/v1/actions/performance", None).await;
    assert_eq!(s, StatusCode::OK, "{perf}");
    assert_eq!(perf["explore"], 0.5);
    assert_eq!(perf["open_decisions"], 0, "every window has ended");
    let before = counts(&perf);
    let total: u64 = before.iter().map(|c| c.1).sum();
    let responses: u64 = before.iter().map(|c| c.2).sum();
    assert_eq!(total as usize, decided.len(), "{perf}");
    assert_eq!(responses, responders, "{perf}");
    let a = &perf["actions"][0];
    if a["decisions"].as_u64().unwrap() > 0 {
        assert!(a["response_rate_low"].as_f64().unwrap() <= a["response_rate"].as_f64().unwrap());
        assert!(!a["segments"].as_array().unwrap().is_empty());
    }

    // The first customer's own decision closed in its cell: ranking now serves the learned
    // rate and says so.
    let first = &decided[0].0;
    let (_, v) = call(
        &app,
        "GET",
        &format!("/v1/customers/{first}/next-best-actions?limit=10"),
        None,
    )
    .await;
    let observed = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["reasons"].as_array().unwrap().iter())
        .any(|r| r.as_str().unwrap().starts_with("observed "));
    assert!(observed, "{v}");

    // Decisions over learned posteriors (the cells have counted decisions now) share one
    // cached estimate of the Thompson probabilities; each still logs a valid probability.
    for i in 1..=10 {
        let (s, v) = call(
            &app,
            "POST",
            &format!("/v1/customers/c{i:04}/next-best-actions"),
            Some(json!({"record": true, "limit": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["actions"].as_array().is_some_and(|a| !a.is_empty()) {
            let id = v["decision_id"].as_str().unwrap();
            let (_, logged) = call(&app, "GET", &format!("/v1/decisions/{id}"), None).await;
            let p = logged["probability"].as_f64().unwrap();
            assert!((0.001..=1.0).contains(&p), "{logged}");
        }
    }
    let (_, perf) = call(&app, "GET", "/v1/actions/performance", None).await;
    assert!(perf["open_decisions"].as_u64().unwrap() > 0, "{perf}");

    // A restart (a new server on the same store) rebuilds the same posteriors.
    drop(app);
    let again = app_at_restart(&db, &actions);
    let (_, perf2) = call(&again, "GET", "/v1/actions/performance", None).await;
    assert_eq!(perf2["actions"], perf["actions"]);
    assert_eq!(perf2["open_decisions"], perf["open_decisions"]);
}

fn app_at_restart(db: &Path, actions: &Path) -> Router {
    app(db, actions)
}

#[tokio::test]
async fn a_control_group_never_receives_a_promotional_action() {
    let dir = tempfile::tempdir().unwrap();
    let (db, actions) = (
        dir.path().join("events.db"),
        dir.path().join("actions.toml"),
    );
    std::fs::write(
        &actions,
        CATALOG.replace("explore = 0.5", "explore = 0.5\ncontrol_share = 1.0"),
    )
    .unwrap();
    let app = app(&db, &actions);
    for i in 1..=20 {
        let (s, v) = call(
            &app,
            "GET",
            &format!("/v1/customers/c{i:04}/next-best-actions?explain=true&limit=10"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for a in v["actions"].as_array().unwrap() {
            assert_eq!(a["id"], "thanks", "{v}");
        }
        for e in v["excluded"].as_array().unwrap() {
            if e["id"] != "thanks" && e["rule"] != "no_consent" {
                assert_eq!(e["rule"], "control_group", "{v}");
            }
        }
    }
}

#[tokio::test]
async fn lift_against_the_customers_held_out_of_an_action() {
    let dir = tempfile::tempdir().unwrap();
    let (db, actions) = (
        dir.path().join("events.db"),
        dir.path().join("actions.toml"),
    );
    // No exploration; offer_a (the better one) holds out half its customers, who get offer_b.
    let catalog = CATALOG
        .replace("explore = 0.5", "explore = 0.0")
        .replace(
            "value = 20.0\ncost = 0.1\n",
            "value = 20.0\nholdout = 0.5\n",
        )
        .replace("value = 19.0\ncost = 0.1\n", "value = 5.0\n");
    std::fs::write(&actions, catalog).unwrap();
    let app = app(&db, &actions);
    let at = Utc::now() - Duration::days(10);
    let (mut treated, mut control) = ((0u64, 0u64), (0u64, 0u64));
    let mut purchases = Vec::new();
    for i in 1..=80 {
        let id = format!("c{i:04}");
        let (s, v) = call(
            &app,
            "POST",
            &format!("/v1/customers/{id}/next-best-actions"),
            Some(json!({"record": true, "limit": 1, "context": {"now": rfc(at)}})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let Some(first) = v["actions"].as_array().and_then(|a| a.first()) else {
            continue;
        };
        // Every third customer buys within the window, whatever they got.
        let buys = i % 3 == 0;
        match first["id"].as_str().unwrap() {
            "offer_a" => {
                treated.0 += 1;
                treated.1 += u64::from(buys);
            }
            "offer_b" => {
                control.0 += 1;
                control.1 += u64::from(buys);
            }
            other => panic!("unexpected {other}: {v}"),
        }
        if buys {
            purchases.push(json!({"customer_id": id, "ts": rfc(at + Duration::hours(3)), "event_type": "purchase", "amount": 10.0}));
        }
    }
    // Posted after every decision, so that what they teach cannot change the choices above.
    let (s, v) = call(&app, "POST", "/v1/events", Some(Value::Array(purchases))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(treated.0 > 10 && control.0 > 10, "{treated:?} {control:?}");
    let (_, perf) = call(&app, "GET", "/v1/actions/performance", None).await;
    let a = &perf["actions"][0];
    assert_eq!(a["id"], "offer_a");
    assert_eq!(
        (
            a["decisions"].as_u64().unwrap(),
            a["responses"].as_u64().unwrap()
        ),
        treated,
        "{perf}"
    );
    assert_eq!(
        (
            a["control_decisions"].as_u64().unwrap(),
            a["control_responses"].as_u64().unwrap()
        ),
        control,
        "{perf}"
    );
    let expected = treated.1 as f64 / treated.0 as f64 - control.1 as f64 / control.0 as f64;
    assert!(
        (a["lift"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{perf}"
    );
    assert!(
        a["lift_low"].as_f64().unwrap() < expected && expected < a["lift_high"].as_f64().unwrap()
    );
    // The control arm survives a restart too.
    drop(app);
    let again = app_at_restart(&db, &actions);
    let (_, perf2) = call(&again, "GET", "/v1/actions/performance", None).await;
    assert_eq!(perf2["actions"], perf["actions"]);
}

/// A catalog only the challenger serves: every decision it makes is `challenger_only`.
const CHALLENGER: &str = r#"
[[action]]
id = "challenger_only"
name = "Challenger's offer"
kind = "custom"
channels = ["email", "sms", "push"]
value = 10.0
"#;

#[tokio::test]
async fn champion_and_challenger_split_customers_and_promote_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (db, actions, challenger) = (
        dir.path().join("events.db"),
        dir.path().join("actions.toml"),
        dir.path().join("challenger.toml"),
    );
    std::fs::write(&actions, CATALOG).unwrap();
    std::fs::write(&challenger, CHALLENGER).unwrap();
    let keys =
        ApiKeys::from_env_value(&format!("crm:{}:score+events+admin", sha256_hex(KEY))).unwrap();
    let model = LoadedModel::load(&demo(), Some(&actions)).unwrap();
    let store = EventStore::open(&db, None).unwrap();
    let state = AppState::with_events(model, keys, store).unwrap();
    state
        .set_challenger(LoadedModel::load(&demo(), Some(&challenger)).unwrap(), 0.3)
        .unwrap();
    let app = router(state.clone(), Limits::default());

    // Each customer always gets the same arm; about 30% get the challenger; a recorded
    // decision says which arm made it.
    let mut challenged = 0;
    let mut decided = 0;
    for i in 1..=200 {
        let id = format!("c{i:04}");
        let (s, v) = call(
            &app,
            "POST",
            &format!("/v1/customers/{id}/next-best-actions"),
            Some(json!({"record": true, "limit": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let Some(first) = v["actions"].as_array().and_then(|a| a.first()) else {
            continue;
        };
        decided += 1;
        let arm = v["arm"].as_str().unwrap();
        assert_eq!(arm == "challenger", first["id"] == "challenger_only", "{v}");
        challenged += usize::from(arm == "challenger");
        let (_, again) = call(
            &app,
            "POST",
            &format!("/v1/customers/{id}/next-best-actions"),
            Some(json!({"limit": 1})),
        )
        .await;
        // The same arm again (the champion explores when recording, so compare arms).
        assert_eq!(
            again["actions"][0]["id"] == "challenger_only",
            arm == "challenger",
            "{again}"
        );
    }
    let share = challenged as f64 / decided as f64;
    assert!((0.2..0.4).contains(&share), "{challenged} of {decided}");
    let (_, perf) = call(&app, "GET", "/v1/actions/performance?arm=challenger", None).await;
    assert_eq!(perf["arm"], "challenger");
    assert_eq!(
        perf["open_decisions"].as_u64().unwrap() as usize,
        challenged,
        "{perf}"
    );
    let (s, _) = call(&app, "GET", "/v1/actions/performance?arm=both", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Promote while requests stream: none fails, and afterwards everyone gets the challenger.
    let load: Vec<_> = (0..8)
        .map(|t| {
            let app = app.clone();
            tokio::spawn(async move {
                for k in 0..50 {
                    let id = format!("c{:04}", 1 + (t * 50 + k) % 200);
                    let (s, v) = call(
                        &app,
                        "GET",
                        &format!("/v1/customers/{id}/next-best-actions"),
                        None,
                    )
                    .await;
                    assert_eq!(s, StatusCode::OK, "{v}");
                }
            })
        })
        .collect();
    let (s, v) = call(&app, "POST", "/v1/admin/promote", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for l in load {
        l.await.unwrap();
    }
    for i in 1..=20 {
        let (_, v) = call(
            &app,
            "GET",
            &format!("/v1/customers/c{i:04}/next-best-actions"),
            None,
        )
        .await;
        for a in v["actions"].as_array().unwrap() {
            assert_eq!(a["id"], "challenger_only", "{v}");
        }
    }
    let (s, v) = call(&app, "POST", "/v1/admin/promote", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = call(&app, "GET", "/v1/actions/performance?arm=challenger", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
