//! Returns `{"vars": {NAME: VALUE}}`: every environment variable it can see. Must see
//! only what its manifest declared and the operator approved (nothing from the host).

use relo_sdk::{StepContext, StepError};
use serde_json::{Map, Value, json};

#[relo_sdk::step]
fn vars(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let vars: Map<String, Value> = std::env::vars()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    Ok(json!({ "vars": vars }))
}
