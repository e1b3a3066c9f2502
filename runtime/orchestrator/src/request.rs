//! Signed run requests and signed approvals of approval gates.
//!
//! A run request names the workflow (by name and the sha256 of its text) and the
//! parameters, and is signed by the requester's key as a DSSE envelope: the requester is
//! proven, not claimed, and the workflow text stored with the run is checked against it
//! whenever the run is continued. A gate approval names the run, the gate and the
//! approver, signed by the approver's key; it counts only if the key belongs to that
//! person in `[[people]]`, the person holds one of the gate's roles, and the person is
//! not the run's requester.

use std::collections::BTreeMap;

use relo_manifest::Approval;
use relo_trust::{Envelope, Signer, TrustError, TrustPolicy, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The DSSE payload type of a run request.
pub const RUN_REQUEST_TYPE: &str = "application/vnd.relo.run-request+json";

/// The DSSE payload type of a gate approval.
pub const GATE_APPROVAL_TYPE: &str = "application/vnd.relo.gate-approval+json";

/// What a requester signs to start a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The run's id.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// sha256 of the workflow's text, lowercase hex.
    pub workflow_sha256: String,
    /// The resolved parameters.
    pub params: BTreeMap<String, Value>,
    /// The requester, as `[[people]]` names them.
    pub requested_by: String,
    /// When (RFC 3339).
    pub requested_at: String,
}

/// Why a signed request or approval is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SignedRefusal {
    /// A stable code: `bad-signature`, `unknown-signer`, `malformed`, `identity-mismatch`,
    /// `workflow-changed`, `wrong-gate`, `missing-role`, `separation-of-duties`.
    pub code: &'static str,
    /// Why, in words.
    pub reason: String,
}

impl SignedRefusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl RunRequest {
    /// Signs the request with the requester's key.
    pub fn sign(&self, signer: &dyn Signer) -> Result<Envelope, TrustError> {
        let payload = serde_json::to_string(self).expect("strings and JSON values serialise");
        Envelope::sign(RUN_REQUEST_TYPE, payload, &[signer])
    }

    /// Verifies a stored request (`envelope` JSON) against `[[people]]` and the workflow
    /// text it must name: the signature, that the signing key is the requester's, and
    /// the workflow's sha256.
    pub fn verify(
        envelope: &str,
        policy: &TrustPolicy,
        workflow_text: &str,
    ) -> Result<Self, SignedRefusal> {
        let (payload, person, _) = signed_payload(envelope, policy, RUN_REQUEST_TYPE)?;
        let request: Self = serde_json::from_slice(&payload)
            .map_err(|e| SignedRefusal::new("malformed", format!("the run request: {e}")))?;
        if request.requested_by != person {
            return Err(SignedRefusal::new(
                "identity-mismatch",
                format!(
                    "the request names {} as requester but is signed by {person}'s key",
                    request.requested_by
                ),
            ));
        }
        let digest = sha256_hex(workflow_text.as_bytes());
        if digest != request.workflow_sha256 {
            return Err(SignedRefusal::new(
                "workflow-changed",
                format!(
                    "the stored workflow has sha256 {digest}, but the signed request names {}",
                    request.workflow_sha256
                ),
            ));
        }
        Ok(request)
    }
}

/// What an approver signs to approve one gate of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateApprovalPayload {
    /// The run.
    pub run_id: String,
    /// The gate's step id.
    pub step_id: String,
    /// sha256 of the workflow text the run runs, so an approval cannot be moved to a
    /// run of another workflow with the same id.
    pub workflow_sha256: String,
    /// The approver, as `[[people]]` names them.
    pub approver: String,
    /// When (RFC 3339).
    pub approved_at: String,
}

/// An approval that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// The person.
    pub person: String,
    /// The key id that signed.
    pub key_id: String,
}

impl GateApprovalPayload {
    /// Signs the approval with the approver's key.
    pub fn sign(&self, signer: &dyn Signer) -> Result<Envelope, TrustError> {
        let payload = serde_json::to_string(self).expect("strings serialise");
        Envelope::sign(GATE_APPROVAL_TYPE, payload, &[signer])
    }

    /// Checks a signed approval (`envelope` JSON) of gate `step_id` of run `run_id`,
    /// requested by `requester`, against `[[people]]`: the signature, that the key is
    /// the named approver's, the run, the gate and the workflow, a role of the gate,
    /// and separation of duties (the requester never approves their own run).
    pub fn check(
        envelope: &str,
        policy: &TrustPolicy,
        run: (&str, &str),
        step_id: &str,
        gate: &Approval,
        requester: &str,
    ) -> Result<Approver, SignedRefusal> {
        let (run_id, workflow_sha256) = run;
        let (payload, person, key_id) = signed_payload(envelope, policy, GATE_APPROVAL_TYPE)?;
        let approval: Self = serde_json::from_slice(&payload)
            .map_err(|e| SignedRefusal::new("malformed", format!("the approval: {e}")))?;
        if approval.approver != person {
            return Err(SignedRefusal::new(
                "identity-mismatch",
                format!(
                    "the approval names {} but is signed by {person}'s key",
                    approval.approver
                ),
            ));
        }
        if approval.run_id != run_id
            || approval.step_id != step_id
            || approval.workflow_sha256 != workflow_sha256
        {
            return Err(SignedRefusal::new(
                "wrong-gate",
                format!(
                    "the approval is for step {} of run {} (workflow {}), not step {step_id} of run {run_id}",
                    approval.step_id, approval.run_id, approval.workflow_sha256
                ),
            ));
        }
        let roles = policy.roles_of(&person).unwrap_or_default();
        if !gate.roles.iter().any(|role| roles.contains(role)) {
            let wanted: Vec<&str> = gate.roles.iter().map(|r| r.as_str()).collect();
            return Err(SignedRefusal::new(
                "missing-role",
                format!(
                    "{person} holds none of the gate's roles ({})",
                    wanted.join(", ")
                ),
            ));
        }
        if person == requester {
            return Err(SignedRefusal::new(
                "separation-of-duties",
                format!("{person} requested this run and cannot approve it"),
            ));
        }
        Ok(Approver { person, key_id })
    }
}

/// The payload of an envelope of type `payload_type` signed by a person's key, that
/// person and the key id.
fn signed_payload(
    envelope: &str,
    policy: &TrustPolicy,
    payload_type: &str,
) -> Result<(Vec<u8>, String, String), SignedRefusal> {
    let envelope = Envelope::from_json(envelope.as_bytes())
        .map_err(|e| SignedRefusal::new("malformed", e.to_string()))?;
    if envelope.payload_type != payload_type {
        return Err(SignedRefusal::new(
            "malformed",
            format!(
                "payload type `{}`, expected `{payload_type}`",
                envelope.payload_type
            ),
        ));
    }
    let (person, key_id) = policy.signed_by_person(&envelope).map_err(|e| match e {
        TrustError::BadSignature { .. } => SignedRefusal::new("bad-signature", e.to_string()),
        other => SignedRefusal::new(
            "unknown-signer",
            format!("not signed by a key in [[people]]: {other}"),
        ),
    })?;
    Ok((envelope.payload, person, key_id))
}
