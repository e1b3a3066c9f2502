//! The witness: every signed checkpoint of a log, appended to a file kept outside the
//! database and outside the relo home, and the check of a log against it.
//!
//! Whoever can write the database can delete its checkpoints and rewrite the whole log
//! consistently; the chains, the tree and the seals then agree with the forgery. The
//! witness file still holds the checkpoints signed before, and a log that does not
//! extend each of them is `forked` (or `rolled-back` when it is shorter).
//!
//! The file is append-only text. Each record is one checkpoint's signed note as the
//! store keeps it (C2SP text, ending in a newline) followed by the line
//! [`WITNESS_RECORD_END`] (`---`), which no checkpoint note contains:
//!
//! ```text
//! relo.dev/evidence/home-7f3a
//! 3
//! uNE5wOn4OoG6Krpa/vpcmIUULO9t1BR+t/FfHgtIJOI=
//!
//! — relo.dev/evidence/home-7f3a 2fkoFF7O+IOp+W8e7J1S0TzeXfkxQvp4rwWt9QwFPSR1M+2F2d1pkM2HaBIpcqqLGaU5Zp4N7RZmbXoP8njtIctJ+gU=
//! ---
//! ```

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::checkpoint::{
    Checkpoint, CheckpointError, KeyRing, VerifiedCheckpoint, open_checkpoint,
};
use crate::proof::LogTree;
use crate::verify::{TamperKind, Tampering};

/// The line that ends each record of a witness file.
pub const WITNESS_RECORD_END: &str = "---";

/// Why a witness file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Neither `XDG_STATE_HOME` nor `HOME` is set to an absolute path.
    #[error(
        "cannot tell where to keep the evidence witness: set XDG_STATE_HOME or HOME, or \
         [evidence] witness = \"file:PATH\""
    )]
    NoStateDir,
    /// The file or its folder could not be created, written or read.
    #[error("cannot {action} the evidence witness {}: {source}", path.display())]
    Io {
        /// What was being done: `create`, `open`, `append to`, `sync`, `read`.
        action: &'static str,
        /// The witness file (or its folder).
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A note that cannot be a record (no final newline, or a `---` line).
    #[error("cannot witness this checkpoint note: {0}")]
    BadNote(&'static str),
    /// The file does not parse.
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        /// The witness file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong there.
        reason: String,
    },
    /// A record is not a checkpoint of this log signed by a key of the ring.
    #[error(
        "{}:{line}: the witnessed checkpoint does not verify ({}): {source}",
        path.display(),
        source.code()
    )]
    Checkpoint {
        /// The witness file.
        path: PathBuf,
        /// The record's first line.
        line: usize,
        /// Why it does not verify.
        #[source]
        source: CheckpointError,
    },
}

impl WitnessError {
    /// A stable machine code: `witness-no-state-dir`, `witness-io`, `witness-bad-note`,
    /// `witness-malformed`, or the [`CheckpointError`] code of a record that does not
    /// verify.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoStateDir => "witness-no-state-dir",
            Self::Io { .. } => "witness-io",
            Self::BadNote(_) => "witness-bad-note",
            Self::Malformed { .. } => "witness-malformed",
            Self::Checkpoint { source, .. } => source.code(),
        }
    }
}

/// The witness file name for a log's origin: every character but ASCII letters, digits,
/// `.` and `-` becomes `_`, so `relo.dev/evidence/home-7f3a` is
/// `relo.dev_evidence_home-7f3a`.
pub fn witness_file_name(origin: &str) -> String {
    origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The default witness file of a log: `$XDG_STATE_HOME/relo/witnesses/<file name>`,
/// with `$HOME/.local/state` when `XDG_STATE_HOME` is unset or not absolute (the XDG
/// base directory rules); see [`witness_file_name`].
pub fn default_witness_path(origin: &str) -> Result<PathBuf, WitnessError> {
    let env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    witness_path_in(env("XDG_STATE_HOME"), env("HOME"), origin)
}

fn witness_path_in(
    state_home: Option<PathBuf>,
    home: Option<PathBuf>,
    origin: &str,
) -> Result<PathBuf, WitnessError> {
    let state = match (state_home, home) {
        (Some(state), _) if state.is_absolute() => state,
        (_, Some(home)) if home.is_absolute() => home.join(".local").join("state"),
        _ => return Err(WitnessError::NoStateDir),
    };
    Ok(state
        .join("relo")
        .join("witnesses")
        .join(witness_file_name(origin)))
}

/// One record of a witness file: the note and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedNote {
    /// The record's first line (1-based).
    pub line: usize,
    /// The signed note, ending in a newline.
    pub note: String,
}

