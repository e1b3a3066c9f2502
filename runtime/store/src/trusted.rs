//! The log read back as a reader may trust it: every entry recomputed and linked, and
//! covered by a batch seal or a checkpoint that verifies.

use std::collections::HashMap;

use relo_evidence::{Frontier, open_checkpoint};

use crate::error::{Result, StoreError};
use crate::evidence::{EvidenceTampered, StoredEntry, check_entry, decode_hash, entry_hash};
use crate::seal::SealCheck;
use crate::store::Store;

impl Store {
    /// Every entry of the log, in `seq` order, once it is shown to be trustworthy.
    ///
    /// Each entry must recompute from its columns ([`entry_hash`]) and follow the
    /// previous entry of its scope. On a sealed store ([`Store::sealed`]) whose log has
    /// seals, every seal must verify over the tree of the stored entries
    /// ([`SealCheck`]), and every entry must be covered by a seal or by the latest
    /// checkpoint whose note verifies with the seal's key ring and whose root is the
    /// tree's at its size. The first failure is [`StoreError::Tampered`].
    ///
    /// It reads the whole log: for an instance taking a run over (rare), not for every
    /// step.
    pub async fn trusted_entries(&self) -> Result<Vec<StoredEntry>> {
        let entries = self.all_entries().await?;
        let seals = match self.seal() {
            Some(_) => self.seals().await?,
            None => Vec::new(),
        };
        let checkpoint = self.latest_checkpoint().await?;
        let mut check = match self.seal() {
            Some(seal) if !seals.is_empty() => {
                Some(SealCheck::new(&seal.keys, &seal.origin, None, seals)?)
            }
            _ => None,
        };
        let covered_by_checkpoint = checkpoint.as_ref().map_or(0, |c| c.size);
        let mut checkpoint_root = None;
        let mut heads = HashMap::new();
        let mut frontier = Frontier::new();
        for entry in &entries {
            let leaf = decode_hash(&entry.hash).ok_or_else(|| {
                EvidenceTampered::at_entry(entry, format!("has hash `{}`", entry.hash))
            })?;
            check_entry(entry, leaf, &mut heads, &entry_hash).map_err(unwrap_tampered)?;
            frontier.push(&leaf);
            if let Some(check) = check.as_mut() {
                check.reached(frontier.size(), || frontier.root())?;
            }
            if frontier.size() == covered_by_checkpoint {
                checkpoint_root = Some(frontier.root());
            }
        }
        let Some(check) = check else {
            return Ok(entries);
        };
        let sealed = check.finish(frontier.size())?;
        let checkpointed = match (self.seal(), &checkpoint, checkpoint_root) {
            (Some(seal), Some(stored), Some(root)) => {
                open_checkpoint(stored.note.as_bytes(), &seal.keys, Some(&seal.origin))
                    .ok()
                    .filter(|v| v.checkpoint.size == stored.size && v.checkpoint.root == root)
                    .map_or(0, |_| stored.size)
            }
            _ => 0,
        };
        let covered = sealed.max(checkpointed);
        if covered < frontier.size() {
            return Err(EvidenceTampered {
                seq: covered + 1,
                subject: format!("entries {}-{}", covered + 1, frontier.size()),
                reason: "are covered by no seal and no checkpoint".into(),
            }
            .into());
        }
        Ok(entries)
    }
}

/// The finding inside an entry check's error, as [`StoreError::Tampered`].
fn unwrap_tampered(err: StoreError) -> StoreError {
    match err {
        StoreError::Checkpoint(inner) => match inner.downcast::<EvidenceTampered>() {
            Ok(found) => StoreError::Tampered(*found),
            Err(other) => StoreError::Checkpoint(other),
        },
        other => other,
    }
}
