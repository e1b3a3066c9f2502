//! GETs the URL it is given. The host grants it no egress, so the outcome must be
//! `{"outcome": "denied", "error"}`.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Input {
    url: String,
}

#[relo_sdk::step]
fn send(_: &StepContext, input: Input) -> Result<Value, StepError> {
    Ok(probe::send(Request::new(Method::Get, input.url)))
}
