//! The trust policy of `relo.toml` and the decisions made with it: is this component
//! what a trusted signer published, and has an operator approved it?
//!
//! [`TrustPolicy::verify_plugin`] checks an attestation against the component bytes;
//! [`TrustPolicy::admit`] picks the approval that lets a verified plugin run. Each refusal
//! is a [`Refusal`] with a stable [`code`](Refusal::code).

use std::path::Path;
use std::time::SystemTime;

use relo_manifest::{OperatorConfig, PluginGlob, PluginManifest, PluginName, Role};
use relo_policy::{Capabilities, CapabilityDiff, ChangeKind};

use crate::approval::{APPROVAL_PREDICATE_TYPE, ApprovalPredicate, approval_id, parse_rfc3339};
use crate::plugin::{PLUGIN_PREDICATE_TYPE, sha256_hex};
use crate::{Envelope, IN_TOTO_PAYLOAD_TYPE, PublicKey, SigstoreBundle, Statement, TrustError};

/// Why a plugin or an approval was refused. Each has a stable [`code`](Refusal::code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The attestation carries no signature.
    #[error("the attestation is unsigned")]
    Unsigned,
    /// A signature by a trusted key does not verify: the attestation was changed.
    #[error("the signature by key {key_id} does not verify: the attestation was changed")]
    BadSignature {
        /// The signing key's id.
        key_id: String,
    },
    /// No signature is by a key the trust policy (or `[[people]]`, for approvals) lists.
    #[error("signed by {}, which {what} does not trust", list(key_ids))]
    UntrustedSigner {
        /// The key ids the signatures name.
        key_ids: Vec<String>,
        /// Which list was consulted: `[[trust.signers]]` or `[[people]]`.
        what: &'static str,
    },
    /// The signer is trusted, but not for this plugin name.
    #[error(
        "key {key_id} may not sign `{name}`: no plugins pattern of its [[trust.signers]] entry matches"
    )]
    SignerNotAllowedForName {
        /// The signing key's id.
        key_id: String,
        /// The plugin name it signed.
        name: String,
    },
    /// The component's bytes are not the ones signed.
    #[error("the component's sha256 is {actual}, but the attestation signs {expected}")]
    DigestMismatch {
        /// The signed digest.
        expected: String,
        /// The digest of the bytes presented.
        actual: String,
    },
    /// The manifest presented differs from the signed one.
    #[error("manifest mismatch: {reason}")]
    ManifestMismatch {
        /// What differs.
        reason: String,
    },
    /// The attestation or approval file is not what it must be.
    #[error("malformed attestation: {reason}")]
    MalformedAttestation {
        /// What is wrong with it.
        reason: String,
    },
    /// The digest is blocked.
    #[error("plugin {digest} is blocked: {reason}")]
    Blocked {
        /// The blocked digest.
        digest: String,
        /// The operator's reason.
        reason: String,
    },
    /// The approval was revoked, or the signing key retired.
    #[error("{what} was revoked{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Revoked {
        /// What: `approval ID` or `signer key ID (retired in relo.toml)`.
        what: String,
        /// The operator's reason, if one was given.
        reason: Option<String>,
    },
    /// No valid approval lets this digest run.
    #[error(
        "{plugin} ({digest}) is not approved{}",
        explain_not_approved(widened, reason)
    )]
    NotApproved {
        /// `name@version`.
        plugin: String,
        /// The digest.
        digest: String,
        /// What the plugin asks for beyond the previous version's approval, if there is one.
        widened: Vec<String>,
        /// Why no approval applies, in words.
        reason: String,
    },
    /// The approval names another digest than the plugin presented.
    #[error("approval {approval_id} is for digest {approved}, not for {presented}")]
    ApprovalDigestMismatch {
        /// The approval.
        approval_id: String,
        /// The digest it approves.
        approved: String,
        /// The digest presented.
        presented: String,
    },
    /// The approval has expired.
    #[error("approval {approval_id} expired at {expired_at}")]
    ApprovalExpired {
        /// The approval.
        approval_id: String,
        /// When it expired.
        expired_at: String,
    },
    /// The approval's signer is a person without the `operator` role.
    #[error("approval {approval_id} is signed by {person}, who does not have the operator role")]
    ApproverNotOperator {
        /// The approval.
        approval_id: String,
        /// The person.
        person: String,
    },
    /// The approver is the person the plugin's signing key belongs to.
    #[error(
        "approval {approval_id} is refused: {person} signed the plugin and cannot approve it (separation of duties)"
    )]
    SeparationOfDuties {
        /// The approval.
        approval_id: String,
        /// The person (or the key id, for a key with no person).
        person: String,
    },
    /// The approval allows more than the plugin declares under the current config.
    #[error(
        "approval {approval_id} allows more than the plugin declares with the current [endpoints] \
         (re-approve it): {}",
        widened.join("; ")
    )]
    ApprovalExceedsDeclared {
        /// The approval.
        approval_id: String,
        /// Each capability the approval has beyond the declaration.
        widened: Vec<String>,
    },
}

