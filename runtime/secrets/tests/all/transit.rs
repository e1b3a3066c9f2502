//! Signing with Vault Transit keys: verified by openssl and by relo-trust.

use std::process::Command;

use relo_secrets::{TransitSigner, VaultAuth};
use relo_trust::{KeyAlgorithm, PublicKey, Signer};
use sha2::{Digest as _, Sha256};

use crate::support::Bao;

/// Connects a Transit signer off the async runtime, as async callers must.
async fn signer(address: &str, auth: VaultAuth, key: &str) -> TransitSigner {
    let (address, key) = (address.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || TransitSigner::connect(&address, auth, "transit", &key))
        .await
        .unwrap()
        .unwrap()
}

/// The public key exactly as Transit returns it.
async fn transit_public_key(bao: &Bao, key: &str) -> String {
    let answer = vaultrs::transit::key::read(&bao.admin(), "transit", key)
        .await
        .unwrap();
    let vaultrs::api::transit::responses::ReadKeyData::Asymmetric(keys) = answer.keys else {
        panic!("not an asymmetric key")
    };
    keys["1"].public_key.clone()
}

#[tokio::test]
async fn ecdsa_p256_prehashed_signatures_verify_with_openssl_against_the_artifact() {
    let bao = Bao::start().await;
    let signer = signer(&bao.address, bao.root(), &bao.p256_key).await;
    assert_eq!(signer.algorithm(), KeyAlgorithm::EcdsaP256);
    assert_eq!(signer.key_version(), 1);
    let expected = PublicKey::from_pem(&transit_public_key(&bao, &bao.p256_key).await).unwrap();
    assert_eq!(signer.public_key(), &expected);
    assert_eq!(
        signer.key_id(),
        hex::encode(Sha256::digest(expected.to_der()))
    );

    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("artifact.tar");
    let public = dir.path().join("pub.pem");
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();
    // Several signatures, so both low-S and high-S ones (Go does not normalise) are seen.
    for round in 0..6_u8 {
        let contents = format!("release artifact {round}\n").repeat(1000);
        std::fs::write(&artifact, &contents).unwrap();
        let digest: [u8; 32] = Sha256::digest(&contents).into();
        // Called right on the test's runtime thread: it blocks, but neither panics nor
        // deadlocks, since the signer's requests run on its own thread.
        let signature = signer.sign_prehashed_sha256(&digest).unwrap();
        signer
            .public_key()
            .verify(contents.as_bytes(), &signature)
            .unwrap();
        let sig_path = dir.path().join("artifact.sig");
        std::fs::write(&sig_path, &signature).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&artifact)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl refused round {round}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    }
    // `sign` hashes the message first: the same kind of signature.
    let signature = signer.sign(b"hello").unwrap();
    signer.public_key().verify(b"hello", &signature).unwrap();
}

#[tokio::test]
async fn ed25519_signatures_verify_and_the_key_id_is_that_of_the_spki() {
    let bao = Bao::start().await;
    let signer = signer(&bao.address, bao.root(), &bao.ed25519_key).await;
    assert_eq!(signer.algorithm(), KeyAlgorithm::Ed25519);

    // The key id, computed independently: SHA-256 of the RFC 8410 SPKI around the raw key.
    let raw = base64_decode(&transit_public_key(&bao, &bao.ed25519_key).await);
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&raw);
    assert_eq!(signer.key_id(), hex::encode(Sha256::digest(&spki)));
    assert_eq!(signer.public_key().raw_bytes(), raw);

    let message = b"checkpoint\n42\nhash\n";
    let signature = signer.sign(message).unwrap();
    assert_eq!(signature.len(), 64);
    signer.public_key().verify(message, &signature).unwrap();
    PublicKey::from_der(&spki)
        .unwrap()
        .verify(message, &signature)
        .unwrap();
    assert!(
        signer
            .public_key()
            .verify(b"another message", &signature)
            .is_err()
    );

    let error = signer.sign_prehashed_sha256(&[0; 32]).unwrap_err();
    assert_eq!(error.code(), "prehash-unsupported", "{error}");
}

#[tokio::test]
async fn transit_down_is_a_signing_error_not_a_panic() {
    // A server of its own: this test stops it.
    let mut bao = Bao::start_private().await;
    let signer = signer(&bao.address, bao.root(), &bao.p256_key).await;
    let key_id = signer.key_id().to_owned();
    signer.sign(b"before").unwrap();
    bao.kill();
    let error = signer.sign_prehashed_sha256(&[7; 32]).unwrap_err();
    assert_eq!(error.code(), "signing-failed", "{error}");
    match &error {
        relo_trust::TrustError::Signing { key_id: id, reason } => {
            assert_eq!(id, &key_id);
            assert!(reason.contains("cannot reach Vault at"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The signer keeps answering (no dead thread) and connecting now fails cleanly.
    assert_eq!(signer.sign(b"after").unwrap_err().code(), "signing-failed");
    let (address, auth, key) = (bao.address.clone(), bao.root(), bao.p256_key.clone());
    let error = tokio::task::spawn_blocking(move || {
        TransitSigner::connect(&address, auth, "transit", &key)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(error.code(), "provider-unavailable", "{error}");
}

#[tokio::test]
async fn unknown_and_unsuitable_keys_are_refused() {
    let bao = Bao::start().await;
    let connect = |key: String| {
        let (address, auth) = (bao.address.clone(), bao.root());
        tokio::task::spawn_blocking(move || TransitSigner::connect(&address, auth, "transit", &key))
    };
    let error = connect("no-such-key".to_owned())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.code(), "secret-not-found", "{error}");

    let aes = bao.name("aes");
    vaultrs::transit::key::create(&bao.admin(), "transit", &aes, None)
        .await
        .unwrap();
    let error = connect(aes).await.unwrap().unwrap_err();
    assert_eq!(error.code(), "provider-config", "{error}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64ct::{Base64, Encoding as _};
    Base64::decode_vec(text.trim()).unwrap()
}
