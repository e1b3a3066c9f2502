//! Capability grants and the decisions made against them.
//!
//! A [`Grant`] is what one step may do: the egress destinations it may reach, the
//! secrets it may use, the signing keys it may ask for, the environment it sees and its
//! access to the run's workspace. Everything not in the grant is denied. The sandbox
//! only *asks* this crate and records the answer; every decision is a pure function of
//! its inputs, so it is table-tested without wasm.
//!
//! ```
//! use relo_policy::{EgressDecision, EgressRequest, EgressRule, Grant, Method, Scheme};
//!
//! let mut grant = Grant::deny_all();
//! grant.egress.push(EgressRule::parse("http://127.0.0.1:8080/api/*", &[Method::Get]).unwrap());
//!
//! let ok = EgressRequest { method: Method::Get, scheme: Scheme::Http, host: "127.0.0.1", port: 8080, path: "/api/tags" };
//! assert!(matches!(grant.egress_decision(&ok), EgressDecision::Allowed { rule: 0 }));
//!
//! let post = EgressRequest { method: Method::Post, ..ok };
//! assert!(matches!(grant.egress_decision(&post), EgressDecision::Denied(_)));
//! ```

mod egress;
mod grant;
mod limits;

pub use egress::{
    EgressDecision, EgressDenial, EgressRequest, EgressRule, Method, RuleError, Scheme,
};
pub use grant::{CapabilityDenial, Grant, GrantSummary, SecretGrant, WorkspaceAccess};
pub use limits::{LimitKind, Limits};
