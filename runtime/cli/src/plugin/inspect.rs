//! `relo plugin inspect` and `relo plugin diff`: what a plugin asks for, and how that
//! changed.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use relo_manifest::PluginManifest;
use relo_policy::{Capabilities, CapabilityDiff, declared_capabilities};
use relo_trust::{
    Envelope, PLUGIN_PREDICATE_TYPE, Statement, read_envelope, sha256_hex,
    stored_approval_predicate,
};
use serde_json::json;

use super::{config, policy, refused, stored_plugin};
use crate::args::{PluginDiffArgs, PluginInspectArgs};
use crate::home::Home;

/// A plugin as read for review: its attestation, and its bytes when they are at hand.
struct Subject {
    bytes: Option<Vec<u8>>,
    attestation: String,
    envelope: Envelope,
    statement: Statement,
    manifest: PluginManifest,
}

impl Subject {
    fn digest(&self) -> String {
        match &self.bytes {
            Some(bytes) => sha256_hex(bytes),
            None => self.statement.subject[0]
                .sha256_digest()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// Reads a plugin from a `.wasm` file (its attestation from `attestation`, else the
/// store), an attestation file, or a store reference (`name@version`, a digest).
async fn read_subject(
    home: &Home,
    target: &str,
    attestation: Option<&std::path::Path>,
) -> anyhow::Result<Subject> {
    let path = std::path::Path::new(target);
    let (bytes, attestation) = if path.is_file() {
        let contents = std::fs::read(path).with_context(|| format!("cannot read {target}"))?;
        if contents.starts_with(b"\0asm") {
            let attestation = match attestation {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
                None => {
                    let store = home.store().await?;
                    stored_plugin(&store, &sha256_hex(&contents))
                        .await
                        .with_context(|| {
                            format!("{target} has no attestation: pass --attestation FILE")
                        })?
                        .attestation
                }
            };
            (Some(contents), attestation)
        } else {
            let text = String::from_utf8(contents).with_context(|| {
                format!("{target} is neither a component nor a JSON attestation")
            })?;
            (None, text)
        }
    } else {
        let store = home.store().await?;
        let plugin = stored_plugin(&store, target).await?;
        (Some(plugin.bytes), plugin.attestation)
    };
    let envelope = read_envelope(attestation.as_bytes()).map_err(refused)?;
    let statement: Statement = serde_json::from_slice(&envelope.payload)
        .map_err(|e| anyhow::anyhow!("the attestation's statement does not parse: {e}"))?;
    if statement.predicate_type != PLUGIN_PREDICATE_TYPE || statement.subject.len() != 1 {
        bail!(
            "this is not a plugin attestation (predicate type {}, {} subjects)",
            statement.predicate_type,
            statement.subject.len()
        );
    }
    let manifest: PluginManifest = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| anyhow::anyhow!("the attested manifest is not valid: {e}"))?;
    Ok(Subject {
        bytes,
        attestation,
        envelope,
        statement,
        manifest,
    })
}

/// `relo plugin inspect TARGET [--attestation FILE] [--json]`.
pub async fn inspect(home: &Home, args: &PluginInspectArgs) -> anyhow::Result<ExitCode> {
    let subject = read_subject(home, &args.target, args.attestation.as_deref()).await?;
    let digest = subject.digest();
    let imports = match &subject.bytes {
        Some(bytes) => {
            Some(relo_sandbox::component_imports(bytes).context("cannot read the component")?)
        }
        None => None,
    };
    let verification = match (&home.config, &subject.bytes) {
        (None, _) => {
            json!({"verified": false, "reason": "no relo.toml in the home: no trust policy to check against"})
        }
        (Some(_), None) => {
            json!({"verified": false, "reason": "no component bytes to check the digest against"})
        }
        (Some(_), Some(bytes)) => {
            match policy(home)?.verify_plugin(bytes, subject.attestation.as_bytes()) {
                Ok(verified) => json!({"verified": true, "signer_person": verified.signer_person}),
                Err(refusal) => {
                    json!({"verified": false, "code": refusal.code(), "reason": refusal.to_string()})
                }
            }
        }
    };
    let resolved = match &home.config {
        Some(config) => match declared_capabilities(&subject.manifest, config) {
            Ok(capabilities) => json!(capabilities),
            Err(error) => json!({"error": error.to_string()}),
        },
        None => serde_json::Value::Null,
    };
    let signers: Vec<&str> = subject
        .envelope
        .signatures
        .iter()
        .map(|s| s.key_id.as_str())
        .collect();
    let report = json!({
        "name": subject.manifest.plugin.name.as_str(),
        "version": subject.manifest.plugin.version.to_string(),
        "digest": digest,
        "signer_key_ids": signers,
        "verification": verification,
        "imports": imports,
        "manifest": subject.manifest,
        "capabilities": resolved,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "plugin   {}@{}",
        subject.manifest.plugin.name, subject.manifest.plugin.version
    );
    println!("digest   sha256:{digest}");
    println!("signed   {}", signers.join(", "));
    match report["verification"]["verified"].as_bool() {
        Some(true) => println!("trust    verified against relo.toml"),
        _ => println!(
            "trust    NOT verified: {}{}",
            report["verification"]["code"]
                .as_str()
                .map(|c| format!("{c}: "))
                .unwrap_or_default(),
            report["verification"]["reason"].as_str().unwrap_or("")
        ),
    }
    if let Some(imports) = &imports {
        println!("imports");
        for import in imports {
            println!("  {import}");
        }
    }
    println!("declares (the signed manifest)");
    for line in serde_json::to_string_pretty(&subject.manifest)?.lines() {
        println!("  {line}");
    }
    if !resolved.is_null() {
        println!("capabilities with this relo.toml's endpoints (what an approval would grant)");
        for line in serde_json::to_string_pretty(&resolved)?.lines() {
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `relo plugin diff [OLD] NEW`: capabilities of NEW against OLD, or against the newest
/// unrevoked approval of NEW's name.
pub async fn diff(home: &Home, args: &PluginDiffArgs) -> anyhow::Result<ExitCode> {
    let config = config(home)?;
    let (old_ref, new_ref) = match &args.new {
        Some(new) => (Some(args.first.as_str()), new.as_str()),
        None => (None, args.first.as_str()),
    };
    let new = read_subject(home, new_ref, None).await?;
    let new_caps = declared_capabilities(&new.manifest, config)
        .with_context(|| format!("{new_ref} against relo.toml"))?;
    let (old_caps, against): (Capabilities, String) = match old_ref {
        Some(old_ref) => {
            let old = read_subject(home, old_ref, None).await?;
            let caps = declared_capabilities(&old.manifest, config)
                .with_context(|| format!("{old_ref} against relo.toml"))?;
            (
                caps,
                format!(
                    "{}@{} (declared)",
                    old.manifest.plugin.name, old.manifest.plugin.version
                ),
            )
        }
        None => {
            let store = home.store().await?;
            let approvals = store
                .approvals_of(new.manifest.plugin.name.as_str())
                .await?;
            let Some(latest) = approvals.iter().rev().find(|a| a.revoked.is_none()) else {
                bail!(
                    "no unrevoked approval of {} is stored: name the old version to compare with",
                    new.manifest.plugin.name
                );
            };
            let predicate =
                stored_approval_predicate(latest.document.as_bytes()).map_err(refused)?;
            let against = format!(
                "approval {} of {}@{} by {}",
                latest.id,
                predicate.plugin.name,
                predicate.plugin.version,
                predicate.approver.person
            );
            (predicate.capabilities, against)
        }
    };
    let diff = CapabilityDiff::between(&old_caps, &new_caps);
    if args.json {
        let result = json!({
            "old": against,
            "new": format!("{}@{}", new.manifest.plugin.name, new.manifest.plugin.version),
            "widens": diff.widens(),
            "changes": diff.changes,
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{}@{} ({}) compared with {against}:",
            new.manifest.plugin.name,
            new.manifest.plugin.version,
            new.digest()
        );
        print!("{diff}");
        if diff.widens() {
            println!("it asks for more: an operator must approve this version");
        }
    }
    Ok(ExitCode::SUCCESS)
}
