//! Checkpoints: the log's size and Merkle root, signed as a C2SP signed note.
//!
//! ```text
//! relo.dev/evidence/home-7f3a                       <- origin
//! 3                                                 <- size: entries seq 1..=3
//! uNE5wOn4OoG6Krpa/vpcmIUULO9t1BR+t/FfHgtIJOI=      <- base64 Merkle root
//!                                                   <- blank line
//! — relo.dev/evidence/home-7f3a 2fkoFF7O+IOp+W8e7J1S0TzeXfkxQvp4rwWt9QwFPSR1M+2F2d1pkM2HaBIpcqqLGaU5Zp4N7RZmbXoP8njtIctJ+gU=
//! ```
//!
//! The signature covers the body (the first three lines, each ending in a newline). The
//! 4-byte key id is `SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[..4]`.
//! Verification uses a [`KeyRing`] of named Ed25519 keys, active or retired, so
//! checkpoints signed before a key rotation keep verifying.

use std::fmt;

use base64ct::{Base64, Encoding as _};
use relo_trust::{KeyAlgorithm, PublicKey, Signer, TrustError};
use sha2::{Digest as _, Sha256};

use crate::merkle::Hash;

/// The signature type byte of Ed25519 in C2SP signed notes.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// The largest note accepted, in bytes. A relo checkpoint is a few hundred.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The most signature lines accepted on one note.
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// Starts every signature line: EM DASH (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// DER `SubjectPublicKeyInfo` prefix of an Ed25519 key (RFC 8410), before its 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The origin of an instance's evidence log: `relo.dev/evidence/<id>`, where `id`
/// names the relo home or instance (no whitespace, no `+`).
pub fn evidence_origin(id: &str) -> String {
    format!("relo.dev/evidence/{id}")
}

