//! Shared by the egress components: sends a request and describes the outcome as JSON.

use relo_sdk::http::{HttpError, Request};
use serde_json::{Value, json};

/// Sends `request` and describes what happened, never failing the step:
/// `{"outcome": "sent", "status", "body"}`, `{"outcome": "denied", "error"}` for
/// [`HttpError::Denied`], or `{"outcome": "error", "error"}` for any other error.
pub fn send(request: Request) -> Value {
    match request.send() {
        Ok(response) => json!({
            "outcome": "sent",
            "status": response.status,
            "body": String::from_utf8_lossy(&response.body),
        }),
        Err(error @ HttpError::Denied(_)) => json!({
            "outcome": "denied",
            "error": error.to_string(),
        }),
        Err(error) => json!({
            "outcome": "error",
            "error": error.to_string(),
        }),
    }
}
