//! Verification of the evidence log: the chains, the tree, the checkpoints, and a
//! checkpoint saved earlier outside the relo home. The first problem is named.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use crate::checkpoint::{Checkpoint, KeyRing, SignedNote, VerifiedCheckpoint, open_checkpoint};
use crate::entry::{
    EntryError, EntryFields, EvidenceEntry, MAX_SAFE_INTEGER, canonical_body, entry_hash,
    hash_with_body, parse_hash_hex,
};
use crate::frontier::Frontier;
use crate::merkle::{self, Hash};
use crate::proof::InclusionProof;

/// How far a renumbering is searched for around a bad entry (entries inserted or
/// deleted at once, in `seq` and in `scope_seq`).
const SHIFT_SEARCH: u64 = 4;

/// How many non-matching entries are tried as the original place of a moved entry.
const MOVE_CANDIDATES: usize = 1024;

/// Below this many entries hashing stays on the calling thread.
const PARALLEL_THRESHOLD: usize = 4096;

/// The kind of tampering found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TamperKind {
    /// An entry's contents or hash changed (or an entry was replaced).
    Changed,
    /// Entries are missing from the middle of the log or of a scope.
    Deleted,
    /// An entry that was never appended is in the log.
    Inserted,
    /// Intact entries are in another order than they were appended in.
    Reordered,
    /// A stored checkpoint covers more entries than the log holds: its tail was cut.
    Truncated,
    /// A stored checkpoint does not verify with the key ring.
    BadSignature,
    /// A correctly signed checkpoint's root differs from the root of the entries it covers.
    CheckpointMismatch,
    /// The trusted checkpoint's root is not a prefix of the log.
    Forked,
    /// The trusted checkpoint covers more than the log or its latest stored checkpoint.
    RolledBack,
    /// A stored run or step (its state or workspace) disagrees with the evidence entry
    /// that recorded it.
    StateMismatch,
    /// The log records a checkpoint (a `checkpoint.cut` entry) that is not stored.
    CheckpointDeleted,
    /// A batch seal does not verify over the entries it covers, or does not follow the
    /// seal before it.
    SealMismatch,
    /// Entries that neither a batch seal nor a checkpoint covers.
    Unsealed,
}

impl TamperKind {
    /// The stable machine code, e.g. `changed` or `bad-signature`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
            Self::BadSignature => "bad-signature",
            Self::CheckpointMismatch => "checkpoint-mismatch",
            Self::Forked => "forked",
            Self::RolledBack => "rolled-back",
            Self::StateMismatch => "state-mismatch",
            Self::CheckpointDeleted => "checkpoint-deleted",
            Self::SealMismatch => "seal-mismatch",
            Self::Unsealed => "unsealed",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The first problem verification found: its kind, the first bad entry where one can
/// be named, and a sentence saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Tampering {
    /// What kind of tampering.
    pub kind: TamperKind,
    /// The `seq` of the first bad entry as stored (or of the first missing one), when
    /// one can be named. A checkpoint-level finding has none.
    pub seq: Option<u64>,
    /// The scope of that entry, when known.
    pub scope: Option<String>,
    /// Its `scope_seq`, when known.
    pub scope_seq: Option<u64>,
    /// The size of the checkpoint involved, for checkpoint-level findings.
    pub checkpoint_size: Option<u64>,
    /// A sentence naming the entry or checkpoint and what is wrong with it.
    pub message: String,
}

impl Tampering {
    /// The stable machine code of the kind.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    fn entry(kind: TamperKind, entry: &EvidenceEntry, detail: impl fmt::Display) -> Self {
        Self {
            kind,
            seq: Some(entry.seq),
            scope: Some(entry.scope.clone()),
            scope_seq: Some(entry.scope_seq),
            checkpoint_size: None,
            message: format!(
                "entry {} (scope {}, scope_seq {}) {detail}",
                entry.seq, entry.scope, entry.scope_seq
            ),
        }
    }

    fn checkpoint(kind: TamperKind, seq: Option<u64>, size: Option<u64>, message: String) -> Self {
        Self {
            kind,
            seq,
            scope: None,
            scope_seq: None,
            checkpoint_size: size,
            message,
        }
    }
}

/// What [`verify_log`] checks against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The log's origin; every checkpoint must carry it.
    pub origin: &'a str,
    /// The keys that verify checkpoints, retired ones included.
    pub keys: &'a KeyRing,
    /// A checkpoint saved earlier outside the relo home, already opened with
    /// [`open_checkpoint`] (so a file that is not a signed note is an input error, not
    /// tampering).
    pub trusted: Option<&'a VerifiedCheckpoint>,
}

