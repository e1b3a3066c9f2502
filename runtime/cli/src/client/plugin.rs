//! `relo --server URL plugin add WASM ATTESTATION`: uploads a component and its
//! attestation; the server verifies them against its relo.toml.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64ct::{Base64, Encoding as _};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{Call, Session};
use crate::args::PluginAddArgs;

/// The answer to `POST /v1/plugins`.
#[derive(Debug, Deserialize)]
struct Added {
    digest: String,
    name: String,
    version: String,
    signer_key_id: String,
}

/// Uploads the component and its attestation.
pub async fn add(session: &mut Session, args: &PluginAddArgs) -> anyhow::Result<ExitCode> {
    if let Some(manifest) = &args.manifest {
        bail!(
            "--manifest {} is for imports on this machine: with --server, the server checks the \
             signed manifest against its own policy",
            manifest.display()
        );
    }
    let wasm = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let attestation = std::fs::read_to_string(&args.attestation)
        .with_context(|| format!("cannot read {}", args.attestation.display()))?;
    let body = json!({"wasm_base64": Base64::encode_string(&wasm), "attestation": attestation});
    let answer = session.call(&Call::post(&["v1", "plugins"], &body)).await?;
    let new = answer.status == StatusCode::CREATED;
    let value: Value = answer.json()?;
    let added: Added = serde_json::from_value(value.clone())
        .context("the server's answer is not the plugin expected")?;
    if args.json {
        let mut out = value;
        out["new"] = Value::Bool(new);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {}@{} sha256:{} (signed by {}) on {}",
        if new { "added" } else { "already present:" },
        added.name,
        added.version,
        added
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&added.digest),
        added.signer_key_id,
        session.server()
    );
    Ok(ExitCode::SUCCESS)
}
