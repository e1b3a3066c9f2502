//! The one error type of the API: a status, a stable code, a sentence, and the field path
//! of bad input, sent as `{"error": {"code", "message", "field"}}`.

use std::fmt::Display;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
///
/// The code is stable and machine-readable (`invalid-credentials`, `token-expired`,
/// `invalid-field`, ...); the message is for a person. Internal failures are logged with
/// their details and answered as a bare `internal` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The path of the offending input field (`name`, `items[2].digest`), if any.
    pub field: Option<String>,
    /// Seconds to wait before trying again (429 only), sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with this status, code and message, naming no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same error, naming the input field at `path`.
    pub fn with_field(mut self, path: impl Into<String>) -> ApiError {
        self.field = Some(path.into());
        self
    }

    /// 401 with `code`: the caller is not (or no longer) authenticated.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 `forbidden`: the caller lacks `permission` (named in the message).
    pub fn forbidden(permission: impl Display) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the permission `{permission}`, which the caller does not hold"),
        )
    }

    /// 429 `rate-limited`, telling the client to wait `retry_after` seconds.
    pub fn rate_limited(retry_after: u64) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("too many requests; try again in {retry_after} s"),
        );
        err.retry_after = Some(retry_after);
        err
    }

    /// 400 with `code`: the request is invalid.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 500 `internal`: logs `source` with its details and returns none of them.
    pub fn internal(source: impl Display) -> ApiError {
        tracing::error!(error = %source, "internal error while serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; its log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