/// What a successful [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries verified.
    pub entries: u64,
    /// Distinct scopes (chains).
    pub scopes: usize,
    /// Stored checkpoints whose signature verified and whose root matched.
    pub checkpoints_verified: usize,
    /// The size of the largest stored checkpoint: entries `1..=this` are signed for.
    pub covered_by_latest_checkpoint: u64,
    /// Entries after the latest checkpoint, protected by their chains only.
    pub uncovered_tail: u64,
    /// The Merkle root over every entry.
    pub root: Hash,
    /// The size of the trusted checkpoint the log was proved consistent with.
    pub trusted_size: Option<u64>,
}

/// Verifies the whole log.
///
/// `entries` are every entry in `seq` order as read back; `checkpoints` every stored
/// checkpoint note. Each entry's hash is recomputed once; the chains are followed in one
/// pass that also builds the Merkle tree and takes its root at every checkpoint size.
/// Returns the first problem (the one naming the earliest entry; at equal places an
/// entry-level finding before a stored checkpoint's, before the trusted checkpoint's).
pub fn verify_log<S: AsRef<str>>(
    entries: &[EvidenceEntry],
    checkpoints: &[S],
    options: &VerifyOptions<'_>,
) -> Result<VerifyReport, Tampering> {
    let n = entries.len() as u64;
    let mut first = FirstFinding::default();

    // Stored checkpoints: signature and origin first; nothing unsigned is believed.
    let mut verified: Vec<(usize, Checkpoint)> = Vec::new();
    for (index, note) in checkpoints.iter().enumerate() {
        let note = note.as_ref();
        match open_checkpoint(note.as_bytes(), options.keys, Some(options.origin)) {
            Ok(opened) => verified.push((index, opened.checkpoint)),
            Err(error) => {
                let claimed = claimed_size(note);
                first.offer(
                    claimed.unwrap_or(u64::MAX),
                    Rank::StoredCheckpoint,
                    Tampering::checkpoint(
                        TamperKind::BadSignature,
                        None,
                        claimed,
                        format!(
                            "stored checkpoint {}{} does not verify: {error}",
                            index + 1,
                            claimed.map(|s| format!(" (size {s})")).unwrap_or_default()
                        ),
                    ),
                );
            }
        }
    }
    verified.sort_by_key(|(index, checkpoint)| (checkpoint.size, *index));

    // The sizes whose roots are needed, ascending.
    let mut sizes: Vec<u64> = verified.iter().map(|(_, c)| c.size).collect();
    if let Some(trusted) = options.trusted {
        sizes.push(trusted.checkpoint.size);
    }
    sizes.retain(|&size| size <= n);
    sizes.sort_unstable();
    sizes.dedup();

    // One pass: chains, then leaves and roots, stopping at the first bad entry.
    let hashes = compute_hashes(entries);
    let (computed, stored) = (&hashes.computed, &hashes.stored);
    let mut heads: HashMap<&str, Head> = HashMap::new();
    let mut frontier = Frontier::default();
    let mut roots: HashMap<u64, Hash> = HashMap::new();
    let mut wanted = sizes.iter().copied().peekable();
    if wanted.next_if_eq(&0).is_some() {
        roots.insert(0, merkle::empty_root());
    }
    let mut bad_at = None;
    for (i, entry) in entries.iter().enumerate() {
        let slot = heads.entry(entry.scope.as_str());
        let head = match &slot {
            Entry::Occupied(occupied) => *occupied.get(),
            Entry::Vacant(_) => Head::GENESIS,
        };
        let hash = match (computed[i], stored[i]) {
            (Some(computed), Some(stored)) if computed == stored => computed,
            _ => {
                bad_at = Some(i);
                break;
            }
        };
        if entry.seq != i as u64 + 1
            || entry.scope_seq != head.count + 1
            || hashes.prev[i] != Some(head.last)
        {
            bad_at = Some(i);
            break;
        }
        let next = Head {
            count: entry.scope_seq,
            last: hash,
            position: Some(i),
        };
        match slot {
            Entry::Occupied(mut occupied) => {
                occupied.insert(next);
            }
            Entry::Vacant(vacant) => {
                vacant.insert(next);
            }
        }
        frontier.push(&hash);
        while wanted.next_if_eq(&frontier.size()).is_some() {
            roots.insert(frontier.size(), frontier.root());
        }
    }
    let processed = frontier.size();
    if let Some(i) = bad_at {
        let analysis = Analysis::new(entries, &hashes);
        let finding = analysis.classify(i, &heads);
        first.offer(finding.seq.unwrap_or(i as u64 + 1), Rank::Entry, finding);
    }

    // Stored checkpoints against the recomputed tree.
    let mut matched = 0u64;
    let mut checkpoints_verified = 0;
    for (index, checkpoint) in &verified {
        let size = checkpoint.size;
        let label = format!("stored checkpoint {} (size {size})", index + 1);
        if size > n {
            first.offer(
                size,
                Rank::StoredCheckpoint,
                Tampering::checkpoint(
                    TamperKind::Truncated,
                    Some(n + 1),
                    Some(size),
                    format!(
                        "{label} covers {size} entries but the log has {n}: \
                         entries {} to {size} are missing",
                        n + 1
                    ),
                ),
            );
            continue;
        }
        if size > processed {
            // Beyond the first bad entry, which is reported first.
            continue;
        }
        if roots.get(&size) == Some(&checkpoint.root) {
            matched = matched.max(size);
            checkpoints_verified += 1;
        } else {
            first.offer(
                size,
                Rank::StoredCheckpoint,
                Tampering::checkpoint(
                    TamperKind::CheckpointMismatch,
                    None,
                    Some(size),
                    format!(
                        "{label} is correctly signed but its root is not the root of \
                         entries 1 to {size}{}: an entry among {} to {size} was changed \
                         and rehashed consistently, or replaced",
                        if matched > 0 {
                            format!(" (entries 1 to {matched} match an earlier checkpoint)")
                        } else {
                            String::new()
                        },
                        matched + 1
                    ),
                ),
            );
        }
    }

    // The trusted checkpoint, saved outside the home: rollback and fork.
    let latest = verified.last().map_or(0, |(_, c)| c.size);
    if let Some(trusted) = options.trusted {
        let trusted = &trusted.checkpoint;
        let size = trusted.size;
        if trusted.origin != options.origin {
            first.offer(
                0,
                Rank::Trusted,
                Tampering::checkpoint(
                    TamperKind::Forked,
                    None,
                    Some(size),
                    format!(
                        "the trusted checkpoint is for log {:?}, not {:?}",
                        trusted.origin, options.origin
                    ),
                ),
            );
        } else if size > n {
            first.offer(
                size,
                Rank::Trusted,
                Tampering::checkpoint(
                    TamperKind::RolledBack,
                    Some(n + 1),
                    Some(size),
                    format!(
                        "the trusted checkpoint covers {size} entries but the log has only \
                         {n}: entries {} to {size} were rolled back",
                        n + 1
                    ),
                ),
            );
        } else if size <= processed {
            if roots.get(&size) != Some(&trusted.root) {
                first.offer(
                    size,
                    Rank::Trusted,
                    Tampering::checkpoint(
                        TamperKind::Forked,
                        None,
                        Some(size),
                        format!(
                            "the root of entries 1 to {size} is not the root the trusted \
                             checkpoint of size {size} signed, so the log does not extend it \
                             (no consistency proof exists): history was rewritten or forked \
                             within entries 1 to {size}"
                        ),
                    ),
                );
            } else if size > latest {
                first.offer(
                    size,
                    Rank::Trusted,
                    Tampering::checkpoint(
                        TamperKind::RolledBack,
                        None,
                        Some(size),
                        format!(
                            "the latest stored checkpoint covers {latest} entries but the \
                             trusted checkpoint covers {size}: the stored checkpoints were \
                             rolled back"
                        ),
                    ),
                );
            }
        }
    }

    if let Some(finding) = first.finding {
        return Err(finding);
    }
    Ok(VerifyReport {
        entries: n,
        scopes: heads.len(),
        checkpoints_verified,
        covered_by_latest_checkpoint: latest,
        uncovered_tail: n - latest,
        root: frontier.root(),
        trusted_size: options.trusted.map(|t| t.checkpoint.size),
    })
}

