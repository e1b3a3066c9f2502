//! `relo evidence ...`: verify, checkpoint, rotate-key, export.
//!
//! Each command opens the relo home's store; checkpoints are signed with the evidence
//! key (`[evidence] signer`, default `keys/evidence.key`) under the name of the log's
//! origin (`relo.dev/evidence/<id>`, kept in the store). Retired evidence public keys
//! live in `keys/evidence-retired/` beside the key ([`keyring`]). Every checkpoint cut is
//! also appended to the log's witness, outside the database and the home
//! ([`Home::witness`]), which `verify` checks the log against.

mod export;
mod keyring;
mod rotate;
mod seals;
mod service;
mod state;
mod verify;

pub use export::provenance_path;
pub(crate) use keyring::key_ring;
pub use service::HomeEvidence;

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::args::{CheckpointArgs, EvidenceArgs, EvidenceCommand};
use crate::home::{Home, append_to_witness, is_inside};

/// Runs a `relo evidence` command on a tokio runtime of its own.
pub fn run(args: &EvidenceArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            EvidenceCommand::Verify(verify) => verify::run(&home, verify).await,
            EvidenceCommand::Checkpoint(checkpoint) => run_checkpoint(&home, checkpoint).await,
            EvidenceCommand::RotateKey(rotate) => rotate::run(&home, rotate).await,
            EvidenceCommand::Export(export) => export::run(&home, export).await,
        }
    })
}

/// `relo evidence checkpoint [--save FILE]`.
async fn run_checkpoint(home: &Home, args: &CheckpointArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.save
        && is_inside(file, &home.path)
    {
        bail!(
            "{} is inside the relo home {}: a trusted checkpoint must be kept where whoever can \
             change the home cannot (another disk, another machine, a ticket)",
            file.display(),
            home.path.display()
        );
    }
    let signer: std::sync::Arc<dyn relo_trust::Signer> = home.evidence_signer()?.into();
    let store = home.sealed_store(std::sync::Arc::clone(&signer)).await?;
    if let Some(tampering) = verify::tampering_before_signing(home, &store).await? {
        return verify::refuse_to_sign(&tampering, args.json);
    }
    let origin = store.evidence_origin().await?;
    let witness = home.witness(&origin)?;
    let checkpoint = store
        .checkpoint(signer.as_ref(), &origin, &origin)
        .await
        .context("cannot cut a checkpoint")?;
    append_to_witness(&witness, &checkpoint.note)?;
    if let Some(file) = &args.save {
        std::fs::write(file, &checkpoint.note)
            .with_context(|| format!("cannot write the trusted checkpoint {}", file.display()))?;
    }
    if args.json {
        let out = json!({
            "id": checkpoint.id,
            "size": checkpoint.size,
            "root": checkpoint.root,
            "origin": origin,
            "key_id": signer.key_id(),
            "saved_to": args.save,
            "witness": witness.path(),
            "note": checkpoint.note,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "checkpoint {}: {} entries, root {}, signed by {}",
            checkpoint.id,
            checkpoint.size,
            checkpoint.root,
            signer.key_id()
        );
        println!("witnessed in {}", witness.path().display());
        if let Some(file) = &args.save {
            println!("saved the trusted checkpoint to {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
