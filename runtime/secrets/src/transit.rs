//! A [`Signer`] whose key lives in Vault Transit and never leaves it.

use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use base64ct::{Base64, Encoding as _};
use relo_trust::{KeyAlgorithm, PublicKey, Signer, TrustError};
use sha2::{Digest as _, Sha256};
use vaultrs::api::transit::requests::SignDataRequest;
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::api::transit::{HashAlgorithm, KeyType, MarshalingAlgorithm};

use crate::SecretError;
use crate::vault::{Session, VAULT_TIMEOUT, VaultAuth};

/// Signs with a Vault Transit key; the private key stays in Vault.
///
/// Key types: `ecdsa-p256` (a SHA-256 digest, `prehashed=true`, ASN.1 DER: verifies
/// against the artifact with `openssl dgst -sha256 -verify` and cosign) and `ed25519` (the
/// message itself: use these for evidence checkpoints, so the C2SP key type stays Ed25519
/// whichever signer is configured). Each signature is checked against
/// [`Signer::public_key`] before it is returned.
///
/// [`Signer`] is synchronous and vaultrs is async, so each signer owns one background
/// thread running a current-thread tokio runtime; [`Signer::sign`] sends the request over
/// a channel and blocks until the answer. Call it from blocking contexts: in async code,
/// through `tokio::task::spawn_blocking` (calling it on a runtime thread does not panic
/// or deadlock, but stalls that thread). A request times out after [`VAULT_TIMEOUT`] (or
/// the timeout given), so a dead Vault gives [`TrustError::Signing`], never a hang or a
/// panic. The thread ends when the signer is dropped.
///
/// The token needs `read` on `<mount>/keys/<name>` and `update` on `<mount>/sign/<name>`.
///
/// [`VAULT_TIMEOUT`]: crate::VAULT_TIMEOUT
pub struct TransitSigner {
    public_key: PublicKey,
    reference: String,
    version: u64,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl fmt::Debug for TransitSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitSigner")
            .field("key", &self.reference)
            .field("version", &self.version)
            .field("algorithm", &self.public_key.algorithm())
            .field("key_id", &self.public_key.key_id())
            .finish_non_exhaustive()
    }
}

/// One signing request to the background thread.
struct Job {
    input: Input,
    reply: mpsc::SyncSender<Result<Vec<u8>, String>>,
}

enum Input {
    Message(Vec<u8>),
    Digest([u8; 32]),
}

impl TransitSigner {
    /// Connects to Vault at `address`, logs in with `auth`, and reads the public key of
    /// the latest version of the Transit key `name` mounted at `mount` (usually
    /// `transit`). Every signature is then made with that key version, so it always
    /// verifies with [`Signer::public_key`] even after the key is rotated in Vault.
    ///
    /// Blocks until Vault has answered. Refuses key types other than `ecdsa-p256` and
    /// `ed25519`, and derived keys.
    pub fn connect(
        address: &str,
        auth: VaultAuth,
        mount: &str,
        name: &str,
    ) -> Result<Self, SecretError> {
        Self::connect_with_timeout(address, auth, mount, name, VAULT_TIMEOUT)
    }

    /// [`TransitSigner::connect`] with another request timeout.
    pub fn connect_with_timeout(
        address: &str,
        auth: VaultAuth,
        mount: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Self, SecretError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SecretError::Config(format!("cannot start the Transit runtime: {e}")))?;
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let address = address.to_owned();
        let key = TransitKey {
            mount: mount.to_owned(),
            name: name.to_owned(),
        };
        let reference = key.to_string();
        std::thread::Builder::new()
            .name(format!("relo-transit-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let started = async {
                        let session = Session::login(&address, auth, timeout).await?;
                        let (public_key, version) = key.read_public_key(&session).await?;
                        Ok::<_, SecretError>((session, public_key, version))
                    };
                    let (session, public_key, version) = match started.await {
                        Ok(started) => started,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    if ready_tx.send(Ok((public_key.clone(), version))).is_err() {
                        return;
                    }
                    while let Some(job) = queue.recv().await {
                        let signed = key.sign(&session, &public_key, version, job.input).await;
                        let _ = job.reply.send(signed);
                    }
                });
            })
            .map_err(|e| SecretError::Config(format!("cannot start the Transit thread: {e}")))?;
        let (public_key, version) = ready_rx.recv().map_err(|_| SecretError::Unavailable {
            reason: format!("the Transit thread for {reference} stopped while starting"),
        })??;
        tracing::debug!(
            key = %reference,
            version,
            key_id = %public_key.key_id(),
            "Transit signer ready"
        );
        Ok(Self {
            public_key,
            reference,
            version,
            jobs,
        })
    }

    /// The key version every signature is made with.
    pub fn key_version(&self) -> u64 {
        self.version
    }

    fn request(&self, input: Input) -> Result<Vec<u8>, TrustError> {
        let failed = |reason: String| TrustError::Signing {
            key_id: self.public_key.key_id().to_owned(),
            reason: format!("Vault Transit key {}: {reason}", self.reference),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { input, reply })
            .map_err(|_| failed("the Transit thread has stopped".to_owned()))?;
        answer
            .recv()
            .map_err(|_| failed("the Transit thread has stopped".to_owned()))?
            .map_err(failed)
    }
}

