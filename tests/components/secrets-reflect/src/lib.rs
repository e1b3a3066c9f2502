//! GETs `{"url"}` with `authorization: Bearer {{secret:forge_token}}` (injected by the
//! host) from a destination that echoes what it receives, in response headers and in
//! the body, and returns what it read back reversed, so that the output check (which
//! knows only the literal value) would not catch it: `{"status", "headers": {name:
//! reversed value}, "body": reversed body}`. Must: every echo of the value reaches the
//! step masked (`*` of the same length), recorded as `secret.reflected`.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde_json::{Map, Value, json};

fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

#[relo_sdk::step]
fn reflect(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let url = input["url"]
        .as_str()
        .ok_or_else(|| StepError::invalid_input("`url` is required"))?;
    let response = Request::new(Method::Get, url)
        .header("authorization", "Bearer {{secret:forge_token}}")
        .send()?;
    let mut headers = Map::new();
    for name in ["x-echo", "x-set-by-server"] {
        if let Some(value) = response.header(name) {
            headers.insert(name.to_owned(), Value::String(reversed(value)));
        }
    }
    let body = response.text().unwrap_or_default();
    Ok(json!({
        "status": response.status,
        "headers": headers,
        "body": reversed(body),
    }))
}
