//! `{"mode": "spin"}` spins forever; `{"mode": "sleep"}` sleeps for an hour. Must be
//! stopped by the wall-clock timeout.

use std::hint::black_box;
use std::time::Duration;

use relo_sdk::{StepContext, StepError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Spin,
    Sleep,
}

#[derive(Deserialize)]
struct Input {
    mode: Mode,
}

#[relo_sdk::step]
fn busy(_: &StepContext, input: Input) -> Result<Value, StepError> {
    match input.mode {
        Mode::Spin => {
            let mut x: u32 = 0;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        Mode::Sleep => {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(Value::from("woke up after an hour"))
        }
    }
}
