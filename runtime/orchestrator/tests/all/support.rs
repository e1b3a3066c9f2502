//! Fixtures shared by the orchestrator's tests: a relo home with an author key and an
//! operator (olga) key, and plugins imported into its store, signed and approved.

use std::path::Path;
use std::time::SystemTime;

use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_manifest::{OperatorConfig, parse_plugin};
use relo_policy::declared_capabilities;
use relo_store::{NewApproval, NewPlugin, Store};
use relo_trust::{KeyAlgorithm, PrivateKey, SignedApproval, SignedPlugin, TrustPolicy};

/// The keys of a test home: `keys/author.pub` signs plugins, `keys/olga.pub` approves.
pub struct Keys {
    pub author: PrivateKey,
    pub olga: PrivateKey,
}

/// Generates the author and olga keys and writes their public halves under `home/keys`.
pub fn keys(home: &Path) -> Keys {
    std::fs::create_dir_all(home.join("keys")).unwrap();
    let keys = Keys {
        author: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
        olga: PrivateKey::generate(KeyAlgorithm::Ed25519),
    };
    for (name, key) in [("author", &keys.author), ("olga", &keys.olga)] {
        std::fs::write(
            home.join(format!("keys/{name}.pub")),
            key.public_key().to_pem(),
        )
        .unwrap();
    }
    keys
}

/// A control-scope evidence record.
pub fn control(event: EvidenceEvent) -> EvidenceRecord {
    EvidenceRecord::new(Scope::Control, None, event)
}

/// What [`register`] stored.
pub struct Registered {
    pub digest: String,
    pub approval_id: String,
}

/// Signs the component at `wasm` with the manifest `manifest` (TOML) by the author,
/// imports it into `store` and stores olga's approval of everything it declares, each
/// with its control evidence entry.
pub async fn register(
    store: &Store,
    config: &OperatorConfig,
    home: &Path,
    keys: &Keys,
    manifest: &str,
    wasm: &str,
) -> Registered {
    let bytes = std::fs::read(wasm).unwrap();
    let manifest = parse_plugin("relo-plugin.toml", manifest.as_bytes()).unwrap();
    let signed = SignedPlugin::sign(&bytes, &manifest, &keys.author).unwrap();
    let attestation = signed.envelope.to_json();
    let name = manifest.plugin.name.as_str();
    let version = manifest.plugin.version.to_string();
    let added = EvidenceEvent::PluginAdded {
        name: name.into(),
        version: version.clone(),
        digest: signed.digest.clone(),
        signer_key_id: signed.key_id.clone(),
    };
    let plugin = NewPlugin {
        digest: &signed.digest,
        name,
        version: &version,
        bytes: &bytes,
        attestation: &attestation,
    };
    store.add_plugin(&plugin, &control(added)).await.unwrap();

    let policy = TrustPolicy::load(config, home).unwrap();
    let verified = policy
        .verify_plugin(&bytes, attestation.as_bytes())
        .unwrap();
    let declared = declared_capabilities(&verified.manifest, config).unwrap();
    let approval = SignedApproval::sign(
        &verified,
        declared,
        "olga",
        &keys.olga,
        SystemTime::now(),
        None,
    )
    .unwrap();
    let granted = EvidenceEvent::ApprovalGranted {
        approval_id: approval.id.clone(),
        plugin: verified.reference(),
        digest: verified.digest.clone(),
        approver: "olga".into(),
        key_id: keys.olga.key_id().to_owned(),
        expires_at: None,
    };
    let row = NewApproval {
        id: &approval.id,
        digest: &approval.digest,
        approved_by: "olga",
        document: &approval.envelope.to_json(),
        expires_at: None,
    };
    store.add_approval(&row, &control(granted)).await.unwrap();
    Registered {
        digest: signed.digest,
        approval_id: approval.id,
    }
}