/// Why a checkpoint or a signed note could not be made, read or verified.
///
/// Each variant has a stable code ([`CheckpointError::code`]). Reading refuses anything
/// that is not exactly a relo checkpoint note; nothing in it is trusted before a
/// signature by a key of the ring verifies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is larger than [`MAX_NOTE_BYTES`].
    #[error("the note is {len} bytes; a checkpoint note is at most {MAX_NOTE_BYTES}")]
    NoteTooLarge {
        /// Its length.
        len: usize,
    },
    /// The note is not UTF-8.
    #[error("the note is not UTF-8 text")]
    NotUtf8,
    /// The note holds an ASCII control character other than newline (a CR included).
    #[error("line {line} of the note holds a control character (only newlines are allowed)")]
    ControlCharacter {
        /// The line, from 1.
        line: usize,
    },
    /// The note does not end with a newline.
    #[error("the note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates the text from the signatures.
    #[error("the note has no blank line between its text and its signatures")]
    MissingBlankLine,
    /// A signature line is not `— <name> <base64>`.
    #[error("line {line} of the note is not a signature line (`— <key name> <base64>`): {reason}")]
    MalformedSignatureLine {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature or root is not canonical standard base64 with padding.
    #[error("line {line} of the note is not valid base64")]
    BadBase64 {
        /// The line, from 1.
        line: usize,
    },
    /// A signature is too short to hold a 4-byte key id and a signature.
    #[error(
        "the signature on line {line} has {len} bytes: too short for a 4-byte key id and a signature"
    )]
    KeyIdTooShort {
        /// The line, from 1.
        line: usize,
        /// The decoded length.
        len: usize,
    },
    /// More than [`MAX_NOTE_SIGNATURES`] signatures.
    #[error("the note has more than {MAX_NOTE_SIGNATURES} signatures")]
    TooManySignatures,
    /// The same key signed twice.
    #[error("key {name} ({key_id}) signed the note twice")]
    DuplicateSignature {
        /// The key name.
        name: String,
        /// Its 4-byte note key id, hex.
        key_id: String,
    },
    /// The text is not `<origin>\n<size>\n<base64 root>\n`.
    #[error("not a checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint has lines after the root; relo writes none and does not guess
    /// what they mean.
    #[error(
        "the checkpoint has {count} extension line(s) after its root; relo checkpoints have none"
    )]
    ExtensionLines {
        /// How many.
        count: usize,
    },
    /// A key name that is empty, holds whitespace or `+`.
    #[error("{name:?} is not a valid note key name (non-empty, no whitespace, no '+')")]
    InvalidKeyName {
        /// The name.
        name: String,
    },
    /// An origin that is empty or holds a newline or control character.
    #[error("{origin:?} is not a valid checkpoint origin (one non-empty line)")]
    InvalidOrigin {
        /// The origin.
        origin: String,
    },
    /// A checkpoint key that is not Ed25519.
    #[error("checkpoints are signed with Ed25519 keys; this key is {algorithm}")]
    UnsupportedAlgorithm {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// Signing was asked with no key.
    #[error("a checkpoint needs at least one signer")]
    NoSigner,
    /// The signer failed.
    #[error("signing the checkpoint failed: {0}")]
    Signing(#[source] TrustError),
    /// A verifier key string (`name+id+base64`) that does not parse.
    #[error("invalid verifier key: {reason}")]
    BadVerifierKey {
        /// What is wrong.
        reason: String,
    },
    /// The ring already holds this key under this name.
    #[error("key {name} ({key_id}) is already in the key ring")]
    DuplicateKey {
        /// The key name.
        name: String,
        /// Its 4-byte note key id, hex.
        key_id: String,
    },
    /// The checkpoint belongs to another log.
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    WrongOrigin {
        /// The origin expected.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
    /// No signature is by a key of the ring.
    #[error(
        "the checkpoint is not signed by any known evidence key (signed by: {})",
        list(signers)
    )]
    UnknownKey {
        /// `name (key id)` of each signature.
        signers: Vec<String>,
    },
    /// A signature by a key of the ring does not verify.
    #[error("the signature by key {name} ({key_id}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// Its 4-byte note key id, hex.
        key_id: String,
    },
    /// Only a retired key signed, and the checkpoint is beyond what it signed before
    /// retirement.
    #[error(
        "the checkpoint covers {size} entries but its only signer, key {name} ({key_id}), \
         was retired after signing up to {last_size}"
    )]
    RetiredKey {
        /// The key name.
        name: String,
        /// Its 4-byte note key id, hex.
        key_id: String,
        /// The last size it may sign.
        last_size: u64,
        /// The checkpoint's size.
        size: u64,
    },
}

impl CheckpointError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoteTooLarge { .. } => "note-too-large",
            Self::NotUtf8 => "note-not-utf8",
            Self::ControlCharacter { .. } => "note-control-character",
            Self::MissingFinalNewline => "note-missing-final-newline",
            Self::MissingBlankLine => "note-missing-blank-line",
            Self::MalformedSignatureLine { .. } => "note-bad-signature-line",
            Self::BadBase64 { .. } => "note-bad-base64",
            Self::KeyIdTooShort { .. } => "note-key-id-too-short",
            Self::TooManySignatures => "note-too-many-signatures",
            Self::DuplicateSignature { .. } => "note-duplicate-signature",
            Self::MalformedCheckpoint { .. } => "malformed-checkpoint",
            Self::ExtensionLines { .. } => "checkpoint-extension-lines",
            Self::InvalidKeyName { .. } => "invalid-key-name",
            Self::InvalidOrigin { .. } => "invalid-origin",
            Self::UnsupportedAlgorithm { .. } => "unsupported-key-algorithm",
            Self::NoSigner => "no-signer",
            Self::Signing(_) => "signing-failed",
            Self::BadVerifierKey { .. } => "bad-verifier-key",
            Self::DuplicateKey { .. } => "duplicate-key",
            Self::WrongOrigin { .. } => "wrong-origin",
            Self::UnknownKey { .. } => "unknown-key",
            Self::BadSignature { .. } => "bad-signature",
            Self::RetiredKey { .. } => "retired-key",
        }
    }

    /// Whether the note was well formed but its signatures are not acceptable (an
    /// unknown, retired or failing key), as opposed to malformed text.
    pub fn is_signature_problem(&self) -> bool {
        matches!(
            self,
            Self::UnknownKey { .. } | Self::BadSignature { .. } | Self::RetiredKey { .. }
        )
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nobody".to_owned()
    } else {
        items.join(", ")
    }
}

