//! Asks for an undeclared secret whose name is 1 MiB of `a`. Must get `{"outcome":
//! "denied"}`; the host's note and evidence keep at most 256 bytes of the name, marked
//! as truncated.

use relo_sdk::{StepContext, StepError, secrets};
use serde_json::{Value, json};

#[relo_sdk::step]
fn ask(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let name = "a".repeat(1024 * 1024);
    Ok(match secrets::get(&name) {
        Ok(_) => json!({"outcome": "handle"}),
        Err(error) => json!({"outcome": "denied", "kind": error.kind()}),
    })
}
