//! Sends the request it is given and describes the outcome:
//! `{"outcome": "sent", "status", "body"}`, `{"outcome": "denied", "error"}` or
//! `{"outcome": "error", "error"}`.

use std::collections::BTreeMap;

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
    /// `GET` when absent.
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

#[relo_sdk::step]
fn send(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let method = match input.method.as_deref() {
        None => Method::Get,
        Some(name) => name
            .parse()
            .map_err(|error| StepError::invalid_input(format!("`method`: {error}")))?,
    };
    let mut request = Request::new(method, input.url);
    for (name, value) in input.headers {
        request = request.header(name, value);
    }
    if let Some(body) = input.body {
        request = request.body(body);
    }
    Ok(probe::send(request))
}
