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
use crate::passphrase::{self, ENCRYPTED_KEY_PEM_LABEL, LEGACY_ENCRYPTED_LABEL};

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

    /// An Ed25519 public key from its 32 raw bytes (RFC 8032), as Vault Transit and C2SP
    /// signed-note keys carry it. Refuses bytes that are not a valid curve point.
    pub fn from_raw_ed25519(raw: &[u8; 32]) -> Result<Self, TrustError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(raw).map_err(|e| invalid(PUBLIC, e))?;
        Self::new(VerifyingKey::Ed25519(key))
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
/// `import-key-pair` accepts, or encrypted with a passphrase in cosign's own format
/// ([`PrivateKey::to_encrypted_pem`], [`PrivateKey::from_encrypted_pem`]).
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
        // The body of a cosign-encrypted key is JSON, not DER: tell it apart by its label.
        if Self::is_encrypted_pem(pem) {
            return Err(TrustError::InvalidKey {
                what: PRIVATE,
                reason: "the key is encrypted with a passphrase (ENCRYPTED SIGSTORE PRIVATE \
                         KEY); read it with PrivateKey::from_encrypted_pem"
                    .to_owned(),
            });
        }
        let (label, document) =
            SecretDocument::from_pem(pem.trim()).map_err(|e| invalid(PRIVATE, e))?;
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(document.as_bytes()),
            "EC PRIVATE KEY" => {
                let secret = p256::SecretKey::from_sec1_der(document.as_bytes())
                    .map_err(|e| invalid(PRIVATE, e))?;
                Self::new(SigningKey::EcdsaP256(secret.into()))
            }
            "ENCRYPTED PRIVATE KEY" => Err(TrustError::InvalidKey {
                what: PRIVATE,
                reason: "PKCS#8 encrypted keys (ENCRYPTED PRIVATE KEY) are not supported; \
                         decrypt it with `openssl pkey`, or use a key in cosign's format \
                         (ENCRYPTED SIGSTORE PRIVATE KEY)"
                    .to_owned(),
            }),
            other => Err(TrustError::InvalidKey {
                what: PRIVATE,
                reason: format!("expected a PEM labelled PRIVATE KEY, found {other}"),
            }),
        }
    }

    /// Whether `pem` is a private key encrypted in cosign's format (PEM label
    /// `ENCRYPTED SIGSTORE PRIVATE KEY`, or the older `ENCRYPTED COSIGN PRIVATE KEY`), the
    /// kind [`PrivateKey::from_encrypted_pem`] reads.
    pub fn is_encrypted_pem(pem: &str) -> bool {
        matches!(
            pkcs8::der::pem::decode_label(pem.trim().as_bytes()),
            Ok(ENCRYPTED_KEY_PEM_LABEL | LEGACY_ENCRYPTED_LABEL)
        )
    }

    /// Parses a private key encrypted with a passphrase in cosign's format, as written by
    /// `cosign generate-key-pair` and [`PrivateKey::to_encrypted_pem`]: a PEM labelled
    /// `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `ENCRYPTED COSIGN PRIVATE KEY`)
    /// around JSON naming scrypt and NaCl secretbox, sealing the PKCS#8 DER of the key.
    ///
    /// A passphrase that does not open it is [`TrustError::WrongPassphrase`] (code
    /// `wrong-passphrase`; an altered ciphertext gives the same error, as the two cannot be
    /// told apart). A PEM or JSON of another shape is
    /// [`TrustError::MalformedEncryptedKey`]; scrypt parameters beyond relo's limits (N a
    /// power of two up to 2^20, at most 256 MiB) are
    /// [`TrustError::UnsupportedKdfParameters`], refused before any work.
    pub fn from_encrypted_pem(pem: &str, passphrase: &[u8]) -> Result<Self, TrustError> {
        let (label, sealed) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| {
            TrustError::MalformedEncryptedKey {
                reason: format!("not a PEM: {e}"),
            }
        })?;
        if label != ENCRYPTED_KEY_PEM_LABEL && label != LEGACY_ENCRYPTED_LABEL {
            return Err(TrustError::MalformedEncryptedKey {
                reason: format!("expected a PEM labelled {ENCRYPTED_KEY_PEM_LABEL}, found {label}"),
            });
        }
        let der = passphrase::open(&sealed, passphrase)?;
        Self::from_pkcs8_der(&der)
    }

    /// The key encrypted with `passphrase` in cosign's format (see
    /// [`PrivateKey::from_encrypted_pem`]): scrypt with N = 32768, r = 8, p = 1 and a fresh
    /// 32-byte salt, NaCl secretbox with a fresh nonce, over the PKCS#8 DER
    /// [`PrivateKey::to_pem`] holds; PEM label `ENCRYPTED SIGSTORE PRIVATE KEY`, LF line
    /// endings. `cosign sign-blob --key` reads it (with `COSIGN_PASSWORD`).
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>, TrustError> {
        let der = self.to_pkcs8_der()?;
        let sealed = passphrase::seal(der.as_bytes(), passphrase)?;
        pkcs8::der::pem::encode_string(ENCRYPTED_KEY_PEM_LABEL, LineEnding::LF, &sealed)
            .map(Zeroizing::new)
            .map_err(|e| TrustError::MalformedEncryptedKey {
                reason: e.to_string(),
            })
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
        self.to_pkcs8_der()?
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| invalid(PRIVATE, e))
    }

    /// The PKCS#8 DER of the key (a [`SecretDocument`] zeroizes on drop).
    fn to_pkcs8_der(&self) -> Result<SecretDocument, TrustError> {
        match &self.key {
            SigningKey::Ed25519(key) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            SigningKey::EcdsaP256(key) => key.to_pkcs8_der(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256];

    #[test]
    fn raw_ed25519_bytes_give_the_same_key_and_key_id() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let raw: [u8; 32] = key.public_key().raw_bytes().try_into().unwrap();
        let public = PublicKey::from_raw_ed25519(&raw).unwrap();
        assert_eq!(&public, key.public_key());
        assert_eq!(public.key_id(), key.key_id());
        public.verify(b"m", &key.sign(b"m")).unwrap();
    }

    #[test]
    fn encrypted_keys_round_trip_for_both_algorithms() {
        for algorithm in ALGORITHMS {
            let key = PrivateKey::generate(algorithm);
            let pem = key.to_encrypted_pem("correct horse 🐎".as_bytes()).unwrap();
            assert!(
                pem.starts_with(&format!("-----BEGIN {ENCRYPTED_KEY_PEM_LABEL}-----\n")),
                "{}",
                pem.as_str()
            );
            assert!(PrivateKey::is_encrypted_pem(&pem));
            assert!(!PrivateKey::is_encrypted_pem(&key.to_pem().unwrap()));
            let back = PrivateKey::from_encrypted_pem(&pem, "correct horse 🐎".as_bytes()).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            assert_eq!(back.to_pem().unwrap(), key.to_pem().unwrap());
            let signature = back.sign(b"release 1.2.3");
            key.public_key()
                .verify(b"release 1.2.3", &signature)
                .unwrap();

            // The older label is read too.
            let legacy = pem.replace("SIGSTORE", "COSIGN");
            assert!(PrivateKey::is_encrypted_pem(&legacy));
            let back = PrivateKey::from_encrypted_pem(&legacy, "correct horse 🐎".as_bytes());
            assert_eq!(back.unwrap().key_id(), key.key_id());
        }
    }

    #[test]
    fn a_wrong_passphrase_is_a_typed_error() {
        for algorithm in ALGORITHMS {
            let pem = PrivateKey::generate(algorithm)
                .to_encrypted_pem(b"right")
                .unwrap();
            for wrong in [&b"wrong"[..], b"", b"right "] {
                let error = PrivateKey::from_encrypted_pem(&pem, wrong).unwrap_err();
                assert_eq!(error.code(), "wrong-passphrase");
                assert!(matches!(error, TrustError::WrongPassphrase { path: None }));
            }
        }
    }

    /// The sealed JSON inside an encrypted PEM, to alter and wrap again.
    fn sealed(pem: &str) -> serde_json::Value {
        let (_, body) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn wrap(json: &serde_json::Value) -> String {
        let body = serde_json::to_vec(json).unwrap();
        pkcs8::der::pem::encode_string(ENCRYPTED_KEY_PEM_LABEL, LineEnding::LF, &body).unwrap()
    }

    #[test]
    fn a_tampered_ciphertext_or_nonce_does_not_decrypt() {
        use base64ct::{Base64, Encoding as _};

        let pem = PrivateKey::generate(KeyAlgorithm::Ed25519)
            .to_encrypted_pem(b"pw")
            .unwrap();
        for (field, at) in [
            ("/ciphertext", 0),
            ("/ciphertext", 20),
            ("/cipher/nonce", 3),
            ("/kdf/salt", 31),
        ] {
            let mut json = sealed(&pem);
            let slot = json.pointer_mut(field).unwrap();
            let mut bytes = Base64::decode_vec(slot.as_str().unwrap()).unwrap();
            bytes[at] ^= 0x01;
            *slot = Base64::encode_string(&bytes).into();
            let error = PrivateKey::from_encrypted_pem(&wrap(&json), b"pw").unwrap_err();
            assert_eq!(error.code(), "wrong-passphrase", "{field}[{at}]");
        }
        // A ciphertext cut short.
        let mut json = sealed(&pem);
        json["ciphertext"] = "AAAAAAAAAAAAAAAAAAAAAAAA".into();
        let error = PrivateKey::from_encrypted_pem(&wrap(&json), b"pw").unwrap_err();
        assert_eq!(error.code(), "wrong-passphrase");
    }

    #[test]
    fn bad_kdf_parameters_are_refused_never_run() {
        let pem = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .to_encrypted_pem(b"pw")
            .unwrap();
        for params in [
            serde_json::json!({"N": 1u64 << 21, "r": 8, "p": 1}),
            serde_json::json!({"N": 1u64 << 20, "r": 8, "p": 1}),
            serde_json::json!({"N": 1000, "r": 8, "p": 1}),
            serde_json::json!({"N": 32768, "r": 0, "p": 1}),
            serde_json::json!({"N": 32768, "r": 8, "p": 1000}),
            serde_json::json!({"N": 4294967296u64, "r": 4294967295u64, "p": 1}),
        ] {
            let mut json = sealed(&pem);
            json["kdf"]["params"] = params.clone();
            let started = std::time::Instant::now();
            let error = PrivateKey::from_encrypted_pem(&wrap(&json), b"pw").unwrap_err();
            assert_eq!(error.code(), "unsupported-kdf-parameters", "{params}");
            assert!(started.elapsed().as_secs() < 2, "{params} was run");
        }
    }

    #[test]
    fn malformed_encrypted_keys_are_typed_errors() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let pem = key.to_encrypted_pem(b"pw").unwrap();
        let mut unknown_cipher = sealed(&pem);
        unknown_cipher["cipher"]["name"] = "aes-256-gcm".into();
        let mut missing_salt = sealed(&pem);
        missing_salt["kdf"].as_object_mut().unwrap().remove("salt");
        let not_json =
            pkcs8::der::pem::encode_string(ENCRYPTED_KEY_PEM_LABEL, LineEnding::LF, b"{").unwrap();
        for (input, expected) in [
            ("no PEM at all".to_owned(), "not a PEM"),
            (key.to_pem().unwrap().to_string(), "found PRIVATE KEY"),
            (wrap(&unknown_cipher), "aes-256-gcm"),
            (wrap(&missing_salt), "salt"),
            (not_json, "EOF"),
        ] {
            let error = PrivateKey::from_encrypted_pem(&input, b"pw").unwrap_err();
            assert_eq!(error.code(), "malformed-encrypted-key", "{input}");
            assert!(error.to_string().contains(expected), "{error}");
        }
        // The plain reader says the key needs a passphrase.
        let error = PrivateKey::from_pem(&pem).unwrap_err();
        assert_eq!(error.code(), "invalid-key");
        assert!(error.to_string().contains("passphrase"), "{error}");
    }
}
