//! Gets a handle to a secret, then reveals it without the reveal grant. Must get
//! `{"outcome": "reveal-denied", "kind", "error"}`; on success it reports only the
//! value's length, never the value.

use relo_sdk::{StepContext, StepError, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[relo_sdk::step]
fn reveal(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let secret = match secrets::get(&input.name) {
        Ok(secret) => secret,
        Err(error) => {
            return Ok(json!({
                "outcome": "get-denied",
                "kind": error.kind(),
                "error": error.to_string(),
            }));
        }
    };
    Ok(match secret.reveal() {
        Ok(value) => json!({"outcome": "revealed", "length": value.len()}),
        Err(error) => json!({
            "outcome": "reveal-denied",
            "kind": error.kind(),
            "error": error.to_string(),
        }),
    })
}
