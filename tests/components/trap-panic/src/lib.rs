//! Panics. The step must fail with the panic message.

use relo_sdk::{StepContext, StepError};
use serde_json::Value;

#[relo_sdk::step]
fn panic_on_purpose(_: &StepContext, _: Value) -> Result<Value, StepError> {
    panic!("relo test component panicked on purpose")
}
