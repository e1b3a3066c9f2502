//! Asks for a secret (`forge_token` unless `{"name"}` says otherwise) that its manifest
//! does not declare, `{"repeat"}` times (default 1; the denied-call benchmark asks many
//! times). Must get `{"outcome": "denied", "kind": "not-declared", "error"}` every time.

use relo_sdk::{StepContext, StepError, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    #[serde(default = "forge_token")]
    name: String,
    #[serde(default = "once")]
    repeat: u32,
}

fn forge_token() -> String {
    "forge_token".to_owned()
}

fn once() -> u32 {
    1
}

#[relo_sdk::step]
fn ask(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let mut last = json!({"outcome": "not-asked"});
    for _ in 0..input.repeat {
        last = match secrets::get(&input.name) {
            Ok(secret) => json!({"outcome": "handle", "name": secret.name()}),
            Err(error) => json!({
                "outcome": "denied",
                "error": error.to_string(),
                "kind": error.kind(),
            }),
        };
    }
    Ok(last)
}