/// What [`verify_scope`] established for one run's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeReport {
    /// The scope (run id).
    pub scope: String,
    /// Entries verified.
    pub entries: u64,
    /// Entries proved to be in the covering checkpoint.
    pub covered: u64,
    /// Entries after the checkpoint (chain-verified only).
    pub uncovered: u64,
    /// The covering checkpoint's size, if one was given.
    pub checkpoint_size: Option<u64>,
}

/// Verifies one scope's chain (all its entries, in `scope_seq` order, from 1) and, with
/// a covering checkpoint, each entry's inclusion proof against it: every entry with
/// `seq <= size` must have a proof for its `seq` and that tree size.
///
/// This is `relo evidence verify --run ID` and the check of an exported packet. It
/// cannot see entries of the scope that were cut from the end of the list.
pub fn verify_scope(
    entries: &[EvidenceEntry],
    covering: Option<(&VerifiedCheckpoint, &[InclusionProof])>,
) -> Result<ScopeReport, Tampering> {
    let Some(first_entry) = entries.first() else {
        return Ok(ScopeReport {
            scope: String::new(),
            entries: 0,
            covered: 0,
            uncovered: 0,
            checkpoint_size: covering.map(|(c, _)| c.checkpoint.size),
        });
    };
    let scope = first_entry.scope.as_str();
    let hashes = compute_hashes(entries);
    let analysis = Analysis::new(entries, &hashes);
    let computed = &hashes.computed;
    let mut last = Head::GENESIS.last;
    let mut last_seq = 0;
    for (k, entry) in entries.iter().enumerate() {
        let expected = k as u64 + 1;
        if entry.scope != scope {
            return Err(Tampering::entry(
                TamperKind::Inserted,
                entry,
                format_args!("belongs to scope {}, not {scope}", entry.scope),
            ));
        }
        if !analysis.intact(k) {
            let moved =
                analysis.mismatched().iter().copied().find(|&m| {
                    m != k && analysis.rehashes_as(k, entries[m].seq, entries[m].scope_seq)
                });
            return Err(match moved {
                Some(m) => Tampering::entry(
                    TamperKind::Reordered,
                    entry,
                    format_args!(
                        "holds the entry written as seq {} (scope_seq {})",
                        entries[m].seq, entries[m].scope_seq
                    ),
                ),
                None => Tampering::entry(TamperKind::Changed, entry, analysis.change_detail(k)),
            });
        }
        if entry.scope_seq > expected {
            let later = entries[k + 1..].iter().find(|e| e.scope_seq == expected);
            return Err(match later {
                Some(later) => Tampering::entry(
                    TamperKind::Reordered,
                    entry,
                    format_args!(
                        "comes before scope_seq {expected}, which is at seq {}",
                        later.seq
                    ),
                ),
                None => Tampering {
                    kind: TamperKind::Deleted,
                    seq: None,
                    scope: Some(scope.to_owned()),
                    scope_seq: Some(expected),
                    checkpoint_size: None,
                    message: format!(
                        "scope {scope} is missing {} (before seq {})",
                        span("scope_seq", expected, entry.scope_seq - 1),
                        entry.seq
                    ),
                },
            });
        }
        if entry.scope_seq < expected {
            let earlier = (0..k)
                .rev()
                .find(|&j| entries[j].scope_seq == entry.scope_seq);
            let forged = earlier.map_or(k, |j| analysis.pick_forged(j, k));
            return Err(Tampering::entry(
                TamperKind::Inserted,
                &entries[forged],
                "repeats a scope_seq of its scope and is not linked into the chain",
            ));
        }
        if entry.seq <= last_seq {
            return Err(Tampering::entry(
                TamperKind::Reordered,
                entry,
                format_args!("comes after seq {last_seq} in its scope's chain"),
            ));
        }
        if hashes.prev[k] != Some(last) {
            let forward = entries[k + 1..].iter().find(|e| e.hash == entry.prev_hash);
            return Err(match (forward, k.checked_sub(1)) {
                (Some(later), _) => Tampering::entry(
                    TamperKind::Reordered,
                    entry,
                    format_args!("links to a later entry, seq {}", later.seq),
                ),
                (None, Some(previous)) => Tampering::entry(
                    TamperKind::Changed,
                    &entries[previous],
                    format_args!(
                        "does not have the hash the next entry of its scope (seq {}) \
                         links to: it was changed and rehashed, or replaced",
                        entry.seq
                    ),
                ),
                (None, None) => Tampering::entry(
                    TamperKind::Changed,
                    entry,
                    "is the first of its scope but links to a previous entry",
                ),
            });
        }
        // Intact, so the stored hash is the computed one.
        last = computed[k].unwrap_or(last);
        last_seq = entry.seq;
    }

    let mut covered = 0;
    let checkpoint_size = covering.map(|(c, _)| c.checkpoint.size);
    if let Some((checkpoint, proofs)) = covering {
        let checkpoint = &checkpoint.checkpoint;
        let by_seq: HashMap<u64, &InclusionProof> = proofs.iter().map(|p| (p.seq, p)).collect();
        for (k, entry) in entries.iter().enumerate() {
            if entry.seq > checkpoint.size {
                continue;
            }
            let Some(hash) = computed[k] else { continue };
            let problem = match by_seq.get(&entry.seq) {
                Some(proof) if proof.verify_in(&hash, checkpoint) => None,
                Some(_) => Some("its inclusion proof does not lead to the checkpoint's root"),
                None => Some("has no inclusion proof"),
            };
            if let Some(problem) = problem {
                return Err(Tampering {
                    checkpoint_size: Some(checkpoint.size),
                    ..Tampering::entry(
                        TamperKind::CheckpointMismatch,
                        entry,
                        format_args!(
                            "is covered by the checkpoint of size {} but {problem}",
                            checkpoint.size
                        ),
                    )
                });
            }
            covered += 1;
        }
    }
    let total = entries.len() as u64;
    Ok(ScopeReport {
        scope: scope.to_owned(),
        entries: total,
        covered,
        uncovered: total - covered,
        checkpoint_size,
    })
}

