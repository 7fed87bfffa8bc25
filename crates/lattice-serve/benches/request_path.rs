//! The next-best-actions request path without HTTP, piece by piece, on the demo model:
//! building the customer (contacts; send-time profiles are computed by ranking, for the
//! channels it needs), ranking, writing the answer.
//!
//! cargo bench -p lattice-serve --bench request_path

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use lattice_decide::{Context, RankOptions};
use lattice_runtime::LoadedModel;
use lattice_runtime::Scratch;

/// The `lattice` binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo");
    let m = LoadedModel::load(&demo, None).expect("models/demo loads");
    let i = m.snapshot.get("c0966").expect("the load-test customer");
    let ctx = Context::at(chrono::Utc::now());
    let opts = RankOptions::default();

    c.bench_function(
        "lookup + customer (contacts; profiles come on demand)",
        |b| {
            b.iter(|| {
                let i = m.snapshot.get(black_box("c0966")).unwrap_or(0);
                let mut s = Scratch::default();
                black_box(m.customer(i, &mut s).values.len())
            })
        },
    );
    let mut s = Scratch::default();
    let customer = m.customer(i, &mut s);
    c.bench_function(
        "rank (demo catalog, limit 5, with the profiles it asks for)",
        |b| b.iter(|| black_box(m.catalog.rank(black_box(&customer), &ctx, &opts))),
    );
    let decision = m.catalog.rank(&customer, &ctx, &opts);
    c.bench_function("serialise the decision", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(4096);
            serde_json::to_writer(&mut v, black_box(&decision)).unwrap();
            black_box(v.len())
        })
    });
    c.bench_function("rank + JSON written directly (what the server does)", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(3072);
            m.catalog
                .rank_json(black_box(&customer), &ctx, &opts, &mut v);
            black_box(v.len())
        })
    });
    // The same call through the router with its middleware (auth, metrics, limits), no socket.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let key = "bench-key";
    let keys = lattice_serve::auth::ApiKeys::from_env_value(&format!(
        "bench:{}:score",
        lattice_serve::auth::sha256_hex(key)
    ))
    .expect("keys");
    let router = lattice_serve::router(
        lattice_serve::AppState::new(LoadedModel::load(&demo, None).expect("demo"), keys),
        lattice_serve::Limits::default(),
    );
    for (name, uri) in [
        (
            "router: next-best-actions",
            "/v1/customers/c0966/next-best-actions?limit=5",
        ),
        ("router: scores", "/v1/customers/c0966/scores"),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let req = axum::http::Request::get(uri)
                    .header("authorization", format!("Bearer {key}"))
                    .body(axum::body::Body::empty())
                    .expect("request");
                let res = rt.block_on(tower::ServiceExt::oneshot(router.clone(), req));
                black_box(res.map(|r| r.status()).ok())
            })
        });
    }
    c.bench_function("whole path", |b| {
        b.iter(|| {
            let mut s = Scratch::default();
            let cust = m.customer(i, &mut s);
            let mut v = Vec::with_capacity(3072);
            m.catalog.rank_json(&cust, &ctx, &opts, &mut v);
            black_box(v.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
