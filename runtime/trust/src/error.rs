//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::KeyAlgorithm;

/// Why a key could not be loaded, a signature made or checked, or an envelope read.
///
/// Every variant has a stable machine code ([`TrustError::code`]) next to its sentence, so
/// the CLI, the API and the evidence can all name the refusal the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// A key file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// A private key file grants access to its group or to others.
    #[error(
        "private key file {} is accessible by group or others (mode {mode:04o}); \
         restrict it with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// Key generation would have replaced an existing file.
    #[error("{} already exists; refusing to overwrite a key file", path.display())]
    KeyFileExists {
        /// The file that exists.
        path: PathBuf,
    },

    /// A PEM or DER key could not be parsed.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// `"public key"` or `"private key"`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A key of an algorithm other than Ed25519 or ECDSA P-256.
    #[error("unsupported key algorithm {algorithm}; relo accepts Ed25519 and ECDSA P-256 keys")]
    UnsupportedAlgorithm {
        /// The algorithm (an OID, or a name the caller gave).
        algorithm: String,
    },

    /// Signing a precomputed digest was asked of a key that signs whole messages.
    #[error("{algorithm} keys cannot sign a precomputed SHA-256 digest; sign the message itself")]
    PrehashUnsupported {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },

    /// The signer failed to produce a signature.
    #[error("signing with key {key_id} failed: {reason}")]
    Signing {
        /// The signer's key id.
        key_id: String,
        /// What went wrong.
        reason: String,
    },

    /// A signature made (by its key id) by a trusted key does not verify.
    #[error("signature by key {key_id} does not verify")]
    BadSignature {
        /// The key id the signature names.
        key_id: String,
    },

    /// An envelope carries no signature at all, or there was nobody to sign it.
    #[error("the envelope is unsigned")]
    Unsigned,

    /// None of an envelope's signatures names a trusted key.
    #[error(
        "no signature is by a trusted key (signed by: {})",
        display_key_ids(key_ids)
    )]
    UntrustedSigner {
        /// The key ids the envelope's signatures name.
        key_ids: Vec<String>,
    },

    /// Fewer distinct trusted keys signed than the threshold requires.
    #[error("{verified} of the {threshold} required signatures by trusted keys verified")]
    ThresholdNotMet {
        /// Distinct trusted keys whose signature verified.
        verified: usize,
        /// Signatures required.
        threshold: usize,
    },

    /// A verification threshold of zero, which would accept anything.
    #[error("a signature threshold must be at least 1")]
    InvalidThreshold,

    /// Two signers of one envelope share a key.
    #[error("key {key_id} was given twice as a signer of one envelope")]
    DuplicateSigner {
        /// The shared key id.
        key_id: String,
    },

    /// A DSSE envelope that is not valid JSON of the expected shape.
    #[error("malformed DSSE envelope: {reason}")]
    MalformedEnvelope {
        /// What is wrong with it.
        reason: String,
    },

    /// The envelope's payload is of another type than the one expected.
    #[error("payload type is {found:?}, expected {expected:?}")]
    PayloadTypeMismatch {
        /// The type the caller expected.
        expected: String,
        /// The type the envelope declares.
        found: String,
    },

    /// An in-toto Statement that does not parse or breaks a rule of the v1 specification.
    #[error("malformed in-toto statement: {reason}")]
    MalformedStatement {
        /// What is wrong with it.
        reason: String,
    },

    /// A JSON value that has no RFC 8785 canonical form.
    #[error("cannot canonicalize JSON: {reason}")]
    NotCanonicalizable {
        /// Why (an integer outside the range a double holds exactly, or a non-finite number).
        reason: String,
    },

    /// An encrypted private key did not decrypt: the passphrase is wrong, or the
    /// ciphertext was altered (the two cannot be told apart).
    #[error(
        "wrong passphrase for the encrypted private key{} (or the key was altered)",
        display_key_path(path.as_deref())
    )]
    WrongPassphrase {
        /// The key file, when the key came from one.
        path: Option<PathBuf>,
    },

    /// An `ENCRYPTED SIGSTORE PRIVATE KEY` PEM that is not of the shape cosign writes.
    #[error("malformed encrypted private key: {reason}")]
    MalformedEncryptedKey {
        /// What is wrong with it.
        reason: String,
    },

    /// An encrypted private key asks for scrypt parameters relo refuses to run (too much
    /// memory or time, or not valid scrypt parameters).
    #[error(
        "the encrypted private key asks for scrypt parameters N={n}, r={r}, p={p}; relo \
         accepts N a power of two from 2 to 2^20, r from 1 to 32, p from 1 to 16, at most \
         256 MiB of memory (128 * N * r bytes) and N * r * p at most 2^24"
    )]
    UnsupportedKdfParameters {
        /// The scrypt cost parameter.
        n: u64,
        /// The scrypt block size.
        r: u64,
        /// The scrypt parallelism.
        p: u64,
    },

    /// A passphrase is needed and there is neither `RELO_KEY_PASSWORD` nor a terminal to
    /// ask on.
    #[error(
        "{what} needs a passphrase and there is no terminal to ask for it: set \
         RELO_KEY_PASSWORD"
    )]
    PassphraseRequired {
        /// What needs it, e.g. `the encrypted private key keys/acme.key`.
        what: String,
    },

    /// The passphrase could not be read from the terminal.
    #[error("cannot read the passphrase from the terminal: {source}")]
    PassphrasePrompt {
        /// What the operating system said.
        source: io::Error,
    },

    /// The passphrase typed the second time differs from the first.
    #[error("the passphrases do not match")]
    PassphraseMismatch,

    /// An empty passphrase was given for a new encrypted key.
    #[error("the passphrase for a new encrypted key must not be empty")]
    EmptyPassphrase,

    /// An attestation, or the container carrying one (a Sigstore bundle), that is not of
    /// the shape relo reads.
    #[error("malformed attestation: {reason}")]
    MalformedAttestation {
        /// What is wrong with it.
        reason: String,
    },
}

