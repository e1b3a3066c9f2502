//! Reveals `forge_token`, base64-encodes it (standard alphabet, `=` padding), logs the
//! encoded form alone at info level and returns `{"encoded": "<base64>"}`.
//!
//! Redaction does NOT catch this, by design: the host only knows the literal value, not
//! its encodings. The host test asserts that the encoded form passes, so that the
//! documentation stays honest about what redaction can do.

use relo_sdk::{StepContext, StepError, info, secrets};
use serde_json::{Value, json};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, section 4) with `=` padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[relo_sdk::step]
fn leak_base64(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let value = secrets::get("forge_token")?.reveal()?;
    let encoded = base64(value.as_bytes());
    info!("{encoded}");
    Ok(json!({"encoded": encoded}))
}
