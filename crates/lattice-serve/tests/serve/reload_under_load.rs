//! Over a real socket: clients keep getting answers while the model is reloaded underneath.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use lattice_runtime::LoadedModel;
use lattice_serve::auth::ApiKeys;
use lattice_serve::{AppState, Limits, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection; the status code.
async fn status(addr: std::net::SocketAddr, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_succeeding_during_reloads() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo");
    let state = AppState::new(LoadedModel::load(&demo, None).unwrap(), ApiKeys::default());
    let id = state.model().record(0).id.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone(), Limits::default());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for k in 0..3 {
        let (stop, ok, failed, id) = (stop.clone(), ok.clone(), failed.clone(), id.clone());
        clients.push(tokio::spawn(async move {
            let paths = [
                format!("/v1/customers/{id}/next-best-actions?limit=3"),
                format!("/v1/customers/{id}/scores"),
                format!("/v1/customers/{id}/send-time"),
            ];
            let mut n = 0usize;
            // Bounded: stops when told, or after 20,000 requests.
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                match status(addr, &paths[(n + k) % 3]).await {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }
    for _ in 0..4 {
        state.reload(None, None, None).await.unwrap();
    }
    // A refused reload in the middle changes nothing for the clients either.
    assert!(
        state
            .reload(Some("/nonexistent".into()), None, None)
            .await
            .is_err()
    );
    state.reload(None, None, None).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} requests failed during reloads ({ok} succeeded)"
    );
    assert!(ok > 30, "only {ok} requests ran during the reloads");
    assert_eq!(state.0.metrics.reloads_ok.load(Ordering::Relaxed), 5);
}
