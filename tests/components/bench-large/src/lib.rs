//! A component over 1 MB, mostly code, for the cold-start benchmark. `{"n": k}` runs a
//! few of its thousands of generated functions, chosen by `k`, and returns
//! `{"result": <number>}`. Every function is reachable through `TABLE`, so none is
//! dropped.

use relo_sdk::{StepContext, StepError};
use serde::{Deserialize, Serialize};

include!(concat!(env!("OUT_DIR"), "/functions.rs"));

#[derive(Deserialize)]
struct Input {
    n: u64,
}

#[derive(Serialize)]
struct Output {
    result: u64,
}

#[relo_sdk::step]
fn run(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let len = TABLE.len() as u64;
    let result = (0..8).fold(input.n, |acc, i| {
        let index = usize::try_from(input.n.wrapping_add(i) % len).unwrap_or_default();
        acc ^ TABLE[index](acc)
    });
    Ok(Output { result })
}
