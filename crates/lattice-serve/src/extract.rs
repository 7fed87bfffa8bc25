//! JSON body and query-string extractors whose rejections are problem+json naming the field
//! (axum's own answer in plain text otherwise).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// `axum::Json` with problem+json rejections: 400 for malformed JSON or a wrong content
/// type, 422 for well-formed JSON of the wrong shape (the message names the field path).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_problem(&e)),
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

#[cfg(test)]
mod tests {
    use super::field_of;

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
