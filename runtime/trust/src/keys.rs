//! Ed25519 and ECDSA P-256 keys: generation, PEM, key ids, signing and verification.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
use pkcs8::der::pem::LineEnding;
use pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
    PrivateKeyInfo, SecretDocument,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::TrustError;

/// `id-Ed25519` (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-ecPublicKey` (RFC 5480).
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, also called `prime256v1` and P-256 (RFC 5480).
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

const PUBLIC: &str = "public key";
const PRIVATE: &str = "private key";

/// The signature algorithms relo signs and verifies with.
///
/// Ed25519 signatures are the 64 raw bytes of RFC 8032. ECDSA P-256 signatures are ASN.1
/// DER over SHA-256 of the message: the format of `openssl dgst -sha256 -sign` and of
/// `cosign sign-blob --key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8032). The evidence key is always one of these.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256, cosign's default.
    #[serde(rename = "p256")]
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The name used on the command line (`relo key generate --type`) and in config:
    /// `ed25519` or `p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "p256",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = TrustError;

    /// Parses `ed25519` or `p256` (also `ecdsa-p256`), ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self, TrustError> {
        match name.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Self::Ed25519),
            "p256" | "p-256" | "ecdsa-p256" => Ok(Self::EcdsaP256),
            _ => Err(TrustError::UnsupportedAlgorithm {
                algorithm: name.to_owned(),
            }),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum VerifyingKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

