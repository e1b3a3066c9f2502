//! Recurses without bound. Must trap on stack exhaustion (the wasm call stack).

use std::hint::black_box;

use relo_sdk::{StepContext, StepError};
use serde_json::Value;

/// Stops only at `depth == limit`, and `limit` is `u64::MAX` hidden behind `black_box`, so
/// the optimiser must keep the recursion. The result is used after the call in a way that
/// is neither a tail call nor an associative accumulator, so it cannot become a loop.
/// Only scalars: the frames live on the wasm call stack, not in linear memory.
#[inline(never)]
fn descend(depth: u64, limit: u64, a: u64, b: u64, c: u64) -> u64 {
    if depth == limit {
        return a ^ b ^ c;
    }
    let below = descend(
        depth + 1,
        limit,
        a.wrapping_mul(31).wrapping_add(depth),
        b.rotate_left(7) ^ depth,
        c.wrapping_add(a),
    );
    below.rotate_left((b & 63) as u32).wrapping_sub(a) ^ c.wrapping_mul(below | 1)
}

#[relo_sdk::step]
fn overflow(_: &StepContext, _: Value) -> Result<Value, StepError> {
    Ok(Value::from(descend(0, black_box(u64::MAX), 1, 2, 3)))
}