/// A checkpoint: the log `origin` had `size` entries whose Merkle root is `root`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's name, e.g. `relo.dev/evidence/home-7f3a` ([`evidence_origin`]).
    pub origin: String,
    /// The number of entries covered: `seq` 1 to `size`.
    pub size: u64,
    /// The RFC 6962 root over those entries' hashes.
    pub root: Hash,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("root", &hex::encode(self.root))
            .finish()
    }
}

impl Checkpoint {
    /// A checkpoint, refusing an origin that is not one non-empty line.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(CheckpointError::InvalidOrigin { origin });
        }
        Ok(Self { origin, size, root })
    }

    /// The note text that is signed: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root)
        )
    }

    /// Parses a note text as a checkpoint, strictly: exactly three lines, a decimal
    /// size without leading zeros, a root of 32 bytes in canonical base64.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::MalformedCheckpoint {
            reason: reason.to_owned(),
        };
        let Some(text) = body.strip_suffix('\n') else {
            return Err(malformed("the text does not end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < 3 {
            return Err(malformed(
                "expected three lines: origin, size and base64 root",
            ));
        }
        if lines.len() > 3 {
            return Err(CheckpointError::ExtensionLines {
                count: lines.len() - 3,
            });
        }
        let (origin, size, root) = (lines[0], lines[1], lines[2]);
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(malformed("the origin line is empty"));
        }
        let decimal = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size: u64 = match size.parse() {
            Ok(size) if decimal => size,
            _ => {
                return Err(malformed(
                    "the size is not a decimal number without leading zeros",
                ));
            }
        };
        let root: Hash = decode_base64(root)
            .ok_or(CheckpointError::BadBase64 { line: 3 })?
            .try_into()
            .map_err(|_| malformed("the root is not 32 bytes"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Signs the checkpoint with each `(key name, signer)` and returns the note.
    ///
    /// Refuses a signer whose key is not Ed25519 ([`CheckpointError::UnsupportedAlgorithm`])
    /// and an invalid key name. Several signers are for a key rotation's overlap.
    pub fn sign(&self, signers: &[(&str, &dyn Signer)]) -> Result<String, CheckpointError> {
        if signers.is_empty() {
            return Err(CheckpointError::NoSigner);
        }
        let body = self.body();
        let mut note = SignedNote {
            body: body.clone(),
            signatures: Vec::with_capacity(signers.len()),
        };
        for (name, signer) in signers {
            let key_id = note_key_id(name, signer.public_key())?;
            if note
                .signatures
                .iter()
                .any(|s| s.key_name == *name && s.key_id == key_id)
            {
                return Err(CheckpointError::DuplicateSignature {
                    name: (*name).to_owned(),
                    key_id: hex::encode(key_id),
                });
            }
            let signature = signer
                .sign(body.as_bytes())
                .map_err(CheckpointError::Signing)?;
            if signature.len() != 64 {
                return Err(CheckpointError::Signing(TrustError::Signing {
                    key_id: signer.key_id().to_owned(),
                    reason: format!("an Ed25519 signature has 64 bytes, not {}", signature.len()),
                }));
            }
            note.signatures.push(NoteSignature {
                key_name: (*name).to_owned(),
                key_id,
                signature,
            });
        }
        Ok(note.to_text())
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key's name.
    pub key_name: String,
    /// The 4-byte key id ([`note_key_id`]).
    pub key_id: [u8; 4],
    /// The signature bytes (64 for Ed25519).
    pub signature: Vec<u8>,
}

/// A signed note, parsed but not verified: its text and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline.
    pub body: String,
    /// The signatures, in note order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note strictly: UTF-8, no control characters but newlines, a final
    /// newline, a blank line before one or more well-formed signature lines, each
    /// signature in canonical base64 holding at least a 4-byte key id and one byte.
    pub fn parse(note: &[u8]) -> Result<Self, CheckpointError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::NoteTooLarge { len: note.len() });
        }
        let text = std::str::from_utf8(note).map_err(|_| CheckpointError::NotUtf8)?;
        for (index, line) in text.split('\n').enumerate() {
            if line.chars().any(|c| c.is_ascii_control()) {
                return Err(CheckpointError::ControlCharacter { line: index + 1 });
            }
        }
        if !text.ends_with('\n') {
            return Err(CheckpointError::MissingFinalNewline);
        }
        let split = text
            .rfind("\n\n")
            .ok_or(CheckpointError::MissingBlankLine)?;
        let body = &text[..=split];
        let signatures_text = &text[split + 2..];
        let first_line = body.matches('\n').count() + 2;
        let mut signatures = Vec::new();
        let lines = signatures_text
            .strip_suffix('\n')
            .map(|s| s.split('\n').collect::<Vec<_>>())
            .unwrap_or_default();
        if lines.is_empty() {
            return Err(CheckpointError::MalformedSignatureLine {
                line: first_line,
                reason: "there is no signature".into(),
            });
        }
        if lines.len() > MAX_NOTE_SIGNATURES {
            return Err(CheckpointError::TooManySignatures);
        }
        for (offset, line) in lines.into_iter().enumerate() {
            let number = first_line + offset;
            let bad = |reason: &str| CheckpointError::MalformedSignatureLine {
                line: number,
                reason: reason.to_owned(),
            };
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
            let (name, encoded) = rest
                .split_once(' ')
                .ok_or_else(|| bad("no space between the key name and the signature"))?;
            if !valid_key_name(name) {
                return Err(bad("the key name is empty or holds whitespace or '+'"));
            }
            let bytes =
                decode_base64(encoded).ok_or(CheckpointError::BadBase64 { line: number })?;
            if bytes.len() < 5 {
                return Err(CheckpointError::KeyIdTooShort {
                    line: number,
                    len: bytes.len(),
                });
            }
            let key_id = [bytes[0], bytes[1], bytes[2], bytes[3]];
            if signatures
                .iter()
                .any(|s: &NoteSignature| s.key_name == name && s.key_id == key_id)
            {
                return Err(CheckpointError::DuplicateSignature {
                    name: name.to_owned(),
                    key_id: hex::encode(key_id),
                });
            }
            signatures.push(NoteSignature {
                key_name: name.to_owned(),
                key_id,
                signature: bytes[4..].to_vec(),
            });
        }
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The note as text: the body, a blank line, one line per signature.
    pub fn to_text(&self) -> String {
        let mut text = self.body.clone();
        text.push('\n');
        for signature in &self.signatures {
            let mut bytes = signature.key_id.to_vec();
            bytes.extend_from_slice(&signature.signature);
            text.push_str(SIGNATURE_PREFIX);
            text.push_str(&signature.key_name);
            text.push(' ');
            text.push_str(&Base64::encode_string(&bytes));
            text.push('\n');
        }
        text
    }
}

