//! The effective grant of one step, and the decisions on relo's own capabilities.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::egress::{self, EgressDecision, EgressRequest, EgressRule};

/// How a step may use the run's workspace directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkspaceAccess {
    /// The step may read the workspace.
    ReadOnly,
    /// The step may read and write the workspace.
    ReadWrite,
}

/// What a step may do with one secret it was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretGrant {
    /// Destinations toward which the host injects the value into a header.
    pub inject: Vec<EgressRule>,
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
}

impl CapabilityDenial {
    /// The stable machine code of this denial.
    pub fn code(&self) -> &'static str {
        match self {
            CapabilityDenial::SecretNotDeclared { .. } => "secret-not-declared",
            CapabilityDenial::SecretNotApproved { .. } => "secret-not-approved",
            CapabilityDenial::RevealNotApproved { .. } => "reveal-not-approved",
            CapabilityDenial::SignerKeyNotGranted { .. } => "signer-key-not-granted",
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
}
