//! `relo:plugin/signer`: signatures with operator-held keys, only for granted key names.
//!
//! No signing backend is wired in yet (the trust and secrets issues add key files and
//! Vault Transit), so a granted key answers `unavailable`.

use relo_evidence::EvidenceEvent;

use crate::bindings::relo::plugin::signer::{Error, Host};
use crate::state::StepState;

fn is_sha256_hex(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl StepState {
    fn refuse_signature(&self, key: &str, digest: &str, code: &str, reason: String) {
        self.log.host_note(
            "warn",
            format!("signing with `{key}` refused ({code}): {reason}"),
        );
        self.recorder.record(EvidenceEvent::SignerDenied {
            key: key.to_owned(),
            digest: digest.chars().take(64).collect(),
            code: code.to_owned(),
            reason,
        });
    }
}

impl Host for StepState {
    fn sign_digest(
        &mut self,
        key: String,
        sha256_hex: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        if let Err(denial) = self.grant.signer_key(&key) {
            let reason = denial.to_string();
            self.refuse_signature(&key, &sha256_hex, denial.code(), reason.clone());
            return Ok(Err(Error::NotGranted(reason)));
        }
        let (code, reason) = if is_sha256_hex(&sha256_hex) {
            (
                "signer-unavailable",
                "no signing backend is configured for this host",
            )
        } else {
            (
                "invalid-digest",
                "the digest must be 64 lowercase hex characters",
            )
        };
        self.refuse_signature(&key, &sha256_hex, code, reason.to_owned());
        Ok(Err(Error::Unavailable(reason.to_owned())))
    }
}