impl Signer for TransitSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Ed25519 signs `message`; P-256 signs its SHA-256 digest (the same signature as
    /// hashing in Vault, with less to send).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        match self.public_key.algorithm() {
            KeyAlgorithm::Ed25519 => self.request(Input::Message(message.to_vec())),
            KeyAlgorithm::EcdsaP256 => self.request(Input::Digest(Sha256::digest(message).into())),
        }
    }

    fn sign_prehashed_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, TrustError> {
        match self.public_key.algorithm() {
            KeyAlgorithm::Ed25519 => Err(TrustError::PrehashUnsupported {
                algorithm: KeyAlgorithm::Ed25519,
            }),
            KeyAlgorithm::EcdsaP256 => self.request(Input::Digest(*digest)),
        }
    }
}

/// A Transit key: `<mount>/keys/<name>`.
struct TransitKey {
    mount: String,
    name: String,
}

impl fmt::Display for TransitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/keys/{}", self.mount, self.name)
    }
}

impl TransitKey {
    /// The public key of the latest version, and that version.
    async fn read_public_key(&self, session: &Session) -> Result<(PublicKey, u64), SecretError> {
        let reference = self.to_string();
        let answer = vaultrs::transit::key::read(session.client(), &self.mount, &self.name)
            .await
            .map_err(|e| session.error(e, &reference, "reading the Transit key"))?;
        let config =
            |reason: String| SecretError::Config(format!("the Transit key {reference} {reason}"));
        if answer.derived {
            return Err(config(
                "is a derived key; relo signs with plain keys only".to_owned(),
            ));
        }
        let ReadKeyData::Asymmetric(versions) = answer.keys else {
            return Err(config(
                "has no public keys (is it a symmetric key?)".to_owned(),
            ));
        };
        let (version, entry) = versions
            .iter()
            .filter_map(|(version, entry)| Some((version.parse::<u64>().ok()?, entry)))
            .max_by_key(|(version, _)| *version)
            .ok_or_else(|| config("has no key versions".to_owned()))?;
        let public_key = match answer.key_type {
            KeyType::EcdsaP256 => PublicKey::from_pem(&entry.public_key),
            KeyType::Ed25519 => Base64::decode_vec(entry.public_key.trim())
                .ok()
                .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
                .ok_or_else(|| TrustError::InvalidKey {
                    what: "public key",
                    reason: "Transit's Ed25519 key is not 32 bytes of base64".to_owned(),
                })
                .and_then(|raw| PublicKey::from_raw_ed25519(&raw)),
            other => {
                return Err(config(format!(
                    "has type {}; relo signs with ecdsa-p256 or ed25519 keys",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("{other:?}"))
                )));
            }
        }
        .map_err(|e| config(format!("has a public key relo cannot read: {e}")))?;
        Ok((public_key, version))
    }

    /// Signs `input` with key version `version` and checks the signature against
    /// `public_key` before returning it. Errors are reasons, never panics.
    async fn sign(
        &self,
        session: &Session,
        public_key: &PublicKey,
        version: u64,
        input: Input,
    ) -> Result<Vec<u8>, String> {
        let mut request = SignDataRequest::builder();
        request.key_version(version);
        let encoded = match &input {
            Input::Digest(digest) => {
                request
                    .prehashed(true)
                    .hash_algorithm(HashAlgorithm::Sha2_256)
                    .marshaling_algorithm(MarshalingAlgorithm::Asn1);
                Base64::encode_string(digest)
            }
            Input::Message(message) => Base64::encode_string(message),
        };
        let answer = vaultrs::transit::data::sign(
            session.client(),
            &self.mount,
            &self.name,
            &encoded,
            Some(&mut request),
        )
        .await
        .map_err(|e| session.error(e, &format!("{}/sign/{}", self.mount, self.name), "signing"))
        .map_err(|e| e.to_string())?;
        let prefix = format!("vault:v{version}:");
        let signature = answer
            .signature
            .strip_prefix(&prefix)
            .and_then(|encoded| Base64::decode_vec(encoded).ok())
            .ok_or_else(|| {
                format!(
                    "Vault at {} answered a signature that is not `{prefix}<base64>`",
                    session.address()
                )
            })?;
        let verified = match &input {
            Input::Digest(digest) => public_key.verify_prehashed_sha256(digest, &signature),
            Input::Message(message) => public_key.verify(message, &signature),
        };
        verified.map_err(|_| {
            format!(
                "the signature Vault made does not verify with key id {}",
                public_key.key_id()
            )
        })?;
        Ok(signature)
    }
}
