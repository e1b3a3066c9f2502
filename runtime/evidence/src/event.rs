//! The typed events a step's host decisions produce.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The chain an entry belongs to: one per run, plus the control plane's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The chain of one run, by run id.
    Run(String),
    /// The control-plane chain: approvals, blocks, refusals at load, key changes.
    Control,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Run(id) => f.write_str(id),
            Scope::Control => f.write_str("control"),
        }
    }
}

/// What a step used, reported with every finished step whatever its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUsage {
    /// Fuel consumed.
    pub fuel: u64,
    /// The largest linear memory the step held at once, in bytes.
    pub memory_peak_bytes: u64,
    /// Wall-clock milliseconds from instantiation to the result.
    pub wall_ms: u64,
    /// Egress requests the step attempted (allowed or denied).
    pub egress_requests: u64,
    /// Response body bytes the step received over egress.
    pub egress_bytes_in: u64,
    /// Request body bytes the step sent over egress.
    pub egress_bytes_out: u64,
    /// Bytes of log lines, stdout and stderr the step wrote.
    pub log_bytes: u64,
}

/// How an allowed egress request ended at the transport level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum EgressOutcome {
    /// A response arrived.
    Response {
        /// The HTTP status.
        status: u16,
        /// The address connected to.
        resolved_ip: String,
        /// Milliseconds from the decision to the response headers.
        ms: u64,
    },
    /// No response arrived; `error` says why (connect failure, blocked address, ...).
    Failed {
        /// A stable code for the failure.
        code: String,
        /// What went wrong.
        error: String,
        /// The address tried, if the name resolved.
        resolved_ip: Option<String>,
    },
}

