//! Asks for undeclared secrets in a loop, each under a new 4 KiB name, up to `{"calls"}`
//! times (default 100,000). Must: the host stops the step with the limit `host-calls`
//! once its budget of refused calls is spent, and records at most that many denials.

use relo_sdk::{StepContext, StepError, secrets};
use serde_json::{Value, json};

#[relo_sdk::step]
fn flood(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let calls = input["calls"].as_u64().unwrap_or(100_000);
    let padding = "n".repeat(4096);
    let mut refused = 0_u64;
    for call in 0..calls {
        if secrets::get(&format!("{padding}-{call}")).is_err() {
            refused += 1;
        }
    }
    Ok(json!({"refused": refused}))
}
