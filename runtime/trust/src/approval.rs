//! Operator approvals: a signed statement that a person with the `operator` role allows
//! one plugin digest a set of capabilities, until an optional expiry.
//!
//! The approval is an in-toto Statement v1 in a DSSE envelope: its subject is the plugin
//! name with the approved digest, its predicate type [`APPROVAL_PREDICATE_TYPE`], its
//! predicate an [`ApprovalPredicate`]. The capabilities are concrete: endpoints were
//! resolved against the operator's config when the approval was made, so a changed
//! binding no longer matches it.

use std::time::SystemTime;

use relo_policy::Capabilities;
use serde::{Deserialize, Serialize};

use crate::plugin::sha256_hex;
use crate::policy::VerifiedPlugin;
use crate::{Envelope, Signer, Statement, Subject, TrustError};

/// The predicate type of an operator approval.
pub const APPROVAL_PREDICATE_TYPE: &str = "https://relo.dev/attestation/approval/v1";

/// What an approval says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPredicate {
    /// The plugin approved; its digest is the statement's subject.
    pub plugin: ApprovedPlugin,
    /// What the plugin may do: equal to or narrower than what it declares.
    pub capabilities: Capabilities,
    /// Who approved it.
    pub approver: Approver,
    /// When (RFC 3339, UTC, seconds).
    pub approved_at: String,
    /// When the approval stops being valid (RFC 3339), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The plugin an approval names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedPlugin {
    /// `namespace/name`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The person who approved, and the key they signed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// The person's name in `[[people]]`.
    pub person: String,
    /// The key id of the signing key.
    pub key_id: String,
}

/// A signed approval.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedApproval {
    /// The approval's id: the sha256 of its signed statement, lowercase hex.
    pub id: String,
    /// The approved digest.
    pub digest: String,
    /// What it says.
    pub predicate: ApprovalPredicate,
    /// The signed statement.
    pub envelope: Envelope,
}

impl SignedApproval {
    /// Signs an approval of `plugin` for `capabilities` by `person` with `signer`, made at
    /// `now`, valid until `expires_at` if given.
    ///
    /// Nothing is checked here beyond signing: the runtime checks the approver's role,
    /// separation of duties and the capabilities when it uses the approval.
    pub fn sign(
        plugin: &VerifiedPlugin,
        capabilities: Capabilities,
        person: &str,
        signer: &dyn Signer,
        now: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Result<Self, TrustError> {
        let predicate = ApprovalPredicate {
            plugin: ApprovedPlugin {
                name: plugin.name.clone(),
                version: plugin.version.clone(),
            },
            capabilities,
            approver: Approver {
                person: person.to_owned(),
                key_id: signer.key_id().to_owned(),
            },
            approved_at: rfc3339_seconds(now),
            expires_at: expires_at.map(rfc3339_seconds),
        };
        let value =
            serde_json::to_value(&predicate).map_err(|e| TrustError::MalformedStatement {
                reason: format!("the approval has no JSON form: {e}"),
            })?;
        let statement = Statement::new(
            vec![Subject::sha256(&plugin.name, &plugin.digest)],
            APPROVAL_PREDICATE_TYPE,
            value,
        );
        let envelope = statement.sign(&[signer])?;
        Ok(Self {
            id: approval_id(&envelope),
            digest: plugin.digest.clone(),
            predicate,
            envelope,
        })
    }
}

/// The id of an approval: the sha256 of its signed payload, lowercase hex.
pub fn approval_id(envelope: &Envelope) -> String {
    sha256_hex(&envelope.payload)
}

/// `time` as RFC 3339 in UTC with whole seconds, e.g. `2026-11-22T23:00:00Z`.
pub fn rfc3339_seconds(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Parses an RFC 3339 time written in UTC (`Z`), as approvals carry them.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .filter(|_| text.ends_with('Z'))
}
