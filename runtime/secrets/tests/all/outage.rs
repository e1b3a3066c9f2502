//! Vault going away in the middle of a run.

use std::time::Duration;

use relo_secrets::SecretProvider as _;

use crate::support::{APP_TOKEN_V2, Bao, path};

#[tokio::test]
async fn vault_down_mid_run_is_provider_unavailable() {
    // A server of its own: this test stops it.
    let mut bao = Bao::start_private().await;
    let provider = bao.root_provider().await;
    let token = provider
        .scoped(&[bao.path("app#token")], Duration::from_secs(600), "outage")
        .await
        .unwrap();
    assert_eq!(
        provider
            .read(&bao.path("app#token"))
            .await
            .unwrap()
            .expose(),
        APP_TOKEN_V2
    );

    bao.kill();
    for error in [
        provider.read(&bao.path("app#token")).await.unwrap_err(),
        token.read(&bao.path("app#token")).await.unwrap_err(),
        provider.health().await.unwrap_err(),
    ] {
        assert_eq!(error.code(), "provider-unavailable", "{error}");
        let message = error.to_string();
        // The first request may meet the pooled connection being closed, later ones a
        // refused connection: both say they cannot reach the server, and where it is.
        assert!(message.contains("cannot reach"), "{message}");
        assert!(message.contains(&bao.address), "{message}");
    }
    let message = provider
        .read(&bao.path("app#token"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );

    // Revoking cannot reach Vault either: logged, not fatal.
    token.revoke().await;
    let error = provider
        .scoped(&[bao.path("app#token")], Duration::from_secs(60), "later")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider-unavailable", "{error}");
}

#[tokio::test]
async fn nothing_listening_is_unavailable_at_once() {
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let auth = relo_secrets::VaultAuth::Token(zeroize::Zeroizing::new("t".to_owned()));
    let provider = relo_secrets::VaultProvider::connect(&address, auth)
        .await
        .unwrap();
    let error = provider.read(&path("kv/data/app#token")).await.unwrap_err();
    assert_eq!(error.code(), "provider-unavailable", "{error}");
}