/// Decodes canonical standard base64 with padding (re-encoding must give the input).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = Base64::decode_vec(text).ok()?;
    (Base64::encode_string(&bytes) == text).then_some(bytes)
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The 4-byte note key id of an Ed25519 key under `name`:
/// `SHA-256(name || 0x0A || 0x01 || public key)[..4]`.
pub fn note_key_id(name: &str, key: &PublicKey) -> Result<[u8; 4], CheckpointError> {
    if !valid_key_name(name) {
        return Err(CheckpointError::InvalidKeyName {
            name: name.to_owned(),
        });
    }
    if key.algorithm() != KeyAlgorithm::Ed25519 {
        return Err(CheckpointError::UnsupportedAlgorithm {
            algorithm: key.algorithm(),
        });
    }
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519_SIGNATURE_TYPE])
        .chain_update(key.raw_bytes())
        .finalize();
    Ok([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether a key of the ring may sign new checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The current evidence key.
    Active,
    /// A key rotated out. Its checkpoints keep verifying; with `last_size`, only those
    /// covering at most that many entries (what it signed before the rotation), so a
    /// leaked retired key cannot vouch for later entries.
    Retired {
        /// The largest checkpoint size it may have signed, if known.
        last_size: Option<u64>,
    },
}

/// A named Ed25519 public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    name: String,
    public: PublicKey,
    key_id: [u8; 4],
    status: KeyStatus,
}

