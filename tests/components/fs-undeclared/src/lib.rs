//! Reads `/workspace/VERSION` and lists `/` without a filesystem grant. Both must fail:
//! `{"read": "error:...", "list_root": "error:..."}`.

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};

#[relo_sdk::step]
fn look(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let read = match std::fs::read_to_string("/workspace/VERSION") {
        Ok(content) => format!("ok:{content}"),
        Err(error) => format!("error:{error}"),
    };
    let list_root = match list("/") {
        Ok(names) => format!("ok:{}", names.join(",")),
        Err(error) => format!("error:{error}"),
    };
    Ok(json!({"read": read, "list_root": list_root}))
}

fn list(dir: &str) -> std::io::Result<Vec<String>> {
    std::fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect()
}
