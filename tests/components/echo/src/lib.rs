//! A normal step: returns its input and its context.

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};

#[relo_sdk::step]
fn echo(ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    Ok(json!({
        "echo": input,
        "run_id": ctx.run_id,
        "step_id": ctx.step_id,
        "attempt": ctx.attempt,
    }))
}
