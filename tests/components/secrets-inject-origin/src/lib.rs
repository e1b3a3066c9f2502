//! GETs `{"url"}`, a destination `forge_token` may be injected into (in `authorization`
//! only), with `{{secret:forge_token}}` in the `origin` header, a header servers often
//! echo back (CORS). It tries twice: the placeholder in `origin` alone, then beside the
//! granted `authorization` header, hoping the one allowed placeholder carries the other
//! through. Returns `{"origin": outcome, "beside_authorization": outcome}`, each as
//! `probe::send` describes it. Must: both are `denied`, the destination never sees the
//! value, and the evidence names `inject-header-not-granted`.

use relo_sdk::http::{Method, Request};
use relo_sdk::{StepContext, StepError};
use serde_json::{Value, json};

const PLACEHOLDER: &str = "{{secret:forge_token}}";

#[relo_sdk::step]
fn inject_origin(_: &StepContext, input: Value) -> Result<Value, StepError> {
    let url = input["url"]
        .as_str()
        .ok_or_else(|| StepError::invalid_input("`url` is required"))?;
    let alone = Request::new(Method::Get, url).header("origin", PLACEHOLDER);
    let beside = Request::new(Method::Get, url)
        .header("authorization", format!("Bearer {PLACEHOLDER}"))
        .header("Origin", PLACEHOLDER);
    Ok(json!({
        "origin": probe::send(alone),
        "beside_authorization": probe::send(beside),
    }))
}
