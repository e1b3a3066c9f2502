//! The effective grant of one step, and the decisions on relo's own capabilities.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use relo_manifest::HeaderName;
use serde::{Deserialize, Serialize};

use crate::egress::{self, EgressDecision, EgressRequest, EgressRule};
use crate::limits::Limits;
use crate::net::NetworkPolicy;

/// How a step may use the run's workspace directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkspaceAccess {
    /// The step may read the workspace.
    ReadOnly,
    /// The step may read and write the workspace.
    ReadWrite,
}

/// Where the host may inject a secret: the requests, and the one header of those
/// requests the value may go into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectRule {
    /// The requests the value may be injected into.
    #[serde(flatten)]
    pub destination: EgressRule,
    /// The header the value may go into; an approval signed before inject rules named
    /// their header means `authorization`.
    #[serde(default = "HeaderName::authorization")]
    pub header: HeaderName,
}

impl InjectRule {
    /// Whether this rule's destination takes `request` (whatever the header).
    fn allows(&self, request: &EgressRequest<'_>) -> bool {
        matches!(
            egress::decide(std::slice::from_ref(&self.destination), request),
            EgressDecision::Allowed { .. }
        )
    }
}

impl fmt::Display for InjectRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} header {}", self.destination, self.header)
    }
}

/// A rule that can be intersected with another of its kind, as the effective grant and
/// the capability diff do.
pub(crate) trait Rule: Sized + PartialEq + fmt::Display {
    /// What both rules allow, if anything.
    fn intersect(&self, other: &Self) -> Option<Self>;

    /// Whether everything this rule allows is allowed by `other` too.
    fn is_within(&self, other: &Self) -> bool {
        self.intersect(other).as_ref() == Some(self)
    }
}

impl Rule for EgressRule {
    fn intersect(&self, other: &Self) -> Option<Self> {
        EgressRule::intersect(self, other)
    }
}

impl Rule for InjectRule {
    fn intersect(&self, other: &Self) -> Option<Self> {
        if self.header != other.header {
            return None;
        }
        Some(InjectRule {
            destination: self.destination.intersect(&other.destination)?,
            header: self.header.clone(),
        })
    }
}

/// What a step may do with one secret it was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretGrant {
    /// Where the host injects the value: destinations, each with its one header.
    pub inject: Vec<InjectRule>,
    /// Whether the step may read the value itself.
    pub reveal: bool,
}

/// Everything one step may do. The default is [`Grant::deny_all`].
///
/// The orchestrator builds it as declared ∩ approved ∩ ceilings; the sandbox consults it
/// for every host call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Egress destinations, in the order they are matched.
    pub egress: Vec<EgressRule>,
    /// Secrets the plugin declared, whether or not they were approved; a name outside
    /// this set is `not-declared`, a name here but not in `secrets` is `not-approved`.
    pub declared_secrets: BTreeSet<String>,
    /// Secrets granted, by logical name.
    pub secrets: BTreeMap<String, SecretGrant>,
    /// Logical signing-key names the step may ask the host to sign with.
    pub signer_keys: BTreeSet<String>,
    /// Environment variables the step sees, with their fixed values.
    pub env: BTreeMap<String, String>,
    /// Access to the run's workspace, if any.
    pub workspace: Option<WorkspaceAccess>,
    /// Which resolved addresses egress may connect to.
    pub networks: NetworkPolicy,
}

/// What a plugin declares, or what an operator approved for it: the capabilities and
/// the limits asked for, with endpoints already resolved to concrete destinations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Egress destinations.
    pub egress: Vec<EgressRule>,
    /// Secrets by logical name, with their inject destinations and reveal.
    pub secrets: BTreeMap<String, SecretGrant>,
    /// Logical signing-key names.
    pub signer_keys: BTreeSet<String>,
    /// Environment variables with their fixed values.
    pub env: BTreeMap<String, String>,
    /// Access to the run's workspace.
    pub workspace: Option<WorkspaceAccess>,
    /// Limits asked for.
    pub limits: Limits,
}

/// What no plugin may exceed, whatever it declares and whatever was approved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceilings {
    /// The largest limits any step gets.
    pub limits: Limits,
    /// Which resolved addresses egress may connect to.
    pub networks: NetworkPolicy,
}

/// Every rule of `a` intersected with every rule of `b`: exactly the requests both allow.
fn intersect_rules<R: Rule>(a: &[R], b: &[R]) -> Vec<R> {
    let mut rules: Vec<R> = Vec::new();
    for left in a {
        for right in b {
            if let Some(rule) = left.intersect(right)
                && !rules.contains(&rule)
            {
                rules.push(rule);
            }
        }
    }
    rules
}

