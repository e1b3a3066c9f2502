//! Write relo steps in Rust.
//!
//! A relo step is a WebAssembly component that the relo host runs with the capabilities
//! its manifest declares and the operator approved, and with fuel, memory and wall-clock
//! limits. This crate is everything a step's author needs: the [`step`] attribute that
//! turns a typed Rust function into the component's `run` export, and idiomatic access to
//! what the host offers: [`http`] (egress through `wasi:http`), [`secrets`], [`signer`]
//! and logs ([`info!`], [`warn!`], ...). The author writes no glue and no `unsafe`.
//!
//! ```
//! use relo_sdk::{StepContext, StepError, info};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     version: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     greeting: String,
//! }
//!
//! #[relo_sdk::step]
//! fn greet(ctx: &StepContext, input: Input) -> Result<Output, StepError> {
//!     if input.version.is_empty() {
//!         return Err(StepError::invalid_input("`version` must not be empty"));
//!     }
//!     info!("greeting {} (attempt {})", input.version, ctx.attempt);
//!     Ok(Output { greeting: format!("hello from {}", input.version) })
//! }
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` from a crate whose
//! `crate-type` is `["cdylib"]`; the `.wasm` in `target/wasm32-wasip2/release/` is the
//! component. A crate holds exactly one step.
//!
//! # Input and output
//!
//! The host passes the step's input as JSON and expects JSON back. The [`step`] attribute
//! parses the input into the function's second argument (any
//! [`serde::de::DeserializeOwned`] type, or [`serde_json::Value`] to take anything) and
//! serializes what it returns (any [`serde::Serialize`] type). Input that does not fit
//! becomes [`StepError::InvalidInput`] with serde_json's message, which names the field,
//! line and column.
//!
//! # Errors and traps
//!
//! Every refusal on relo's own interfaces ([`secrets`], [`signer`]) and a refused request
//! ([`http::HttpError::Denied`]) is an error value: the step may recover, or return it
//! (each converts into a [`StepError`], so `?` works). Exceeding a limit (fuel, memory,
//! time, output size, log volume) or panicking is a trap: the step ends at once and the
//! host reports why.

extern crate self as relo_sdk;

pub mod http;
pub mod log;
pub mod secrets;
pub mod signer;
mod step;

pub use log::Level;
pub use relo_sdk_macros::step;
pub use step::{StepContext, StepError};

/// What the [`step`] attribute expands to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::step::run_step;
    pub use wit_bindgen::rt as wit_bindgen_rt;

    /// The bindings of the `relo:plugin` world.
    // `allow`, not `expect`: rustc does not report `unsafe_code` inside an external
    // proc macro's output, so an expectation would go unfulfilled.
    #[allow(
        unsafe_code,
        reason = "wit-bindgen generates the canonical ABI glue, which is unsafe"
    )]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "plugin",
            path: "../../wit",
            pub_export_macro: true,
            default_bindings_module: "relo_sdk::__private::bindings",
            runtime_path: "relo_sdk::__private::wit_bindgen_rt",
        });
    }

    pub use bindings::exports::relo::plugin::step::Guest;
    pub use bindings::relo::plugin::types::{
        StepContext as WitStepContext, StepError as WitStepError,
    };
}
