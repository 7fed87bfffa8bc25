//! Training/serving parity: a model trained at T1 on the sample, the sample's events of
//! (T1, T2] posted to its server, and every customer's features read back at T2 equal what
//! training computes directly at T2 (the aggregation query at T2, through the same feature
//! code and the same model), for every feature online events keep exact.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lattice_data::arrow::array::{Array, AsArray};
use lattice_data::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use lattice_data::events::{events_location, read_events};
use lattice_data::schema::ev;
use lattice_events::EventStore;
use lattice_features::aggregates::DAY_US;
use lattice_features::online::is_exact_feature;
use lattice_features::{History, Profile, load_profiles};
use lattice_models::train::{TrainOptions, train};
use lattice_runtime::LoadedModel;
use lattice_serve::auth::ApiKeys;
use lattice_serve::{AppState, Limits, router};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample")
}

/// The sample's events as (ts, JSON object), in time order.
fn events() -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    read_events(&events_location(&sample()), |b| {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
        let ts = b.column(ev::TS).as_primitive::<TimestampMicrosecondType>();
        for r in 0..b.num_rows() {
            let mut o = Map::new();
            let t = ts.value(r);
            let when = chrono::DateTime::from_timestamp_micros(t).unwrap();
            o.insert("customer_id".into(), json!(s(ev::CUSTOMER_ID).value(r)));
            o.insert("ts".into(), json!(when.to_rfc3339()));
            o.insert("event_type".into(), json!(s(ev::EVENT_TYPE).value(r)));
            for (i, name) in [
                (ev::CHANNEL, "channel"),
                (ev::CATEGORY, "category"),
                (ev::ORDER_ID, "order_id"),
                (ev::ACTION_ID, "action_id"),
            ] {
                if !s(i).is_null(r) {
                    o.insert(name.into(), json!(s(i).value(r)));
                }
            }
            for (i, name) in [
                (ev::AMOUNT, "amount"),
                (ev::QUANTITY, "quantity"),
                (ev::SENTIMENT, "sentiment"),
            ] {
                if !f(i).is_null(r) {
                    o.insert(name.into(), json!(f(i).value(r)));
                }
            }
            out.push((t, Value::Object(o)));
        }
        Ok(())
    })
    .unwrap();
    out.sort_by_key(|(t, _)| *t);
    out
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<String>) -> Value {
    let req = Request::builder().method(method).uri(uri);
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
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn features_after_posting_the_events_of_t1_to_t2_equal_training_at_t2() {
    let all = events();
    let t2 = all.last().unwrap().0;
    let t1 = t2 - 30 * DAY_US;
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("m-t1");
    let opts = TrainOptions {
        name: "t1".into(),
        as_of_us: Some(t1),
        backtest: false,
        config: lattice_models::pipeline::TrainConfig::default(),
        report: None,
        force: false,
        cluster: None,
    };
    train(&sample(), &model_dir, &opts).await.unwrap();

    let model = LoadedModel::load(&model_dir, None).unwrap();
    let store = EventStore::open(&dir.path().join("events.db"), None).unwrap();
    let state = AppState::with_events(model, ApiKeys::default(), store).unwrap();
    let app = router(state.clone(), Limits::default());
    let window: Vec<Value> = all
        .iter()
        .filter(|(t, _)| *t > t1 && *t <= t2)
        .map(|(_, e)| e.clone())
        .collect();
    assert!(window.len() > 1000, "{} events in the window", window.len());
    for chunk in window.chunks(500) {
        let v = call(
            &app,
            "POST",
            "/v1/events",
            Some(Value::Array(chunk.to_vec()).to_string()),
        )
        .await;
        assert_eq!(v["applied"], chunk.len(), "{v}");
    }

    // Training's view at T2, with the T1 model's categories and fitted models.
    let m = state.model();
    let history = History::open(&sample()).await.unwrap();
    let truth = history
        .aggregates(t2, &m.manifest.categories)
        .await
        .unwrap();
    let profiles: HashMap<String, Profile> = load_profiles(&sample()).unwrap();
    let at = chrono::DateTime::from_timestamp_micros(t2)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let names = &m.snapshot.feature_names;
    let (mut compared, mut customers) = (0, 0);
    for (id, a) in truth.iter() {
        let known = m.snapshot.get(id).is_some();
        // A customer the snapshot did not know has no customers-table row on the server: its
        // profile features (birthday, anniversary, tenure from signup) wait for retraining.
        let empty = Profile::default();
        let p = if known {
            profiles.get(id).unwrap_or(&empty)
        } else {
            &empty
        };
        let want = m.score_at(a, p, t2).0;
        let got = call(
            &app,
            "GET",
            &format!("/v1/customers/{id}/features?at={at}"),
            None,
        )
        .await;
        for (j, name) in names.iter().enumerate() {
            if !is_exact_feature(name) {
                continue;
            }
            let g = got["features"][name].as_f64().unwrap();
            assert!(
                (g - want[j]).abs() <= 1e-9 * (1.0 + want[j].abs()),
                "customer {id}, {name}: server {g}, training {}",
                want[j]
            );
            compared += 1;
        }
        customers += 1;
    }
    assert!(
        customers > 500 && compared > 10_000,
        "{customers} customers, {compared} values"
    );
}