/// The effective grant and limits of a step: declared ∩ approved ∩ ceilings.
///
/// Numeric limits take the minimum; egress rules, secrets (and their inject
/// destinations), reveal, signing keys, environment (same name and value) and
/// workspace access intersect. The result never allows more than any of the three.
pub fn effective_grant(
    declared: &Capabilities,
    approved: &Capabilities,
    ceilings: &Ceilings,
) -> (Grant, Limits) {
    let secrets = declared
        .secrets
        .iter()
        .filter_map(|(name, wanted)| {
            let allowed = approved.secrets.get(name)?;
            Some((
                name.clone(),
                SecretGrant {
                    inject: intersect_rules(&wanted.inject, &allowed.inject),
                    reveal: wanted.reveal && allowed.reveal,
                },
            ))
        })
        .collect();
    let env = declared
        .env
        .iter()
        .filter(|(name, value)| approved.env.get(*name) == Some(value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let workspace = match (declared.workspace, approved.workspace) {
        (Some(WorkspaceAccess::ReadWrite), Some(WorkspaceAccess::ReadWrite)) => {
            Some(WorkspaceAccess::ReadWrite)
        }
        (Some(_), Some(_)) => Some(WorkspaceAccess::ReadOnly),
        _ => None,
    };
    let grant = Grant {
        egress: intersect_rules(&declared.egress, &approved.egress),
        declared_secrets: declared.secrets.keys().cloned().collect(),
        secrets,
        signer_keys: declared
            .signer_keys
            .intersection(&approved.signer_keys)
            .cloned()
            .collect(),
        env,
        workspace,
        networks: ceilings.networks.clone(),
    };
    let limits = declared.limits.min(&approved.limits).min(&ceilings.limits);
    (grant, limits)
}

/// Why a secret, reveal or signer request was refused. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum CapabilityDenial {
    /// The plugin's manifest does not declare the secret.
    #[error("secret `{name}` is not declared by the plugin")]
    SecretNotDeclared {
        /// The secret's logical name.
        name: String,
    },
    /// The secret is declared but the operator did not approve it.
    #[error("secret `{name}` is declared but not approved")]
    SecretNotApproved {
        /// The secret's logical name.
        name: String,
    },
    /// The secret is granted, but reading its value is not.
    #[error("reveal of secret `{name}` is not approved")]
    RevealNotApproved {
        /// The secret's logical name.
        name: String,
    },
    /// The signing key name is not in the grant.
    #[error("signing key `{key}` is not granted")]
    SignerKeyNotGranted {
        /// The logical key name.
        key: String,
    },
    /// The secret is granted, but not for injection toward this destination.
    #[error("secret `{name}` may not be injected into requests to {destination}")]
    InjectionNotAllowed {
        /// The secret's logical name.
        name: String,
        /// `METHOD scheme://host:port/path` of the request.
        destination: String,
    },
    /// The secret may be injected toward this destination, but not into this header.
    #[error(
        "secret `{name}` may not be injected into header `{header}` of requests to {destination}"
    )]
    InjectHeaderNotGranted {
        /// The secret's logical name.
        name: String,
        /// The header that held the placeholder.
        header: String,
        /// `METHOD scheme://host:port/path` of the request.
        destination: String,
    },
}

impl CapabilityDenial {
    /// The stable machine code of this denial.
    pub fn code(&self) -> &'static str {
        match self {
            CapabilityDenial::SecretNotDeclared { .. } => "secret-not-declared",
            CapabilityDenial::SecretNotApproved { .. } => "secret-not-approved",
            CapabilityDenial::RevealNotApproved { .. } => "reveal-not-approved",
            CapabilityDenial::SignerKeyNotGranted { .. } => "signer-key-not-granted",
            CapabilityDenial::InjectionNotAllowed { .. } => "secret-injection-denied",
            CapabilityDenial::InjectHeaderNotGranted { .. } => "inject-header-not-granted",
        }
    }
}

impl Grant {
    /// A grant that allows nothing.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Decides whether an outgoing request may go out.
    pub fn egress_decision(&self, request: &EgressRequest<'_>) -> EgressDecision {
        egress::decide(&self.egress, request)
    }

    /// Decides whether the step may hold a handle to the secret `name`.
    pub fn secret(&self, name: &str) -> Result<&SecretGrant, CapabilityDenial> {
        match self.secrets.get(name) {
            Some(grant) => Ok(grant),
            None if self.declared_secrets.contains(name) => {
                Err(CapabilityDenial::SecretNotApproved {
                    name: name.to_owned(),
                })
            }
            None => Err(CapabilityDenial::SecretNotDeclared {
                name: name.to_owned(),
            }),
        }
    }