fn list(key_ids: &[String]) -> String {
    if key_ids.is_empty() {
        "no key id".to_owned()
    } else {
        key_ids.join(", ")
    }
}

fn explain_not_approved(widened: &[String], reason: &str) -> String {
    if widened.is_empty() {
        format!(": {reason}")
    } else {
        format!(": {reason}; it asks for more: {}", widened.join("; "))
    }
}

impl Refusal {
    /// The stable machine code, e.g. `digest-mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::BadSignature { .. } => "bad-signature",
            Self::UntrustedSigner { .. } => "untrusted-signer",
            Self::SignerNotAllowedForName { .. } => "signer-not-allowed-for-name",
            Self::DigestMismatch { .. } => "digest-mismatch",
            Self::ManifestMismatch { .. } => "manifest-mismatch",
            Self::MalformedAttestation { .. } => "malformed-attestation",
            Self::Blocked { .. } => "blocked",
            Self::Revoked { .. } => "revoked",
            Self::NotApproved { .. } => "not-approved",
            Self::ApprovalDigestMismatch { .. } => "approval-digest-mismatch",
            Self::ApprovalExpired { .. } => "approval-expired",
            Self::ApproverNotOperator { .. } => "approver-not-operator",
            Self::SeparationOfDuties { .. } => "separation-of-duties",
            Self::ApprovalExceedsDeclared { .. } => "approval-exceeds-declared",
        }
    }

    fn malformed(reason: impl Into<String>) -> Self {
        Self::MalformedAttestation {
            reason: reason.into(),
        }
    }

    /// The refusal for an envelope that failed [`Envelope::verify`].
    fn from_verify(error: TrustError, what: &'static str) -> Self {
        match error {
            TrustError::Unsigned => Self::Unsigned,
            TrustError::BadSignature { key_id } => Self::BadSignature { key_id },
            TrustError::UntrustedSigner { key_ids } => Self::UntrustedSigner { key_ids, what },
            other => Self::malformed(other.to_string()),
        }
    }
}

/// Reads an attestation or approval file: a DSSE envelope, or a Sigstore bundle v0.3
/// around one. Anything else is [`Refusal::MalformedAttestation`].
pub fn read_envelope(bytes: &[u8]) -> Result<Envelope, Refusal> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Refusal::malformed(format!("not JSON: {e}")))?;
    if value.get("mediaType").is_some() {
        let bundle =
            SigstoreBundle::from_json(bytes).map_err(|e| Refusal::malformed(e.to_string()))?;
        Ok(bundle.envelope().clone())
    } else {
        Envelope::from_json(bytes).map_err(|e| Refusal::malformed(e.to_string()))
    }
}

/// A trusted signer key of `[[trust.signers]]`.
#[derive(Clone, Debug)]
struct TrustedKey {
    key: PublicKey,
    plugins: Vec<PluginGlob>,
    person: Option<String>,
    retired: bool,
}

