//! The wasmtime host that runs relo steps with their grant and limits enforced.
//!
//! A [`Sandbox`] owns one wasmtime [`Engine`](wasmtime::Engine) per process (pooling
//! allocator, fuel, epoch interruption driven by one ticker thread) and a cache of
//! pre-linked components keyed by their sha256 digest. [`Sandbox::load`] checks a
//! component's imports against the allowlist of DESIGN §4 *before* compiling it, and
//! [`Sandbox::run`] runs one step in a fresh store: every host decision is sent to an
//! [`EvidenceSink`](relo_evidence::EvidenceSink), and the step's outcome is returned only
//! once that evidence is durable. Egress to a destination that keeps failing is paused
//! by a circuit breaker that every step of the sandbox shares
//! ([`SandboxConfig::circuit_breaker`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use relo_evidence::{MemorySink, Scope};
//! use relo_policy::{Grant, Limits};
//! use relo_sandbox::{Sandbox, SandboxConfig, StepContext, StepRequest};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let sink = Arc::new(MemorySink::new());
//! let bytes = std::fs::read("echo.wasm")?;
//! let plugin = sandbox.load(&bytes, sink.as_ref(), &Scope::Control)?;
//! let outcome = sandbox
//!     .run(&plugin, StepRequest {
//!         context: StepContext { run_id: "run-1".into(), step_id: "hello".into(), attempt: 1 },
//!         input: r#"{"name":"relo"}"#.into(),
//!         grant: Arc::new(Grant::deny_all()),
//!         limits: Limits::default(),
//!         workspace: None,
//!         evidence: sink.clone(),
//!         credentials: Default::default(),
//!     })
//!     .await;
//! println!("{:?} used {:?}", outcome.result, outcome.usage);
//! # Ok(()) }
//! ```

mod bindings;
mod budget;
mod cache;
mod capture;
mod circuit;
mod engine;
mod error;
mod host;
mod imports;
mod limiter;
mod network;
mod plugin;
mod recorder;
mod redact;
mod run;
mod state;
mod tree;

pub use capture::{LogLine, LogSource};
pub use circuit::CircuitBreakerConfig;
pub use engine::{Sandbox, SandboxConfig, SandboxError};
pub use error::{LimitExceeded, LoadError, StepFailure};
pub use imports::{ALLOWED_INTERFACES, check_imports, component_imports};
pub use network::{
    AddressFilter, AnyAddress, LoopbackOnly, Resolution, Resolver, StaticResolver, SystemResolver,
};
pub use plugin::{Digest, Plugin};
pub use relo_evidence::StepUsage;
pub use relo_policy::LimitKind;
pub use run::{StepContext, StepCredentials, StepOutcome, StepRequest};
pub use tree::{Tree, TreeEntry, TreeError, TreeLimits};