    /// Decides whether the step may read the value of the secret `name`.
    pub fn reveal(&self, name: &str) -> Result<(), CapabilityDenial> {
        if self.secret(name)?.reveal {
            Ok(())
        } else {
            Err(CapabilityDenial::RevealNotApproved {
                name: name.to_owned(),
            })
        }
    }

    /// Decides whether the host may put the secret `name` into the header `header` of
    /// `request`: the secret is granted, and one of its inject rules allows the request
    /// and names that header (header names compare in any case).
    pub fn injection(
        &self,
        name: &str,
        header: &str,
        request: &EgressRequest<'_>,
    ) -> Result<(), CapabilityDenial> {
        let secret = self.secret(name)?;
        let destination = || {
            format!(
                "{} {}://{}:{}{}",
                request.method, request.scheme, request.host, request.port, request.path
            )
        };
        let mut toward = secret
            .inject
            .iter()
            .filter(|rule| rule.allows(request))
            .peekable();
        if toward.peek().is_none() {
            return Err(CapabilityDenial::InjectionNotAllowed {
                name: name.to_owned(),
                destination: destination(),
            });
        }
        if toward.any(|rule| rule.header.as_str().eq_ignore_ascii_case(header)) {
            return Ok(());
        }
        Err(CapabilityDenial::InjectHeaderNotGranted {
            name: name.to_owned(),
            header: header.to_owned(),
            destination: destination(),
        })
    }

    /// Decides whether the step may sign with the logical key `key`.
    pub fn signer_key(&self, key: &str) -> Result<(), CapabilityDenial> {
        if self.signer_keys.contains(key) {
            Ok(())
        } else {
            Err(CapabilityDenial::SignerKeyNotGranted {
                key: key.to_owned(),
            })
        }
    }

    /// What this grant allows, in the form recorded as evidence when a step starts
    /// (names and destinations only; nothing secret).
    pub fn summary(&self) -> GrantSummary {
        GrantSummary {
            egress: self.egress.iter().map(ToString::to_string).collect(),
            secrets: self
                .secrets
                .iter()
                .map(|(name, grant)| (name.clone(), grant.reveal))
                .collect(),
            signer_keys: self.signer_keys.iter().cloned().collect(),
            env: self.env.keys().cloned().collect(),
            workspace: self.workspace,
            networks: self.networks.to_string(),
        }
    }
}

