//! `POST /v1/audiences` and `GET /v1/audiences/options` through the router on the demo model:
//! scopes, every format (by `format=` and by `Accept`), the summary headers, streaming in
//! bounded chunks, bad requests named by field, the page and the metrics.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use lattice_runtime::LoadedModel;
use lattice_serve::audience::CHUNK;
use lattice_serve::auth::{ApiKeys, sha256_hex};
use lattice_serve::{AppState, Limits, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const AUDIENCE_KEY: &str = "audience-key";
const SCORE_KEY: &str = "score-key";

fn app() -> Router {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo");
    let model = LoadedModel::load(&demo, None).unwrap();
    let keys = ApiKeys::from_env_value(&format!(
        "crm:{}:score,marketing:{}:audience",
        sha256_hex(SCORE_KEY),
        sha256_hex(AUDIENCE_KEY)
    ))
    .unwrap();
    router(AppState::new(model, keys), Limits::default())
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    frames: Vec<usize>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let mut stream = res.into_body().into_data_stream();
    let (mut frames, mut body) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        frames.push(chunk.len());
        body.extend_from_slice(&chunk);
    }
    Answer {
        status,
        headers,
        frames,
        body,
    }
}

async fn post(
    app: &Router,
    uri: &str,
    key: Option<&str>,
    accept: Option<&str>,
    body: &Value,
) -> Answer {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    send(app, req.body(Body::from(body.to_string())).unwrap()).await
}

async fn get(app: &Router, uri: &str, key: Option<&str>) -> Answer {
    let mut req = Request::builder().uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

fn coats() -> Value {
    json!({"audience_id": "coats", "target": {"category": "outerwear"}, "size": {"top": 400},
           "filters": {"channel": "email", "tiers": ["silver", "gold", "platinum"]},
           "holdout": {"share": 0.1, "include": true}})
}

#[tokio::test]
async fn the_audience_scope_is_required() {
    let app = app();
    let a = post(&app, "/v1/audiences", None, None, &coats()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = post(&app, "/v1/audiences", Some(SCORE_KEY), None, &coats()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.json()["detail"].as_str().unwrap().contains("audience"));
    let a = get(&app, "/v1/audiences/options", Some(SCORE_KEY)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = post(&app, "/v1/audiences", Some(AUDIENCE_KEY), None, &coats()).await;
    assert_eq!(a.status, StatusCode::OK);
    // And an audience key is not a scoring key.
    let a = get(&app, "/v1/models", Some(AUDIENCE_KEY)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn json_answer_with_summary_headers() {
    let app = app();
    let a = post(&app, "/v1/audiences", Some(AUDIENCE_KEY), None, &coats()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "application/json");
    let v = a.json();
    let s = &v["summary"];
    let size = s["size"].as_u64().unwrap();
    let control = s["control_size"].as_u64().unwrap();
    assert!(size > 0 && control > 0, "{s}");
    assert_eq!(a.header("lattice-audience-id"), "coats");
    assert_eq!(a.header("lattice-audience-size"), size.to_string());
    assert_eq!(a.header("lattice-control-size"), control.to_string());
    let mean: f64 = a.header("lattice-expected-conversions").parse().unwrap();
    assert!((mean - s["expected_conversions"]["mean"].as_f64().unwrap()).abs() < 1e-9);
    let customers = v["customers"].as_array().unwrap();
    assert_eq!(customers.len() as u64, size + control);
    let steps: Vec<&str> = s["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["customers", "tiers", "channel", "holdout", "size"]);
    let sum: f64 = customers
        .iter()
        .filter(|c| c["holdout"] == false)
        .map(|c| c["probability"].as_f64().unwrap())
        .sum();
    assert!((sum - mean).abs() < 1e-6, "{sum} vs {mean}");
    assert!(
        customers[0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("affinity_outerwear=")
    );
}

#[tokio::test]
async fn csv_and_parquet_by_query_and_by_accept() {
    let app = app();
    let json = post(&app, "/v1/audiences", Some(AUDIENCE_KEY), None, &coats())
        .await
        .json();
    let ids: Vec<&str> = json["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    for (uri, accept) in [
        ("/v1/audiences?format=csv", None),
        ("/v1/audiences", Some("text/csv")),
    ] {
        let a = post(&app, uri, Some(AUDIENCE_KEY), accept, &coats()).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("content-type"), "text/csv; charset=utf-8");
        assert_eq!(
            a.header("content-disposition"),
            "attachment; filename=\"coats.csv\""
        );
        let text = String::from_utf8(a.body.clone()).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("customer_id,rank,probability")
        );
        let csv_ids: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(csv_ids, ids);
    }
    for (uri, accept) in [
        ("/v1/audiences?format=parquet", None),
        ("/v1/audiences", Some("application/vnd.apache.parquet")),
    ] {
        let a = post(&app, uri, Some(AUDIENCE_KEY), accept, &coats()).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("content-type"), "application/vnd.apache.parquet");
        assert!(a.body.starts_with(b"PAR1") && a.body.ends_with(b"PAR1"));
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &a.body).unwrap();
        let reader =
            lattice_data::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                file,
            )
            .unwrap()
            .build()
            .unwrap();
        use lattice_data::arrow::array::AsArray;
        let mut pq_ids = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let c = b
                .column_by_name("customer_id")
                .unwrap()
                .as_string::<i32>()
                .clone();
            pq_ids.extend(c.iter().map(|x| x.unwrap().to_string()));
        }
        assert_eq!(pq_ids, ids);
    }
}

#[tokio::test]
async fn large_answers_stream_in_bounded_chunks() {
    let app = app();
    // Every customer of the demo: about a megabyte of JSON.
    let all = json!({"target": {"churn": true}, "size": {"top": 5000}});
    let a = post(&app, "/v1/audiences", Some(AUDIENCE_KEY), None, &all).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["customers"].as_array().unwrap().len(), 5000);
    assert!(a.body.len() > 8 * CHUNK, "{}", a.body.len());
    assert!(a.frames.len() > 8, "{:?}", a.frames);
    assert!(a.frames.iter().all(|&f| f <= CHUNK), "{:?}", a.frames);
    let a = post(
        &app,
        "/v1/audiences?format=parquet",
        Some(AUDIENCE_KEY),
        None,
        &all,
    )
    .await;
    assert!(a.frames.iter().all(|&f| f <= CHUNK), "{:?}", a.frames);
}

