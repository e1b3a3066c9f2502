//! `relo plugin approve`, `revoke-approval` and `block`: the operator's decisions, each
//! stored with its `control` evidence entry.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_manifest::Role;
use relo_policy::{Capabilities, declared_capabilities};
use relo_store::{NewApproval, Store};
use relo_trust::{KeyFileSigner, SignedApproval, Signer as _, parse_rfc3339, widened};
use serde_json::json;

use super::{config, policy, refuse, stored_plugin, verify_stored};
use crate::args::{PluginApproveArgs, PluginBlockArgs, PluginRevokeArgs};
use crate::home::Home;
use crate::run::people;

/// `relo plugin approve PLUGIN --key KEY [--expires WHEN] [--capabilities FILE]`.
pub async fn approve(home: &Home, args: &PluginApproveArgs) -> anyhow::Result<ExitCode> {
    let config = config(home)?;
    let policy = policy(home)?;
    let store = home.evidence_store().await?;
    let plugin = stored_plugin(&store, &args.plugin).await?;
    let verified = verify_stored(&store, &policy, &plugin).await?;
    let declared = declared_capabilities(&verified.manifest, config)
        .with_context(|| format!("{} against relo.toml", verified.reference()))?;
    let capabilities: Capabilities = match &args.capabilities {
        None => declared.clone(),
        Some(file) => {
            let text =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            serde_json::from_slice(&text).with_context(|| {
                format!(
                    "{} is not a capability set (see `relo plugin inspect --json`)",
                    file.display()
                )
            })?
        }
    };
    let beyond = widened(&declared, &capabilities);
    if !beyond.is_empty() {
        bail!(
            "the capabilities to approve go beyond what {} declares; an approval may only narrow:\n  {}",
            verified.reference(),
            beyond.join("\n  ")
        );
    }
    let signer = KeyFileSigner::load(&args.key)
        .with_context(|| format!("cannot load the approver's key {}", args.key.display()))?;
    // Whose key it is, and whether the approval counts, as the people are now.
    let people = people(&store, &policy).policy().await?;
    let Some(person) = people.person_with_key(signer.key_id()) else {
        bail!(
            "key {} ({}) belongs to no person; an approval is signed by an operator's key",
            signer.key_id(),
            args.key.display()
        );
    };
    let person = person.to_owned();
    let now = SystemTime::now();
    let expires_at = args
        .expires
        .as_deref()
        .map(|text| expiry(text, now))
        .transpose()?;
    let approval = SignedApproval::sign(&verified, capabilities, &person, &signer, now, expires_at)
        .context("cannot sign the approval")?;
    // The runtime's own check, before anything is stored: role, separation of duties,
    // digest, expiry, capabilities.
    if let Err(refusal) = people.verify_approval(&verified, &approval.envelope, &declared, now) {
        return Err(refuse(
            &store,
            &verified.digest,
            refusal.code(),
            refusal.to_string(),
        )
        .await);
    }
    let document = approval.envelope.to_json_pretty();
    let record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::ApprovalGranted {
            approval_id: approval.id.clone(),
            plugin: verified.reference(),
            digest: verified.digest.clone(),
            approver: person.clone(),
            key_id: signer.key_id().to_owned(),
            expires_at: approval.predicate.expires_at.clone(),
        },
    );
    store
        .add_approval(
            &NewApproval {
                id: &approval.id,
                digest: &verified.digest,
                approved_by: &person,
                document: &document,
                expires_at: approval.predicate.expires_at.as_deref(),
            },
            &record,
        )
        .await
        .context("cannot store the approval")?;
    if let Some(out) = &args.out {
        std::fs::write(out, &document)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if args.json {
        let result = json!({
            "approval_id": approval.id,
            "plugin": verified.reference(),
            "digest": verified.digest,
            "approver": person,
            "key_id": signer.key_id(),
            "expires_at": approval.predicate.expires_at,
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "approved {} sha256:{} as {person}: approval {}{}",
            verified.reference(),
            verified.digest,
            approval.id,
            approval
                .predicate
                .expires_at
                .as_deref()
                .map(|at| format!(", until {at}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--expires`: a duration from now (`30d`, `12h`) or an RFC 3339 UTC time.
fn expiry(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    if let Some(at) = parse_rfc3339(text) {
        if at <= now {
            bail!("--expires {text} is in the past");
        }
        return Ok(at);
    }
    let duration: Duration = humantime::parse_duration(text).map_err(|e| {
        anyhow::anyhow!("--expires {text}: expected a duration such as 30d or a time such as 2027-01-01T00:00:00Z ({e})")
    })?;
    if duration.is_zero() {
        bail!("--expires {text}: an approval must last longer than no time at all");
    }
    Ok(now + duration)
}

/// The operator acting: a person with the operator role among the people who count now
/// (relo.toml's, or the store's once a server imported them).
async fn operator(home: &Home, store: &Store, name: &str) -> anyhow::Result<String> {
    let people = people(store, &policy(home)?).policy().await?;
    match people.roles_of(name) {
        Some(roles) if roles.contains(&Role::Operator) => Ok(name.to_owned()),
        Some(_) => bail!("{name} does not have the operator role"),
        None => bail!("{name} is not one of the people"),
    }
}

/// `relo plugin revoke-approval ID --reason TEXT --as NAME`.
pub async fn revoke(home: &Home, args: &PluginRevokeArgs) -> anyhow::Result<ExitCode> {
    if args.id.len() < 12 {
        bail!("give at least 12 characters of the approval id");
    }
    let store = home.evidence_store().await?;
    let by = operator(home, &store, &args.as_person).await?;
    let found = store.approval(&args.id).await?;
    let approval = match found.as_slice() {
        [one] => one,
        [] => bail!("no approval has an id starting with {}", args.id),
        many => bail!(
            "{} approvals have ids starting with {}; give more of it",
            many.len(),
            args.id
        ),
    };
    if let Some(reason) = &approval.revoked {
        bail!("approval {} is already revoked ({reason})", approval.id);
    }
    let record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::ApprovalRevoked {
            approval_id: approval.id.clone(),
            digest: approval.digest.clone(),
            reason: args.reason.clone(),
            by: by.clone(),
        },
    );
    store
        .revoke_approval(&approval.id, &approval.digest, &args.reason, &by, &record)
        .await
        .context("cannot store the revocation")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"revoked": approval.id, "digest": approval.digest, "by": by})
            )?
        );
    } else {
        println!(
            "revoked approval {} of sha256:{}; steps using it are refused from now on",
            approval.id, approval.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `relo plugin block DIGEST --reason TEXT --as NAME`.
pub async fn block(home: &Home, args: &PluginBlockArgs) -> anyhow::Result<ExitCode> {
    let digest = args
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&args.digest)
        .to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{}` is not a sha256 digest (64 hex digits)", args.digest);
    }
    let store = home.evidence_store().await?;
    let by = operator(home, &store, &args.as_person).await?;
    let record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginBlocked {
            digest: digest.clone(),
            reason: args.reason.clone(),
            by: by.clone(),
        },
    );
    let new = store
        .block(&digest, &args.reason, &by, &record)
        .await
        .context("cannot store the block")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"blocked": digest, "new": new}))?
        );
    } else if new {
        println!("blocked sha256:{digest}; every step that uses it is refused from now on");
    } else {
        println!("sha256:{digest} was already blocked");
    }
    Ok(ExitCode::SUCCESS)
}
