//! Reveals `forge_token` and logs it at info level through relo's log interface, alone and
//! inside a longer line (`token=<value>;`), then returns `{"ok": true}`. Must: the host
//! redacts both lines to `[REDACTED:forge_token]` in the step log.

use relo_sdk::{StepContext, StepError, info, secrets};
use serde_json::{Value, json};

#[relo_sdk::step]
fn leak_log(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    info!("{value}");
    info!("token={value};");
    Ok(json!({"ok": true}))
}