/// A person whose signatures count: their name, public keys and roles (from
/// `[[people]]`, or from the store once a server manages people).
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The person's name.
    pub name: String,
    /// Their public keys.
    pub keys: Vec<PublicKey>,
    /// Their roles.
    pub roles: Vec<Role>,
}

/// A plugin whose attestation verified against the trust policy and the bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedPlugin {
    /// `namespace/name`, from the signed statement.
    pub name: String,
    /// The version, from the signed manifest.
    pub version: String,
    /// sha256 of the component, lowercase hex.
    pub digest: String,
    /// The signed manifest: the only one the runtime uses.
    pub manifest: PluginManifest,
    /// The key id that signed the attestation.
    pub signer_key_id: String,
    /// The person `[[trust.signers]]` attributes that key to, if any.
    pub signer_person: Option<String>,
    /// Every trusted key whose signature on the attestation verified (the one above
    /// among them), with its person if any: separation of duties looks at all of them,
    /// not at whichever signature happened to come first.
    pub signed_by: Vec<(String, Option<String>)>,
}

impl VerifiedPlugin {
    /// Whether the person `person`, or the key `key_id`, signed this plugin's attestation.
    fn signed_by(&self, person: &str, key_id: &str) -> bool {
        self.signed_by
            .iter()
            .any(|(signer, owner)| signer == key_id || owner.as_deref() == Some(person))
    }
}

impl VerifiedPlugin {
    /// `name@version`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Checks that `manifest` (a file beside the component) is the signed one;
    /// [`Refusal::ManifestMismatch`] names the first differing field otherwise.
    pub fn check_manifest(&self, manifest: &PluginManifest) -> Result<(), Refusal> {
        let signed = serde_json::to_value(&self.manifest).unwrap_or_default();
        let beside = serde_json::to_value(manifest).unwrap_or_default();
        match first_difference(&signed, &beside, "") {
            None => Ok(()),
            Some(path) => Err(Refusal::ManifestMismatch {
                reason: format!(
                    "the manifest given differs from the signed one at `{}`",
                    if path.is_empty() { "." } else { &path }
                ),
            }),
        }
    }
}

fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> =
                left.keys().chain(right.keys()).collect();
            keys.into_iter().find_map(|key| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (left.get(key), right.get(key)) {
                    (Some(x), Some(y)) => first_difference(x, y, &child),
                    _ => Some(child),
                }
            })
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .find_map(|(index, (x, y))| first_difference(x, y, &format!("{path}[{index}]"))),
        _ if a == b => None,
        _ => Some(path.to_owned()),
    }
}

/// A stored approval presented for a decision.
#[derive(Clone, Debug)]
pub struct ApprovalRecord {
    /// The id it is stored under.
    pub id: String,
    /// The digest it is stored for.
    pub digest: String,
    /// The signed approval.
    pub envelope: Envelope,
    /// Whether it was revoked, with the reason.
    pub revoked: Option<String>,
}

/// An approval that checked out.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedApproval {
    /// Its id.
    pub id: String,
    /// What it says.
    pub predicate: ApprovalPredicate,
}

/// Why a plugin may run: its approval, and whether that was inherited from a previous
/// version.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    /// The approval in force.
    pub approval: VerifiedApproval,
    /// The digest the approval was made for, when it is another (older) version's:
    /// accepted because `auto_approve_within_previous` is on and the new version asks
    /// for nothing more.
    pub inherited_from: Option<String>,
}

/// The trust policy of one `relo.toml`: trusted signers and the names they may sign,
/// people with their keys and roles.
#[derive(Clone, Debug)]
pub struct TrustPolicy {
    signers: Vec<TrustedKey>,
    people: Vec<Identity>,
    auto_approve_within_previous: bool,
}

