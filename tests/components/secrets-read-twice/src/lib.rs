//! Gets a handle to `forge_token`, sends a GET to `{"url"}` (where a test revokes the
//! step's credentials), then gets the handle again. Returns
//! `{"first": "ok" | <error kind>, "second": "ok" | <error kind>}`: each `get` is a read
//! through the provider, so a revoked credential fails the second.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
}

fn read() -> String {
    match secrets::get("forge_token") {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.kind().to_owned(),
    }
}

#[relo_sdk::step]
fn twice(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let first = read();
    Request::new(Method::Get, input.url).send()?;
    let second = read();
    Ok(json!({"first": first, "second": second}))
}
