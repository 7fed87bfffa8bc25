//! Errors as RFC 9457 `application/problem+json`: a status, a title, and a detail that names
//! the field or the customer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` for plain HTTP errors).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://lattice.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-request", detail).with_field(field)
    }

    pub fn unprocessable(field: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail).with_field(field)
    }

    /// A fault of the server's, not the request's: logged with its cause, answered 500 without
    /// it (the cause may name files or internals).
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what} failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what} failed on the server's side (logged)"),
        )
    }

    pub fn unknown_customer(id: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-customer",
            format!(
                "customer {id:?} is not in the model's snapshot; score a customer the model has \
                 not seen with POST /v1/score and inline feature values \
                 ({{\"customers\": [{{\"customer_id\": ..., \"features\": {{...}}}}]}})"
            ),
        )
    }
}

/// A body that could not be read: too large (413) or broken off (400).
impl From<axum::extract::rejection::BytesRejection> for Problem {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        let kind = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "body-too-large"
        } else {
            "invalid-request"
        };
        Problem::new(e.status(), kind, e.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (status, Json(self)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}
