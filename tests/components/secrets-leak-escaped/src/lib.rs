//! Reveals `forge_token` and returns it as `{"token": "<value>"}` with the value's first
//! character written as a JSON `\u` escape, so the raw text never contains the value.
//! Must: the host rejects the output (`secret-in-output`) as if it were written plainly.
//! Written against the WIT directly: relo-sdk would serialise the value without escaping.

mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
    });
}

use bindings::exports::relo::plugin::step::Guest;
use bindings::relo::plugin::types::{StepContext, StepError};
use bindings::relo::plugin::{reveal, secrets};

struct LeakEscaped;

impl Guest for LeakEscaped {
    fn run(_: StepContext, _: String) -> Result<String, StepError> {
        let secret = secrets::get("forge_token").map_err(|e| StepError::Failed(format!("{e:?}")))?;
        let value = reveal::reveal(&secret).map_err(|e| StepError::Failed(format!("{e:?}")))?;
        let mut chars = value.chars();
        let first = chars.next().ok_or_else(|| StepError::Failed("empty secret".into()))?;
        // Values with quotes or backslashes are not what this test is about.
        let rest: String = chars.collect();
        Ok(format!("{{\"token\": \"\\u{:04x}{rest}\"}}", u32::from(first)))
    }
}

bindings::export!(LeakEscaped with_types_in bindings);
