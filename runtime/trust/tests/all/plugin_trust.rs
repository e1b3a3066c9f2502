//! Plugin attestations, approvals and the trust policy, attacked: each attack ends in
//! its named refusal.

#![allow(
    clippy::unwrap_used,
    reason = "fixtures fail the test loudly on any setup error"
)]

use std::time::{Duration, SystemTime};

use relo_manifest::{OperatorConfig, PluginManifest, parse_operator, parse_plugin};
use relo_policy::{Capabilities, EgressRule, Method, declared_capabilities};
use relo_trust::{
    ApprovalRecord, Envelope, KeyAlgorithm, PrivateKey, Refusal, SignedApproval, SignedPlugin,
    Statement, TrustPolicy, VerifiedPlugin,
};

const WASM: &[u8] = b"\0asm\x0d\x00\x01\x00 a component's bytes";

/// A home with keys and a relo.toml: `author` signs `acme/*` for ivan, `retired` is a
/// retired signer, olga is an operator, ivan an operator and author (his keys include
/// the author key), rita a release manager.
struct World {
    home: tempfile::TempDir,
    author: PrivateKey,
    retired: PrivateKey,
    olga: PrivateKey,
    ivan: PrivateKey,
    rita: PrivateKey,
    stranger: PrivateKey,
}

const CONFIG: &str = r#"
[endpoints]
forge = "https://forge.example.com"

[trust]
auto_approve_within_previous = AUTO

[[trust.signers]]
key = "keys/author.pub"
plugins = ["acme/*"]
person = "ivan"

[[trust.signers]]
key = "keys/retired.pub"
plugins = ["acme/*"]
retired = true

[[people]]
name = "olga"
keys = ["keys/olga.pub"]
roles = ["operator"]

[[people]]
name = "ivan"
keys = ["keys/ivan.pub", "keys/author.pub"]
roles = ["operator", "plugin-author"]

[[people]]
name = "rita"
keys = ["keys/rita.pub"]
roles = ["release-manager"]
"#;

impl World {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("keys")).unwrap();
        let key = |name: &str, algorithm| {
            let key = PrivateKey::generate(algorithm);
            std::fs::write(
                home.path().join(format!("keys/{name}.pub")),
                key.public_key().to_pem(),
            )
            .unwrap();
            key
        };
        World {
            author: key("author", KeyAlgorithm::EcdsaP256),
            retired: key("retired", KeyAlgorithm::EcdsaP256),
            olga: key("olga", KeyAlgorithm::Ed25519),
            ivan: key("ivan", KeyAlgorithm::EcdsaP256),
            rita: key("rita", KeyAlgorithm::Ed25519),
            stranger: key("stranger", KeyAlgorithm::EcdsaP256),
            home,
        }
    }

    fn config_with(&self, auto: bool, forge: &str) -> OperatorConfig {
        let text = CONFIG
            .replace("AUTO", if auto { "true" } else { "false" })
            .replace("https://forge.example.com", forge);
        parse_operator("relo.toml", text.as_bytes()).unwrap()
    }

    fn config(&self) -> OperatorConfig {
        self.config_with(false, "https://forge.example.com")
    }

    fn policy_for(&self, config: &OperatorConfig) -> TrustPolicy {
        TrustPolicy::load(config, self.home.path()).unwrap()
    }

    fn policy(&self) -> TrustPolicy {
        self.policy_for(&self.config())
    }
}

fn manifest(name: &str, version: &str, extra: &str) -> PluginManifest {
    let text = format!(
        r#"
[plugin]
name = "{name}"
version = "{version}"

[[egress]]
url = "{{{{ endpoints.forge }}}}/api/tags"
methods = ["GET"]
{extra}
"#
    );
    parse_plugin("relo-plugin.toml", text.as_bytes()).unwrap()
}

fn signed(wasm: &[u8], manifest: &PluginManifest, key: &PrivateKey) -> Vec<u8> {
    SignedPlugin::sign(wasm, manifest, key)
        .unwrap()
        .envelope
        .to_json()
        .into_bytes()
}

fn verified(world: &World) -> VerifiedPlugin {
    let attestation = signed(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.author);
    world.policy().verify_plugin(WASM, &attestation).unwrap()
}

