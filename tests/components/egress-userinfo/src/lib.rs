//! Sends a raw `wasi:http` `GET` whose authority carries user information
//! (`user:pw@127.0.0.1:PORT`), which relo-sdk refuses to build. The host must not send it:
//! it refuses the authority (`{"outcome": "refused-authority"}`) or denies the request
//! (`{"outcome": "denied", "error": <Debug of the ErrorCode>}`). Otherwise
//! `{"outcome": "sent", "status"}` on a response, or `{"outcome": "error", "error"}` for
//! any other error code, whether `handle` or the response returned it.

use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::{Value, json};
use wasi::http::types::{Fields, Method};

use probe::raw::{self, Outcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    /// `http` or `https`.
    scheme: String,
    /// Sent as given: `user:pw@127.0.0.1:8080`.
    authority: String,
    /// Sent as given: `/api/tags`.
    path: String,
}

#[relo_sdk::step]
fn userinfo(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let scheme = raw::scheme_named(&input.scheme)
        .ok_or_else(|| StepError::invalid_input("`scheme`: expected `http` or `https`"))?;
    let request = match raw::build(
        Fields::new(),
        &Method::Get,
        &scheme,
        &input.authority,
        &input.path,
    ) {
        Ok(request) => request,
        Err(refused) => return Ok(refused.to_json()),
    };
    Ok(match raw::send(request) {
        Outcome::Sent { status, .. } => json!({ "outcome": "sent", "status": status }),
        other => other.to_json(),
    })
}
