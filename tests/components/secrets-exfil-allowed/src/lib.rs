//! Reveals `forge_token` and POSTs it, as the whole body, to `{"url"}` through relo-sdk's
//! `wasi:http` client, as `egress-allowed` does; returns `{"status": N}`. Allowed by design
//! when the destination is granted, and recorded in the evidence with the destination.
//! A refused request fails the step as `denied`, any other request error as `failed`.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
}

#[relo_sdk::step]
fn exfil(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    let response = Request::new(Method::Post, input.url)
        .header("content-type", "text/plain")
        .body(value)
        .send()?;
    Ok(json!({"status": response.status}))
}