fn declared(world: &World, plugin: &VerifiedPlugin) -> Capabilities {
    declared_capabilities(&plugin.manifest, &world.config()).unwrap()
}

fn approve(
    plugin: &VerifiedPlugin,
    caps: Capabilities,
    person: &str,
    key: &PrivateKey,
) -> SignedApproval {
    SignedApproval::sign(plugin, caps, person, key, SystemTime::now(), None).unwrap()
}

fn record(approval: &SignedApproval) -> ApprovalRecord {
    ApprovalRecord {
        id: approval.id.clone(),
        digest: approval.digest.clone(),
        envelope: approval.envelope.clone(),
        revoked: None,
    }
}

fn refusal_code<T: std::fmt::Debug>(result: Result<T, Refusal>) -> &'static str {
    result.unwrap_err().code()
}

#[test]
fn a_signed_and_approved_plugin_is_admitted_with_the_signed_manifest() {
    let world = World::new();
    let plugin = verified(&world);
    assert_eq!(plugin.name, "acme/deploy");
    assert_eq!(plugin.version, "0.1.0");
    assert_eq!(plugin.signer_key_id, world.author.key_id());
    assert_eq!(plugin.signer_person.as_deref(), Some("ivan"));
    let declared = declared(&world, &plugin);
    assert_eq!(
        declared.egress[0].to_string(),
        "GET https://forge.example.com:443/api/tags",
        "the approval binds the resolved destination"
    );
    let approval = approve(&plugin, declared.clone(), "olga", &world.olga);
    let admission = world
        .policy()
        .admit(&plugin, &declared, &[record(&approval)], SystemTime::now())
        .unwrap();
    assert_eq!(admission.approval.id, approval.id);
    assert_eq!(admission.inherited_from, None);
}

#[test]
fn a_sigstore_bundle_is_accepted_as_the_attestation() {
    let world = World::new();
    let signed =
        SignedPlugin::sign(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.author).unwrap();
    let bundle = signed.bundle().to_json();
    let plugin = world
        .policy()
        .verify_plugin(WASM, bundle.as_bytes())
        .unwrap();
    assert_eq!(plugin.digest, signed.digest);
}

#[test]
fn one_flipped_byte_of_the_wasm_is_a_digest_mismatch() {
    let world = World::new();
    let attestation = signed(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.author);
    let mut tampered = WASM.to_vec();
    tampered[12] ^= 1;
    let refusal = world
        .policy()
        .verify_plugin(&tampered, &attestation)
        .unwrap_err();
    assert_eq!(refusal.code(), "digest-mismatch", "{refusal}");
}

#[test]
fn a_wider_manifest_swapped_in_is_refused() {
    let world = World::new();
    let narrow = manifest("acme/deploy", "0.1.0", "");
    let wider = manifest(
        "acme/deploy",
        "0.1.0",
        "[[egress]]\nurl = \"https://evil.example.net/*\"\nmethods = [\"POST\"]\n",
    );
    // Inside the envelope: the signature no longer covers the payload.
    let mut envelope = Envelope::from_json(&signed(WASM, &narrow, &world.author)).unwrap();
    let mut statement: Statement = serde_json::from_slice(&envelope.payload).unwrap();
    statement.predicate = serde_json::to_value(&wider).unwrap();
    envelope.payload = statement.to_canonical_json().unwrap();
    let code = refusal_code(
        world
            .policy()
            .verify_plugin(WASM, envelope.to_json().as_bytes()),
    );
    assert_eq!(code, "bad-signature");
    // Beside it: the file presented is not the signed one.
    let plugin = verified(&world);
    let refusal = plugin.check_manifest(&wider).unwrap_err();
    assert_eq!(refusal.code(), "manifest-mismatch");
    assert!(refusal.to_string().contains("egress"), "{refusal}");
    plugin.check_manifest(&narrow).unwrap();
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let world = World::new();
    let attestation = signed(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.stranger);
    let refusal = world
        .policy()
        .verify_plugin(WASM, &attestation)
        .unwrap_err();
    assert_eq!(refusal.code(), "untrusted-signer");
    assert!(refusal.to_string().contains(world.stranger.key_id()));
}