/// One decision or fact about a step, recorded as evidence.
///
/// The [`kind`](EvidenceEvent::kind) is the stable name used in the evidence log
/// (`egress.denied`, `limit.exceeded`, ...). Bodies hold names, destinations and digests,
/// never secret values, request bodies or header values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum EvidenceEvent {
    /// A step was instantiated with this plugin, grant and limits.
    #[serde(rename = "step.started")]
    StepStarted {
        /// sha256 of the component bytes, lowercase hex.
        digest: String,
        /// The attempt number, from 1.
        attempt: u32,
        /// What the step was granted (names only).
        grant: serde_json::Value,
        /// The limits in force.
        limits: serde_json::Value,
    },
    /// A step ended, successfully or not.
    #[serde(rename = "step.finished")]
    StepFinished {
        /// `succeeded` or a failure code (`limit-exceeded`, `trap`, `step-error`, ...).
        outcome: String,
        /// What the step used.
        usage: StepUsage,
        /// sha256 of the output JSON, when the step succeeded.
        output_sha256: Option<String>,
    },
    /// A step hit a limit and was stopped.
    #[serde(rename = "limit.exceeded")]
    LimitExceeded {
        /// `fuel`, `memory`, `timeout`, `output` or `log`.
        limit: String,
        /// The limit that was in force.
        allowed: u64,
        /// What the step asked for or used when it was stopped.
        requested: u64,
    },
    /// An outgoing request passed the grant.
    #[serde(rename = "egress.allowed")]
    EgressAllowed {
        /// Request method.
        method: String,
        /// URL scheme.
        scheme: String,
        /// Host as requested.
        host: String,
        /// Port.
        port: u16,
        /// Path, without the query.
        path: String,
        /// The rule that allowed it.
        rule: String,
        /// Header names the step set (never values).
        header_names: Vec<String>,
    },
    /// An outgoing request was refused before any connection.
    #[serde(rename = "egress.denied")]
    EgressDenied {
        /// Request method.
        method: String,
        /// URL scheme.
        scheme: String,
        /// Host as requested.
        host: String,
        /// Port.
        port: u16,
        /// Path, without the query.
        path: String,
        /// The denial's stable code.
        code: String,
        /// Why, in words.
        reason: String,
    },
    /// How an allowed request ended.
    #[serde(rename = "egress.completed")]
    EgressCompleted {
        /// Request method.
        method: String,
        /// Host as requested.
        host: String,
        /// Port.
        port: u16,
        /// Path, without the query.
        path: String,
        /// Response or failure.
        outcome: EgressOutcome,
    },
    /// Egress to a destination was paused: its circuit breaker opened after consecutive
    /// failed requests (transport errors or 5xx answers), for every step the sandbox runs.
    #[serde(rename = "egress.circuit-opened")]
    EgressCircuitOpened {
        /// URL scheme.
        scheme: String,
        /// Host as requested (lowercase).
        host: String,
        /// Port.
        port: u16,
        /// The consecutive failures that opened it.
        consecutive_failures: u32,
        /// How long requests to it are refused before one trial request is let through.
        cooldown_ms: u64,
    },
    /// An outgoing request that passed the grant was refused without connecting, because
    /// its destination's circuit breaker is open.
    #[serde(rename = "egress.circuit-refused")]
    EgressCircuitRefused {
        /// Request method.
        method: String,
        /// URL scheme.
        scheme: String,
        /// Host as requested.
        host: String,
        /// Port.
        port: u16,
        /// Path, without the query.
        path: String,
        /// Milliseconds until a trial request is let through; 0 while one is under way.
        reopens_in_ms: u64,
    },
    /// A trial request to a destination whose circuit breaker was open succeeded: egress
    /// to it flows again.
    #[serde(rename = "egress.circuit-closed")]
    EgressCircuitClosed {
        /// URL scheme.
        scheme: String,
        /// Host as requested (lowercase).
        host: String,
        /// Port.
        port: u16,
    },
    /// The host read a granted secret from its provider for the step (`secrets.get`);
    /// the step holds an opaque handle.
    #[serde(rename = "secret.read")]
    SecretRead {
        /// The logical name.
        name: String,
        /// Where the value came from (`kv/data/app#field[@version]`), never the value.
        reference: String,
        /// The provider's version of the value, if it keeps versions.
        version: Option<u64>,
    },
    /// The step read a secret's value through `reveal`.
    #[serde(rename = "secret.revealed")]
    SecretRevealed {
        /// The logical name.
        name: String,
        /// Where the value came from.
        reference: String,
        /// The provider's version of the value.
        version: Option<u64>,
    },
    /// A response to a request that carried an injected secret held its value (the
    /// destination echoed it); the host masked it before the step saw the answer.
    #[serde(rename = "secret.reflected")]
    SecretReflected {
        /// The secret's logical name.
        name: String,
        /// `header` or `body`.
        channel: String,
        /// The response header that held it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
    },
    /// The host put a secret into an outgoing request's header (`{{secret:NAME}}`), after
    /// the request passed the egress check and its destination the secret's inject list.
    #[serde(rename = "secret.injected")]
    SecretInjected {
        /// The logical name.
        name: String,
        /// Where the value came from.
        reference: String,
        /// The provider's version of the value.
        version: Option<u64>,
        /// The header it went into.
        header: String,
        /// Request method.
        method: String,
        /// URL scheme.
        scheme: String,
        /// Destination host.
        host: String,
        /// Destination port.
        port: u16,
        /// Path, without the query.
        path: String,
    },
    /// A step tried to let a secret value out through its output; the output was refused.
    #[serde(rename = "secret.leak-blocked")]
    SecretLeakBlocked {
        /// The logical name of the value found.
        name: String,
        /// Where it was found: `output`.
        channel: String,
    },
    /// A secret or reveal request was refused.
    #[serde(rename = "secret.denied")]
    SecretDenied {
        /// The logical name.
        name: String,
        /// Where its value lives (`path#field[@version]`), when `relo.toml` binds it.
        reference: Option<String>,
        /// The denial's stable code.
        code: String,
        /// Why, in words.
        reason: String,
    },
    /// The host signed a digest for the step.
    #[serde(rename = "signer.signed")]
    SignerSigned {
        /// The logical key name.
        key: String,
        /// The digest signed.
        digest: String,
    },
    /// A signing request was refused.
    #[serde(rename = "signer.denied")]
    SignerDenied {
        /// The logical key name.
        key: String,
        /// The digest the step asked to sign.
        digest: String,
        /// The denial's stable code.
        code: String,
        /// Why, in words.
        reason: String,
    },
    /// A component was refused at load, before it was compiled or run.
    #[serde(rename = "plugin.refused")]
    PluginRefused {
        /// sha256 of the component bytes, lowercase hex.
        digest: String,
        /// The refusal's stable code (`forbidden-import`, `invalid-component`, ...).
        code: String,
        /// Why, in words.
        reason: String,
    },
    /// A run began.
    #[serde(rename = "run.started")]
    RunStarted {
        /// The workflow's name.
        workflow: String,
        /// The person who requested it.
        requested_by: String,
        /// Its parameters.
        params: serde_json::Value,
    },
    /// A run ended.
    #[serde(rename = "run.finished")]
    RunFinished {
        /// `succeeded`, `failed` or `cancelled`.
        outcome: String,
        /// For a failed run, the step whose failure ended it and why.
        root_cause: Option<String>,
    },
    /// A step was not run: its condition did not hold, or a step it needs did not succeed.
    #[serde(rename = "step.skipped")]
    StepSkipped {
        /// Why.
        reason: String,
    },
    /// A verified plugin was imported into the store.
    #[serde(rename = "plugin.added")]
    PluginAdded {
        /// The plugin's name.
        name: String,
        /// Its version.
        version: String,
        /// sha256 of the component bytes, lowercase hex.
        digest: String,
        /// The key id that signed its attestation.
        signer_key_id: String,
    },
    /// A plugin digest was blocked: no step runs it from now on.
    #[serde(rename = "plugin.blocked")]
    PluginBlocked {
        /// sha256 of the component bytes, lowercase hex.
        digest: String,
        /// Why, in the operator's words.
        reason: String,
        /// Who blocked it.
        by: String,
    },
    /// An operator's signed approval of a plugin digest was accepted into the store.
    #[serde(rename = "approval.granted")]
    ApprovalGranted {
        /// The approval's id (sha256 of its signed statement).
        approval_id: String,
        /// The plugin's name.
        plugin: String,
        /// sha256 of the approved component.
        digest: String,
        /// The approving person.
        approver: String,
        /// The key id that signed the approval.
        key_id: String,
        /// When it stops being valid (RFC 3339), if ever.
        expires_at: Option<String>,
    },
    /// An approval was revoked: steps that relied on it are refused from now on.
    #[serde(rename = "approval.revoked")]
    ApprovalRevoked {
        /// The approval's id.
        approval_id: String,
        /// sha256 of the component it approved.
        digest: String,
        /// Why, in the operator's words.
        reason: String,
        /// Who revoked it.
        by: String,
    },
    /// An approval gate was reached and waits for approvals.
    #[serde(rename = "gate.waiting")]
    GateWaiting {
        /// Roles whose holders may approve.
        roles: Vec<String>,
        /// Approvals needed.
        quorum: u32,
        /// Valid approvals so far.
        approvals: u32,
    },
    /// A person's signed approval of a gate was accepted.
    #[serde(rename = "gate.approved")]
    GateApproved {
        /// The approving person.
        approver: String,
        /// The key id that signed the approval.
        key_id: String,
        /// sha256 of the signed approval envelope.
        approval_sha256: String,
    },
    /// An approval of a gate was refused (the requester, a missing role, a bad signature).
    #[serde(rename = "gate.refused")]
    GateRefused {
        /// Who tried, as far as known.
        approver: String,
        /// A stable code: `separation-of-duties`, `missing-role`, `bad-signature`, ...
        code: String,
        /// Why, in words.
        reason: String,
    },
    /// A gate's quorum was met: the steps after it may run.
    #[serde(rename = "gate.passed")]
    GatePassed {
        /// The distinct people whose approvals counted.
        approved_by: Vec<String>,
    },
    /// A run stopped to wait for approvals; `relo resume` continues it.
    #[serde(rename = "run.waiting")]
    RunWaiting {
        /// The gates waiting.
        gates: Vec<String>,
    },
    /// This instance could no longer renew its lease on a step (another instance may
    /// take the step over): the step was stopped, and its outcome is not stored.
    #[serde(rename = "step.lease-lost")]
    LeaseLost {
        /// The instance that lost the lease.
        owner: String,
        /// Why the renewal failed.
        reason: String,
    },
    /// A run was continued after waiting or after its process ended.
    #[serde(rename = "run.resumed")]
    RunResumed {
        /// The instance that continued it.
        by: String,
        /// Steps already finished, which are not run again.
        finished_steps: Vec<String>,
    },
    /// The run's workspace was saved into the store after a step that may write it.
    #[serde(rename = "workspace.snapshot")]
    WorkspaceSnapshot {
        /// sha256 of the snapshot (a tar archive).
        digest: String,
        /// Its size in bytes.
        bytes: u64,
        /// Files in it.
        files: u64,
    },
    /// The run's workspace was restored from a snapshot in the store.
    #[serde(rename = "workspace.restored")]
    WorkspaceRestored {
        /// sha256 of the snapshot.
        digest: String,
    },
    /// The run's workspace was not saved after a step: it held a link or special file,
    /// or an entry that could not be read through its handles (`workspace-entry-refused`).
    #[serde(rename = "workspace.refused")]
    WorkspaceRefused {
        /// Which entry, and why.
        reason: String,
    },
    /// An instance taking a run over found its stored state at odds with its evidence, or
    /// the evidence itself not covered by a seal or checkpoint that verifies
    /// (`state-tampered`): the run was failed without running another step. Recorded in
    /// the control chain.
    #[serde(rename = "state.tampered")]
    StateTampered {
        /// The run.
        run_id: String,
        /// The first disagreement, naming the step or the entries.
        reason: String,
    },
    /// A trusted signer key was retired in `relo.toml`: its signatures are refused.
    #[serde(rename = "signer.retired")]
    SignerRetired {
        /// The retired key's id.
        key_id: String,
    },
    /// The server refused to authenticate or authorise a request (bad credentials, a
    /// bad or expired token, a missing permission, a rate limit). Never holds a password
    /// or a token.
    #[serde(rename = "auth.refused")]
    AuthRefused {
        /// The user (or the login name tried), when known.
        who: Option<String>,
        /// The refusal's stable code: `invalid-credentials`, `token-expired`,
        /// `forbidden`, `rate-limited`, ...
        code: String,
        /// The operation, as `METHOD /path/template`.
        route: String,
        /// The client's address, or `unknown`.
        client: String,
        /// The missing permission of a `forbidden` refusal, or the limit of a
        /// `rate-limited` one.
        detail: Option<String>,
    },
    /// An administrator or a user changed who may do what: a user created, their roles
    /// set, a user disabled, an API token made or revoked. Never holds a password or a
    /// token.
    #[serde(rename = "admin.action")]
    AdminAction {
        /// Who did it.
        by: String,
        /// `user.created`, `user.roles-set`, `user.disabled`, `token.created`,
        /// `token.revoked`.
        action: String,
        /// The user or token id acted on.
        target: String,
        /// The roles or scopes given, when the action gives any.
        detail: Option<String>,
    },
    /// A signed checkpoint of the whole log was stored. It is appended to the control
    /// chain in the checkpoint's own transaction, as the entry right after those the
    /// checkpoint covers, so it is covered by the next checkpoint (or is in the tail):
    /// a checkpoint row deleted later is still named by the log.
    #[serde(rename = "checkpoint.cut")]
    CheckpointCut {
        /// The number of entries the checkpoint covers.
        size: u64,
        /// Its Merkle root, lowercase hex.
        root: String,
    },
    /// A refresh token that was already used or revoked was presented again: its whole
    /// family was revoked.
    #[serde(rename = "auth.token-reused")]
    AuthTokenReused {
        /// The user the family belongs to.
        user: String,
        /// The family id.
        family: String,
        /// The client's address, or `unknown`.
        client: String,
    },
    /// Refusals the server counted rather than recorded one by one: after the first
    /// refusal of a burst from one client with one code (an `auth.refused` entry), at
    /// most one of these per window, standing for the refusals since `since`.
    #[serde(rename = "auth.refusals-counted")]
    AuthRefusalsCounted {
        /// The client's address (an IPv6 client's /64), or `unknown`.
        client: String,
        /// The refusals' stable code: `invalid-token`, `rate-limited`, ...
        code: String,
        /// How many refusals this entry stands for.
        count: u64,
        /// When the counted period began (RFC 3339, UTC).
        since: String,
    },
}

