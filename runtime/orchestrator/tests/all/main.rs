//! relo-orchestrator integration tests: one binary, a module per concern.

#![allow(
    clippy::unwrap_used,
    reason = "fixtures fail the test loudly on any setup error"
)]

mod at_rest;
mod catalog;
mod credentials;
mod people;
mod run;
mod support;
