//! Plugin attestations: the signed statement that binds a component's sha256 digest to
//! its capability manifest.
//!
//! An attestation is a DSSE envelope around an in-toto Statement v1 whose one subject is
//! the plugin's name with `{sha256: digest}`, whose predicate type is
//! [`PLUGIN_PREDICATE_TYPE`] and whose predicate is the manifest in its normalised JSON
//! form (signed as canonical JSON). The same envelope can be written as a Sigstore bundle.

use relo_manifest::PluginManifest;
use sha2::{Digest as _, Sha256};

use crate::{Envelope, Signer, SigstoreBundle, Statement, Subject, TrustError};

/// The predicate type of a plugin attestation.
pub const PLUGIN_PREDICATE_TYPE: &str = "https://relo.dev/attestation/plugin/v1";

/// The lowercase hex sha256 of `bytes`: how relo names a component.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A freshly signed plugin attestation.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedPlugin {
    /// sha256 of the component, lowercase hex.
    pub digest: String,
    /// The signed statement.
    pub envelope: Envelope,
    /// The key id that signed it.
    pub key_id: String,
}

impl SignedPlugin {
    /// Signs the attestation of `wasm` with the manifest `manifest`.
    ///
    /// Fails if the manifest has no canonical JSON form (an integer above 2^53) or the
    /// signer fails.
    pub fn sign(
        wasm: &[u8],
        manifest: &PluginManifest,
        signer: &dyn Signer,
    ) -> Result<Self, TrustError> {
        let digest = sha256_hex(wasm);
        let predicate =
            serde_json::to_value(manifest).map_err(|e| TrustError::MalformedStatement {
                reason: format!("the manifest has no JSON form: {e}"),
            })?;
        let statement = Statement::new(
            vec![Subject::sha256(manifest.plugin.name.as_str(), &digest)],
            PLUGIN_PREDICATE_TYPE,
            predicate,
        );
        let envelope = statement.sign(&[signer])?;
        Ok(Self {
            digest,
            envelope,
            key_id: signer.key_id().to_owned(),
        })
    }

    /// The same envelope as a Sigstore bundle v0.3 whose public-key hint is the key id.
    pub fn bundle(&self) -> SigstoreBundle {
        SigstoreBundle::from_envelope(&self.envelope, &self.key_id)
    }
}