#[test]
fn a_key_trusted_for_acme_cannot_sign_evil() {
    let world = World::new();
    let attestation = signed(WASM, &manifest("evil/x", "0.1.0", ""), &world.author);
    let code = refusal_code(world.policy().verify_plugin(WASM, &attestation));
    assert_eq!(code, "signer-not-allowed-for-name");
}

#[test]
fn a_retired_signer_key_is_revoked() {
    let world = World::new();
    let attestation = signed(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.retired);
    let refusal = world
        .policy()
        .verify_plugin(WASM, &attestation)
        .unwrap_err();
    assert_eq!(refusal.code(), "revoked");
    assert!(refusal.to_string().contains("retired"), "{refusal}");
    assert_eq!(world.policy().retired_signers(), [world.retired.key_id()]);
}

#[test]
fn truncated_garbage_and_unsigned_attestations_are_refused() {
    let world = World::new();
    let attestation = signed(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.author);
    let policy = world.policy();
    let truncated = &attestation[..attestation.len() / 2];
    assert_eq!(
        refusal_code(policy.verify_plugin(WASM, truncated)),
        "malformed-attestation"
    );
    assert_eq!(
        refusal_code(policy.verify_plugin(WASM, b"")),
        "malformed-attestation"
    );
    assert_eq!(
        refusal_code(policy.verify_plugin(WASM, b"\x89PNG garbage \xff\xfe")),
        "malformed-attestation"
    );
    assert_eq!(
        refusal_code(policy.verify_plugin(
            WASM,
            br#"{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}"#
        )),
        "malformed-attestation"
    );
    let mut unsigned = Envelope::from_json(&attestation).unwrap();
    unsigned.signatures.clear();
    assert_eq!(
        refusal_code(policy.verify_plugin(WASM, unsigned.to_json().as_bytes())),
        "unsigned"
    );
    // A valid signature over something that is not a plugin attestation.
    let other = Statement::new(
        vec![relo_trust::Subject::sha256(
            "acme/deploy",
            relo_trust::sha256_hex(WASM),
        )],
        "https://example.com/other/v1",
        serde_json::json!({}),
    )
    .sign(&[&world.author])
    .unwrap();
    assert_eq!(
        refusal_code(policy.verify_plugin(WASM, other.to_json().as_bytes())),
        "malformed-attestation"
    );
}

#[test]
fn the_author_cannot_approve_their_own_plugin_with_any_of_their_keys() {
    let world = World::new();
    let plugin = verified(&world);
    let declared = declared(&world, &plugin);
    for key in [&world.ivan, &world.author] {
        let approval = approve(&plugin, declared.clone(), "ivan", key);
        let refusal = world
            .policy()
            .verify_approval(&plugin, &approval.envelope, &declared, SystemTime::now())
            .unwrap_err();
        assert_eq!(refusal.code(), "separation-of-duties", "{refusal}");
    }
}

/// An attestation signed by two trusted keys: a co-signer's first, the author's (ivan's)
/// second. Separation of duties looks at every signature, whatever their order, so
/// ivan's approval is still refused.
#[test]
fn separation_of_duties_checks_every_signature_on_the_attestation() {
    let world = World::new();
    let paul = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    std::fs::write(
        world.home.path().join("keys/paul.pub"),
        paul.public_key().to_pem(),
    )
    .unwrap();
    let text = CONFIG.replace("AUTO", "false").replace(
        "[[people]]\nname = \"olga\"",
        "[[trust.signers]]\nkey = \"keys/paul.pub\"\nplugins = [\"acme/*\"]\nperson = \"paul\"\n\n\
         [[people]]\nname = \"paul\"\nkeys = [\"keys/paul.pub\"]\nroles = [\"plugin-author\"]\n\n\
         [[people]]\nname = \"olga\"",
    );
    let policy = world.policy_for(&parse_operator("relo.toml", text.as_bytes()).unwrap());
    let by_author = SignedPlugin::sign(WASM, &manifest("acme/deploy", "0.1.0", ""), &world.author)
        .unwrap()
        .envelope;
    let both = Envelope::sign(
        by_author.payload_type.clone(),
        by_author.payload.clone(),
        &[&paul as &dyn relo_trust::Signer, &world.author],
    )
    .unwrap();
    let plugin = policy
        .verify_plugin(WASM, both.to_json().as_bytes())
        .unwrap();
    assert_eq!(
        plugin.signer_person.as_deref(),
        Some("paul"),
        "the first signature"
    );
    let declared = declared_capabilities(&plugin.manifest, &world.config()).unwrap();
    for key in [&world.ivan, &world.author] {
        let approval = approve(&plugin, declared.clone(), "ivan", key);
        let refusal = policy
            .verify_approval(&plugin, &approval.envelope, &declared, SystemTime::now())
            .unwrap_err();
        assert_eq!(refusal.code(), "separation-of-duties", "{refusal}");
    }
    let by_olga = approve(&plugin, declared.clone(), "olga", &world.olga);
    policy
        .verify_approval(&plugin, &by_olga.envelope, &declared, SystemTime::now())
        .expect("olga signed neither");
}

