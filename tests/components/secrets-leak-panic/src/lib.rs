//! Reveals `forge_token` and panics with `token=<value>;` in the message. Must: the step
//! fails (trap), and the error text and captured stderr show `[REDACTED:forge_token]`,
//! never the value.

use relo_sdk::{StepContext, StepError, secrets};
use serde_json::Value;

#[relo_sdk::step]
fn leak_panic(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    panic!("token={value};")
}
