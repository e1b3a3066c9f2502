//! GETs the URL it is given, through relo-sdk. The host grants the URL's name, but a test
//! resolver maps that name to a loopback or private address (`127.0.0.1`): the host must
//! refuse the resolved address before connecting, so the outcome must be
//! `{"outcome": "error", "error"}` naming wasi-http's `DestinationIpProhibited` (as
//! `probe::send` describes outcomes; `"sent"` would mean the address was reached).

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
}

#[relo_sdk::step]
fn send(_: &StepContext, input: Input) -> Result<Value, StepError> {
    Ok(probe::send(Request::new(Method::Get, input.url)))
}
