//! Reading KV v2 secrets: current and pinned versions, what is missing, AppRole, health.

use relo_secrets::{SecretProvider as _, VaultProvider};

use crate::support::{APP_TOKEN_V1, APP_TOKEN_V2, Bao, path};

#[tokio::test]
async fn reads_the_current_version_with_its_number() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let value = provider.read(&bao.path("app#token")).await.unwrap();
    assert_eq!(value.expose(), APP_TOKEN_V2);
    assert_eq!(value.version(), Some(2));
    let user = provider.read(&bao.path("app#user")).await.unwrap();
    assert_eq!(user.expose(), "relo-bot");
    assert_eq!(provider.kind(), "vault");
}

#[tokio::test]
async fn reads_a_pinned_version() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let value = provider.read(&bao.path("app#token@1")).await.unwrap();
    assert_eq!(value.expose(), APP_TOKEN_V1);
    assert_eq!(value.version(), Some(1));

    // Version 1 has no `user` field yet; version 9 does not exist.
    let error = provider.read(&bao.path("app#user@1")).await.unwrap_err();
    assert_eq!(error.code(), "secret-not-found", "{error}");
    assert!(error.to_string().contains("no field `user`"), "{error}");
    let error = provider.read(&bao.path("app#token@9")).await.unwrap_err();
    assert_eq!(error.code(), "secret-not-found", "{error}");
    assert!(error.to_string().contains("no version 9"), "{error}");
}

#[tokio::test]
async fn a_missing_path_is_not_found() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let error = provider
        .read(&bao.path("nothing-here#token"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "secret-not-found", "{error}");
    let message = error.to_string();
    assert!(message.contains(&bao.kv("nothing-here#token")), "{message}");
    assert!(
        message.contains("nothing is stored at this path"),
        "{message}"
    );

    // A path that is not KV v2 is a configuration error, before any request.
    let not_kv2 = path(&format!("{}/app#token", bao.kv_mount));
    let error = provider.read(&not_kv2).await.unwrap_err();
    assert_eq!(error.code(), "provider-config", "{error}");
}

#[tokio::test]
async fn a_missing_field_is_not_found_and_the_error_holds_no_value() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let error = provider.read(&bao.path("app#password")).await.unwrap_err();
    assert_eq!(error.code(), "secret-not-found", "{error}");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("no field `password`"), "{shown}");
    for value in [APP_TOKEN_V1, APP_TOKEN_V2, "relo-bot"] {
        assert!(!shown.contains(value), "{shown}");
    }
}

#[tokio::test]
async fn approle_logs_in_and_reads_what_its_policy_allows() {
    let bao = Bao::start().await;
    let provider = VaultProvider::connect(&bao.address, bao.approle().await)
        .await
        .unwrap();
    let value = provider.read(&bao.path("app#token")).await.unwrap();
    assert_eq!(value.expose(), APP_TOKEN_V2);
    let error = provider.read(&bao.path("other#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");

    // A wrong secret id is refused at login.
    let relo_secrets::VaultAuth::AppRole { role_id, mount, .. } = bao.approle().await else {
        unreachable!()
    };
    let wrong = relo_secrets::VaultAuth::AppRole {
        role_id,
        secret_id: zeroize::Zeroizing::new("not-the-secret-id".to_owned()),
        mount,
    };
    let error = VaultProvider::connect(&bao.address, wrong)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
    let login = format!("auth/{}/login", bao.approle_mount);
    assert!(error.to_string().contains(&login), "{error}");
    assert!(!error.to_string().contains("not-the-secret-id"), "{error}");
}

#[tokio::test]
async fn the_health_check_accepts_openbao() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let health = provider.health().await.unwrap();
    assert!(
        health.initialized && !health.sealed && !health.standby,
        "{health:?}"
    );
    assert!(
        health
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with('2')),
        "{health:?}"
    );
}
