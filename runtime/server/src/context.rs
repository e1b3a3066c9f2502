//! What every request gets before its route: an id, a time limit, and a log line when it
//! is answered.
//!
//! The id is the client's `x-request-id` when that is a short token of letters, digits,
//! `-` and `_`, and a fresh random one otherwise; it is in every log line of the request
//! (a `request` span) and in the answer's `x-request-id` header, so a client's report
//! and the server's log meet. A request not answered within the server's time limit is
//! answered 503 `request-timeout` (the handler is dropped: a transaction it had open
//! rolls back).

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::random_id;

/// The header carrying the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How long a request may take by default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client's request id, if it is one we repeat: 1 to 64 of `A-Za-z0-9-_`.
fn acceptable(id: &HeaderValue) -> Option<&str> {
    let id = id.to_str().ok()?;
    ((1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(id)
}

/// The middleware in front of every request.
pub(crate) async fn request_context(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(acceptable)
        .map(str::to_owned)
        .or_else(|| random_id().ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let limit = state.request_timeout();
    let answered = tokio::time::timeout(limit, next.run(request))
        .instrument(span.clone())
        .await;
    let mut response = match answered {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request-timeout",
            format!(
                "the request was not answered within {} ms; nothing it began was kept \
                 unless it had committed (see the request id in the server's log)",
                limit.as_millis()
            ),
        )
        .into_response(),
    };
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