/// Each entry's hashes, `None` where there is none: recomputed, stored, and its
/// `prev_hash` (stored texts that are not 64 lowercase hex digits are `None`).
struct Hashes {
    computed: Vec<Option<Hash>>,
    stored: Vec<Option<Hash>>,
    prev: Vec<Option<Hash>>,
}

/// [`Hashes`] of every entry, on several threads for large logs (hashing is most of
/// verification's time).
fn compute_hashes(entries: &[EvidenceEntry]) -> Hashes {
    type Slots<'s> = (
        &'s mut [Option<Hash>],
        &'s mut [Option<Hash>],
        &'s mut [Option<Hash>],
    );
    let fill = |input: &[EvidenceEntry], (computed, stored, prev): Slots<'_>| {
        for (k, entry) in input.iter().enumerate() {
            computed[k] = entry_hash(&entry.fields()).ok();
            stored[k] = parse_hash_hex(&entry.hash);
            prev[k] = parse_hash_hex(&entry.prev_hash);
        }
    };
    let mut hashes = Hashes {
        computed: vec![None; entries.len()],
        stored: vec![None; entries.len()],
        prev: vec![None; entries.len()],
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || entries.len() < PARALLEL_THRESHOLD {
        fill(
            entries,
            (&mut hashes.computed, &mut hashes.stored, &mut hashes.prev),
        );
        return hashes;
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (((input, computed), stored), prev) in entries
            .chunks(chunk)
            .zip(hashes.computed.chunks_mut(chunk))
            .zip(hashes.stored.chunks_mut(chunk))
            .zip(hashes.prev.chunks_mut(chunk))
        {
            scope.spawn(move || fill(input, (computed, stored, prev)));
        }
    });
    hashes
}

