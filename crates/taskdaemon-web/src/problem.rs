//! Errors as RFC 9457 problem objects (`application/problem+json`), each
//! carrying the class the CLI maps to its exit codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use taskdaemon_service::{ErrorClass, ServiceError};
use utoipa::ToSchema;

/// A failed request, as the API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank`-style tags here).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// `failed`, `bad_input`, `not_found`, `illegal_state`, `unauthorized`,
    /// `forbidden` or `too_large`: the CLI's error kinds plus the HTTP ones.
    pub class: String,
    /// The exit code the CLI gives the same failure, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
}

impl Problem {
    pub fn new(status: StatusCode, class: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:taskdaemon:problem:{class}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            class: class.to_owned(),
            exit_code: None,
        }
    }

    pub fn bad_input(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::BAD_REQUEST, "bad_input", detail);
        problem.exit_code = Some(ErrorClass::BadInput.exit_code());
        problem
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid token is required: `Authorization: Bearer TOKEN`, or open the URL `taskdaemon dashboard` prints",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "failed", detail);
        problem.exit_code = Some(ErrorClass::Failed.exit_code());
        problem
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        let class = e.class();
        let (status, name) = match class {
            ErrorClass::Failed => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
            ErrorClass::BadInput => (StatusCode::BAD_REQUEST, "bad_input"),
            ErrorClass::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorClass::IllegalState => (StatusCode::CONFLICT, "illegal_state"),
        };
        if class == ErrorClass::Failed {
            tracing::warn!(error = %e, "web request failed");
        }
        let mut problem = Problem::new(status, name, e.to_string());
        problem.exit_code = Some(class.exit_code());
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