impl TrustPolicy {
    /// Loads the policy of `config`, reading key files relative to `home`.
    pub fn load(config: &OperatorConfig, home: &Path) -> Result<Self, TrustError> {
        let read = |path: &str| PublicKey::from_pem_file(home.join(path));
        let signers = config
            .trust
            .signers
            .iter()
            .map(|signer| {
                Ok(TrustedKey {
                    key: read(&signer.key)?,
                    plugins: signer.plugins.clone(),
                    person: signer.person.as_ref().map(|p| p.as_str().to_owned()),
                    retired: signer.retired,
                })
            })
            .collect::<Result<_, TrustError>>()?;
        let people = config
            .people
            .iter()
            .map(|person| {
                Ok(Identity {
                    name: person.name.as_str().to_owned(),
                    keys: person
                        .keys
                        .iter()
                        .map(|path| read(path))
                        .collect::<Result<_, TrustError>>()?,
                    roles: person.roles.clone(),
                })
            })
            .collect::<Result<_, TrustError>>()?;
        Ok(Self {
            signers,
            people,
            auto_approve_within_previous: config.trust.auto_approve_within_previous,
        })
    }

    /// The same signers with `people` in place of this policy's people: what a server
    /// uses once people live in its store.
    pub fn with_people(&self, people: Vec<Identity>) -> Self {
        Self {
            signers: self.signers.clone(),
            people,
            auto_approve_within_previous: self.auto_approve_within_previous,
        }
    }

    /// The people whose signatures count.
    pub fn people(&self) -> &[Identity] {
        &self.people
    }

    /// Key ids of the signer keys marked `retired`.
    pub fn retired_signers(&self) -> Vec<String> {
        self.signers
            .iter()
            .filter(|signer| signer.retired)
            .map(|signer| signer.key.key_id().to_owned())
            .collect()
    }

