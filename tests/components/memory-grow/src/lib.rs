//! Allocates 1 MiB chunks forever, touching every page and keeping them all. Must be
//! stopped by the memory limit.

use std::hint::black_box;

use relo_sdk::{StepContext, StepError};
use serde_json::Value;

const CHUNK: usize = 1024 * 1024;

#[relo_sdk::step]
fn grow(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for page in chunk.chunks_mut(4096) {
            page[0] = black_box(1);
        }
        kept.push(black_box(chunk));
    }
}
