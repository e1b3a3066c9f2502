//! Writes `{"files"}` files of `{"bytes"}` bytes each into `/workspace/fill/` (defaults:
//! 100 files of 1 MiB). Must: past the run's workspace limit (bytes or entries), the
//! step ends with the limit `workspace`.

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};

#[relo_sdk::step]
fn fill(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let files = input["files"].as_u64().unwrap_or(100);
    let bytes = input["bytes"].as_u64().unwrap_or(1 << 20);
    std::fs::create_dir_all("/workspace/fill")
        .map_err(|e| StepError::failed(format!("mkdir: {e}")))?;
    let block = vec![b'f'; bytes as usize];
    for n in 0..files {
        std::fs::write(format!("/workspace/fill/{n}"), &block)
            .map_err(|e| StepError::failed(format!("write {n}: {e}")))?;
    }
    Ok(json!({"files": files, "bytes": bytes}))
}