    /// The person in `[[people]]` holding the key `key_id`.
    pub fn person_with_key(&self, key_id: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|person| person.keys.iter().any(|key| key.key_id() == key_id))
            .map(|person| person.name.as_str())
    }

    /// The roles of the person `name` in `[[people]]`, if there is such a person.
    pub fn roles_of(&self, name: &str) -> Option<&[Role]> {
        self.people
            .iter()
            .find(|person| person.name == name)
            .map(|person| person.roles.as_slice())
    }

    /// Verifies that a person in `[[people]]` signed `envelope`; returns the person and
    /// the key id that signed. A signature by a listed key that does not verify is an
    /// error, whatever else signed.
    pub fn signed_by_person(&self, envelope: &Envelope) -> Result<(String, String), TrustError> {
        let keys: Vec<PublicKey> = self
            .people
            .iter()
            .flat_map(|person| person.keys.iter().cloned())
            .collect();
        let key_ids = envelope.verify(&keys, 1)?;
        let key_id = key_ids.into_iter().next().ok_or(TrustError::Unsigned)?;
        let person = self
            .person_with_key(&key_id)
            .ok_or(TrustError::Unsigned)?
            .to_owned();
        Ok((person, key_id))
    }

    /// Verifies the attestation `attestation` (a DSSE envelope or a Sigstore bundle) of
    /// the component `wasm`, in this order: the file's shape, a signature by a trusted
    /// signer key that verifies, the key not retired, the plugin name allowed for that
    /// key, the digest of the bytes, the signed manifest. The runtime uses only the
    /// manifest returned here.
    pub fn verify_plugin(
        &self,
        wasm: &[u8],
        attestation: &[u8],
    ) -> Result<VerifiedPlugin, Refusal> {
        let envelope = read_envelope(attestation)?;
        let keys: Vec<PublicKey> = self.signers.iter().map(|s| s.key.clone()).collect();
        let key_ids = envelope
            .verify(&keys, 1)
            .map_err(|e| Refusal::from_verify(e, "[[trust.signers]]"))?;
        let statement = signed_statement(&envelope, PLUGIN_PREDICATE_TYPE)?;
        let (name, digest) = single_subject(&statement)?;
        let plugin_name: PluginName = name.parse().map_err(|_| {
            Refusal::malformed(format!("subject name `{name}` is not a plugin name"))
        })?;
        let signers: Vec<&TrustedKey> = key_ids
            .iter()
            .filter_map(|id| self.signers.iter().find(|s| s.key.key_id() == id))
            .collect();
        let active: Vec<&TrustedKey> = signers.iter().copied().filter(|s| !s.retired).collect();
        let Some(first) = active.first() else {
            return Err(Refusal::Revoked {
                what: format!("signer key {} (retired in relo.toml)", key_ids.join(", ")),
                reason: None,
            });
        };
        let Some(signer) = active
            .iter()
            .find(|s| s.plugins.iter().any(|glob| glob.matches(&plugin_name)))
        else {
            return Err(Refusal::SignerNotAllowedForName {
                key_id: first.key.key_id().to_owned(),
                name: name.to_owned(),
            });
        };
        let actual = sha256_hex(wasm);
        if actual != digest {
            return Err(Refusal::DigestMismatch {
                expected: digest.to_owned(),
                actual,
            });
        }
        let manifest: PluginManifest = serde_json::from_value(statement.predicate.clone())
            .map_err(|e| Refusal::malformed(format!("the signed manifest is not valid: {e}")))?;
        if manifest.plugin.name.as_str() != name {
            return Err(Refusal::ManifestMismatch {
                reason: format!(
                    "the signed manifest names `{}`, the subject `{name}`",
                    manifest.plugin.name
                ),
            });
        }
        Ok(VerifiedPlugin {
            name: name.to_owned(),
            version: manifest.plugin.version.to_string(),
            digest: actual,
            manifest,
            signer_key_id: signer.key.key_id().to_owned(),
            signer_person: signer.person.clone(),
            signed_by: signers
                .iter()
                .map(|s| (s.key.key_id().to_owned(), s.person.clone()))
                .collect(),
        })
    }

    /// Checks one approval of `plugin`: signed by a key of a person in `[[people]]` who
    /// has the operator role and did not sign the plugin, for this digest, not expired at
    /// `now`, and allowing nothing beyond `declared` (the plugin's capabilities resolved
    /// against the current config).
    pub fn verify_approval(
        &self,
        plugin: &VerifiedPlugin,
        envelope: &Envelope,
        declared: &Capabilities,
        now: SystemTime,
    ) -> Result<VerifiedApproval, Refusal> {
        let approval = self.approval_for_name(plugin, envelope, now)?;
        let digest = &approval.digest;
        if digest != &plugin.digest {
            return Err(Refusal::ApprovalDigestMismatch {
                approval_id: approval.verified.id,
                approved: digest.clone(),
                presented: plugin.digest.clone(),
            });
        }
        let widened = widened(declared, &approval.verified.predicate.capabilities);
        if !widened.is_empty() {
            return Err(Refusal::ApprovalExceedsDeclared {
                approval_id: approval.verified.id,
                widened,
            });
        }
        Ok(approval.verified)
    }

    /// Everything about an approval except which digest it names: the signer, the
    /// role, separation of duties, the plugin name and the expiry.
    fn approval_for_name(
        &self,
        plugin: &VerifiedPlugin,
        envelope: &Envelope,
        now: SystemTime,
    ) -> Result<ApprovalOf, Refusal> {
        let id = approval_id(envelope);
        let keys: Vec<PublicKey> = self
            .people
            .iter()
            .flat_map(|person| person.keys.iter().cloned())
            .collect();
        let key_ids = envelope
            .verify(&keys, 1)
            .map_err(|e| Refusal::from_verify(e, "[[people]]"))?;
        let statement = signed_statement(envelope, APPROVAL_PREDICATE_TYPE)?;
        let (name, digest) = single_subject(&statement)?;
        let predicate: ApprovalPredicate = serde_json::from_value(statement.predicate.clone())
            .map_err(|e| Refusal::malformed(format!("approval {id}: {e}")))?;
        let key_id = &key_ids[0];
        let person = self
            .people
            .iter()
            .find(|person| person.keys.iter().any(|key| key.key_id() == key_id))
            .ok_or_else(|| {
                Refusal::malformed(format!("approval {id}: no person holds key {key_id}"))
            })?;
        if predicate.approver.key_id != *key_id || predicate.approver.person != person.name {
            return Err(Refusal::malformed(format!(
                "approval {id} claims approver {} with key {}, but key {key_id} of {} signed it",
                predicate.approver.person, predicate.approver.key_id, person.name
            )));
        }
        if name != plugin.name || predicate.plugin.name != plugin.name {
            return Err(Refusal::malformed(format!(
                "approval {id} is for plugin `{name}`, not `{}`",
                plugin.name
            )));
        }
        if !person.roles.contains(&Role::Operator) {
            return Err(Refusal::ApproverNotOperator {
                approval_id: id,
                person: person.name.clone(),
            });
        }
        // Every signature on the approval, against every signature on the plugin.
        for signed in &key_ids {
            let Some(signer) = self
                .people
                .iter()
                .find(|person| person.keys.iter().any(|key| key.key_id() == signed))
            else {
                continue;
            };
            if plugin.signed_by(&signer.name, signed) {
                let person = if plugin.signed_by.iter().any(|(key, _)| key == signed) {
                    format!("{} (the plugin's signing key {signed})", signer.name)
                } else {
                    signer.name.clone()
                };
                return Err(Refusal::SeparationOfDuties {
                    approval_id: id,
                    person,
                });
            }
        }
        if let Some(expires) = &predicate.expires_at {
            let at = parse_rfc3339(expires).ok_or_else(|| {
                Refusal::malformed(format!(
                    "approval {id}: expires_at `{expires}` is not RFC 3339 UTC"
                ))
            })?;
            if now >= at {
                return Err(Refusal::ApprovalExpired {
                    approval_id: id,
                    expired_at: expires.clone(),
                });
            }
        }
        Ok(ApprovalOf {
            digest: digest.to_owned(),
            verified: VerifiedApproval { id, predicate },
        })
    }

    /// Decides whether `plugin` may run at `now`, given every stored approval of its
    /// name (`approvals`, any digest, newest last) and its capabilities `declared` under
    /// the current config.
    ///
    /// An approval of this digest that checks out admits it (the newest such one). Else,
    /// when `auto_approve_within_previous` is on, a valid approval of another version
    /// admits it if the plugin asks for nothing beyond it. Else the refusal is the newest
    /// approval's of this digest, or [`Refusal::NotApproved`] listing what the plugin
    /// asks for beyond the newest valid approval of another version.
    pub fn admit(
        &self,
        plugin: &VerifiedPlugin,
        declared: &Capabilities,
        approvals: &[ApprovalRecord],
        now: SystemTime,
    ) -> Result<Admission, Refusal> {
        let mut own_refusal = None;
        for record in approvals.iter().rev().filter(|r| r.digest == plugin.digest) {
            match self
                .check_record(plugin, record)
                .and_then(|_| self.verify_approval(plugin, &record.envelope, declared, now))
            {
                Ok(approval) => {
                    return Ok(Admission {
                        approval,
                        inherited_from: None,
                    });
                }
                Err(refusal) => {
                    own_refusal.get_or_insert(refusal);
                }
            }
        }
        if let Some(refusal) = own_refusal {
            return Err(refusal);
        }
        let previous = approvals
            .iter()
            .rev()
            .filter(|r| r.digest != plugin.digest)
            .find_map(|record| {
                self.check_record(plugin, record).ok()?;
                self.approval_for_name(plugin, &record.envelope, now).ok()
            });
        let Some(previous) = previous else {
            return Err(Refusal::NotApproved {
                plugin: plugin.reference(),
                digest: plugin.digest.clone(),
                widened: Vec::new(),
                reason: "no operator has approved this digest".to_owned(),
            });
        };
        let widened = widened(&previous.verified.predicate.capabilities, declared);
        if widened.is_empty() && self.auto_approve_within_previous {
            return Ok(Admission {
                approval: previous.verified,
                inherited_from: Some(previous.digest),
            });
        }
        let reason = if widened.is_empty() {
            format!(
                "it asks for nothing beyond approval {} of version {}, but [trust] \
                 auto_approve_within_previous is off",
                previous.verified.id, previous.verified.predicate.plugin.version
            )
        } else {
            format!(
                "compared with approval {} of version {}",
                previous.verified.id, previous.verified.predicate.plugin.version
            )
        };
        Err(Refusal::NotApproved {
            plugin: plugin.reference(),
            digest: plugin.digest.clone(),
            widened,
            reason,
        })
    }

    fn check_record(
        &self,
        plugin: &VerifiedPlugin,
        record: &ApprovalRecord,
    ) -> Result<(), Refusal> {
        let id = approval_id(&record.envelope);
        if id != record.id {
            return Err(Refusal::malformed(format!(
                "approval stored as {} holds the signed approval {id}",
                record.id
            )));
        }
        if let Some(reason) = &record.revoked {
            return Err(Refusal::Revoked {
                what: format!("approval {id} of {}", plugin.name),
                reason: Some(reason.clone()),
            });
        }
        Ok(())
    }
}

