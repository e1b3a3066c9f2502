//! The batch seals of the log (see relo-store's `seal` module), as `relo evidence verify`
//! checks them: every seal against the Merkle tree of the stored entries, then the
//! coverage rule: an entry is trusted only if a seal or a checkpoint covers it.

use relo_evidence::{EvidenceEntry, Frontier, KeyRing, TamperKind, Tampering, parse_hash_hex};
use relo_store::{SealCheck, StoredSeal};

/// Walks the tree of `entries` (whose hashes the log verification already recomputed)
/// and checks each seal where the tree reaches its size; returns the size the seals
/// cover. A seal that fails is `seal-mismatch`, naming its batch.
pub fn check_seals(
    entries: &[EvidenceEntry],
    seals: Vec<StoredSeal>,
    keys: &KeyRing,
    origin: &str,
) -> Result<u64, Tampering> {
    let mut check = SealCheck::new(keys, origin, None, seals).map_err(mismatch)?;
    let mut frontier = Frontier::new();
    for entry in entries {
        let Some(leaf) = parse_hash_hex(&entry.hash) else {
            // The log verification names a malformed hash first; nothing is covered past it.
            break;
        };
        frontier.push(&leaf);
        check
            .reached(frontier.size(), || frontier.root())
            .map_err(mismatch)?;
    }
    check.finish(frontier.size()).map_err(mismatch)
}

/// `unsealed` when entries after both the seals and the latest checkpoint remain.
pub fn check_covered(total: u64, sealed: u64, checkpointed: u64) -> Result<(), Tampering> {
    let covered = sealed.max(checkpointed);
    if covered >= total {
        return Ok(());
    }
    Err(Tampering {
        kind: TamperKind::Unsealed,
        seq: Some(covered + 1),
        scope: None,
        scope_seq: None,
        checkpoint_size: None,
        message: format!(
            "entries {}-{total} are covered by no batch seal and no checkpoint (seals cover \
             {sealed}, the latest checkpoint {checkpointed}): they were stored outside relo's \
             evidence writer, or its seals were deleted",
            covered + 1
        ),
    })
}

fn mismatch(found: relo_store::EvidenceTampered) -> Tampering {
    Tampering {
        kind: TamperKind::SealMismatch,
        seq: Some(found.seq),
        scope: None,
        scope_seq: None,
        checkpoint_size: None,
        message: format!("{} {}", found.subject, found.reason),
    }
}
