//! The keys that verify checkpoints: the current evidence public key and the retired
//! ones, kept as `keys/evidence-retired/<key id>.pub` with an `index.json` that records
//! each one's `last_size` (the largest log size it may have signed).

use std::path::Path;

use anyhow::Context as _;
use relo_evidence::{KeyRing, KeyStatus};
use relo_trust::PublicKey;
use serde::{Deserialize, Serialize};

use crate::home::Home;

/// The index file in the retired-keys folder.
pub const INDEX_FILE: &str = "index.json";

/// `index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RetiredIndex {
    /// Every retired evidence key, oldest first.
    pub retired: Vec<RetiredKey>,
}

/// One retired evidence key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredKey {
    /// Its key id.
    pub key_id: String,
    /// The public key file, relative to the folder.
    pub public_key: String,
    /// The log size when it was retired: it verifies checkpoints up to this size only.
    pub last_size: u64,
    /// When (RFC 3339).
    pub retired_at: String,
}

/// Reads the index (empty when there is none).
pub fn read_index(dir: &Path) -> anyhow::Result<RetiredIndex> {
    let file = dir.join(INDEX_FILE);
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a retired-key index", file.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(RetiredIndex::default()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes the index (through a temporary file, then a rename).
pub fn write_index(dir: &Path, index: &RetiredIndex) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(INDEX_FILE);
    let temporary = dir.join(format!("{INDEX_FILE}.tmp"));
    std::fs::write(&temporary, serde_json::to_vec_pretty(index)?)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &file).with_context(|| format!("cannot write {}", file.display()))
}

/// The ring for `origin`: the current evidence public key (active) and every retired
/// one, each limited to its `last_size`.
pub fn key_ring(home: &Home, origin: &str) -> anyhow::Result<KeyRing> {
    let mut ring = KeyRing::new();
    let active = home.evidence_public_key()?;
    ring.add(origin, active.clone(), KeyStatus::Active)
        .context("the evidence key cannot verify checkpoints")?;
    let dir = home.retired_dir()?;
    for retired in read_index(&dir)?.retired {
        let file = dir.join(&retired.public_key);
        let key = PublicKey::from_pem_file(&file)
            .with_context(|| format!("cannot read the retired evidence key {}", file.display()))?;
        if key == active || ring.keys().iter().any(|k| k.public_key() == &key) {
            continue; // a rotation cut short, or listed twice
        }
        ring.add(
            origin,
            key,
            KeyStatus::Retired {
                last_size: Some(retired.last_size),
            },
        )
        .with_context(|| {
            format!(
                "the retired key {} cannot verify checkpoints",
                file.display()
            )
        })?;
    }
    Ok(ring)
}
