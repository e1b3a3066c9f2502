//! Returns text that is not JSON from `run`. The host must reject the output as invalid
//! JSON. Written against the WIT directly, without relo-sdk, which would never do this.

mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
    });
}

use bindings::exports::relo::plugin::step::Guest;
use bindings::relo::plugin::types::{StepContext, StepError};

struct NotJson;

impl Guest for NotJson {
    fn run(_: StepContext, _: String) -> Result<String, StepError> {
        Ok("this is not json {".to_owned())
    }
}

bindings::export!(NotJson with_types_in bindings);
