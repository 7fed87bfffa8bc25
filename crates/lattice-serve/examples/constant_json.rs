//! The ceiling for load tests: a minimal axum server answering a constant JSON body, built
//! with the same dependencies and runtime as `lattice serve`. `scripts/load_test.sh` runs it
//! beside the real server. The body is a real next-best-actions answer of the demo model
//! (`nba_response.json`, 1.9 KB), so both servers move the same bytes; `/tiny` answers 70
//! bytes, for reference.
//!
//! cargo run --release -p lattice-serve --features load-test --example constant_json -- 127.0.0.1:8081

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use axum::Router;
use axum::routing::get;

/// The same allocator as the `lattice` binary, so the ceiling differs from it only in the work.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &str = include_str!("nba_response.json");
const TINY: &str = r#"{"customer_id":"c1","actions":[{"id":"win_back","score":1.0}]}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let json = || [(axum::http::header::CONTENT_TYPE, "application/json")];
    let app = Router::new()
        .route(
            "/v1/customers/{id}/next-best-actions",
            get(move || async move { (json(), BODY) }),
        )
        .route("/tiny", get(move || async move { (json(), TINY) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("constant JSON on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
