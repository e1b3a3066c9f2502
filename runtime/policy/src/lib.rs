//! Capability grants and the decisions made against them.
//!
//! A [`Grant`] is what one step may do: the egress destinations it may reach, the
//! secrets it may use, the signing keys it may ask for, the environment it sees, its
//! access to the run's workspace and the networks its egress may connect to. Everything
//! not in the grant is denied. [`effective_grant`] computes it as declared ∩ approved ∩
//! ceilings. The sandbox only *asks* this crate and records the answer; every decision
//! is a pure function of its inputs, table-tested without wasm.
//!
//! ```
//! use relo_policy::{EgressDecision, EgressRequest, EgressRule, Grant, Method};
//!
//! let mut grant = Grant::deny_all();
//! grant.egress.push(EgressRule::parse("https://*.example.com/api/*", &[Method::Get]).unwrap());
//!
//! let ok = EgressRequest { method: "GET", scheme: "https", host: "forge.example.com", port: 443, path: "/api/tags", has_userinfo: false };
//! assert!(matches!(grant.egress_decision(&ok), EgressDecision::Allowed { rule: 0 }));
//!
//! let escape = EgressRequest { path: "/api/%2e%2e/admin", ..ok };
//! assert!(matches!(grant.egress_decision(&escape), EgressDecision::Denied(_)));
//! let lookalike = EgressRequest { host: "forge.example.com.evil.net", ..ok };
//! assert!(matches!(grant.egress_decision(&lookalike), EgressDecision::Denied(_)));
//! ```

mod diff;
mod egress;
pub mod endpoints;
mod grant;
mod limits;
mod manifest;
mod net;

pub use diff::{CapabilityDiff, Change, ChangeKind};
pub use egress::{
    EgressDecision, EgressDenial, EgressRequest, EgressRule, HostPattern, Method, PathPattern,
    PortSpec, RequestHost, RuleError, Scheme, normalise_path,
};
pub use grant::{
    Capabilities, CapabilityDenial, Ceilings, Grant, GrantSummary, InjectRule, SecretGrant,
    WorkspaceAccess, effective_grant,
};
pub use limits::{
    DEFAULT_HOST_CALLS, DEFAULT_WORKSPACE_BYTES, DEFAULT_WORKSPACE_FILES, LimitKind, Limits,
};
pub use manifest::{DeclarationError, declared_capabilities, operator_ceilings};
pub use net::{BlockedAddress, NetworkPolicy};