impl NoteKey {
    /// The key name signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The 4-byte note key id.
    pub fn note_key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Active or retired.
    pub fn status(&self) -> KeyStatus {
        self.status
    }

    /// The key in the C2SP verifier-key form other tools read (Go's
    /// `golang.org/x/mod/sumdb/note`): `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn verifier_key(&self) -> String {
        let mut bytes = vec![ED25519_SIGNATURE_TYPE];
        bytes.extend_from_slice(&self.public.raw_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            Base64::encode_string(&bytes)
        )
    }
}

/// The keys that verify checkpoints: the active evidence key and the retired ones.
///
/// A key removed from the ring no longer verifies anything; a retired key keeps
/// verifying what it signed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<NoteKey>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an Ed25519 key under `name` with its status.
    pub fn add(
        &mut self,
        name: &str,
        key: PublicKey,
        status: KeyStatus,
    ) -> Result<&NoteKey, CheckpointError> {
        let key_id = note_key_id(name, &key)?;
        if self.keys.iter().any(|k| k.name == name && k.public == key) {
            return Err(CheckpointError::DuplicateKey {
                name: name.to_owned(),
                key_id: hex::encode(key_id),
            });
        }
        self.keys.push(NoteKey {
            name: name.to_owned(),
            public: key,
            key_id,
            status,
        });
        Ok(&self.keys[self.keys.len() - 1])
    }

    /// Adds a key given in verifier-key form ([`NoteKey::verifier_key`]).
    pub fn add_verifier_key(
        &mut self,
        verifier_key: &str,
        status: KeyStatus,
    ) -> Result<&NoteKey, CheckpointError> {
        let bad = |reason: &str| CheckpointError::BadVerifierKey {
            reason: reason.to_owned(),
        };
        let mut parts = verifier_key.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key id>+<base64 key>"));
        };
        let bytes = decode_base64(encoded).ok_or_else(|| bad("the key is not base64"))?;
        let [ED25519_SIGNATURE_TYPE, raw @ ..] = bytes.as_slice() else {
            return Err(bad("only Ed25519 (type 0x01) keys are supported"));
        };
        if raw.len() != 32 {
            return Err(bad("an Ed25519 key has 32 bytes"));
        }
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(raw);
        let key = PublicKey::from_der(&der).map_err(|e| bad(&e.to_string()))?;
        let expected = note_key_id(name, &key)?;
        if hex::encode(expected) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        self.add(name, key, status)
    }

    /// Every key, in the order added.
    pub fn keys(&self) -> &[NoteKey] {
        &self.keys
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Who signed a verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSigner {
    /// The key name.
    pub name: String,
    /// The 4-byte note key id, hex.
    pub note_key_id: String,
    /// relo's key id of the public key (SHA-256 of its SPKI DER), as `relo key` prints.
    pub key_id: String,
}

/// A checkpoint whose note verified with a key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note text it came from.
    pub note: String,
    /// The keys of the ring whose signatures verified.
    pub signers: Vec<CheckpointSigner>,
}

