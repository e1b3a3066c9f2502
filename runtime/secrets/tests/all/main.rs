//! relo-secrets against a real OpenBao server (`bao server -dev`): one for the whole binary,
//! where each test has its own mounts and keys, and one of their own for the tests that
//! stop it.
//!
//! The server comes from `RELO_BAO` (set by `scripts/test.sh`) or, outside CI, `bao` on
//! `PATH`; without one these tests fail, naming `scripts/test.sh`.

#![allow(clippy::unwrap_used, reason = "tests")]

mod kv;
mod outage;
mod scoped;
mod transit;

/// The OpenBao harness, shared with the other crates' tests.
use relo_test_openbao as support;