/// The evidence form of a [`Grant`]: what was granted, without values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    /// Egress rules as `METHODS scheme://host:port/path`.
    pub egress: Vec<String>,
    /// Granted secret names, each with whether reveal was granted.
    pub secrets: BTreeMap<String, bool>,
    /// Granted signing-key names.
    pub signer_keys: Vec<String>,
    /// Names of the environment variables set (values are not recorded).
    pub env: Vec<String>,
    /// Workspace access, if any.
    pub workspace: Option<WorkspaceAccess>,
    /// The network policy egress addresses are checked against.
    pub networks: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant_with_secret(reveal: bool) -> Grant {
        let mut grant = Grant::deny_all();
        grant.declared_secrets.insert("forge_token".into());
        grant.declared_secrets.insert("unapproved".into());
        grant.secrets.insert(
            "forge_token".into(),
            SecretGrant {
                inject: Vec::new(),
                reveal,
            },
        );
        grant
    }

    #[test]
    fn deny_all_denies_everything() {
        let grant = Grant::deny_all();
        assert_eq!(
            grant.secret("x").map(|_| ()).unwrap_err().code(),
            "secret-not-declared"
        );
        assert_eq!(grant.reveal("x").unwrap_err().code(), "secret-not-declared");
        assert_eq!(
            grant.signer_key("release").unwrap_err().code(),
            "signer-key-not-granted"
        );
        assert!(grant.workspace.is_none());
        assert!(grant.env.is_empty());
    }

    #[test]
    fn secret_decisions() {
        let grant = grant_with_secret(false);
        assert!(grant.secret("forge_token").is_ok());
        assert_eq!(
            grant.secret("unapproved").map(|_| ()).unwrap_err().code(),
            "secret-not-approved"
        );
        assert_eq!(
            grant.reveal("forge_token").unwrap_err().code(),
            "reveal-not-approved"
        );
        assert!(grant_with_secret(true).reveal("forge_token").is_ok());
    }

    #[test]
    fn summary_names_env_keys_but_not_values() {
        let mut grant = grant_with_secret(true);
        grant.env.insert("LOG_FORMAT".into(), "json".into());
        let text = serde_json::to_string(&grant.summary()).expect("serialises");
        assert!(text.contains("LOG_FORMAT"));
        assert!(!text.contains("json\""), "{text}");
    }

    fn inject_grant(rules: &[(&str, &str)]) -> Grant {
        let mut grant = grant_with_secret(false);
        let inject = rules
            .iter()
            .map(|(url, header)| InjectRule {
                destination: EgressRule::parse(url, &[egress::Method::Get]).expect("rule"),
                header: header.parse().expect("header"),
            })
            .collect();
        grant
            .secrets
            .get_mut("forge_token")
            .expect("granted")
            .inject = inject;
        grant
    }

    const FORGE: EgressRequest<'static> = EgressRequest {
        method: "GET",
        scheme: "https",
        host: "forge.example.com",
        port: 443,
        path: "/api/tags",
        has_userinfo: false,
    };

    #[test]
    fn injection_needs_the_destination_and_the_header() {
        let grant = inject_grant(&[
            ("https://forge.example.com/api/*", "authorization"),
            ("https://forge.example.com/graphql", "x-api-key"),
        ]);
        let code = |header: &str, request: &EgressRequest<'_>| {
            grant
                .injection("forge_token", header, request)
                .map_err(|denial| denial.code())
        };
        assert_eq!(code("authorization", &FORGE), Ok(()));
        assert_eq!(code("Authorization", &FORGE), Ok(()));
        for header in ["origin", "x-api-key", "cookie"] {
            assert_eq!(code(header, &FORGE), Err("inject-header-not-granted"));
        }
        let graphql = EgressRequest {
            path: "/graphql",
            ..FORGE
        };
        assert_eq!(code("x-api-key", &graphql), Ok(()));
        assert_eq!(
            code("authorization", &graphql),
            Err("inject-header-not-granted")
        );
        let elsewhere = EgressRequest {
            host: "evil.example.com",
            ..FORGE
        };
        assert_eq!(
            code("authorization", &elsewhere),
            Err("secret-injection-denied")
        );
        let denial = grant
            .injection("forge_token", "origin", &FORGE)
            .expect_err("not granted");
        assert_eq!(
            denial.to_string(),
            "secret `forge_token` may not be injected into header `origin` of requests to \
             GET https://forge.example.com:443/api/tags"
        );
    }

    #[test]
    fn an_inject_rule_without_a_header_means_authorization() {
        let rule =
            EgressRule::parse("https://forge.example.com/*", &[egress::Method::Get]).expect("rule");
        let written = serde_json::to_value(&rule).expect("serialises");
        let read: InjectRule = serde_json::from_value(written).expect("an older approval reads");
        assert_eq!(read.header.as_str(), "authorization");
        assert_eq!(read.destination, rule);
        let again: InjectRule =
            serde_json::from_value(serde_json::to_value(&read).expect("serialises"))
                .expect("reads");
        assert_eq!(again, read);
        assert!(
            read.to_string().ends_with("/* header authorization"),
            "{read}"
        );
    }

    mod effective {
        use std::collections::BTreeSet;
        use std::time::Duration;

        use proptest::prelude::*;

        use crate::egress::{EgressRequest, EgressRule, Method};
        use crate::grant::{
            Capabilities, Ceilings, InjectRule, SecretGrant, WorkspaceAccess, effective_grant,
        };
        use crate::limits::Limits;

        const URLS: &[&str] = &[
            "https://forge.example.com/api/*",
            "https://forge.example.com/api/tags",
            "https://*.example.com/*",
            "http://127.0.0.1:8000-8100/*",
            "https://other.example.org:443,8443/x",
        ];
        const METHODS: &[Method] = &[Method::Get, Method::Post];
        const NAMES: &[&str] = &["a", "b", "c"];
        const HEADERS: &[&str] = &["authorization", "x-api-key"];

        fn arb_rules() -> impl Strategy<Value = Vec<EgressRule>> {
            proptest::collection::vec(
                (
                    0..URLS.len(),
                    proptest::sample::subsequence(METHODS.to_vec(), 1..=2),
                )
                    .prop_map(|(url, methods)| {
                        EgressRule::parse(URLS[url], &methods).expect("valid")
                    }),
                0..4,
            )
        }

        fn arb_inject() -> impl Strategy<Value = Vec<InjectRule>> {
            proptest::collection::vec(
                (arb_rules(), proptest::sample::select(HEADERS.to_vec())),
                0..3,
            )
            .prop_map(|rules| {
                rules
                    .into_iter()
                    .flat_map(|(destinations, header)| {
                        destinations.into_iter().map(move |destination| InjectRule {
                            destination,
                            header: header.parse().expect("valid"),
                        })
                    })
                    .collect()
            })
        }

        fn arb_limits() -> impl Strategy<Value = Limits> {
            (1u64..1000, 1u64..1000, 1u64..1000, 1u64..100).prop_map(
                |(fuel, memory, timeout, requests)| Limits {
                    fuel,
                    memory_bytes: memory,
                    timeout: Duration::from_millis(timeout),
                    egress_requests: requests,
                    ..Limits::default()
                },
            )
        }

        fn arb_capabilities() -> impl Strategy<Value = Capabilities> {
            (
                arb_rules(),
                proptest::collection::btree_map(
                    proptest::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
                    (arb_inject(), any::<bool>())
                        .prop_map(|(inject, reveal)| SecretGrant { inject, reveal }),
                    0..3,
                ),
                proptest::collection::btree_set(
                    proptest::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
                    0..3,
                ),
                proptest::collection::btree_map(
                    proptest::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
                    proptest::sample::select(vec!["1".to_owned(), "2".to_owned()]),
                    0..3,
                ),
                proptest::option::of(prop_oneof![
                    Just(WorkspaceAccess::ReadOnly),
                    Just(WorkspaceAccess::ReadWrite)
                ]),
                arb_limits(),
            )
                .prop_map(|(egress, secrets, signer_keys, env, workspace, limits)| {
                    Capabilities {
                        egress,
                        secrets,
                        signer_keys,
                        env,
                        workspace,
                        limits,
                    }
                })
        }

        fn allows(rules: &[EgressRule], request: &EgressRequest<'_>) -> bool {
            matches!(
                crate::egress::decide(rules, request),
                crate::egress::EgressDecision::Allowed { .. }
            )
        }

        fn injects(rules: &[InjectRule], request: &EgressRequest<'_>, header: &str) -> bool {
            rules.iter().any(|rule| {
                rule.header.as_str() == header
                    && allows(std::slice::from_ref(&rule.destination), request)
            })
        }

        fn access_rank(access: Option<WorkspaceAccess>) -> u8 {
            match access {
                None => 0,
                Some(WorkspaceAccess::ReadOnly) => 1,
                Some(WorkspaceAccess::ReadWrite) => 2,
            }
        }

        proptest! {
            /// The effective grant never allows more than the declaration, the approval or
            /// the ceilings, for any request and any capability.
            #[test]
            fn never_exceeds_any_input(declared in arb_capabilities(), approved in arb_capabilities(),
                                       ceiling in arb_limits(),
                                       host in proptest::sample::select(vec!["forge.example.com", "a.example.com", "127.0.0.1", "other.example.org"]),
                                       https in any::<bool>(), port in proptest::sample::select(vec![443u16, 8080, 8443]),
                                       path in proptest::sample::select(vec!["/api/tags", "/api/x", "/x", "/"]),
                                       method in proptest::sample::select(vec!["GET", "POST"])) {
                let ceilings = Ceilings { limits: ceiling, ..Ceilings::default() };
                let (grant, limits) = effective_grant(&declared, &approved, &ceilings);
                let request = EgressRequest { method, scheme: if https { "https" } else { "http" }, host, port, path, has_userinfo: false };
                if allows(&grant.egress, &request) {
                    prop_assert!(allows(&declared.egress, &request) && allows(&approved.egress, &request));
                }
                prop_assert!(limits.within(&declared.limits) && limits.within(&approved.limits) && limits.within(&ceiling));
                for (name, secret) in &grant.secrets {
                    let (wanted, allowed) = (&declared.secrets[name], &approved.secrets[name]);
                    prop_assert!(!secret.reveal || (wanted.reveal && allowed.reveal));
                    for header in HEADERS {
                        if injects(&secret.inject, &request, header) {
                            prop_assert!(injects(&wanted.inject, &request, header) && injects(&allowed.inject, &request, header));
                        }
                    }
                }
                prop_assert!(grant.signer_keys.is_subset(&declared.signer_keys));
                prop_assert!(grant.signer_keys.is_subset(&approved.signer_keys));
                for (name, value) in &grant.env {
                    prop_assert_eq!(declared.env.get(name), Some(value));
                    prop_assert_eq!(approved.env.get(name), Some(value));
                }
                prop_assert!(access_rank(grant.workspace) <= access_rank(declared.workspace).min(access_rank(approved.workspace)));
                let declared_names: BTreeSet<&String> = declared.secrets.keys().collect();
                prop_assert!(grant.secrets.keys().all(|name| declared_names.contains(name)));
            }
        }
    }
}