struct ApprovalOf {
    digest: String,
    verified: VerifiedApproval,
}

/// Each capability `new` has beyond `old`, as `capability: before → after` lines.
pub fn widened(old: &Capabilities, new: &Capabilities) -> Vec<String> {
    CapabilityDiff::between(old, new)
        .changes
        .into_iter()
        .filter(|change| matches!(change.kind, ChangeKind::Added | ChangeKind::Widened))
        .map(|change| {
            format!(
                "{} {}: {} → {}",
                match change.kind {
                    ChangeKind::Added => "added",
                    _ => "widened",
                },
                change.capability,
                change.before.as_deref().unwrap_or("none"),
                change.after.as_deref().unwrap_or("none"),
            )
        })
        .collect()
}

/// What a stored approval document (`relo plugin approve --out`, as the store keeps it)
/// says, read **without** checking its signature: for showing and comparing approvals
/// that were verified when they were stored. Anything admitting a plugin verifies the
/// approval with [`TrustPolicy`] instead.
pub fn stored_approval_predicate(document: &[u8]) -> Result<ApprovalPredicate, Refusal> {
    let envelope = read_envelope(document)?;
    let statement = signed_statement(&envelope, APPROVAL_PREDICATE_TYPE)?;
    serde_json::from_value(statement.predicate)
        .map_err(|e| Refusal::malformed(format!("the approval's predicate: {e}")))
}

fn signed_statement(envelope: &Envelope, predicate_type: &str) -> Result<Statement, Refusal> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Refusal::malformed(format!(
            "payload type is {:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}",
            envelope.payload_type
        )));
    }
    let statement: Statement = serde_json::from_slice(&envelope.payload)
        .map_err(|e| Refusal::malformed(format!("the signed statement does not parse: {e}")))?;
    statement
        .validate()
        .map_err(|e| Refusal::malformed(e.to_string()))?;
    if statement.predicate_type != predicate_type {
        return Err(Refusal::malformed(format!(
            "predicate type is {:?}, expected {predicate_type:?}",
            statement.predicate_type
        )));
    }
    Ok(statement)
}

fn single_subject(statement: &Statement) -> Result<(&str, &str), Refusal> {
    match statement.subject.as_slice() {
        [subject] => {
            let digest = subject
                .sha256_digest()
                .ok_or_else(|| Refusal::malformed("the subject has no sha256 digest"))?;
            Ok((subject.name.as_str(), digest))
        }
        subjects => Err(Refusal::malformed(format!(
            "expected one subject, found {}",
            subjects.len()
        ))),
    }
}
