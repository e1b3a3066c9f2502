//! The evidence signer in Vault: `[evidence] signer = "vault-transit:NAME"` signs
//! checkpoints with an Ed25519 Transit key that never leaves a real OpenBao; its public
//! key is exported beside the keys, and the log verifies with that file alone after Vault
//! is gone.

use relo_test_openbao::Bao;

use super::support::{TestHome, describe, round_records};

fn configure(home: &TestHome, bao: &Bao, key: &str) {
    std::fs::write(home.path().join("vault-token"), bao.root_token()).expect("token file");
    let config = format!(
        "[evidence]\nsigner = \"vault-transit:{key}\"\n\n[secrets]\nprovider = \"vault\"\n\
         address = \"{}\"\nauth = {{ token_file = \"vault-token\" }}\n",
        bao.address
    );
    std::fs::write(home.path().join("relo.toml"), config).expect("relo.toml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_signed_by_a_transit_key_verify_with_the_exported_public_key() {
    // A server of its own: this test stops it.
    let mut bao = Bao::start_private().await;
    let home = TestHome::sqlite();
    configure(&home, &bao, &bao.ed25519_key);
    // Entries are sealed by the Transit key too, as relo seals them with this home.
    let transit: std::sync::Arc<dyn relo_trust::Signer> = std::sync::Arc::new(
        relo_secrets::TransitSigner::connect(&bao.address, bao.root(), "transit", &bao.ed25519_key)
            .expect("the Transit key"),
    );
    home.write_sealed_by(std::sync::Arc::clone(&transit), round_records(0))
        .await;
    home.relo_ok(&["evidence", "checkpoint"]);
    home.write_sealed_by(transit, round_records(1)).await;
    let saved = home.outside("trusted.txt").display().to_string();
    home.relo_ok(&["evidence", "checkpoint", "--save", &saved]);

    let exported = home
        .path()
        .join(format!("keys/vault-transit-{}.pub", bao.ed25519_key));
    let public = relo_trust::PublicKey::from_pem_file(&exported).expect("exported public key");
    assert_eq!(public.algorithm(), relo_trust::KeyAlgorithm::Ed25519);
    let note = std::fs::read_to_string(&saved).expect("saved checkpoint");
    assert!(note.contains('\u{2014}'), "a signed note: {note}");

    // Vault is gone: verification needs only the exported key.
    bao.kill();
    home.relo_ok(&["evidence", "verify", "--trusted-checkpoint", &saved]);
    // Signing now fails clearly, and nothing is stored.
    let down = home.relo(&["evidence", "checkpoint"]);
    assert_eq!(down.status.code(), Some(1), "{}", describe(&down));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("Vault Transit key"),
        "{}",
        describe(&down)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p256_transit_key_is_refused_as_the_evidence_key() {
    let bao = Bao::start().await;
    let home = TestHome::sqlite();
    configure(&home, &bao, &bao.p256_key);
    let refused = home.relo(&["evidence", "checkpoint"]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Ed25519"),
        "{}",
        describe(&refused)
    );
}