impl TrustError {
    /// The stable machine code of this error, e.g. `bad-signature`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "key-read-failed",
            Self::Write { .. } => "key-write-failed",
            Self::KeyFilePermissions { .. } => "key-file-permissions",
            Self::KeyFileExists { .. } => "key-file-exists",
            Self::InvalidKey { .. } => "invalid-key",
            Self::UnsupportedAlgorithm { .. } => "unsupported-key-algorithm",
            Self::PrehashUnsupported { .. } => "prehash-unsupported",
            Self::Signing { .. } => "signing-failed",
            Self::BadSignature { .. } => "bad-signature",
            Self::Unsigned => "unsigned",
            Self::UntrustedSigner { .. } => "untrusted-signer",
            Self::ThresholdNotMet { .. } => "threshold-not-met",
            Self::InvalidThreshold => "invalid-threshold",
            Self::DuplicateSigner { .. } => "duplicate-signer",
            Self::MalformedEnvelope { .. } => "malformed-envelope",
            Self::PayloadTypeMismatch { .. } => "payload-type-mismatch",
            Self::MalformedStatement { .. } => "malformed-statement",
            Self::NotCanonicalizable { .. } => "not-canonicalizable",
            Self::WrongPassphrase { .. } => "wrong-passphrase",
            Self::MalformedEncryptedKey { .. } => "malformed-encrypted-key",
            Self::UnsupportedKdfParameters { .. } => "unsupported-kdf-parameters",
            Self::PassphraseRequired { .. } => "passphrase-required",
            Self::PassphrasePrompt { .. } => "passphrase-prompt-failed",
            Self::PassphraseMismatch => "passphrase-mismatch",
            Self::EmptyPassphrase => "empty-passphrase",
            Self::MalformedAttestation { .. } => "malformed-attestation",
        }
    }
}

fn display_key_path(path: Option<&std::path::Path>) -> String {
    path.map(|path| format!(" {}", path.display()))
        .unwrap_or_default()
}

fn display_key_ids(key_ids: &[String]) -> String {
    if key_ids.is_empty() {
        "no key id".to_owned()
    } else {
        key_ids.join(", ")
    }
}
