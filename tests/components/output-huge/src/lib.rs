//! Returns `{"data": "<N x characters>"}`. Must be stopped by the output limit.

use relo_sdk::{StepContext, StepError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    /// How many bytes of `x`; 8 MiB when absent.
    #[serde(default = "eight_mib")]
    bytes: usize,
}

fn eight_mib() -> usize {
    8 * 1024 * 1024
}

#[derive(Serialize)]
struct Output {
    data: String,
}

#[relo_sdk::step]
fn huge(_: &StepContext, input: Input) -> Result<Output, StepError> {
    Ok(Output {
        data: "x".repeat(input.bytes),
    })
}
