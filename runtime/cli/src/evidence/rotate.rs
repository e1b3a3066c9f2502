//! `relo evidence rotate-key`: a new Ed25519 evidence key at the same path; the old
//! public key is retired with the log size it may have signed up to.
//!
//! The steps, in an order that a crash at any point leaves verifiable:
//! 1. a last checkpoint with the old key (size S);
//! 2. the new key pair written beside the old one (`evidence.next.key` / `.pub`);
//! 3. the old public key copied to `evidence-retired/<key id>.pub` and listed in
//!    `evidence-retired/index.json` with `last_size` S;
//! 4. the new files renamed over the old ones (the old private key is gone);
//! 5. a `key.rotated` entry in the control scope, sealed by the new key (a retired key
//!    seals nothing past its last checkpoint's `checkpoint.cut`);
//! 6. a checkpoint with the new key, covering the `key.rotated` entry.
//!
//! Both checkpoints are appended to the witness.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use relo_evidence::{EntryContent, Scope, rfc3339_utc};
use relo_store::{EntryDraft, entry_hash};
use std::sync::Arc;

use relo_trust::{KeyAlgorithm, KeyFileSigner, KeyPaths, Signer, generate_key_files};
use serde_json::json;

use super::keyring::{RetiredKey, read_index, write_index};
use crate::args::RotateKeyArgs;
use crate::home::{Home, append_to_witness, public_path};

/// Rotates the evidence key.
pub async fn run(home: &Home, args: &RotateKeyArgs) -> anyhow::Result<ExitCode> {
    let key_path = home.evidence_key_path()?;
    let old: Arc<dyn Signer> = home.evidence_signer()?.into();
    let public = public_path(&key_path);
    let store = home.sealed_store(Arc::clone(&old)).await?;
    if let Some(tampering) = super::verify::tampering_before_signing(home, &store).await? {
        return super::verify::refuse_to_sign(&tampering, args.json);
    }
    let origin = store.evidence_origin().await?;
    let witness = home.witness(&origin)?;

    // 1. The old key's last checkpoint.
    let last = store
        .checkpoint(old.as_ref(), &origin, &origin)
        .await
        .context("cannot cut the old key's last checkpoint")?;
    append_to_witness(&witness, &last.note)?;

    // 2. The new key, beside the old one.
    let next_stem = key_path.with_extension("next");
    let next = KeyPaths::from_stem(&next_stem);
    let generated = generate_key_files(KeyAlgorithm::Ed25519, &next).with_context(|| {
        format!(
            "cannot write the new key {} (left over from a rotation that was cut short? \
             remove it and run again)",
            next.private.display()
        )
    })?;

    // 3. Retire the old public key.
    let dir = home.retired_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let old_id = old.key_id().to_owned();
    let retired_file = format!("{old_id}.pub");
    std::fs::write(dir.join(&retired_file), old.public_key().to_pem())
        .with_context(|| format!("cannot write {}", dir.join(&retired_file).display()))?;
    let mut index = read_index(&dir)?;
    index.retired.retain(|k| k.key_id != old_id);
    index.retired.push(RetiredKey {
        key_id: old_id.clone(),
        public_key: retired_file,
        last_size: last.size,
        retired_at: rfc3339_utc(SystemTime::now()),
    });
    write_index(&dir, &index)?;

    // 4. The new key takes the configured path.
    std::fs::rename(&next.public, &public)
        .with_context(|| format!("cannot move the new public key to {}", public.display()))?;
    std::fs::rename(&next.private, &key_path)
        .with_context(|| format!("cannot move the new key to {}", key_path.display()))?;
    let new: Arc<dyn Signer> = Arc::new(
        KeyFileSigner::load(&key_path)
            .with_context(|| format!("cannot load the new key {}", key_path.display()))?,
    );
    // From here on, batches are sealed by the new key (the old one is retired).
    let store = home.seal(store, Arc::clone(&new)).await?;

    // 5. Record it.
    let content = EntryContent {
        scope: Scope::Control.to_string(),
        step_id: None,
        kind: "key.rotated".to_owned(),
        time: rfc3339_utc(SystemTime::now()),
        body: json!({
            "key": "evidence",
            "retired_key_id": old_id,
            "retired_last_size": last.size,
            "new_key_id": generated.key_id,
        }),
    };
    store
        .append(&[EntryDraft::from_content(&content)], &entry_hash)
        .await
        .context("cannot record the rotation")?;

    // 6. The first checkpoint of the new key.
    let first = store
        .checkpoint(new.as_ref(), &origin, &origin)
        .await
        .context("cannot cut the new key's first checkpoint")?;
    append_to_witness(&witness, &first.note)?;

    if args.json {
        let out = json!({
            "retired_key_id": old_id,
            "retired_last_size": last.size,
            "new_key_id": new.key_id(),
            "checkpoint": { "id": first.id, "size": first.size, "root": first.root },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "retired {old_id} (verifies checkpoints up to {} entries)",
            last.size
        );
        println!(
            "new evidence key {} at {}",
            new.key_id(),
            key_path.display()
        );
        println!(
            "checkpoint {}: {} entries, signed by the new key",
            first.id, first.size
        );
    }
    Ok(ExitCode::SUCCESS)
}