/// A public key that verifies signatures, with its key id.
///
/// The **key id** is the lowercase hex SHA-256 of the key's DER `SubjectPublicKeyInfo`
/// (the bytes inside the `-----BEGIN PUBLIC KEY-----` PEM) as relo encodes it, P-256
/// points uncompressed. Anyone can recompute it with
/// `openssl pkey -pubin -in key.pub -outform DER | sha256sum`. DSSE signatures carry it in
/// their `keyid`, so a verifier tries only the key a signature names.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    spki_der: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    fn new(key: VerifyingKey) -> Result<Self, TrustError> {
        let document = match &key {
            VerifyingKey::Ed25519(key) => key.to_public_key_der(),
            VerifyingKey::EcdsaP256(key) => key.to_public_key_der(),
        }
        .map_err(|e| invalid(PUBLIC, e))?;
        let spki_der = document.as_bytes().to_vec();
        let key_id = hex::encode(Sha256::digest(&spki_der));
        Ok(Self {
            key,
            spki_der,
            key_id,
        })
    }

    /// Parses a `-----BEGIN PUBLIC KEY-----` PEM (SPKI), as written by
    /// [`PublicKey::to_pem`], `openssl pkey -pubout` and `cosign generate-key-pair`.
    pub fn from_pem(pem: &str) -> Result<Self, TrustError> {
        let (label, document) =
            pkcs8::Document::from_pem(pem.trim()).map_err(|e| invalid(PUBLIC, e))?;
        if label != "PUBLIC KEY" {
            return Err(TrustError::InvalidKey {
                what: PUBLIC,
                reason: format!("expected a PEM labelled PUBLIC KEY, found {label}"),
            });
        }
        Self::from_der(document.as_bytes())
    }

    /// Reads a public key PEM file; errors name the path.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path).map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|e| match e {
            TrustError::InvalidKey { what, reason } => TrustError::InvalidKey {
                what,
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Parses a DER `SubjectPublicKeyInfo`.
    pub fn from_der(spki_der: &[u8]) -> Result<Self, TrustError> {
        let info = SubjectPublicKeyInfoRef::try_from(spki_der).map_err(|e| invalid(PUBLIC, e))?;
        let key = match info.algorithm.oid {
            ED25519_OID => VerifyingKey::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(spki_der)
                    .map_err(|e| invalid(PUBLIC, e))?,
            ),
            EC_PUBLIC_KEY_OID => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| invalid(PUBLIC, e))?;
                if curve != P256_OID {
                    return Err(TrustError::UnsupportedAlgorithm {
                        algorithm: format!("ECDSA on curve {curve}"),
                    });
                }
                VerifyingKey::EcdsaP256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                        .map_err(|e| invalid(PUBLIC, e))?,
                )
            }
            other => {
                return Err(TrustError::UnsupportedAlgorithm {
                    algorithm: other.to_string(),
                });
            }
        };
        Self::new(key)
    }

    /// The key as a `-----BEGIN PUBLIC KEY-----` PEM, LF line endings.
    pub fn to_pem(&self) -> String {
        pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der)
            .expect("a SubjectPublicKeyInfo always fits in a PEM")
    }

    /// The DER `SubjectPublicKeyInfo` the key id is computed over.
    pub fn to_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The raw public key: 32 bytes for Ed25519 (what a C2SP signed-note key hashes),
    /// the 65-byte uncompressed SEC1 point for P-256.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match &self.key {
            VerifyingKey::Ed25519(key) => key.to_bytes().to_vec(),
            VerifyingKey::EcdsaP256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// The key id: lowercase hex SHA-256 of [`PublicKey::to_der`].
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            VerifyingKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// Checks `signature` over `message`.
    ///
    /// Ed25519 uses strict verification (no small-order keys, canonical encodings only).
    /// P-256 expects ASN.1 DER over SHA-256 of `message`. Any failure, including a
    /// signature that does not parse, is [`TrustError::BadSignature`] naming this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), TrustError> {
        let verified = match &self.key {
            VerifyingKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .and_then(|signature| key.verify_strict(message, &signature))
                .is_ok(),
            VerifyingKey::EcdsaP256(key) => p256::ecdsa::DerSignature::from_bytes(signature)
                .and_then(|signature| key.verify(message, &signature))
                .is_ok(),
        };
        if verified {
            Ok(())
        } else {
            Err(self.bad_signature())
        }
    }

    /// Checks a P-256 DER signature made over a SHA-256 digest, e.g. by
    /// [`Signer::sign_prehashed_sha256`](crate::Signer::sign_prehashed_sha256). Equivalent to
    /// [`PublicKey::verify`] over the message whose digest this is. Ed25519 keys refuse
    /// with [`TrustError::PrehashUnsupported`].
    pub fn verify_prehashed_sha256(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), TrustError> {
        match &self.key {
            VerifyingKey::Ed25519(_) => Err(TrustError::PrehashUnsupported {
                algorithm: KeyAlgorithm::Ed25519,
            }),
            VerifyingKey::EcdsaP256(key) => p256::ecdsa::DerSignature::from_bytes(signature)
                .and_then(|signature| key.verify_prehash(digest, &signature))
                .map_err(|_| self.bad_signature()),
        }
    }

    fn bad_signature(&self) -> TrustError {
        TrustError::BadSignature {
            key_id: self.key_id.clone(),
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.spki_der.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish()
    }
}

enum SigningKey {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
}

/// A private key together with its public key.
///
/// Secret material is wiped from memory when the key is dropped (both underlying keys
/// zeroize on drop), PEM text is handed out in [`Zeroizing`] strings, and `Debug`
/// prints only the algorithm and the key id. Private keys are PKCS#8 PEM
/// (PEM label `PRIVATE KEY`), which openssl reads and cosign's
/// `import-key-pair` accepts.
pub struct PrivateKey {
    key: SigningKey,
    public: PublicKey,
}

