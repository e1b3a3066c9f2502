//! The signing primitives relo's evidence and plugin trust are built on: keys, signers,
//! DSSE envelopes, in-toto Statements and canonical JSON.
//!
//! - [`PrivateKey`] and [`PublicKey`]: Ed25519 and ECDSA P-256 ([`KeyAlgorithm`]), private
//!   keys as PKCS#8 PEM, public keys as SPKI PEM, so openssl and cosign-style tools read
//!   them. A key's id is the lowercase hex SHA-256 of its SPKI DER ([`PublicKey::key_id`]).
//! - [`Signer`]: anything that signs with one key. [`KeyFileSigner`] loads a private key
//!   file (refusing one others can read); a Vault Transit signer implements it later.
//!   [`generate_key_files`] is `relo key generate`.
//! - [`Envelope`]: a DSSE envelope, signed over [`pae`], every signature carrying its
//!   `keyid`, verified against trusted keys with a threshold.
//! - [`SigstoreBundle`]: a key-signed DSSE envelope as a Sigstore bundle v0.3, the form
//!   Sigstore clients verify with a given public key.
//! - [`Statement`]: an in-toto Statement v1, signed as canonical JSON inside an envelope
//!   of type [`IN_TOTO_PAYLOAD_TYPE`].
//! - [`canonical_json`]: RFC 8785 (JCS), the form of everything hashed or signed.
//! - [`SignedPlugin`]: a plugin attestation binding a component's digest to its signed
//!   manifest; [`SignedApproval`]: an operator's signed approval of a digest's
//!   capabilities; [`TrustPolicy`]: `relo.toml`'s trusted signers and people, which
//!   verifies attestations and decides which approval admits a plugin, refusing with a
//!   [`Refusal`] that names the failed check.
//!
//! Errors are one [`TrustError`] enum; each has a stable machine code
//! ([`TrustError::code`]) such as `bad-signature` or `untrusted-signer`.
//!
//! ```
//! use relo_trust::{KeyAlgorithm, PrivateKey, PublicKey, Statement, Subject, TrustError};
//!
//! // An author's key; only the public half is shared (as PEM) with the verifier.
//! let author = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
//! let trusted = PublicKey::from_pem(&author.public_key().to_pem())?;
//!
//! // A signed statement about an artifact, by digest.
//! let statement = Statement::new(
//!     vec![Subject::sha256("acme/publish-release", "a".repeat(64))],
//!     "https://relo.dev/attestation/plugin/v1",
//!     serde_json::json!({"plugin": {"name": "acme/publish-release", "version": "0.1.0"}}),
//! );
//! let envelope = statement.sign(&[&author])?;
//! let json = envelope.to_json();
//!
//! // The verifier parses the envelope, checks the signature and reads the statement.
//! let verified = relo_trust::Envelope::from_json(json.as_bytes())?
//!     .verify_statement(&[trusted.clone()], 1)?;
//! assert_eq!(verified.statement, statement);
//! assert_eq!(verified.key_ids, [author.key_id()]);
//!
//! // Changing one byte of the payload breaks the signature, and the error names the key.
//! let mut tampered = envelope.clone();
//! tampered.payload[10] ^= 1;
//! let error = tampered.verify_statement(&[trusted], 1).unwrap_err();
//! assert!(matches!(&error, TrustError::BadSignature { key_id } if key_id == author.key_id()));
//! assert_eq!(error.code(), "bad-signature");
//! # Ok::<(), TrustError>(())
//! ```

mod approval;
mod bundle;
mod dsse;
mod error;
mod jcs;
mod keys;
mod passphrase;
mod plugin;
mod policy;
mod signer;
mod statement;

pub use approval::{
    APPROVAL_PREDICATE_TYPE, ApprovalPredicate, ApprovedPlugin, Approver, SignedApproval,
    approval_id, parse_rfc3339, rfc3339_seconds,
};
pub use bundle::{SIGSTORE_BUNDLE_V03_MEDIA_TYPE, SigstoreBundle};
pub use dsse::{Envelope, EnvelopeSignature, pae};
pub use error::TrustError;
pub use jcs::{canonical_json, to_canonical_json};
pub use keys::{KeyAlgorithm, PrivateKey, PublicKey};
pub use passphrase::{ENCRYPTED_KEY_PEM_LABEL, KEY_PASSWORD_ENV, Passphrase};
pub use plugin::{PLUGIN_PREDICATE_TYPE, SignedPlugin, sha256_hex};
pub use policy::{
    Admission, ApprovalRecord, Identity, Refusal, TrustPolicy, VerifiedApproval, VerifiedPlugin,
    read_envelope, stored_approval_predicate, widened,
};
pub use signer::{
    GeneratedKey, KeyFileSigner, KeyPaths, Signer, generate_encrypted_key_files, generate_key_files,
};
pub use statement::{
    IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE_V1, Statement, Subject, VerifiedStatement,
};
