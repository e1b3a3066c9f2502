//! `relo:plugin/signer`: signatures with operator-held keys, only for granted key names.
//!
//! The step names a logical key and a SHA-256 digest; the host signs the digest
//! prehashed with the key `[signing.keys]` binds to that name (a key file, or a Vault
//! Transit key that never leaves Vault). For ECDSA P-256 the signature is ASN.1 DER over
//! that digest, returned base64-encoded: the format of `cosign sign-blob --key`, which
//! `openssl dgst -sha256 -verify` accepts against the artifact itself. The step never
//! sees key material; every signature and every refusal is evidence.

use base64ct::{Base64, Encoding as _};
use relo_evidence::EvidenceEvent;

use crate::bindings::relo::plugin::signer::{Error, Host};
use crate::state::StepState;

/// The 32 bytes of a lowercase hex SHA-256 digest.
fn sha256_bytes(digest: &str) -> Option<[u8; 32]> {
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digest, &mut bytes).ok()?;
    Some(bytes)
}

impl StepState {
    /// Counts a refused signature against the step's budget, then records it and notes
    /// it in the step log (guest-chosen text redacted and bounded). Past the budget, the
    /// trap that ends the step, and nothing recorded.
    async fn refuse_signature(
        &mut self,
        key: &str,
        digest: &str,
        code: &str,
        reason: String,
    ) -> wasmtime::Result<()> {
        self.charge_refusal()?;
        let (key, reason) = (self.guest_name(key), self.guest_text(reason));
        self.log.host_note(
            "warn",
            format!("signing with `{key}` refused ({code}): {reason}"),
        );
        self.recorder.record(EvidenceEvent::SignerDenied {
            key,
            digest: self.guest_name(&digest.chars().take(64).collect::<String>()),
            code: code.to_owned(),
            reason,
        });
        self.recorder.pace().await.map_err(wasmtime::Error::new)
    }
}

impl Host for StepState {
    async fn sign_digest(
        &mut self,
        key: String,
        sha256_hex: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        if let Err(denial) = self.grant.signer_key(&key) {
            let reason = denial.to_string();
            self.refuse_signature(&key, &sha256_hex, denial.code(), reason.clone())
                .await?;
            return Ok(Err(Error::NotGranted(reason)));
        }
        let Some(digest) = sha256_bytes(&sha256_hex) else {
            let reason = "the digest must be 64 lowercase hex characters";
            self.refuse_signature(&key, &sha256_hex, "invalid-digest", reason.to_owned())
                .await?;
            return Ok(Err(Error::Unavailable(reason.to_owned())));
        };
        let Some(signer) = self.signers.get(&key).cloned() else {
            let reason =
                format!("no signing key is bound to `{key}` on this host ([signing.keys])");
            self.refuse_signature(&key, &sha256_hex, "signer-unavailable", reason.clone())
                .await?;
            return Ok(Err(Error::Unavailable(reason)));
        };
        // A Transit signer waits on Vault: keep it off the executor's threads.
        let signed =
            tokio::task::spawn_blocking(move || signer.sign_prehashed_sha256(&digest)).await;
        match signed {
            Ok(Ok(signature)) => {
                self.recorder.record(EvidenceEvent::SignerSigned {
                    key,
                    digest: sha256_hex,
                });
                Ok(Ok(Base64::encode_string(&signature)))
            }
            Ok(Err(error)) => {
                let reason = error.to_string();
                self.refuse_signature(&key, &sha256_hex, "signer-unavailable", reason.clone())
                    .await?;
                Ok(Err(Error::Unavailable(reason)))
            }
            Err(join) => {
                let reason = format!("the signer failed: {join}");
                self.refuse_signature(&key, &sha256_hex, "signer-unavailable", reason.clone())
                    .await?;
                Ok(Err(Error::Unavailable(reason)))
            }
        }
    }
}
