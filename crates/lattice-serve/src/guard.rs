//! The API-key check as an extractor: the first argument of every protected handler, so a
//! request without the scope is refused before anything else is read (no extra middleware
//! layer on the hot path).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use crate::auth::{Denied, Scope};
use crate::problem::Problem;
use crate::state::AppState;

pub const SCORE: u8 = 0;
pub const ADMIN: u8 = 1;
pub const AUDIENCE: u8 = 2;
pub const EVENTS: u8 = 3;

/// Proof that the request carries a key with the scope `S` ([`SCORE`], [`ADMIN`] or
/// [`AUDIENCE`]).
pub struct Scoped<const S: u8>;

const fn scope(s: u8) -> Scope {
    match s {
        SCORE => Scope::Score,
        AUDIENCE => Scope::Audience,
        EVENTS => Scope::Events,
        _ => Scope::Admin,
    }
}

fn presented_key(parts: &Parts) -> Option<&str> {
    let h = &parts.headers;
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are `Bearer`.
        let (scheme, key) = v.trim_start().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl<const S: u8> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if state.0.keys.is_empty() {
            return Ok(Scoped);
        }
        let scope = scope(S);
        match state.0.keys.check(presented_key(parts), scope) {
            Ok(_) => Ok(Scoped),
            Err(Denied::Unauthenticated) => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a valid API key is required: `Authorization: Bearer <key>`",
            )),
            Err(Denied::Forbidden) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key lacks the `{}` scope", scope.as_str()),
            )),
        }
    }
}