impl EvidenceEvent {
    /// The stable kind name of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            EvidenceEvent::StepStarted { .. } => "step.started",
            EvidenceEvent::StepFinished { .. } => "step.finished",
            EvidenceEvent::LimitExceeded { .. } => "limit.exceeded",
            EvidenceEvent::EgressAllowed { .. } => "egress.allowed",
            EvidenceEvent::EgressDenied { .. } => "egress.denied",
            EvidenceEvent::EgressCompleted { .. } => "egress.completed",
            EvidenceEvent::EgressCircuitOpened { .. } => "egress.circuit-opened",
            EvidenceEvent::EgressCircuitRefused { .. } => "egress.circuit-refused",
            EvidenceEvent::EgressCircuitClosed { .. } => "egress.circuit-closed",
            EvidenceEvent::SecretRead { .. } => "secret.read",
            EvidenceEvent::SecretRevealed { .. } => "secret.revealed",
            EvidenceEvent::SecretInjected { .. } => "secret.injected",
            EvidenceEvent::SecretLeakBlocked { .. } => "secret.leak-blocked",
            EvidenceEvent::SecretDenied { .. } => "secret.denied",
            EvidenceEvent::SignerSigned { .. } => "signer.signed",
            EvidenceEvent::SignerDenied { .. } => "signer.denied",
            EvidenceEvent::PluginRefused { .. } => "plugin.refused",
            EvidenceEvent::RunStarted { .. } => "run.started",
            EvidenceEvent::RunFinished { .. } => "run.finished",
            EvidenceEvent::StepSkipped { .. } => "step.skipped",
            EvidenceEvent::PluginAdded { .. } => "plugin.added",
            EvidenceEvent::PluginBlocked { .. } => "plugin.blocked",
            EvidenceEvent::ApprovalGranted { .. } => "approval.granted",
            EvidenceEvent::ApprovalRevoked { .. } => "approval.revoked",
            EvidenceEvent::SignerRetired { .. } => "signer.retired",
            EvidenceEvent::GateWaiting { .. } => "gate.waiting",
            EvidenceEvent::GateApproved { .. } => "gate.approved",
            EvidenceEvent::GateRefused { .. } => "gate.refused",
            EvidenceEvent::GatePassed { .. } => "gate.passed",
            EvidenceEvent::RunWaiting { .. } => "run.waiting",
            EvidenceEvent::LeaseLost { .. } => "step.lease-lost",
            EvidenceEvent::RunResumed { .. } => "run.resumed",
            EvidenceEvent::WorkspaceSnapshot { .. } => "workspace.snapshot",
            EvidenceEvent::WorkspaceRestored { .. } => "workspace.restored",
            EvidenceEvent::WorkspaceRefused { .. } => "workspace.refused",
            EvidenceEvent::StateTampered { .. } => "state.tampered",
            EvidenceEvent::SecretReflected { .. } => "secret.reflected",
            EvidenceEvent::AuthRefused { .. } => "auth.refused",
            EvidenceEvent::AuthTokenReused { .. } => "auth.token-reused",
            EvidenceEvent::AuthRefusalsCounted { .. } => "auth.refusals-counted",
            EvidenceEvent::AdminAction { .. } => "admin.action",
            EvidenceEvent::CheckpointCut { .. } => "checkpoint.cut",
        }
    }
}