/// A witnessed checkpoint that verified with the key ring.
#[derive(Debug, Clone)]
pub struct Witnessed {
    /// The record's first line (1-based).
    pub line: usize,
    /// The checkpoint.
    pub checkpoint: VerifiedCheckpoint,
}

/// A witness file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    path: PathBuf,
}

impl Witness {
    /// The witness kept at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a signed checkpoint note as one record: the folder is created 0700 and
    /// the file 0600 if missing, the record is written with `O_APPEND` in one write and
    /// synced to disk before this returns.
    pub fn append(&self, note: &str) -> Result<(), WitnessError> {
        if !note.ends_with('\n') {
            return Err(WitnessError::BadNote("it does not end with a newline"));
        }
        if note.lines().any(|line| line == WITNESS_RECORD_END) {
            return Err(WitnessError::BadNote("it has a `---` line"));
        }
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| WitnessError::Io {
                action,
                path,
                source,
            }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create", dir))?;
        let created = !self.path.exists();
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io("open", &self.path))?;
        let record = format!("{note}{WITNESS_RECORD_END}\n");
        file.write_all(record.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("append to", &self.path))?;
        if created {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync", dir))?;
        }
        Ok(())
    }

    /// Every record, in file order; `None` when the file does not exist (nothing was
    /// witnessed yet).
    pub fn read(&self) -> Result<Option<Vec<WitnessedNote>>, WitnessError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(WitnessError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        parse_witness(&self.path, &bytes).map(Some)
    }

    /// The records of this witness (as [`Witness::read`] gives them) opened with `keys`
    /// as checkpoints of `origin` ([`open_checkpoint`]). A record that does not verify is
    /// an error naming its line.
    pub fn open_notes(
        &self,
        notes: &[WitnessedNote],
        keys: &KeyRing,
        origin: &str,
    ) -> Result<Vec<Witnessed>, WitnessError> {
        notes
            .iter()
            .map(|record| {
                open_checkpoint(record.note.as_bytes(), keys, Some(origin))
                    .map(|checkpoint| Witnessed {
                        line: record.line,
                        checkpoint,
                    })
                    .map_err(|source| WitnessError::Checkpoint {
                        path: self.path.clone(),
                        line: record.line,
                        source,
                    })
            })
            .collect()
    }
}

/// Splits a witness file into its records. Anything else (not UTF-8, a last line
/// without its newline, an empty record, a record without its `---` line, as an
/// append cut short leaves) is an error naming the line.
pub fn parse_witness(path: &Path, bytes: &[u8]) -> Result<Vec<WitnessedNote>, WitnessError> {
    let malformed = |line: usize, reason: &str| WitnessError::Malformed {
        path: path.to_owned(),
        line,
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let line = 1 + bytes[..err.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        malformed(line, "not UTF-8 text")
    })?;
    let mut records = Vec::new();
    let mut note = String::new();
    let mut start = 1;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let Some(content) = line.strip_suffix('\n') else {
            return Err(malformed(
                number,
                "the last line has no newline: an append was cut short",
            ));
        };
        if content != WITNESS_RECORD_END {
            note.push_str(line);
            continue;
        }
        if note.is_empty() {
            return Err(malformed(number, "an empty record"));
        }
        records.push(WitnessedNote {
            line: start,
            note: std::mem::take(&mut note),
        });
        start = number + 1;
    }
    if !note.is_empty() {
        return Err(malformed(
            start,
            "a record without its closing `---` line: an append was cut short",
        ));
    }
    Ok(records)
}