/// The size a stored note claims, read without trusting it (to order a bad signature
/// among the other findings).
fn claimed_size(note: &str) -> Option<u64> {
    let parsed = SignedNote::parse(note.as_bytes()).ok()?;
    Checkpoint::parse_body(&parsed.body).ok().map(|c| c.size)
}

/// The state of one scope's chain during the pass.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// The last `scope_seq` seen.
    count: u64,
    /// The last entry's hash.
    last: Hash,
    /// The last entry's position.
    position: Option<usize>,
}

impl Head {
    const GENESIS: Head = Head {
        count: 0,
        last: [0; 32],
        position: None,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Entry,
    StoredCheckpoint,
    Trusted,
}

/// Keeps the finding at the earliest place.
#[derive(Default)]
struct FirstFinding {
    key: Option<(u64, Rank)>,
    finding: Option<Tampering>,
}

impl FirstFinding {
    fn offer(&mut self, place: u64, rank: Rank, finding: Tampering) {
        if self.key.is_none_or(|key| (place, rank) < key) {
            self.key = Some((place, rank));
            self.finding = Some(finding);
        }
    }
}

/// Looks around the first bad entry to say what happened there.
struct Analysis<'a> {
    entries: &'a [EvidenceEntry],
    computed: &'a [Option<Hash>],
    stored: &'a [Option<Hash>],
    prev: &'a [Option<Hash>],
    by_hash: OnceCell<HashMap<Hash, usize>>,
    linked: OnceCell<HashMap<Hash, usize>>,
    mismatched: OnceCell<Vec<usize>>,
}

impl<'a> Analysis<'a> {
    fn new(entries: &'a [EvidenceEntry], hashes: &'a Hashes) -> Self {
        Self {
            entries,
            computed: &hashes.computed,
            stored: &hashes.stored,
            prev: &hashes.prev,
            by_hash: OnceCell::new(),
            linked: OnceCell::new(),
            mismatched: OnceCell::new(),
        }
    }

    fn intact(&self, j: usize) -> bool {
        self.computed[j].is_some() && self.computed[j] == self.stored[j]
    }

    fn prev(&self, j: usize) -> Option<Hash> {
        self.prev[j]
    }

