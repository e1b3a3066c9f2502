//! Why a component is refused at load, and why a step fails.

use std::fmt;

use relo_policy::LimitKind;
use serde::{Deserialize, Serialize};

/// Why a component was refused before it could run. Each has a stable [`code`](LoadError::code).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component (a core module, or garbage).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component imports an interface outside the allowlist.
    #[error(
        "import `{import}` is not allowed: a step may import only relo:plugin interfaces and the WASI 0.2 interfaces listed in DESIGN §4"
    )]
    ForbiddenImport {
        /// The full import name, e.g. `wasi:sockets/tcp@0.2.4`.
        import: String,
    },
    /// wasmtime could not compile or link the component.
    #[error("component could not be compiled: {0}")]
    Compile(String),
    /// The precompiled cache could not be written.
    #[error("precompiled cache: {0}")]
    Cache(#[from] std::io::Error),
}

impl LoadError {
    /// The stable machine code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::NotAComponent(_) => "not-a-component",
            LoadError::ForbiddenImport { .. } => "forbidden-import",
            LoadError::Compile(_) => "compile-failed",
            LoadError::Cache(_) => "cache-failed",
        }
    }
}

/// A limit a step ran into, with what was allowed and what the step asked for.
///
/// Raised inside the store as a trap; the step ends at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind} limit exceeded: allowed {allowed}, requested {requested}")]
pub struct LimitExceeded {
    /// Which limit.
    pub kind: LimitKind,
    /// The limit in force (fuel units, bytes or milliseconds).
    pub allowed: u64,
    /// What the step asked for or had used when it was stopped.
    pub requested: u64,
}

/// Why a step did not produce an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum StepFailure {
    /// The step was stopped by a limit.
    LimitExceeded(LimitExceeded),
    /// The guest trapped (a panic, an unreachable, a stack overflow, a bad host call).
    Trap {
        /// The trap and, for a panic, the tail of the guest's stderr.
        message: String,
    },
    /// The step returned an error value of its own.
    StepError {
        /// `invalid-input`, `failed` or `denied`.
        kind: String,
        /// The step's message.
        message: String,
    },
    /// The step returned something that is not JSON.
    InvalidOutput {
        /// What is wrong with it.
        reason: String,
    },
    /// The step could not be set up or instantiated.
    Setup {
        /// What went wrong.
        reason: String,
    },
    /// The step's output contains the value of a secret it touched; it is refused.
    SecretInOutput {
        /// The secret's logical name.
        name: String,
    },
    /// The step's evidence could not be made durable, so its result is not accepted.
    Evidence {
        /// What the evidence sink reported.
        reason: String,
    },
    /// The step left the workspace holding something the host will not take: a link,
    /// a special file, or an entry it could not read through its handles.
    WorkspaceRefused {
        /// Which entry, and why.
        reason: String,
    },
}

impl StepFailure {
    /// The stable machine code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            StepFailure::LimitExceeded(_) => "limit-exceeded",
            StepFailure::Trap { .. } => "trap",
            StepFailure::StepError { .. } => "step-error",
            StepFailure::InvalidOutput { .. } => "invalid-output",
            StepFailure::Setup { .. } => "setup-failed",
            StepFailure::SecretInOutput { .. } => "secret-in-output",
            StepFailure::Evidence { .. } => "evidence-unavailable",
            StepFailure::WorkspaceRefused { .. } => "workspace-entry-refused",
        }
    }

    /// The same failure with `redact` applied to every text that came from the step or
    /// could quote it.
    pub(crate) fn redacted(self, redact: &dyn Fn(&str) -> String) -> Self {
        match self {
            StepFailure::Trap { message } => StepFailure::Trap {
                message: redact(&message),
            },
            StepFailure::StepError { kind, message } => StepFailure::StepError {
                kind,
                message: redact(&message),
            },
            StepFailure::InvalidOutput { reason } => StepFailure::InvalidOutput {
                reason: redact(&reason),
            },
            StepFailure::Setup { reason } => StepFailure::Setup {
                reason: redact(&reason),
            },
            StepFailure::WorkspaceRefused { reason } => StepFailure::WorkspaceRefused {
                reason: redact(&reason),
            },
            other => other,
        }
    }

    /// The limit that stopped the step, if one did.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            StepFailure::LimitExceeded(limit) => Some(limit.kind),
            _ => None,
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepFailure::LimitExceeded(limit) => write!(f, "{limit}"),
            StepFailure::Trap { message } => write!(f, "step trapped: {message}"),
            StepFailure::StepError { kind, message } => {
                write!(f, "step failed ({kind}): {message}")
            }
            StepFailure::InvalidOutput { reason } => {
                write!(f, "step output is not valid JSON: {reason}")
            }
            StepFailure::Setup { reason } => write!(f, "step could not start: {reason}"),
            StepFailure::SecretInOutput { name } => write!(
                f,
                "step output refused: it contains the value of secret `{name}` (outputs are \
                 stored and passed on; a secret must stay with the host)"
            ),
            StepFailure::Evidence { reason } => {
                write!(
                    f,
                    "step evidence could not be stored, result refused: {reason}"
                )
            }
            StepFailure::WorkspaceRefused { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for StepFailure {}