#[test]
fn an_approval_needs_the_operator_role_and_a_known_key() {
    let world = World::new();
    let plugin = verified(&world);
    let declared = declared(&world, &plugin);
    let by_rita = approve(&plugin, declared.clone(), "rita", &world.rita);
    let code = refusal_code(world.policy().verify_approval(
        &plugin,
        &by_rita.envelope,
        &declared,
        SystemTime::now(),
    ));
    assert_eq!(code, "approver-not-operator");
    let by_stranger = approve(&plugin, declared.clone(), "olga", &world.stranger);
    let code = refusal_code(world.policy().verify_approval(
        &plugin,
        &by_stranger.envelope,
        &declared,
        SystemTime::now(),
    ));
    assert_eq!(code, "untrusted-signer");
    // Olga's key claiming to be ivan's approval.
    let impostor = approve(&plugin, declared.clone(), "ivan", &world.olga);
    let code = refusal_code(world.policy().verify_approval(
        &plugin,
        &impostor.envelope,
        &declared,
        SystemTime::now(),
    ));
    assert_eq!(code, "malformed-attestation");
}

#[test]
fn an_approval_of_digest_a_does_not_admit_digest_b() {
    let world = World::new();
    let plugin_a = verified(&world);
    let declared = declared(&world, &plugin_a);
    let approval = approve(&plugin_a, declared.clone(), "olga", &world.olga);
    let other_wasm = b"\0asm\x0d\x00\x01\x00 other bytes";
    let attestation_b = signed(
        other_wasm,
        &manifest("acme/deploy", "0.1.0", ""),
        &world.author,
    );
    let plugin_b = world
        .policy()
        .verify_plugin(other_wasm, &attestation_b)
        .unwrap();
    let refusal = world
        .policy()
        .verify_approval(&plugin_b, &approval.envelope, &declared, SystemTime::now())
        .unwrap_err();
    assert_eq!(refusal.code(), "approval-digest-mismatch");
    // A database row that files A's approval under B is refused the same way.
    let mut row = record(&approval);
    row.digest = plugin_b.digest.clone();
    let code = refusal_code(
        world
            .policy()
            .admit(&plugin_b, &declared, &[row], SystemTime::now()),
    );
    assert_eq!(code, "approval-digest-mismatch");
}

#[test]
fn an_expired_approval_is_refused() {
    let world = World::new();
    let plugin = verified(&world);
    let declared = declared(&world, &plugin);
    let made = SystemTime::now() - Duration::from_secs(7200);
    let approval = SignedApproval::sign(
        &plugin,
        declared.clone(),
        "olga",
        &world.olga,
        made,
        Some(made + Duration::from_secs(3600)),
    )
    .unwrap();
    let refusal = world
        .policy()
        .admit(&plugin, &declared, &[record(&approval)], SystemTime::now())
        .unwrap_err();
    assert_eq!(refusal.code(), "approval-expired");
    // Before its expiry the same approval admits.
    world
        .policy()
        .admit(
            &plugin,
            &declared,
            &[record(&approval)],
            made + Duration::from_secs(60),
        )
        .unwrap();
}

#[test]
fn an_approval_wider_than_declared_is_refused() {
    let world = World::new();
    let plugin = verified(&world);
    let declared = declared(&world, &plugin);
    let mut wider = declared.clone();
    wider
        .egress
        .push(EgressRule::parse("https://evil.example.net/*", &[Method::Post]).unwrap());
    let approval = approve(&plugin, wider, "olga", &world.olga);
    let refusal = world
        .policy()
        .verify_approval(&plugin, &approval.envelope, &declared, SystemTime::now())
        .unwrap_err();
    assert_eq!(refusal.code(), "approval-exceeds-declared");
    assert!(
        refusal.to_string().contains("evil.example.net"),
        "{refusal}"
    );
}

