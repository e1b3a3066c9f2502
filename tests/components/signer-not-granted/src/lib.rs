//! Signs the SHA-256 of `relo` with a key (`release` unless `{"key"}` says otherwise)
//! that it was not granted. Must get `{"outcome": "denied", "kind": "not-granted", "error"}`.

use relo_sdk::{StepContext, StepError, signer};
use serde::Deserialize;
use serde_json::{Value, json};

/// SHA-256 of the bytes `relo`.
const DIGEST: &str = "3fd4fad2a628fb1374f8bbfe48e60e60747a1ff6d7ef5354677cd5a469b1d6b3";

#[derive(Deserialize)]
struct Input {
    #[serde(default = "release")]
    key: String,
}

fn release() -> String {
    "release".to_owned()
}

#[relo_sdk::step]
fn sign(_: &StepContext, input: Input) -> Result<Value, StepError> {
    Ok(match signer::sign_digest(&input.key, DIGEST) {
        Ok(signature) => json!({"outcome": "signed", "signature": signature}),
        Err(error) => json!({
            "outcome": "denied",
            "kind": error.kind(),
            "error": error.to_string(),
        }),
    })
}
