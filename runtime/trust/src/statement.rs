//! in-toto Statement v1, signed inside a DSSE envelope.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Envelope, PublicKey, Signer, TrustError, to_canonical_json};

/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";

/// The DSSE `payloadType` of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// An in-toto Statement v1: which artifacts (subjects, by digest) a predicate is about.
///
/// Field names in JSON are the specification's: `_type`, `subject`, `predicateType`,
/// `predicate`. Fields relo does not know are ignored when reading, as the specification
/// asks of consumers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE_V1`]; [`Statement::validate`] checks it.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The artifacts the statement is about; at least one.
    pub subject: Vec<Subject>,
    /// A URI saying what the predicate means, e.g. `https://relo.dev/attestation/plugin/v1`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The claim itself, a JSON object whose schema `predicate_type` names.
    pub predicate: Value,
}

/// One artifact of a [`Statement`]: a name and its digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The artifact's name, e.g. a plugin name or an output path.
    pub name: String,
    /// Digests by algorithm (`sha256` → lowercase hex); at least one.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with one SHA-256 digest given as lowercase hex.
    pub fn sha256(name: impl Into<String>, hex_digest: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_owned(), hex_digest.into())]),
        }
    }

    /// The subject's SHA-256 digest (lowercase hex), if it has one.
    pub fn sha256_digest(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// A statement whose envelope verified, with the key ids that signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedStatement {
    /// The statement, parsed from the verified payload and validated.
    pub statement: Statement,
    /// Key ids of the distinct trusted keys whose signatures verified.
    pub key_ids: Vec<String>,
}

impl Statement {
    /// A v1 statement about `subject`.
    pub fn new(subject: Vec<Subject>, predicate_type: impl Into<String>, predicate: Value) -> Self {
        Self {
            statement_type: STATEMENT_TYPE_V1.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Checks the rules of the v1 specification: the `_type`, at least one subject, every
    /// subject with at least one digest, lowercase hex digests of the right length for
    /// the SHA-2 family (other algorithms: non-empty), a non-empty `predicateType` and an
    /// object `predicate`.
    pub fn validate(&self) -> Result<(), TrustError> {
        let malformed = |reason: String| Err(TrustError::MalformedStatement { reason });
        if self.statement_type != STATEMENT_TYPE_V1 {
            return malformed(format!(
                "_type is {:?}, expected {STATEMENT_TYPE_V1:?}",
                self.statement_type
            ));
        }
        if self.subject.is_empty() {
            return malformed("a statement needs at least one subject".to_owned());
        }
        for (index, subject) in self.subject.iter().enumerate() {
            if subject.digest.is_empty() {
                return malformed(format!(
                    "subject {index} ({:?}) has no digest",
                    subject.name
                ));
            }
            for (algorithm, value) in &subject.digest {
                let expected_len = match algorithm.as_str() {
                    "sha256" => Some(64),
                    "sha384" => Some(96),
                    "sha512" => Some(128),
                    _ => None,
                };
                let is_lower_hex = value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                let well_formed = match expected_len {
                    Some(len) => value.len() == len && is_lower_hex,
                    None => !value.is_empty(),
                };
                if !well_formed {
                    return malformed(format!(
                        "subject {index} ({:?}) has a malformed {algorithm} digest {value:?}",
                        subject.name
                    ));
                }
            }
        }
        if self.predicate_type.is_empty() {
            return malformed("predicateType is empty".to_owned());
        }
        if !self.predicate.is_object() {
            return malformed("predicate is not a JSON object".to_owned());
        }
        Ok(())
    }

    /// The statement as RFC 8785 canonical JSON, the bytes that get signed.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, TrustError> {
        to_canonical_json(self)
    }

    /// Validates the statement and signs its canonical JSON into an envelope with
    /// `payloadType` [`IN_TOTO_PAYLOAD_TYPE`].
    pub fn sign(&self, signers: &[&dyn Signer]) -> Result<Envelope, TrustError> {
        self.validate()?;
        Envelope::sign(IN_TOTO_PAYLOAD_TYPE, self.to_canonical_json()?, signers)
    }
}

impl Envelope {
    /// Verifies the envelope ([`Envelope::verify`]), then checks that it carries an
    /// in-toto Statement v1: the `payloadType` ([`TrustError::PayloadTypeMismatch`]), the
    /// JSON and the specification's rules ([`TrustError::MalformedStatement`]).
    ///
    /// The statement returned is parsed from the signed bytes only. Checking the
    /// `predicateType` and the subjects against what the caller expects is the caller's.
    pub fn verify_statement(
        &self,
        trusted: &[PublicKey],
        threshold: usize,
    ) -> Result<VerifiedStatement, TrustError> {
        let key_ids = self.verify(trusted, threshold)?;
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(TrustError::PayloadTypeMismatch {
                expected: IN_TOTO_PAYLOAD_TYPE.to_owned(),
                found: self.payload_type.clone(),
            });
        }
        let statement: Statement =
            serde_json::from_slice(&self.payload).map_err(|e| TrustError::MalformedStatement {
                reason: e.to_string(),
            })?;
        statement.validate()?;
        Ok(VerifiedStatement { statement, key_ids })
    }
}
