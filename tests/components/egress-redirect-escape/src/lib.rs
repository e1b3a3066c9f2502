//! GETs the URL it is given, through relo-sdk (which does not follow redirects), then, if
//! the response is a 3xx with a `Location`, GETs that location itself. The host grants
//! only the first URL, so the first request must be sent and the follow-up denied: a
//! redirect must not carry a step past its grant.
//!
//! Output: `{"first": {"status", "location": <Location or null>}}`, plus
//! `"follow": {"outcome": "sent"|"denied"|"error", ...}` (as `probe::send`) when the first
//! response is a redirect with a `Location`. The location is sent as given, so it must be
//! an absolute URL. If the first request fails, `{"first": <probe::send outcome>}`.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
}

#[relo_sdk::step]
fn escape(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let response = match Request::new(Method::Get, input.url).send() {
        Ok(response) => response,
        Err(error) => return Ok(json!({ "first": probe::failed(&error) })),
    };
    let location = response.header("location").map(str::to_owned);
    let mut output = json!({
        "first": {
            "status": response.status,
            "location": location,
        },
    });
    if let Some(location) = location.filter(|_| (300..400).contains(&response.status)) {
        output["follow"] = probe::send(Request::new(Method::Get, location));
    }
    Ok(output)
}