/// An event with where and when it happened; what a sink stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The chain this record belongs to.
    pub scope: Scope,
    /// The step it concerns, if any.
    pub step_id: Option<String>,
    /// When the host made the decision.
    pub time: SystemTime,
    /// What happened.
    pub event: EvidenceEvent,
}

impl EvidenceRecord {
    /// A record of `event`, timestamped now.
    pub fn new(scope: Scope, step_id: Option<String>, event: EvidenceEvent) -> Self {
        Self {
            scope,
            step_id,
            time: SystemTime::now(),
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_kind_matches_kind_method() {
        let events = [
            EvidenceEvent::SecretRead {
                name: "a".into(),
                reference: "kv/data/a#v".into(),
                version: None,
            },
            EvidenceEvent::LimitExceeded {
                limit: "fuel".into(),
                allowed: 1,
                requested: 2,
            },
            EvidenceEvent::PluginRefused {
                digest: "00".into(),
                code: "forbidden-import".into(),
                reason: "x".into(),
            },
            EvidenceEvent::AuthRefused {
                who: Some("olga".into()),
                code: "forbidden".into(),
                route: "GET /v1/users".into(),
                client: "192.0.2.7".into(),
                detail: Some("users.read".into()),
            },
            EvidenceEvent::AuthTokenReused {
                user: "olga".into(),
                family: "f1".into(),
                client: "unknown".into(),
            },
            EvidenceEvent::AuthRefusalsCounted {
                client: "2001:db8:1:2::/64".into(),
                code: "invalid-token".into(),
                count: 99,
                since: "2030-03-17T17:46:40.000000000Z".into(),
            },
            EvidenceEvent::AdminAction {
                by: "ada".into(),
                action: "user.roles-set".into(),
                target: "olga".into(),
                detail: Some("operator, auditor".into()),
            },
            EvidenceEvent::EgressCircuitOpened {
                scheme: "https".into(),
                host: "forge.example.com".into(),
                port: 443,
                consecutive_failures: 5,
                cooldown_ms: 30_000,
            },
            EvidenceEvent::EgressCircuitRefused {
                method: "GET".into(),
                scheme: "https".into(),
                host: "forge.example.com".into(),
                port: 443,
                path: "/api/tags".into(),
                reopens_in_ms: 12_000,
            },
            EvidenceEvent::EgressCircuitClosed {
                scheme: "https".into(),
                host: "forge.example.com".into(),
                port: 443,
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).expect("serialises");
            assert_eq!(json["kind"], event.kind());
            let parsed: EvidenceEvent = serde_json::from_value(json).expect("parses back");
            assert_eq!(parsed, event);
        }
    }
}