/// Parses and verifies a checkpoint note: a well-formed note (see [`SignedNote::parse`])
/// whose text is a checkpoint ([`Checkpoint::parse_body`]), with at least one signature
/// that verifies with a key of `keys` allowed to sign that size, no failing signature
/// by a key of the ring, and, when `origin` is given, that origin.
///
/// Signatures by keys the ring does not hold are ignored (a witness may co-sign).
pub fn open_checkpoint(
    note: &[u8],
    keys: &KeyRing,
    origin: Option<&str>,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let parsed = SignedNote::parse(note)?;
    let checkpoint = Checkpoint::parse_body(&parsed.body)?;
    let mut signers = Vec::new();
    let mut unknown = Vec::new();
    let mut retired = None;
    for signature in &parsed.signatures {
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| k.name == signature.key_name && k.key_id == signature.key_id)
            .peekable();
        if candidates.peek().is_none() {
            unknown.push(format!(
                "{} ({})",
                signature.key_name,
                hex::encode(signature.key_id)
            ));
            continue;
        }
        let Some(key) = candidates.find(|k| {
            k.public
                .verify(parsed.body.as_bytes(), &signature.signature)
                .is_ok()
        }) else {
            return Err(CheckpointError::BadSignature {
                name: signature.key_name.clone(),
                key_id: hex::encode(signature.key_id),
            });
        };
        match key.status {
            KeyStatus::Retired {
                last_size: Some(last_size),
            } if checkpoint.size > last_size => {
                retired = Some(CheckpointError::RetiredKey {
                    name: key.name.clone(),
                    key_id: hex::encode(key.key_id),
                    last_size,
                    size: checkpoint.size,
                });
            }
            _ => signers.push(CheckpointSigner {
                name: key.name.clone(),
                note_key_id: hex::encode(key.key_id),
                key_id: key.public.key_id().to_owned(),
            }),
        }
    }
    if signers.is_empty() {
        return Err(retired.unwrap_or(CheckpointError::UnknownKey { signers: unknown }));
    }
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        return Err(CheckpointError::WrongOrigin {
            expected: expected.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        // The note parsed as UTF-8 above.
        note: String::from_utf8_lossy(note).into_owned(),
        signers,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use relo_trust::PrivateKey;

    use super::*;

    const ORIGIN: &str = "relo.dev/evidence/test";

    fn ring_with(key: &PrivateKey, status: KeyStatus) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.add(ORIGIN, key.public_key().clone(), status)
            .expect("an Ed25519 key");
        ring
    }

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint::new(ORIGIN, size, [7; 32]).expect("valid origin")
    }

    #[test]
    fn a_signed_checkpoint_has_the_c2sp_shape_and_verifies() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let note = checkpoint(200).sign(&[(ORIGIN, &key)]).expect("signs");
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], ORIGIN);
        assert_eq!(lines[1], "200");
        assert_eq!(lines[2], Base64::encode_string(&[7; 32]));
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} relo.dev/evidence/test "));
        assert_eq!(lines.len(), 5);
        let encoded = lines[4].rsplit(' ').next().expect("signature");
        let bytes = Base64::decode_vec(encoded).expect("base64");
        assert_eq!(bytes.len(), 68);
        let id = note_key_id(ORIGIN, key.public_key()).expect("id");
        assert_eq!(bytes[..4], id);
        // The id is SHA-256(name || 0x0A || 0x01 || key)[..4].
        let mut preimage = ORIGIN.as_bytes().to_vec();
        preimage.extend_from_slice(&[0x0a, 0x01]);
        preimage.extend_from_slice(&key.public_key().raw_bytes());
        assert_eq!(id, Sha256::digest(&preimage)[..4]);

        let ring = ring_with(&key, KeyStatus::Active);
        let verified = open_checkpoint(note.as_bytes(), &ring, Some(ORIGIN)).expect("verifies");
        assert_eq!(verified.checkpoint, checkpoint(200));
        assert_eq!(verified.signers[0].key_id, key.key_id());
        assert_eq!(verified.note, note);
    }

    #[test]
    fn only_ed25519_signs_checkpoints() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let error = checkpoint(1).sign(&[(ORIGIN, &key)]).unwrap_err();
        assert_eq!(error.code(), "unsupported-key-algorithm");
        let mut ring = KeyRing::new();
        assert_eq!(
            ring.add(ORIGIN, key.public_key().clone(), KeyStatus::Active)
                .unwrap_err()
                .code(),
            "unsupported-key-algorithm"
        );
        let ed = PrivateKey::generate(KeyAlgorithm::Ed25519);
        assert_eq!(
            checkpoint(1).sign(&[("bad name", &ed)]).unwrap_err().code(),
            "invalid-key-name"
        );
        assert_eq!(checkpoint(1).sign(&[]).unwrap_err().code(), "no-signer");
        assert_eq!(
            Checkpoint::new("two\nlines", 1, [0; 32])
                .unwrap_err()
                .code(),
            "invalid-origin"
        );
    }

    #[test]
    fn signature_problems_are_named() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let ring = ring_with(&key, KeyStatus::Active);
        let note = checkpoint(5).sign(&[(ORIGIN, &key)]).expect("signs");

        let foreign = checkpoint(5).sign(&[(ORIGIN, &other)]).expect("signs");
        let error = open_checkpoint(foreign.as_bytes(), &ring, None).unwrap_err();
        assert_eq!(error.code(), "unknown-key");
        assert!(error.is_signature_problem());

        let changed = note.replacen("\n5\n", "\n6\n", 1);
        let error = open_checkpoint(changed.as_bytes(), &ring, None).unwrap_err();
        assert_eq!(error.code(), "bad-signature");

        let error =
            open_checkpoint(note.as_bytes(), &ring, Some("relo.dev/evidence/other")).unwrap_err();
        assert_eq!(error.code(), "wrong-origin");

        // A co-signature by an unknown key is ignored.
        let both = checkpoint(5)
            .sign(&[(ORIGIN, &key), ("witness.example", &other)])
            .expect("signs");
        let verified = open_checkpoint(both.as_bytes(), &ring, Some(ORIGIN)).expect("verifies");
        assert_eq!(verified.signers.len(), 1);
    }

    #[test]
    fn retired_keys_verify_what_they_signed_and_removed_keys_nothing() {
        let old = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let new = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let old_note = checkpoint(100).sign(&[(ORIGIN, &old)]).expect("signs");
        let late_note = checkpoint(150).sign(&[(ORIGIN, &old)]).expect("signs");
        let new_note = checkpoint(150).sign(&[(ORIGIN, &new)]).expect("signs");

        let mut ring = KeyRing::new();
        ring.add(
            ORIGIN,
            old.public_key().clone(),
            KeyStatus::Retired {
                last_size: Some(100),
            },
        )
        .expect("adds");
        ring.add(ORIGIN, new.public_key().clone(), KeyStatus::Active)
            .expect("adds");
        assert!(open_checkpoint(old_note.as_bytes(), &ring, Some(ORIGIN)).is_ok());
        assert!(open_checkpoint(new_note.as_bytes(), &ring, Some(ORIGIN)).is_ok());
        assert_eq!(
            open_checkpoint(late_note.as_bytes(), &ring, Some(ORIGIN))
                .unwrap_err()
                .code(),
            "retired-key"
        );

        let only_new = ring_with(&new, KeyStatus::Active);
        assert_eq!(
            open_checkpoint(old_note.as_bytes(), &only_new, Some(ORIGIN))
                .unwrap_err()
                .code(),
            "unknown-key"
        );
    }

    #[test]
    fn verifier_keys_round_trip() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let ring = ring_with(&key, KeyStatus::Active);
        let vkey = ring.keys()[0].verifier_key();
        assert!(vkey.starts_with("relo.dev/evidence/test+"));
        let mut parsed = KeyRing::new();
        parsed
            .add_verifier_key(&vkey, KeyStatus::Active)
            .expect("parses");
        assert_eq!(parsed, ring);
        assert_eq!(
            parsed
                .add_verifier_key(&vkey, KeyStatus::Active)
                .unwrap_err()
                .code(),
            "duplicate-key"
        );
        let wrong_id = vkey.replacen('+', "+0", 1);
        assert!(
            KeyRing::new()
                .add_verifier_key(&wrong_id, KeyStatus::Active)
                .is_err()
        );
        assert!(
            KeyRing::new()
                .add_verifier_key("x", KeyStatus::Active)
                .is_err()
        );
    }

    #[test]
    fn malformed_notes_get_typed_errors() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let note = checkpoint(3).sign(&[(ORIGIN, &key)]).expect("signs");
        let signature_line = note.lines().last().expect("a line").to_owned();
        let encoded = signature_line
            .rsplit(' ')
            .next()
            .expect("base64")
            .to_owned();
        let body = checkpoint(3).body();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xff, 0xfe, b'\n'], "note-not-utf8"),
            (
                note.replace('\n', "\r\n").into_bytes(),
                "note-control-character",
            ),
            (
                note.trim_end().as_bytes().to_vec(),
                "note-missing-final-newline",
            ),
            (
                note.replacen("\n\n", "\n", 1).into_bytes(),
                "note-missing-blank-line",
            ),
            (format!("{body}\n").into_bytes(), "note-bad-signature-line"),
            (
                note.replace('\u{2014}', "-").into_bytes(),
                "note-bad-signature-line",
            ),
            (
                note.replace(&encoded, "!!!!").into_bytes(),
                "note-bad-base64",
            ),
            (
                note.replace(&encoded, &Base64::encode_string(&[1, 2, 3]))
                    .into_bytes(),
                "note-key-id-too-short",
            ),
            (
                format!("{note}{signature_line}\n").into_bytes(),
                "note-duplicate-signature",
            ),
            (
                format!("{note}extra text\n").into_bytes(),
                "note-bad-signature-line",
            ),
            (
                note.replacen("\n3\n", "\n03\n", 1).into_bytes(),
                "malformed-checkpoint",
            ),
            (
                note.replacen("\n3\n", "\n3\nextension\n", 1).into_bytes(),
                "checkpoint-extension-lines",
            ),
            (vec![b'a'; MAX_NOTE_BYTES + 1], "note-too-large"),
        ];
        let ring = ring_with(&key, KeyStatus::Active);
        for (text, code) in cases {
            let error = open_checkpoint(&text, &ring, Some(ORIGIN)).unwrap_err();
            assert_eq!(
                error.code(),
                code,
                "{:?}: {error}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn a_root_in_non_canonical_base64_is_refused() {
        let body = checkpoint(3).body();
        let root_line = body.lines().nth(2).expect("root").to_owned();
        // The last character before the padding carries two unused bits; setting one
        // still decodes with lenient decoders.
        let mut chars: Vec<char> = root_line.chars().collect();
        let last = chars.len() - 2;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let tweaked: String = chars.into_iter().collect();
        if Base64::decode_vec(&tweaked).is_ok_and(|b| Base64::encode_string(&b) != tweaked) {
            let error = Checkpoint::parse_body(&body.replace(&root_line, &tweaked)).unwrap_err();
            assert_eq!(error.code(), "note-bad-base64");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let ring = KeyRing::new();
            let _ = open_checkpoint(&bytes, &ring, Some(ORIGIN));
        }

        #[test]
        fn parsing_mutated_notes_never_panics(
            cut in 0usize..300,
            insert in "\\PC{0,5}|\n|\u{2014} |[ +=]",
            at in 0usize..300,
        ) {
            let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
            let ring = ring_with(&key, KeyStatus::Active);
            let note = checkpoint(42).sign(&[(ORIGIN, &key)]).expect("signs");
            let mut text: Vec<char> = note.chars().collect();
            text.truncate(text.len().saturating_sub(cut % 4));
            let at = at.min(text.len());
            let mut mutated: String = text[..at].iter().collect();
            mutated.push_str(&insert);
            mutated.extend(&text[at..]);
            if let Ok(verified) = open_checkpoint(mutated.as_bytes(), &ring, Some(ORIGIN)) {
                prop_assert_eq!(verified.checkpoint, checkpoint(42));
            }
        }
    }
}
