//! Per-step credentials from relo.toml against a real OpenBao: a step's token reads
//! exactly its own granted secrets, lives as long as its timeout, and is dead once the
//! step finishes; signing keys come only for granted names.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use relo_manifest::parse_operator;
use relo_orchestrator::CredentialSource;
use relo_policy::{Grant, SecretGrant};
use relo_secrets::SecretProvider;
use relo_test_openbao::{APP_TOKEN_V2, Bao};
use relo_trust::KeyAlgorithm;

fn config(bao: &Bao) -> String {
    format!(
        r#"
[secrets]
provider = "vault"
address = "{address}"
auth = {{ token_file = "vault-token" }}

[secrets.bindings."relo-test/echo"]
forge_token = "{forge_token}"
unapproved = "{unapproved}"

[secrets.bindings."relo-test/other"]
token = "{other}"

[signing.keys]
release = "vault-transit:{key}"
local = "keys/local.key"
"#,
        address = bao.address,
        forge_token = bao.kv("app#token"),
        unapproved = bao.kv("app#user"),
        other = bao.kv("other#token"),
        key = bao.p256_key,
    )
}

fn grant() -> Grant {
    let mut grant = Grant::deny_all();
    for name in ["forge_token", "unapproved"] {
        grant.declared_secrets.insert(name.into());
    }
    grant.secrets.insert(
        "forge_token".into(),
        SecretGrant {
            inject: Vec::new(),
            reveal: false,
        },
    );
    grant.signer_keys.insert("release".into());
    grant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_token_reads_only_its_granted_secrets_and_dies_with_the_step() {
    let bao = Bao::start().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("vault-token"), bao.root_token()).unwrap();
    std::fs::create_dir(home.path().join("keys")).unwrap();
    relo_trust::generate_key_files(
        KeyAlgorithm::EcdsaP256,
        &relo_trust::KeyPaths::from_stem(home.path().join("keys/local")),
    )
    .unwrap();
    let config = parse_operator("relo.toml", config(&bao).as_bytes()).unwrap();
    let source = CredentialSource::from_config(&config, home.path())
        .await
        .unwrap();

    let issued = source
        .issue(
            "relo-test/echo",
            &grant(),
            Duration::from_secs(30),
            "run-1-deploy",
        )
        .await
        .unwrap();
    let secrets = issued.credentials.secrets.clone().expect("bound secrets");
    assert_eq!(
        secrets.read("forge_token").await.unwrap().expose(),
        APP_TOKEN_V2
    );
    // Bound in relo.toml but not approved: not the step's.
    assert_eq!(
        secrets.read("unapproved").await.unwrap_err().code(),
        "secret-unbound"
    );
    let token = issued.scoped_token().expect("a scoped token").clone();
    assert_eq!(token.ttl(), Duration::from_secs(30));
    // The token itself cannot read another step's secret. (Vault policies are per path:
    // it could read other fields of its own path, which the host never hands the step.)
    let error = token.read(&bao.path("other#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied");
    // Only the granted signing key, and it signs in Vault.
    let signers: Vec<&String> = issued.credentials.signers.keys().collect();
    assert_eq!(signers, ["release"]);
    let signer = issued.credentials.signers["release"].clone();
    let digest = [7_u8; 32];
    let signature = tokio::task::spawn_blocking(move || signer.sign_prehashed_sha256(&digest))
        .await
        .unwrap()
        .unwrap();
    assert!(!signature.is_empty());

    issued.finish().await;
    let error = token.read(&bao.path("app#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied");
}

#[tokio::test]
async fn a_file_backend_needs_a_private_file_and_vault_needs_auth() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("secrets.json");
    std::fs::write(&file, r#"{"demo/forge": {"token": "t"}}"#).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = parse_operator(
        "relo.toml",
        b"[secrets]\nprovider = \"file\"\n[secrets.bindings.\"relo-test/echo\"]\nforge_token = \"demo/forge#token\"\n",
    )
    .unwrap();
    let error = CredentialSource::from_config(&config, home.path())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("chmod 600"), "{error}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let source = CredentialSource::from_config(&config, home.path())
        .await
        .unwrap();
    let issued = source
        .issue("relo-test/echo", &grant(), Duration::from_secs(5), "step")
        .await
        .unwrap();
    let secrets = issued.credentials.secrets.clone().unwrap();
    assert_eq!(secrets.read("forge_token").await.unwrap().expose(), "t");
    assert!(issued.scoped_token().is_none());

    let missing_token_file = parse_operator(
        "relo.toml",
        b"[secrets]\nprovider = \"vault\"\naddress = \"http://127.0.0.1:1\"\nauth = { token_file = \"nope\" }\n",
    )
    .unwrap();
    let error = CredentialSource::from_config(&missing_token_file, home.path())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cannot read"), "{error}");
}

/// A `[signing.keys]` key that is also a person's or a trusted plugin signer's key would
/// make the step signing capability an oracle for that identity's approvals: refused,
/// naming the key and whose it is.
#[tokio::test]
async fn a_signing_key_that_is_also_an_identity_key_is_refused() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("keys")).unwrap();
    for stem in ["olga", "author", "release"] {
        relo_trust::generate_key_files(
            KeyAlgorithm::EcdsaP256,
            &relo_trust::KeyPaths::from_stem(home.path().join(format!("keys/{stem}"))),
        )
        .unwrap();
    }
    let text = |signing: &str| {
        format!(
            "[[trust.signers]]\nkey = \"keys/author.pub\"\nplugins = [\"acme/*\"]\n\n\
             [[people]]\nname = \"olga\"\nkeys = [\"keys/olga.pub\"]\nroles = [\"operator\"]\n\n\
             [signing.keys]\nrelease = \"keys/{signing}.key\"\n"
        )
    };
    for (stem, owner) in [
        ("olga", "person olga"),
        ("author", "[[trust.signers]] keys/author.pub"),
    ] {
        let config = parse_operator("relo.toml", text(stem).as_bytes()).unwrap();
        let error = CredentialSource::from_config(&config, home.path())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "signing-key-reuse", "{error}");
        let message = error.to_string();
        assert!(message.contains("[signing.keys] release"), "{message}");
        assert!(message.contains(owner), "{message}");
    }
    let config = parse_operator("relo.toml", text("release").as_bytes()).unwrap();
    CredentialSource::from_config(&config, home.path())
        .await
        .expect("a key of its own is accepted");
}
