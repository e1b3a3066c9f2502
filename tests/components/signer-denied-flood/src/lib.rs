//! Asks to sign a digest with keys it was not granted, each under a new 4 KiB name, up to
//! `{"calls"}` times (default 100,000). Must: the host stops the step with the limit
//! `host-calls` once its budget of refused calls is spent, and records at most that many
//! denials.

use relo_sdk::{StepContext, StepError, signer};
use serde_json::{Value, json};

/// SHA-256 of the bytes `relo`.
const DIGEST: &str = "3fd4fad2a628fb1374f8bbfe48e60e60747a1ff6d7ef5354677cd5a469b1d6b3";

#[relo_sdk::step]
fn flood(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let calls = input["calls"].as_u64().unwrap_or(100_000);
    let padding = "k".repeat(4096);
    let mut refused = 0_u64;
    for call in 0..calls {
        if signer::sign_digest(&format!("{padding}-{call}"), DIGEST).is_err() {
            refused += 1;
        }
    }
    Ok(json!({"refused": refused}))
}
