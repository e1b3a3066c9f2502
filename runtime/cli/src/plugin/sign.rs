//! `relo plugin sign` (the author's side) and `relo plugin add` (the operator's import).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_store::{Added, NewPlugin};
use relo_trust::{KeyFileSigner, SignedPlugin, sha256_hex};
use serde_json::json;

use super::{policy, read_manifest, refuse};
use crate::args::{PluginAddArgs, PluginSignArgs};
use crate::home::Home;

/// `relo plugin sign WASM --manifest FILE --key KEY`.
pub fn run(args: &PluginSignArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let manifest = read_manifest(&args.manifest)?;
    let signer = KeyFileSigner::load(&args.key)
        .with_context(|| format!("cannot load the signing key {}", args.key.display()))?;
    let signed = SignedPlugin::sign(&wasm, &manifest, &signer).context("cannot sign")?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| with_suffix(&args.wasm, ".attestation.json"));
    let bundle = args
        .bundle
        .clone()
        .unwrap_or_else(|| with_suffix(&args.wasm, ".sigstore.json"));
    std::fs::write(&out, signed.envelope.to_json_pretty())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&bundle, signed.bundle().to_json())
        .with_context(|| format!("cannot write {}", bundle.display()))?;
    if args.json {
        let result = json!({
            "name": manifest.plugin.name.as_str(),
            "version": manifest.plugin.version.to_string(),
            "digest": signed.digest,
            "key_id": signed.key_id,
            "attestation": out,
            "bundle": bundle,
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "signed {}@{} sha256:{} with key {}",
            manifest.plugin.name, manifest.plugin.version, signed.digest, signed.key_id
        );
        println!(
            "wrote {} (DSSE envelope) and {} (Sigstore bundle v0.3)",
            out.display(),
            bundle.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `FILE` with `suffix` in place of its extension: `step.wasm` → `step.attestation.json`.
fn with_suffix(file: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = file.with_extension("").into_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// `relo plugin add WASM ATTESTATION [--manifest FILE]`.
pub async fn add(home: &Home, args: &PluginAddArgs) -> anyhow::Result<ExitCode> {
    let policy = policy(home)?;
    let wasm = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let attestation = std::fs::read_to_string(&args.attestation)
        .with_context(|| format!("cannot read {}", args.attestation.display()))?;
    let store = home.evidence_store().await?;
    let digest = sha256_hex(&wasm);
    let files = format!(
        "{} with {}",
        args.wasm.display(),
        args.attestation.display()
    );
    let verified = match policy.verify_plugin(&wasm, attestation.as_bytes()) {
        Ok(verified) => verified,
        Err(refusal) => {
            return Err(refuse(&store, &digest, refusal.code(), refusal.to_string())
                .await
                .context(files));
        }
    };
    if let Some(path) = &args.manifest
        && let Err(refusal) = verified.check_manifest(&read_manifest(path)?)
    {
        return Err(refuse(&store, &digest, refusal.code(), refusal.to_string())
            .await
            .context(path.display().to_string()));
    }
    if let Err(error) = relo_sandbox::check_imports(&wasm) {
        return Err(refuse(&store, &digest, error.code(), error.to_string())
            .await
            .context(format!("{} would be refused at load", args.wasm.display())));
    }
    let record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginAdded {
            name: verified.name.clone(),
            version: verified.version.clone(),
            digest: verified.digest.clone(),
            signer_key_id: verified.signer_key_id.clone(),
        },
    );
    let added = store
        .add_plugin(
            &NewPlugin {
                digest: &verified.digest,
                name: &verified.name,
                version: &verified.version,
                bytes: &wasm,
                attestation: &attestation,
            },
            &record,
        )
        .await
        .context("cannot import the plugin")?;
    if args.json {
        let result = json!({
            "name": verified.name,
            "version": verified.version,
            "digest": verified.digest,
            "signer_key_id": verified.signer_key_id,
            "signer_person": verified.signer_person,
            "new": added == Added::New,
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let what = match added {
            Added::New => "added",
            Added::AlreadyPresent => "already present:",
        };
        println!(
            "{what} {} sha256:{} (signed by {}{})",
            verified.reference(),
            verified.digest,
            verified.signer_key_id,
            verified
                .signer_person
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default()
        );
        if added == Added::New {
            println!(
                "next: review it with `relo plugin inspect {}` and approve it with `relo plugin approve`",
                verified.reference()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
