//! Shared by the egress components: sends a request and describes the outcome as JSON.
//! [`send`] goes through relo-sdk's client; [`raw`] builds requests with the raw
//! `wasi:http` types, for what the SDK would refuse before the host ever sees it.

pub mod raw;

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
        Err(error) => failed(&error),
    }
}

/// Describes a failed request as [`send`] does: `{"outcome": "denied", "error"}` for
/// [`HttpError::Denied`], `{"outcome": "error", "error"}` for any other error.
pub fn failed(error: &HttpError) -> Value {
    let outcome = match error {
        HttpError::Denied(_) => "denied",
        _ => "error",
    };
    json!({
        "outcome": outcome,
        "error": error.to_string(),
    })
}