#[test]
fn a_changed_endpoint_binding_unmatches_the_approval() {
    let world = World::new();
    let plugin = verified(&world);
    let approval = approve(&plugin, declared(&world, &plugin), "olga", &world.olga);
    let moved = world.config_with(false, "https://forge2.example.com");
    let declared_now = declared_capabilities(&plugin.manifest, &moved).unwrap();
    let refusal = world
        .policy_for(&moved)
        .admit(
            &plugin,
            &declared_now,
            &[record(&approval)],
            SystemTime::now(),
        )
        .unwrap_err();
    assert_eq!(refusal.code(), "approval-exceeds-declared");
    assert!(
        refusal.to_string().contains("forge.example.com"),
        "{refusal}"
    );
}

#[test]
fn a_revoked_approval_is_refused() {
    let world = World::new();
    let plugin = verified(&world);
    let declared = declared(&world, &plugin);
    let approval = approve(&plugin, declared.clone(), "olga", &world.olga);
    let mut row = record(&approval);
    row.revoked = Some("leaked".into());
    let refusal = world
        .policy()
        .admit(&plugin, &declared, &[row], SystemTime::now())
        .unwrap_err();
    assert_eq!(refusal.code(), "revoked");
    assert!(refusal.to_string().contains("leaked"));
    let code = refusal_code(
        world
            .policy()
            .admit(&plugin, &declared, &[], SystemTime::now()),
    );
    assert_eq!(code, "not-approved");
}

#[test]
fn a_new_version_inherits_an_approval_only_when_configured_and_not_wider() {
    let world = World::new();
    let old = verified(&world);
    let approval = approve(&old, declared(&world, &old), "olga", &world.olga);
    let new_wasm = b"\0asm\x0d\x00\x01\x00 version two";
    let same_caps = signed(
        new_wasm,
        &manifest("acme/deploy", "0.2.0", ""),
        &world.author,
    );
    let new = world.policy().verify_plugin(new_wasm, &same_caps).unwrap();
    let declared_new = declared(&world, &new);

    // Off by default: blocked, saying why.
    let refusal = world
        .policy()
        .admit(&new, &declared_new, &[record(&approval)], SystemTime::now())
        .unwrap_err();
    assert_eq!(refusal.code(), "not-approved");
    assert!(
        refusal.to_string().contains("auto_approve_within_previous"),
        "{refusal}"
    );

    // On: admitted with the previous version's approval.
    let auto = world.config_with(true, "https://forge.example.com");
    let admission = world
        .policy_for(&auto)
        .admit(&new, &declared_new, &[record(&approval)], SystemTime::now())
        .unwrap();
    assert_eq!(
        admission.inherited_from.as_deref(),
        Some(old.digest.as_str())
    );
    assert_eq!(admission.approval.id, approval.id);

    // A version asking for more is blocked even then, and the refusal lists each widening.
    let wider_wasm = b"\0asm\x0d\x00\x01\x00 version three";
    let wider = signed(
        wider_wasm,
        &manifest(
            "acme/deploy",
            "0.3.0",
            "[[egress]]\nurl = \"{{ endpoints.forge }}/api/releases\"\nmethods = [\"POST\"]\n\n[filesystem]\nworkspace = \"read-write\"\n",
        ),
        &world.author,
    );
    let wider = world
        .policy_for(&auto)
        .verify_plugin(wider_wasm, &wider)
        .unwrap();
    let declared_wider = declared_capabilities(&wider.manifest, &auto).unwrap();
    let refusal = world
        .policy_for(&auto)
        .admit(
            &wider,
            &declared_wider,
            &[record(&approval)],
            SystemTime::now(),
        )
        .unwrap_err();
    assert_eq!(refusal.code(), "not-approved");
    let Refusal::NotApproved { widened, .. } = &refusal else {
        panic!("{refusal:?}")
    };
    assert!(
        widened.iter().any(|w| w.contains("/api/releases")),
        "{widened:?}"
    );
    assert!(
        widened.iter().any(|w| w.contains("workspace")),
        "{widened:?}"
    );
}