impl PrivateKey {
    fn new(key: SigningKey) -> Result<Self, TrustError> {
        let public = PublicKey::new(match &key {
            SigningKey::Ed25519(key) => VerifyingKey::Ed25519(key.verifying_key()),
            SigningKey::EcdsaP256(key) => VerifyingKey::EcdsaP256(*key.verifying_key()),
        })?;
        Ok(Self { key, public })
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate(algorithm: KeyAlgorithm) -> Self {
        let key = match algorithm {
            KeyAlgorithm::Ed25519 => {
                SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            KeyAlgorithm::EcdsaP256 => {
                SigningKey::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
        };
        Self::new(key).expect("a freshly generated public key always encodes")
    }

    /// Parses an unencrypted private key PEM: PKCS#8 (`PRIVATE KEY`) for either
    /// algorithm, or SEC1 (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes) for
    /// P-256. Encrypted keys are refused with a message saying so.
    pub fn from_pem(pem: &str) -> Result<Self, TrustError> {
        let (label, document) =
            SecretDocument::from_pem(pem.trim()).map_err(|e| invalid(PRIVATE, e))?;
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(document.as_bytes()),
            "EC PRIVATE KEY" => {
                let secret = p256::SecretKey::from_sec1_der(document.as_bytes())
                    .map_err(|e| invalid(PRIVATE, e))?;
                Self::new(SigningKey::EcdsaP256(secret.into()))
            }
            "ENCRYPTED PRIVATE KEY"
            | "ENCRYPTED SIGSTORE PRIVATE KEY"
            | "ENCRYPTED COSIGN PRIVATE KEY" => Err(TrustError::InvalidKey {
                what: PRIVATE,
                reason: format!("{label} PEMs (passphrase-protected keys) are not supported yet"),
            }),
            other => Err(TrustError::InvalidKey {
                what: PRIVATE,
                reason: format!("expected a PEM labelled PRIVATE KEY, found {other}"),
            }),
        }
    }

    /// Parses an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TrustError> {
        let info = PrivateKeyInfo::try_from(der).map_err(|e| invalid(PRIVATE, e))?;
        let key = match info.algorithm.oid {
            ED25519_OID => SigningKey::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| invalid(PRIVATE, e))?,
            ),
            EC_PUBLIC_KEY_OID => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| invalid(PRIVATE, e))?;
                if curve != P256_OID {
                    return Err(TrustError::UnsupportedAlgorithm {
                        algorithm: format!("ECDSA on curve {curve}"),
                    });
                }
                SigningKey::EcdsaP256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|e| invalid(PRIVATE, e))?,
                )
            }
            other => {
                return Err(TrustError::UnsupportedAlgorithm {
                    algorithm: other.to_string(),
                });
            }
        };
        Self::new(key)
    }

    /// The key as an unencrypted PKCS#8 PEM (PEM label `PRIVATE KEY`), LF line
    /// endings. Ed25519 keys are written as PKCS#8 v1 (RFC 8410, no embedded public key),
    /// the form `openssl genpkey -algorithm ed25519` writes.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, TrustError> {
        let document = match &self.key {
            SigningKey::Ed25519(key) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            SigningKey::EcdsaP256(key) => key.to_pkcs8_der(),
        }
        .map_err(|e| invalid(PRIVATE, e))?;
        document
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| invalid(PRIVATE, e))
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the public key.
    pub fn key_id(&self) -> &str {
        self.public.key_id()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm()
    }

    /// Signs `message`: raw Ed25519, or deterministic (RFC 6979) ECDSA P-256 over SHA-256
    /// encoded as ASN.1 DER.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            SigningKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SigningKey::EcdsaP256(key) => {
                let signature: p256::ecdsa::DerSignature = key.sign(message);
                signature.as_bytes().to_vec()
            }
        }
    }

    /// Signs a SHA-256 digest computed elsewhere (P-256 only): the DER signature equals
    /// one made over the original message, so `openssl dgst -sha256 -verify` and
    /// `cosign verify-blob` accept it against that message.
    pub fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError> {
        match &self.key {
            SigningKey::Ed25519(_) => Err(TrustError::PrehashUnsupported {
                algorithm: KeyAlgorithm::Ed25519,
            }),
            SigningKey::EcdsaP256(key) => {
                let signature: p256::ecdsa::DerSignature =
                    key.sign_prehash(digest).map_err(|e| TrustError::Signing {
                        key_id: self.key_id().to_owned(),
                        reason: e.to_string(),
                    })?;
                Ok(signature.as_bytes().to_vec())
            }
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

fn invalid(what: &'static str, error: impl fmt::Display) -> TrustError {
    TrustError::InvalidKey {
        what,
        reason: error.to_string(),
    }
}