    /// Stored hash to the first position holding it.
    fn by_hash(&self) -> &HashMap<Hash, usize> {
        self.by_hash.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.entries.len());
            for (j, hash) in self.stored.iter().enumerate() {
                if let Some(hash) = hash {
                    map.entry(*hash).or_insert(j);
                }
            }
            map
        })
    }

    /// `prev_hash` to the first position linking to it.
    fn linked(&self) -> &HashMap<Hash, usize> {
        self.linked.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.entries.len());
            for j in 0..self.entries.len() {
                if let Some(prev) = self.prev(j) {
                    map.entry(prev).or_insert(j);
                }
            }
            map
        })
    }

    /// Positions whose stored hash is not their recomputed one (the first ones).
    fn mismatched(&self) -> &[usize] {
        self.mismatched.get_or_init(|| {
            (0..self.entries.len())
                .filter(|&j| !self.intact(j))
                .take(MOVE_CANDIDATES)
                .collect()
        })
    }

    /// Whether entry `j`'s contents hash to its stored hash when numbered `seq`,
    /// `scope_seq`.
    fn rehashes_as(&self, j: usize, seq: u64, scope_seq: u64) -> bool {
        let Some(target) = self.stored[j] else {
            return false;
        };
        let Ok(body) = canonical_body(&self.entries[j].body) else {
            return false;
        };
        rehash(&self.entries[j], &body, seq, scope_seq) == Some(target)
    }

    /// The numbering under which entry `j`'s contents hash to its stored hash, other
    /// than its own: a small shift of `seq` and `scope_seq` (entries inserted or deleted
    /// and the rest renumbered), or the numbers of another bad entry (a swap).
    fn recover(&self, j: usize) -> Option<(u64, u64)> {
        let entry = &self.entries[j];
        let target = self.stored[j]?;
        let body = canonical_body(&entry.body).ok()?;
        let matches = |seq: u64, scope_seq: u64| {
            (seq, scope_seq) != (entry.seq, entry.scope_seq)
                && rehash(entry, &body, seq, scope_seq) == Some(target)
        };
        let shifts: Vec<i64> = std::iter::once(0)
            .chain((1..=SHIFT_SEARCH as i64).flat_map(|d| [-d, d]))
            .collect();
        for &ds in &shifts {
            for &dt in &shifts {
                let (Some(seq), Some(scope_seq)) = (
                    entry.seq.checked_add_signed(ds),
                    entry.scope_seq.checked_add_signed(dt),
                ) else {
                    continue;
                };
                if matches(seq, scope_seq) {
                    return Some((seq, scope_seq));
                }
            }
        }
        for &m in self.mismatched() {
            let other = &self.entries[m];
            let mut candidates = vec![(other.seq, entry.scope_seq), (other.seq, other.scope_seq)];
            if other.scope == entry.scope {
                candidates.push((entry.seq, other.scope_seq));
            }
            if let Some(&found) = candidates.iter().find(|&&(s, t)| matches(s, t)) {
                return Some(found);
            }
        }
        None
    }

    /// A later bad entry whose contents were written as `seq` (the other half of a swap).
    fn written_as(&self, after: usize, seq: u64, scope_seq: u64) -> Option<usize> {
        self.mismatched().iter().copied().find(|&m| {
            m > after
                && (self.rehashes_as(m, seq, self.entries[m].scope_seq)
                    || self.rehashes_as(m, seq, scope_seq))
        })
    }

    /// If the entries from `i` on are bad and the first good-by-content one after them
    /// was renumbered up by exactly their count, that count (they were inserted).
    fn inserted_run(&self, i: usize) -> Option<u64> {
        for k in 1..=SHIFT_SEARCH {
            let j = i + k as usize;
            if j >= self.entries.len() || self.intact(j) {
                return None;
            }
            if let Some((seq, _)) = self.recover(j) {
                return (self.entries[j].seq.checked_sub(seq) == Some(k)).then_some(k);
            }
        }
        None
    }

    /// Of two entries claiming one place, the forged one: the one that is not intact or
    /// that no later entry links to; the later one when nothing tells them apart.
    fn pick_forged(&self, a: usize, b: usize) -> usize {
        let score = |x: usize| {
            let linked_to = self.stored[x]
                .and_then(|hash| self.linked().get(&hash))
                .is_some_and(|&by| by > x);
            u8::from(self.intact(x)) * 2 + u8::from(linked_to)
        };
        if score(a) < score(b) { a } else { b }
    }

    /// Follows the chains from position `i` to the first entry whose link skips a
    /// predecessor: the scope and `scope_seq` of a deleted entry.
    fn deleted_scope_entry(&self, i: usize, heads: &HashMap<&str, Head>) -> Option<(String, u64)> {
        let mut local: HashMap<&str, Head> = HashMap::new();
        for j in i..self.entries.len() {
            let entry = &self.entries[j];
            let head = local
                .get(entry.scope.as_str())
                .or_else(|| heads.get(entry.scope.as_str()))
                .copied()
                .unwrap_or(Head::GENESIS);
            if self.prev(j) != Some(head.last) {
                return Some((entry.scope.clone(), head.count + 1));
            }
            let last = self.stored[j]?;
            local.insert(
                &entry.scope,
                Head {
                    count: head.count + 1,
                    last,
                    position: Some(j),
                },
            );
        }
        None
    }

    /// Why entry `j`'s hash does not match, in words.
    fn change_detail(&self, j: usize) -> String {
        let entry = &self.entries[j];
        if self.stored[j].is_none() {
            return "has a stored hash that is not 64 lowercase hex digits".into();
        }
        match entry_hash(&entry.fields()) {
            Err(EntryError::BodyNotObject) => {
                return "has a body that is not a JSON object (or not JSON)".into();
            }
            Err(error) => return format!("cannot be hashed: {error}"),
            Ok(_) => {}
        }
        let replaced_hash = self.computed[j]
            .and_then(|hash| self.linked().get(&hash))
            .is_some_and(|&by| by > j);
        if replaced_hash {
            "has had its stored hash replaced (the next entry of its scope still links to the \
             hash of its contents)"
                .into()
        } else {
            "no longer matches its hash: its contents were changed".into()
        }
    }

    /// Names the first bad entry, knowing that entries before position `i` are sound
    /// and `heads` is every scope's state before it.
    fn classify(&self, i: usize, heads: &HashMap<&str, Head>) -> Tampering {
        let entries = self.entries;
        let entry = &entries[i];
        let place = i as u64 + 1;
        let head = heads
            .get(entry.scope.as_str())
            .copied()
            .unwrap_or(Head::GENESIS);

        if entry.seq != place {
            if self.rehashes_as(i, place, entry.scope_seq) {
                return Tampering::entry(
                    TamperKind::Changed,
                    entry,
                    format_args!("was written as seq {place}: its seq was changed"),
                );
            }
            if i > 0 && entry.seq == entries[i - 1].seq {
                let forged = self.pick_forged(i - 1, i);
                return Tampering::entry(
                    TamperKind::Inserted,
                    &entries[forged],
                    "shares its seq with another entry and is not the one the chain links to",
                );
            }
            if entry.seq > place {
                if let Some(later) = entries[i + 1..].iter().find(|e| e.seq == place) {
                    return Tampering::entry(
                        TamperKind::Reordered,
                        entry,
                        format_args!(
                            "comes before seq {}, which appears later in the log",
                            later.seq
                        ),
                    );
                }
                let (scope, scope_seq) = self.deleted_scope_entry(i, heads).unzip();
                return Tampering {
                    kind: TamperKind::Deleted,
                    seq: Some(place),
                    message: format!(
                        "entry {place}{} is missing: the log goes from seq {} to seq {}",
                        match (&scope, scope_seq) {
                            (Some(scope), Some(scope_seq)) =>
                                format!(" (scope {scope}, scope_seq {scope_seq})"),
                            _ => String::new(),
                        },
                        place - 1,
                        entry.seq
                    ),
                    scope,
                    scope_seq,
                    checkpoint_size: None,
                };
            }
            return Tampering::entry(
                if entry.seq == 0 {
                    TamperKind::Changed
                } else {
                    TamperKind::Reordered
                },
                entry,
                format_args!("is out of order: it comes after seq {}", place - 1),
            );
        }

        if !self.intact(i) {
            return match self.recover(i) {
                Some((seq, _)) if seq < entry.seq => {
                    let count = entry.seq - seq;
                    // seq >= 1, so count <= entry.seq - 1 = i.
                    let forged = &entries[i - count as usize];
                    Tampering::entry(
                        TamperKind::Inserted,
                        forged,
                        format_args!(
                            "is not part of the log as written: {count} entr{} inserted here \
                             and the entries after renumbered (seq {} was written as seq {seq})",
                            if count == 1 { "y was" } else { "ies were" },
                            entry.seq
                        ),
                    )
                }
                Some((seq, scope_seq)) if seq > entry.seq => {
                    if let Some(other) = self.written_as(i, entry.seq, entry.scope_seq) {
                        Tampering::entry(
                            TamperKind::Reordered,
                            entry,
                            format_args!(
                                "was written as seq {seq} (scope_seq {scope_seq}); the entry \
                                 written as seq {} is now at seq {}",
                                entry.seq, entries[other].seq
                            ),
                        )
                    } else {
                        let (scope, scope_seq) = self.deleted_scope_entry(i, heads).unzip();
                        Tampering {
                            kind: TamperKind::Deleted,
                            seq: Some(entry.seq),
                            message: format!(
                                "{} written as {} {} missing{} and the entries after were \
                                 renumbered (seq {} was written as seq {seq})",
                                if seq - entry.seq == 1 {
                                    "the entry"
                                } else {
                                    "the entries"
                                },
                                span("seq", entry.seq, seq - 1),
                                if seq - entry.seq == 1 { "is" } else { "are" },
                                match (&scope, scope_seq) {
                                    (Some(scope), Some(scope_seq)) => format!(
                                        " (the first was scope {scope}, scope_seq {scope_seq})"
                                    ),
                                    _ => String::new(),
                                },
                                entry.seq
                            ),
                            scope,
                            scope_seq,
                            checkpoint_size: None,
                        }
                    }
                }
                Some((_, scope_seq)) => Tampering::entry(
                    TamperKind::Changed,
                    entry,
                    format_args!("was written with scope_seq {scope_seq}"),
                ),
                None => match self.inserted_run(i) {
                    Some(count) => Tampering::entry(
                        TamperKind::Inserted,
                        entry,
                        format_args!(
                            "is not part of the log as written: {count} entr{} inserted here \
                             and the entries after renumbered",
                            if count == 1 { "y was" } else { "ies were" }
                        ),
                    ),
                    None => Tampering::entry(TamperKind::Changed, entry, self.change_detail(i)),
                },
            };
        }

        // Intact from here: its contents hash to its stored hash at its place.
        let expected = head.count + 1;
        if entry.scope_seq > expected {
            let later = entries[i + 1..]
                .iter()
                .find(|e| e.scope == entry.scope && e.scope_seq == expected);
            return match later {
                Some(later) => Tampering::entry(
                    TamperKind::Reordered,
                    entry,
                    format_args!(
                        "comes before scope_seq {expected} of its scope, which is at seq {}",
                        later.seq
                    ),
                ),
                None => Tampering {
                    kind: TamperKind::Deleted,
                    seq: None,
                    scope: Some(entry.scope.clone()),
                    scope_seq: Some(expected),
                    checkpoint_size: None,
                    message: format!(
                        "scope {} is missing {} (before seq {})",
                        entry.scope,
                        span("scope_seq", expected, entry.scope_seq - 1),
                        entry.seq
                    ),
                },
            };
        }
        if entry.scope_seq < expected {
            let earlier = (0..i).rev().find(|&j| {
                entries[j].scope == entry.scope && entries[j].scope_seq == entry.scope_seq
            });
            let forged = earlier.map_or(i, |j| self.pick_forged(j, i));
            return Tampering::entry(
                TamperKind::Inserted,
                &entries[forged],
                "repeats a scope_seq of its scope and is not the entry the chain links to",
            );
        }

        // Its link to the previous entry of its scope is broken.
        if let Some(count) = self.inserted_run(i).filter(|_| i + 1 < entries.len()) {
            return Tampering::entry(
                TamperKind::Inserted,
                entry,
                format_args!(
                    "is not part of the log as written: it does not link to its scope's \
                     chain, and the {count} entr{} after it {} renumbered",
                    if count == 1 { "y" } else { "ies" },
                    if count == 1 { "was" } else { "were" }
                ),
            );
        }
        if i + 1 == entries.len() && head.position.is_some() {
            return Tampering::entry(
                TamperKind::Inserted,
                entry,
                "is the last entry and does not link to the previous entry of its scope: it \
                 was appended outside the chain (or that previous entry was changed)",
            );
        }
        let target = self
            .prev(i)
            .and_then(|prev| self.by_hash().get(&prev).copied());
        match (target, head.position) {
            (Some(j), _) if j > i => Tampering::entry(
                TamperKind::Reordered,
                entry,
                format_args!("links to a later entry, seq {}", entries[j].seq),
            ),
            (Some(j), _) if entries[j].scope != entry.scope => Tampering::entry(
                TamperKind::Changed,
                entry,
                format_args!(
                    "links to seq {}, an entry of another scope ({})",
                    entries[j].seq, entries[j].scope
                ),
            ),
            (_, Some(previous)) => Tampering::entry(
                TamperKind::Changed,
                &entries[previous],
                format_args!(
                    "does not have the hash the next entry of its scope (seq {}) links to: \
                     it was changed and rehashed, or replaced",
                    entry.seq
                ),
            ),
            (_, None) => Tampering::entry(
                TamperKind::Changed,
                entry,
                "is the first entry of its scope but links to a previous one",
            ),
        }
    }
}

/// `seq 7` or `seq 7 to 9`.
fn span(what: &str, from: u64, to: u64) -> String {
    if from == to {
        format!("{what} {from}")
    } else {
        format!("{what} {from} to {to}")
    }
}

/// The hash of `entry` renumbered, if the numbers are valid.
fn rehash(entry: &EvidenceEntry, body: &[u8], seq: u64, scope_seq: u64) -> Option<Hash> {
    if seq == 0 || scope_seq == 0 || seq > MAX_SAFE_INTEGER || scope_seq > MAX_SAFE_INTEGER {
        return None;
    }
    hash_with_body(
        &EntryFields {
            seq,
            scope_seq,
            ..entry.fields()
        },
        body,
    )
    .ok()
}
