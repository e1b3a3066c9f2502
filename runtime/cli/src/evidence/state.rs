//! What `relo evidence verify` checks beyond the log itself: that each stored checkpoint
//! row says what its signed note says (the state tables against the evidence are
//! relo-store's `check_state`). A database writer can change a row
//! without touching the log; these checks name the first row that no longer agrees.

use relo_evidence::{EvidenceEntry, KeyRing, TamperKind, Tampering, hash_hex, open_checkpoint};
use relo_store::Checkpoint;

/// Each stored checkpoint's `size` and `root` columns against its signed note
/// (`checkpoint-mismatch`), then each `checkpoint.cut` entry of the log against the
/// stored rows: a checkpoint the log records with no row of that size and root was
/// deleted (`checkpoint-deleted`). A note that does not open is the log verification's
/// finding (`bad-signature`), not this one.
pub fn check_checkpoint_rows(
    entries: &[EvidenceEntry],
    checkpoints: &[Checkpoint],
    keys: &KeyRing,
    origin: &str,
) -> Result<(), Tampering> {
    for row in checkpoints {
        let Ok(opened) = open_checkpoint(row.note.as_bytes(), keys, Some(origin)) else {
            continue;
        };
        let signed = &opened.checkpoint;
        let root = hash_hex(&signed.root);
        if row.size != signed.size || row.root != root {
            return Err(Tampering {
                kind: TamperKind::CheckpointMismatch,
                seq: None,
                scope: None,
                scope_seq: None,
                checkpoint_size: Some(signed.size),
                message: format!(
                    "stored checkpoint {} has size {} and root {} in its columns, but its \
                     signed note says size {} and root {root}: the row was changed",
                    row.id, row.size, row.root, signed.size
                ),
            });
        }
    }
    for entry in entries.iter().filter(|e| e.kind == "checkpoint.cut") {
        let size = entry.body.get("size").and_then(serde_json::Value::as_u64);
        let root = body_text(entry, "root");
        let stored = checkpoints
            .iter()
            .any(|row| Some(row.size) == size && Some(row.root.as_str()) == root);
        if !stored {
            return Err(Tampering {
                kind: TamperKind::CheckpointDeleted,
                seq: Some(entry.seq),
                scope: Some(entry.scope.clone()),
                scope_seq: Some(entry.scope_seq),
                checkpoint_size: size,
                message: format!(
                    "entry {} records a checkpoint of {} entries with root {} that is not \
                     among the stored checkpoints: it was deleted",
                    entry.seq,
                    size.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                    root.unwrap_or("?")
                ),
            });
        }
    }
    Ok(())
}

/// The text field `field` of an entry's body.
fn body_text<'e>(entry: &'e EvidenceEntry, field: &str) -> Option<&'e str> {
    entry.body.get(field).and_then(serde_json::Value::as_str)
}
