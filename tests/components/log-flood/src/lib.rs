//! Writes 1 KiB lines forever, through `{"via": "log"}` the log interface, `"stdout"` or
//! `"stderr"`. Must be stopped by the log limit.

use relo_sdk::{StepContext, StepError, info};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Via {
    Log,
    Stdout,
    Stderr,
}

#[derive(Deserialize)]
struct Input {
    via: Via,
}

#[relo_sdk::step]
fn flood(_: &StepContext, input: Input) -> Result<Value, StepError> {
    let filler = "f".repeat(1024 - 11);
    let mut n: u64 = 0;
    loop {
        n += 1;
        // 1024 bytes: a 10-digit counter, a space, the filler.
        let line = format!("{n:>10} {filler}");
        match input.via {
            Via::Log => info!("{line}"),
            Via::Stdout => println!("{line}"),
            Via::Stderr => eprintln!("{line}"),
        }
    }
}
