//! Host implementations of relo's interfaces, one file per WIT interface (and `reflect`,
//! which masks injected secrets in the answers egress gets).
//!
//! relo's interfaces answer a refusal with a WIT error value that names what was
//! denied (the step may handle it); exceeding a limit traps (the step ends). Either way
//! the decision is recorded as evidence and noted in the step log.

pub(crate) mod egress;
mod log;
mod reflect;
mod reveal;
pub(crate) mod secrets;
mod signer;

use crate::bindings::relo::plugin::types;
use crate::state::StepState;

impl types::Host for StepState {}
