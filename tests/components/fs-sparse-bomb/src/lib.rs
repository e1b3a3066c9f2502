//! Creates `{"files"}` (default 4) files of 8 GiB each in `/workspace` by setting their
//! length: sparse, so they cost the disk nothing, but a host that read them would read
//! 32 GiB. Must: the step ends with the limit `workspace` after it returns, and the host
//! never reads (or holds) more than the limit.

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};

#[relo_sdk::step]
fn bomb(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let files = input["files"].as_u64().unwrap_or(4);
    for n in 0..files {
        let file = std::fs::File::create(format!("/workspace/sparse-{n}"))
            .map_err(|e| StepError::failed(format!("create: {e}")))?;
        file.set_len(8 << 30)
            .map_err(|e| StepError::failed(format!("set_len: {e}")))?;
    }
    Ok(json!({"files": files}))
}
