//! JSON body and query-string extractors whose rejections are problem+json naming the field
//! (axum's own answer in plain text otherwise).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// `axum::Json` with problem+json rejections: 400 for malformed JSON, 415 for a wrong content
/// type, 413 for a body over the limit, 422 for well-formed JSON of the wrong shape (the
/// message names the field path). Bodies over [`PARSE_INLINE_MAX`] are parsed on a blocking
/// thread: a 32 MiB batch is real CPU that must not stall the async workers serving the
/// per-customer reads.
pub struct ApiJson<T>(pub T);

/// Bodies up to this size are parsed where they arrive (a thread hop costs more than that).
pub const PARSE_INLINE_MAX: usize = 64 * 1024;

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })
}

impl<T: DeserializeOwned + Send + 'static, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid-request",
                "expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                let kind = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "body-too-large"
                } else {
                    "invalid-request"
                };
                Problem::new(e.status(), kind, e.body_text())
            })?;
        let big = bytes.len() > PARSE_INLINE_MAX;
        let parse = move || {
            axum::Json::<T>::from_bytes(&bytes)
                .map(|axum::Json(v)| ApiJson(v))
                .map_err(|e| json_problem(&e))
        };
        if big {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| Problem::internal("parsing the body", &e))?
        } else {
            parse()
        }
    }
}

fn json_problem(e: &JsonRejection) -> Problem {
    let text = e.body_text();
    match e {
        JsonRejection::JsonDataError(_) => {
            let field = field_of(&text);
            let p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", text);
            match field {
                Some(f) => p.with_field(f),
                None => p,
            }
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid-request",
            "expected a JSON body with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(_) => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", text)
        }
        _ => Problem::new(StatusCode::BAD_REQUEST, "invalid-json", text),
    }
}

/// axum reports data errors as "…: <path>: <serde message>"; the path names the field.
fn field_of(text: &str) -> Option<String> {
    let rest = text.split_once("target type: ")?.1;
    let (path, _) = rest.split_once(": ")?;
    (!path.contains(' ')).then(|| path.to_string())
}

/// `axum::extract::Query` with problem+json rejections (400, naming the parameter).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_problem(&e)),
        }
    }
}

fn query_problem(e: &QueryRejection) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid-request", e.body_text())
}

/// The next-best-actions query, read straight from the URI. The hottest route parses it by
/// hand: serde's query deserializer (with its field-path tracking) was ~0.8 µs of a ~17 µs
/// request. Same answers as [`ApiQuery`]: 400 naming the parameter for a bad value or an
/// unknown name.
impl<S: Send + Sync> FromRequestParts<S> for crate::api::ActionsQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        actions_query(parts.uri.query().unwrap_or_default())
    }
}

fn actions_query(query: &str) -> Result<crate::api::ActionsQuery, Problem> {
    /// `parsed` is `None` for a value that does not parse; `expected` says what would.
    fn set<T>(
        slot: &mut Option<T>,
        name: &str,
        value: &str,
        parsed: Option<T>,
        expected: &str,
    ) -> Result<(), Problem> {
        if slot.is_some() {
            return Err(Problem::bad_request(
                name,
                format!("duplicate query parameter `{name}`"),
            ));
        }
        let v = parsed.ok_or_else(|| {
            Problem::bad_request(name, format!("{name}: expected {expected} (got {value:?})"))
        })?;
        *slot = Some(v);
        Ok(())
    }
    fn boolean(v: &str) -> Option<bool> {
        match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
    let mut q = crate::api::ActionsQuery::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "limit" => set(
                &mut q.limit,
                "limit",
                &value,
                value.parse().ok(),
                "a whole number",
            )?,
            "channel" => set(
                &mut q.channel,
                "channel",
                &value,
                Some(value.to_string()),
                "",
            )?,
            "explain" => set(
                &mut q.explain,
                "explain",
                &value,
                boolean(&value),
                "true or false",
            )?,
            "record" => set(
                &mut q.record,
                "record",
                &value,
                boolean(&value),
                "true or false",
            )?,
            other => {
                return Err(Problem::bad_request(
                    other,
                    format!(
                        "unknown query parameter `{other}` (expected limit, channel, explain \
                         or record)"
                    ),
                ));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::{actions_query, field_of};

    #[test]
    fn actions_query_is_read_like_serde_would() {
        let q = actions_query("limit=7&channel=e%6Dail&explain=true").unwrap();
        assert_eq!(
            (q.limit, q.channel.as_deref(), q.explain, q.record),
            (Some(7), Some("email"), Some(true), None)
        );
        let q = actions_query("").unwrap();
        assert_eq!(
            (q.limit, q.channel, q.explain, q.record),
            (None, None, None, None)
        );
        for (bad, field) in [
            ("limit=many", "limit"),
            ("limit=-1", "limit"),
            ("explain=maybe", "explain"),
            ("record=1", "record"),
            ("colour=red", "colour"),
            ("limit=1&limit=2", "limit"),
        ] {
            let p = actions_query(bad).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
            assert_eq!(p.field.as_deref(), Some(field), "{bad}");
        }
    }

    #[test]
    fn field_paths_are_found() {
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: limit: invalid type: \
                 string \"x\", expected usize at line 1 column 12"
            )
            .as_deref(),
            Some("limit")
        );
        assert_eq!(field_of("something else"), None);
    }
}
