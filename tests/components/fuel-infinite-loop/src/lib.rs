//! Loops forever doing arithmetic. Must be stopped by the fuel limit.

use std::hint::black_box;

use relo_sdk::{StepContext, StepError};
use serde_json::Value;

#[relo_sdk::step]
fn spin(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let mut x: u64 = black_box(1);
    loop {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}
