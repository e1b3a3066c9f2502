//! POSTs `{"x":1}` to the URL it is given. The host grants only GET there, so the
//! outcome must be `{"outcome": "denied", "error"}`.

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
    let request = Request::new(Method::Post, input.url)
        .header("content-type", "application/json")
        .body(r#"{"x":1}"#);
    Ok(probe::send(request))
}