#[tokio::test]
async fn bad_requests_are_422_naming_the_field() {
    let app = app();
    let cases = [
        (
            json!({"target": {"category": "socks"}, "size": {"top": 10}}),
            "target.category",
            "outerwear",
        ),
        (
            json!({"target": {"category": "denim"}, "size": {"top": -5}}),
            "size.top",
            "-5",
        ),
        (
            json!({"target": {"category": "denim"}, "size": {"top": 5, "budget": 10}}),
            "size",
            "exactly one",
        ),
        (
            json!({"target": {"category": "denim"}, "size": {"top": 5}, "holdout": {"share": 1.2}}),
            "holdout.share",
            "[0, 1)",
        ),
        (
            json!({"target": {"category": "denim"}, "size": {"top": 5}, "filters": {"tiers": ["diamond"]}}),
            "filters.tiers[0]",
            "gold",
        ),
        (
            json!({"target": {"action": "nope"}, "size": {"top": 5}}),
            "target.action",
            "win_back",
        ),
        (
            json!({"target": {"category": "denim"}, "size": {"top": 5}, "colour": "red"}),
            "",
            "colour",
        ),
    ];
    for (body, field, needle) in cases {
        let a = post(&app, "/v1/audiences", Some(AUDIENCE_KEY), None, &body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(a.header("content-type"), "application/problem+json");
        let p = a.json();
        if !field.is_empty() {
            assert_eq!(p["field"], field, "{p}");
        }
        assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
    }
    let a = post(
        &app,
        "/v1/audiences?format=xml",
        Some(AUDIENCE_KEY),
        None,
        &json!({"target": {"category": "denim"}, "size": {"top": 5}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["field"], "format");
}

#[tokio::test]
async fn options_page_and_metrics() {
    let app = app();
    let o = get(&app, "/v1/audiences/options", Some(AUDIENCE_KEY))
        .await
        .json();
    assert_eq!(o["customers"], 5000);
    assert!(
        o["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "outerwear")
    );
    let coats = o["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "early_access_outerwear")
        .unwrap();
    assert_eq!(coats["category"], "outerwear");
    assert_eq!(o["tiers"][0], "bronze");

    let page = get(&app, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert!(
        page.header("content-security-policy")
            .contains("default-src 'none'")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        html.contains("/assets/audience.js") && !html.contains("http"),
        "no external fetches"
    );
    let js = get(&app, "/assets/audience.js", None).await;
    assert_eq!(js.status, StatusCode::OK);
    let js = String::from_utf8(js.body).unwrap();
    assert!(
        js.contains("/v1/audiences") && !js.contains("https://"),
        "no external fetches"
    );

    post(
        &app,
        "/v1/audiences",
        Some(AUDIENCE_KEY),
        None,
        &json!({"target": {"churn": true}, "size": {"top": 5}}),
    )
    .await;
    let m = String::from_utf8(get(&app, "/metrics", None).await.body).unwrap();
    assert!(m.contains("route=\"/v1/audiences\""), "{m}");
}
