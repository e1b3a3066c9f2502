//! Builds `wasi:http` header maps (`fields`) forever, each with one 16 KiB header, and
//! keeps every one alive. These live in the host's resource table, outside the step's
//! linear memory, so the memory limit does not see them. Must: the host stops the step
//! with the limit `host-resources` instead of growing its own memory without bound.

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};
use wasi::http::types::Fields;

#[relo_sdk::step]
fn flood(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = vec![b'v'; 16 * 1024];
    let mut kept = Vec::new();
    loop {
        let fields = Fields::new();
        if fields.append("x-flood", &value).is_err() {
            return Ok(json!({"outcome": "append-refused", "kept": kept.len()}));
        }
        kept.push(fields);
    }
}
