//! `relo plugin ...`: new, build, sign, add, inspect, diff, approve, revoke-approval,
//! block.
//!
//! Authors sign (`sign` needs no relo home). Operators import (`add`), review
//! (`inspect`, `diff`), approve, revoke and block, in a relo home whose `relo.toml`
//! holds the trust policy; every change to trust state is stored together with its
//! `control` evidence entry.

mod approve;
mod build;
mod inspect;
mod sign;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_manifest::{OperatorConfig, PluginManifest, PluginRef, PluginVersion, parse_plugin};
use relo_store::{Store, StoredPlugin};
use relo_trust::{Refusal, TrustPolicy, VerifiedPlugin};

use crate::args::{PluginArgs, PluginCommand};
use crate::home::{Home, read_parsed};

/// Runs a `relo plugin` command.
pub fn run(args: &PluginArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PluginCommand::Sign(sign) => return sign::run(sign),
        PluginCommand::New(new) => return build::new(new),
        PluginCommand::Build(build) => return build::build(build),
        _ => {}
    }
    let home = Home::load(&args.home)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            PluginCommand::Sign(_) | PluginCommand::New(_) | PluginCommand::Build(_) => {
                unreachable!("handled above")
            }
            PluginCommand::Add(add) => sign::add(&home, add).await,
            PluginCommand::Inspect(inspect) => inspect::inspect(&home, inspect).await,
            PluginCommand::Diff(diff) => inspect::diff(&home, diff).await,
            PluginCommand::Approve(approve) => approve::approve(&home, approve).await,
            PluginCommand::RevokeApproval(revoke) => approve::revoke(&home, revoke).await,
            PluginCommand::Block(block) => approve::block(&home, block).await,
        }
    })
}

/// A refusal as a command error: its code first, so scripts and people see which check
/// failed.
pub fn refused(refusal: Refusal) -> anyhow::Error {
    anyhow::anyhow!("refused ({}): {refusal}", refusal.code())
}

/// Records a refusal of the plugin `digest` in the control scope (`plugin.refused`), then
/// returns it as the command's error: a refusal is enforced and recorded.
pub async fn refuse(store: &Store, digest: &str, code: &str, reason: String) -> anyhow::Error {
    let record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginRefused {
            digest: digest.to_owned(),
            code: code.to_owned(),
            reason: reason.clone(),
        },
    );
    match store.record(&record).await {
        Ok(()) => anyhow::anyhow!("refused ({code}): {reason}"),
        Err(error) => {
            anyhow::anyhow!("refused ({code}): {reason}; recording the refusal failed too: {error}")
        }
    }
}

/// Reads and parses a plugin manifest file, with every problem rendered.
pub fn read_manifest(path: &Path) -> anyhow::Result<PluginManifest> {
    Ok(read_parsed(path, parse_plugin)?.0)
}

/// The home's config, which trust decisions need.
pub fn config(home: &Home) -> anyhow::Result<&OperatorConfig> {
    home.config.as_ref().with_context(|| {
        format!(
            "{} has no relo.toml: the trust policy ([[trust.signers]], [[people]]) lives there",
            home.path.display()
        )
    })
}

/// The home's trust policy.
pub fn policy(home: &Home) -> anyhow::Result<TrustPolicy> {
    TrustPolicy::load(config(home)?, &home.path)
        .context("cannot load the trust policy of relo.toml")
}

/// A stored plugin named by `name@version`, `name@sha256:HEX`, `sha256:HEX` or `HEX`.
pub async fn stored_plugin(store: &Store, reference: &str) -> anyhow::Result<StoredPlugin> {
    let digest = match reference.strip_prefix("sha256:").unwrap_or(reference) {
        hex if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            hex.to_ascii_lowercase()
        }
        _ => {
            let parsed: PluginRef = reference.parse().map_err(|e| {
                anyhow::anyhow!("`{reference}` is neither a digest nor `name@version`: {e}")
            })?;
            match parsed.version() {
                PluginVersion::Digest(digest) => digest.as_hex().to_owned(),
                PluginVersion::Exact(version) => store
                    .plugin_digest(parsed.name().as_str(), &version.to_string())
                    .await?
                    .with_context(|| {
                        format!("{reference} is not in the store; import it with `relo plugin add`")
                    })?,
            }
        }
    };
    match store.plugin(&digest).await? {
        Some(plugin) => Ok(plugin),
        None => bail!(
            "no plugin with digest {digest} is in the store; import it with `relo plugin add`"
        ),
    }
}

/// Verifies a stored plugin against the trust policy; a refusal is recorded.
pub async fn verify_stored(
    store: &Store,
    policy: &TrustPolicy,
    plugin: &StoredPlugin,
) -> anyhow::Result<VerifiedPlugin> {
    match policy.verify_plugin(&plugin.bytes, plugin.attestation.as_bytes()) {
        Ok(verified) => Ok(verified),
        Err(refusal) => Err(
            refuse(store, &plugin.digest, refusal.code(), refusal.to_string())
                .await
                .context(format!(
                    "{}@{} ({})",
                    plugin.name, plugin.version, plugin.digest
                )),
        ),
    }
}
