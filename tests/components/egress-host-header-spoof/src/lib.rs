//! Tries to send a `Host` header that names another host than the URL's authority, with
//! the raw `wasi:http` types (relo-sdk might refuse the header itself, and the host is what
//! is under test). The host must refuse the header (`HeaderError::Forbidden`) or, if it
//! accepts it, decide by the request's authority alone: never reach `host` through a grant
//! for the URL.
//!
//! Two ways of setting it, each reported on its own: `"append"` (`Fields::new()` then
//! `append("host", host)`) and `"from_list"` (`Fields::from_list([("host", host)])`). Each
//! is `{"outcome": "refused-header", "error": <Debug of the HeaderError>}` when the fields
//! refuse the header; otherwise the result of a `GET` of `url` with those fields:
//! `{"outcome": "sent", "status", "body"}`, `{"outcome": "denied", "error"}` or
//! `{"outcome": "error", "error"}` (`{"outcome": "refused-<part>"}` if a part of the
//! request itself is refused).

use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::{Value, json};
use wasi::http::types::{Fields, HeaderError};

use probe::raw::{self, Target};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
    host: String,
}

#[relo_sdk::step]
fn spoof(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let target = Target::parse(&input.url)
        .map_err(|error| StepError::invalid_input(format!("`url`: {error}")))?;
    let appended = {
        let fields = Fields::new();
        fields
            .append("host", input.host.as_bytes())
            .map(|()| fields)
    };
    let from_list = Fields::from_list(&[("host".to_owned(), input.host.into_bytes())]);
    Ok(json!({
        "append": attempt(appended, &target),
        "from_list": attempt(from_list, &target),
    }))
}

/// The outcome of sending a `GET` of `target` with `fields`, or of their refusal.
fn attempt(fields: Result<Fields, HeaderError>, target: &Target) -> Value {
    match fields {
        Err(error) => json!({
            "outcome": "refused-header",
            "error": format!("{error:?}"),
        }),
        Ok(fields) => match raw::get(fields, target) {
            Ok(outcome) => outcome.to_json(),
            Err(refused) => refused.to_json(),
        },
    }
}