/// Checks the log whose tree is `tree` against every witnessed checkpoint, smallest
/// first: the log must hold at least its size (else `rolled-back`) and a consistency
/// proof from it to the log must verify (else `forked`). `path` names the witness in
/// the finding. The tree is built from entry hashes [`verify_log`](crate::verify_log)
/// has already checked.
pub fn check_witnessed(
    tree: &LogTree,
    origin: &str,
    witnessed: &[Witnessed],
    path: &Path,
) -> Result<(), Tampering> {
    let n = tree.size();
    let current = Checkpoint {
        origin: origin.to_owned(),
        size: n,
        root: tree.root(),
    };
    let mut sorted: Vec<&Witnessed> = witnessed.iter().collect();
    sorted.sort_by_key(|w| w.checkpoint.checkpoint.size);
    for witnessed in sorted {
        let old = &witnessed.checkpoint.checkpoint;
        let size = old.size;
        let place = format!(
            "the checkpoint at line {} of the witness {}",
            witnessed.line,
            path.display()
        );
        if size > n {
            return Err(finding(
                TamperKind::RolledBack,
                Some(n + 1),
                size,
                format!(
                    "{place} covers {size} entries but the log has only {n}: entries {} to \
                     {size} were rolled back",
                    n + 1
                ),
            ));
        }
        let consistent = size == 0
            || tree
                .consistency_proof(size, n)
                .is_ok_and(|proof| proof.verify_between(old, &current));
        if !consistent {
            return Err(finding(
                TamperKind::Forked,
                None,
                size,
                format!(
                    "{place} (size {size}) is not a prefix of the log of {n} entries (no \
                     consistency proof from it verifies): history was rewritten or forked \
                     within entries 1 to {size}"
                ),
            ));
        }
    }
    Ok(())
}

fn finding(kind: TamperKind, seq: Option<u64>, size: u64, message: String) -> Tampering {
    Tampering {
        kind,
        seq,
        scope: None,
        scope_seq: None,
        checkpoint_size: Some(size),
        message,
    }
}

#[cfg(test)]
mod tests {
    use relo_trust::{KeyAlgorithm, PrivateKey};

    use super::*;
    use crate::checkpoint::{KeyStatus, evidence_origin};
    use crate::merkle::Hash;

    struct Log {
        origin: String,
        key: PrivateKey,
        ring: KeyRing,
        hashes: Vec<Hash>,
    }

    impl Log {
        fn new(entries: u8) -> Self {
            let origin = evidence_origin("home-1");
            let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
            let mut ring = KeyRing::new();
            ring.add(&origin, key.public_key().clone(), KeyStatus::Active)
                .expect("ring");
            let hashes = (1..=entries).map(|i| [i; 32]).collect();
            Self {
                origin,
                key,
                ring,
                hashes,
            }
        }

        fn tree(&self) -> LogTree {
            LogTree::from_entry_hashes(&self.hashes)
        }

        fn note(&self, size: u64) -> String {
            let root = self.tree().root_at(size).expect("size");
            Checkpoint::new(self.origin.as_str(), size, root)
                .expect("checkpoint")
                .sign(&[(&self.origin, &self.key)])
                .expect("sign")
        }
    }

    fn open(witness: &Witness, log: &Log) -> Vec<Witnessed> {
        let notes = witness.read().unwrap().unwrap();
        witness.open_notes(&notes, &log.ring, &log.origin).unwrap()
    }

    fn temp_witness() -> (scratch::Dir, Witness) {
        let dir = scratch::Dir::new();
        let witness = Witness::new(dir.0.join("state/relo/witnesses/log"));
        (dir, witness)
    }

    /// A folder under the system temp dir removed on drop (no extra dependency).
    mod scratch {
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "relo-witness-test-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).expect("temp dir");
                Dir(path)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn file_names_replace_everything_but_letters_digits_dots_and_dashes() {
        assert_eq!(
            witness_file_name("relo.dev/evidence/home-7f3a"),
            "relo.dev_evidence_home-7f3a"
        );
        assert_eq!(witness_file_name("../a b"), ".._a_b");
    }

    #[test]
    fn the_default_path_is_under_xdg_state_home_else_home() {
        let origin = "relo.dev/evidence/x";
        assert_eq!(
            witness_path_in(Some("/s".into()), Some("/h".into()), origin).unwrap(),
            PathBuf::from("/s/relo/witnesses/relo.dev_evidence_x")
        );
        assert_eq!(
            witness_path_in(Some("relative".into()), Some("/h".into()), origin).unwrap(),
            PathBuf::from("/h/.local/state/relo/witnesses/relo.dev_evidence_x")
        );
        assert_eq!(
            witness_path_in(None, Some("/h".into()), origin).unwrap(),
            PathBuf::from("/h/.local/state/relo/witnesses/relo.dev_evidence_x")
        );
        assert!(matches!(
            witness_path_in(None, None, origin),
            Err(WitnessError::NoStateDir)
        ));
    }

