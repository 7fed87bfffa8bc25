//! The audience-builder page at `/`: one HTML file, its script and its stylesheet, compiled
//! into the binary. No external fetches: the content security policy allows this origin only.

use axum::http::header;
use axum::response::IntoResponse;

const HTML: &str = include_str!("page/index.html");
const JS: &str = include_str!("page/audience.js");
const CSS: &str = include_str!("page/audience.css");

/// Scripts, styles and requests from this origin only; no frames, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
                   base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", HTML)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

pub async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}
