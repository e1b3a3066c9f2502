//! For `{"rounds"}` rounds (default 2,000), makes `/workspace/data` a regular file, then
//! a relative symbolic link toward `{"target"}` (default `../../secret`, outside the
//! workspace: WASI's `symlink-at` accepts relative targets), and so on; it ends with
//! `data` as a link unless `{"end_as_file": true}`. Run beside another read-write step
//! of the same wave, it races the host's snapshot. Must: whatever the timing, the host
//! never copies what the link points to into the workspace or the store; a snapshot
//! that meets the link is refused (`workspace-entry-refused`).

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};
use wasi::filesystem::preopens::get_directories;

#[relo_sdk::step]
fn race(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let rounds = input["rounds"].as_u64().unwrap_or(2_000);
    let target = input["target"].as_str().unwrap_or("../../secret").to_owned();
    let end_as_file = input["end_as_file"].as_bool().unwrap_or(false);
    let path = "/workspace/data";
    let workspace = get_directories()
        .into_iter()
        .find_map(|(dir, name)| (name == "/workspace").then_some(dir))
        .ok_or_else(|| StepError::failed("no /workspace preopen"))?;
    let mut linked = 0_u64;
    for _ in 0..rounds {
        let _ = std::fs::remove_file(path);
        std::fs::write(path, "a plain file").map_err(|e| StepError::failed(format!("{e}")))?;
        let _ = std::fs::remove_file(path);
        if workspace.symlink_at(&target, "data").is_ok() {
            linked += 1;
        }
    }
    if end_as_file {
        let _ = std::fs::remove_file(path);
        std::fs::write(path, "a plain file").map_err(|e| StepError::failed(format!("{e}")))?;
    }
    Ok(json!({"linked": linked}))
}