    #[test]
    fn appended_notes_read_back_in_order_with_their_lines_and_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let log = Log::new(5);
        let (_dir, witness) = temp_witness();
        assert!(witness.read().unwrap().is_none(), "no file yet");
        witness.append(&log.note(2)).unwrap();
        witness.append(&log.note(5)).unwrap();
        let records = witness.read().unwrap().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].line, records[0].note.as_str()),
            (1, log.note(2).as_str())
        );
        assert_eq!(records[1].line, 1 + log.note(2).lines().count() + 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(witness.path()), 0o600);
        assert_eq!(mode(witness.path().parent().unwrap()), 0o700);
        let opened = open(&witness, &log);
        let sizes: Vec<u64> = opened
            .iter()
            .map(|w| w.checkpoint.checkpoint.size)
            .collect();
        assert_eq!(sizes, [2, 5]);
    }

    #[test]
    fn notes_that_cannot_be_records_are_refused() {
        let (_dir, witness) = temp_witness();
        assert_eq!(
            witness.append("a\nb").unwrap_err().code(),
            "witness-bad-note"
        );
        assert_eq!(
            witness.append("a\n---\n").unwrap_err().code(),
            "witness-bad-note"
        );
    }

    #[test]
    fn a_malformed_file_names_the_line() {
        let path = Path::new("w");
        let line = |bytes: &[u8]| match parse_witness(path, bytes) {
            Err(WitnessError::Malformed { line, .. }) => line,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert_eq!(line(b"a\n---\nb\nc"), 4, "no final newline");
        assert_eq!(line(b"a\n---\nb\nc\n"), 3, "no closing line");
        assert_eq!(line(b"a\n---\n---\n"), 3, "empty record");
        assert_eq!(line(b"a\n---\n\xff\n---\n"), 3, "not UTF-8");
        assert_eq!(parse_witness(path, b"").unwrap(), []);
    }

    #[test]
    fn a_record_that_does_not_verify_names_its_line() {
        let log = Log::new(3);
        let other = Log::new(3);
        let (_dir, witness) = temp_witness();
        witness.append(&log.note(1)).unwrap();
        witness.append(&other.note(3)).unwrap();
        let notes = witness.read().unwrap().unwrap();
        let err = witness
            .open_notes(&notes, &log.ring, &log.origin)
            .unwrap_err();
        assert!(
            matches!(err, WitnessError::Checkpoint { line, .. } if line == 1 + log.note(1).lines().count() + 1),
            "{err}"
        );
        assert_eq!(err.code(), "unknown-key");
    }

    #[test]
    fn a_log_that_extends_every_witnessed_checkpoint_passes() {
        let log = Log::new(7);
        let (_dir, witness) = temp_witness();
        for size in [3, 1, 7] {
            witness.append(&log.note(size)).unwrap();
        }
        let opened = open(&witness, &log);
        check_witnessed(&log.tree(), &log.origin, &opened, witness.path()).unwrap();
    }

    #[test]
    fn a_shorter_log_is_rolled_back_and_a_rewritten_one_forked() {
        let log = Log::new(7);
        let (_dir, witness) = temp_witness();
        witness.append(&log.note(3)).unwrap();
        witness.append(&log.note(6)).unwrap();
        let opened = open(&witness, &log);

        let short = LogTree::from_entry_hashes(&log.hashes[..5]);
        let rolled = check_witnessed(&short, &log.origin, &opened, witness.path()).unwrap_err();
        assert_eq!(
            (rolled.code(), rolled.seq, rolled.checkpoint_size),
            ("rolled-back", Some(6), Some(6))
        );

        let mut rewritten = log.hashes.clone();
        rewritten[1] = [99; 32];
        let tree = LogTree::from_entry_hashes(&rewritten);
        let forked = check_witnessed(&tree, &log.origin, &opened, witness.path()).unwrap_err();
        assert_eq!((forked.code(), forked.checkpoint_size), ("forked", Some(3)));
        assert!(
            forked.message.contains("line 1 of the witness"),
            "{}",
            forked.message
        );
    }
}
