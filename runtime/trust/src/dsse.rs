//! DSSE envelopes (Dead Simple Signing Envelope, v1).

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{PublicKey, Signer, TrustError};

/// The bytes a DSSE signature covers, the pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as decimal byte counts
/// without leading zeros, SP one space (0x20).
///
/// ```
/// assert_eq!(
///     relo_trust::pae("http://example.com/HelloWorld", b"hello world"),
///     b"DSSEv1 29 http://example.com/HelloWorld 11 hello world",
/// );
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        9 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope: a payload, its type, and signatures over [`pae`] of the two.
///
/// Its JSON form is the standard one, which securesystemslib, in-toto and Sigstore
/// bundles (`dsseEnvelope`) use:
///
/// ```json
/// {"payload": "<base64>", "payloadType": "application/vnd.in-toto+json",
///  "signatures": [{"keyid": "<hex sha256 of the SPKI DER>", "sig": "<base64>"}]}
/// ```
///
/// Base64 is written in the standard alphabet with padding; standard and URL-safe,
/// padded or not, are accepted when reading. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The signed bytes (base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// What the payload is, e.g. `application/vnd.in-toto+json`; covered by the signatures.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One signature per signing key.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// The [key id](PublicKey::key_id) of the key that made it. DSSE makes it optional;
    /// relo always writes it and only tries the trusted key it names (a signature
    /// without one is never tried).
    #[serde(rename = "keyid", default)]
    pub key_id: String,
    /// The signature over [`pae`] (base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
}

impl Envelope {
    /// Signs `payload` as `payload_type` with every signer, one signature each.
    ///
    /// Refuses an empty signer list ([`TrustError::Unsigned`]) and the same key given
    /// twice ([`TrustError::DuplicateSigner`]; verifiers count a key once).
    pub fn sign(
        payload_type: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        signers: &[&dyn Signer],
    ) -> Result<Self, TrustError> {
        let mut envelope = Self {
            payload: payload.into(),
            payload_type: payload_type.into(),
            signatures: Vec::with_capacity(signers.len()),
        };
        if signers.is_empty() {
            return Err(TrustError::Unsigned);
        }
        let pae = envelope.pae();
        for signer in signers {
            let key_id = signer.key_id();
            if envelope.signatures.iter().any(|s| s.key_id == key_id) {
                return Err(TrustError::DuplicateSigner {
                    key_id: key_id.to_owned(),
                });
            }
            envelope.signatures.push(EnvelopeSignature {
                key_id: key_id.to_owned(),
                sig: signer.sign(&pae)?,
            });
        }
        Ok(envelope)
    }

    /// The bytes the signatures cover: [`pae`] of this envelope's type and payload.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Verifies the envelope against `trusted` keys and returns the key ids of the
    /// distinct trusted keys whose signatures verified, in signature order.
    ///
    /// A signature is checked only with the trusted key whose key id equals its `keyid`;
    /// signatures naming unknown keys are ignored. Errors:
    /// - [`TrustError::InvalidThreshold`] for a threshold of 0;
    /// - [`TrustError::Unsigned`] when there is no signature;
    /// - [`TrustError::BadSignature`] (naming the key id) when a signature by a trusted
    ///   key does not verify, even if others would meet the threshold: a bad signature
    ///   from a trusted key means the envelope was changed;
    /// - [`TrustError::UntrustedSigner`] when no signature names a trusted key;
    /// - [`TrustError::ThresholdNotMet`] when fewer than `threshold` trusted keys signed.
    pub fn verify(
        &self,
        trusted: &[PublicKey],
        threshold: usize,
    ) -> Result<Vec<String>, TrustError> {
        if threshold == 0 {
            return Err(TrustError::InvalidThreshold);
        }
        if self.signatures.is_empty() {
            return Err(TrustError::Unsigned);
        }
        let pae = self.pae();
        let mut verified: Vec<String> = Vec::new();
        for signature in &self.signatures {
            if signature.key_id.is_empty() {
                continue;
            }
            let Some(key) = trusted.iter().find(|k| k.key_id() == signature.key_id) else {
                continue;
            };
            key.verify(&pae, &signature.sig)?;
            if !verified.contains(&signature.key_id) {
                verified.push(signature.key_id.clone());
            }
        }
        if verified.is_empty() {
            return Err(TrustError::UntrustedSigner {
                key_ids: self
                    .signatures
                    .iter()
                    .filter(|s| !s.key_id.is_empty())
                    .map(|s| s.key_id.clone())
                    .collect(),
            });
        }
        if verified.len() < threshold {
            return Err(TrustError::ThresholdNotMet {
                verified: verified.len(),
                threshold,
            });
        }
        Ok(verified)
    }

    /// Parses the JSON form; any error is [`TrustError::MalformedEnvelope`].
    pub fn from_json(json: &[u8]) -> Result<Self, TrustError> {
        serde_json::from_slice(json).map_err(|e| TrustError::MalformedEnvelope {
            reason: e.to_string(),
        })
    }

    /// The JSON form, compact.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope has only strings and lists")
    }

    /// The JSON form, indented for a file a person may read.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("an envelope has only strings and lists")
    }
}

/// Decodes base64 in any of the alphabets DSSE allows.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(text)
        .or_else(|_| Base64Url::decode_vec(text))
        .or_else(|_| Base64Unpadded::decode_vec(text))
        .or_else(|_| Base64UrlUnpadded::decode_vec(text))
        .ok()
}

mod base64_bytes {
    use super::*;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&Base64::encode_string(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        decode_base64(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}
