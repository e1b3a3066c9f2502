//! Reveals `forge_token` and prints it with `println!` and `eprintln!`, alone and inside a
//! longer line (`token=<value>;`), then returns `{"ok": true}`. Must: the host redacts the
//! stdout and stderr captures to `[REDACTED:forge_token]`.

use relo_sdk::{StepContext, StepError, secrets};
use serde_json::{Value, json};

#[relo_sdk::step]
fn leak_stdout(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    println!("{value}");
    println!("token={value};");
    eprintln!("{value}");
    eprintln!("token={value};");
    Ok(json!({"ok": true}))
}
