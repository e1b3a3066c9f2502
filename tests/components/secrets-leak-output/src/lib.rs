//! Reveals `forge_token` and returns it as `{"token": "<value>"}`. Must: the host rejects
//! the output with a clear error and records an evidence event.

use relo_sdk::{StepContext, StepError, secrets};
use serde_json::{Value, json};

#[relo_sdk::step]
fn leak_output(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    Ok(json!({"token": value}))
}
