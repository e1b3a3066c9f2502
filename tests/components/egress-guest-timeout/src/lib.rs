//! GETs `base` + `path` `count` times, each with a first-byte timeout of
//! `first_byte_timeout_ms` that the step chooses itself (raw `wasi:http` request
//! options). Output: `{"results": [outcome, ...]}` as the probe describes them.
//! Must: against a server that never answers, every request times out, and none of those
//! timeouts counts against the destination's circuit breaker (a step cannot pause a
//! destination by choosing tiny timeouts).

use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};
use wasi::http::types::{Fields, Method, RequestOptions};

use probe::raw::{self, Target};

#[relo_sdk::step]
fn timeouts(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let base = Target::parse(input["base"].as_str().unwrap_or_default())
        .map_err(|error| StepError::invalid_input(format!("`base`: {error}")))?;
    let path = input["path"].as_str().unwrap_or("/");
    let count = input["count"].as_u64().unwrap_or(1);
    let timeout_ns = input["first_byte_timeout_ms"].as_u64().unwrap_or(1) * 1_000_000;
    let results: Vec<Value> = (0..count)
        .map(|_| {
            let options = RequestOptions::new();
            if options.set_first_byte_timeout(Some(timeout_ns)).is_err() {
                return json!({"outcome": "options-refused"});
            }
            match raw::build(
                Fields::new(),
                &Method::Get,
                &base.scheme,
                &base.authority,
                path,
            ) {
                Ok(request) => raw::send_with(request, Some(options)).to_json(),
                Err(refused) => refused.to_json(),
            }
        })
        .collect();
    Ok(json!({ "results": results }))
}
