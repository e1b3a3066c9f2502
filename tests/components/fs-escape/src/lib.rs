//! Reads the paths it is given (`/workspace/../etc/passwd`, ...) and optionally writes
//! one. Reads outside the workspace, and writes to a read-only workspace, must fail:
//! `{"reads": {path: "ok:..."|"error:..."}, "write": "ok"|"error:..."|null}`.

use std::collections::BTreeMap;

use relo_sdk::{StepContext, StepError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    paths: Vec<String>,
    write: Option<String>,
}

#[derive(Serialize)]
struct Output {
    reads: BTreeMap<String, String>,
    write: Option<String>,
}

#[relo_sdk::step]
fn escape(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let reads = input
        .paths
        .into_iter()
        .map(|path| {
            let result = match std::fs::read_to_string(&path) {
                Ok(content) => format!("ok:{content}"),
                Err(error) => format!("error:{error}"),
            };
            (path, result)
        })
        .collect();
    let write = input
        .write
        .map(|path| match std::fs::write(&path, "written by fs-escape") {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("error:{error}"),
        });
    Ok(Output { reads, write })
}
