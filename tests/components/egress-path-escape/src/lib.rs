//! Sends a raw `wasi:http` `GET` for each path it is given (`/api/../admin`,
//! `/api/%2e%2e/admin`, ...), exactly as given: no normalisation, decoding or checking on
//! the guest side, so that only the host decides. The host grants a path prefix (`/api/`):
//! a path that escapes it once normalised must be denied, or refused outright.
//!
//! Output: `{"results": {path: outcome}}`, one per path, where the outcome is
//! `{"outcome": "sent", "status", "body"}`, `{"outcome": "denied", "error"}`,
//! `{"outcome": "error", "error"}` or `{"outcome": "refused-path"}` (the host refused
//! `set-path-with-query`). Scheme and authority come from `base`; a path in `base` is
//! ignored.

use std::collections::BTreeMap;

use relo_sdk::{StepContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasi::http::types::{Fields, Method};

use probe::raw::{self, Target};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    /// `http://127.0.0.1:8080`.
    base: String,
    paths: Vec<String>,
}

#[derive(Serialize)]
struct Output {
    results: BTreeMap<String, Value>,
}

#[relo_sdk::step]
fn escape(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let base = Target::parse(&input.base)
        .map_err(|error| StepError::invalid_input(format!("`base`: {error}")))?;
    let results = input
        .paths
        .into_iter()
        .map(|path| {
            let outcome = match raw::build(
                Fields::new(),
                &Method::Get,
                &base.scheme,
                &base.authority,
                &path,
            ) {
                Ok(request) => raw::send(request).to_json(),
                Err(refused) => refused.to_json(),
            };
            (path, outcome)
        })
        .collect();
    Ok(Output { results })
}
