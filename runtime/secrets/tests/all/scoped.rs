//! Per-step scoped tokens (T8): exactly the granted paths, for the step's time, revocable.

use std::sync::Arc;
use std::time::Duration;

use relo_secrets::{SecretProvider, StepSecrets};

use crate::support::{APP_TOKEN_V1, APP_TOKEN_V2, Bao, OTHER_TOKEN, path};

const TEN_MINUTES: Duration = Duration::from_secs(600);

#[tokio::test]
async fn a_scoped_token_reads_its_paths_and_is_denied_the_rest() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let token = provider
        .scoped(&[bao.path("app#token@1")], TEN_MINUTES, "publish")
        .await
        .unwrap();
    // The pinned version and the current one read the same API path.
    assert_eq!(
        token.read(&bao.path("app#token@1")).await.unwrap().expose(),
        APP_TOKEN_V1
    );
    assert_eq!(
        token.read(&bao.path("app#token")).await.unwrap().expose(),
        APP_TOKEN_V2
    );

    for denied in [
        bao.kv("other#token"),
        bao.kv("app2#token"),
        bao.kv("ap#token"),
        "secret/data/app#token".to_owned(),
    ] {
        let error = token.read(&path(&denied)).await.unwrap_err();
        assert_eq!(error.code(), "secret-denied", "{denied}: {error}");
        assert!(error.to_string().contains(&denied), "{error}");
    }
    token.revoke().await;
}

#[tokio::test]
async fn one_steps_token_cannot_read_another_steps_secret_and_dies_on_revoke() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let build = provider
        .scoped(&[bao.path("app#token")], TEN_MINUTES, "build")
        .await
        .unwrap();
    let publish = provider
        .scoped(&[bao.path("other#token")], TEN_MINUTES, "publish")
        .await
        .unwrap();
    assert_ne!(build.policy(), publish.policy());

    assert_eq!(
        build.read(&bao.path("app#token")).await.unwrap().expose(),
        APP_TOKEN_V2
    );
    assert_eq!(
        publish
            .read(&bao.path("other#token"))
            .await
            .unwrap()
            .expose(),
        OTHER_TOKEN
    );
    let error = build.read(&bao.path("other#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
    let error = publish.read(&bao.path("app#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");

    // The policy Vault holds is exactly the one path.
    let policy = vaultrs::sys::policy::read(&bao.admin(), build.policy())
        .await
        .unwrap();
    assert_eq!(
        policy.rules,
        format!(
            r#"{{"path":{{"{}":{{"capabilities":["read"]}}}}}}"#,
            bao.kv("app")
        )
    );

    build.revoke().await;
    let error = build.read(&bao.path("app#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
    // Its policy is gone; the other step is untouched.
    assert!(
        vaultrs::sys::policy::read(&bao.admin(), build.policy())
            .await
            .is_err()
    );
    assert_eq!(
        publish
            .read(&bao.path("other#token"))
            .await
            .unwrap()
            .expose(),
        OTHER_TOKEN
    );
    // Revoking twice does nothing.
    build.revoke().await;
    publish.revoke().await;
}

#[tokio::test]
async fn the_scoped_token_lives_exactly_its_ttl_with_only_its_policy() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let token = provider
        .scoped(&[bao.path("app#token")], TEN_MINUTES, "ttl")
        .await
        .unwrap();
    assert_eq!(token.ttl(), TEN_MINUTES);
    let info = token.lookup().await.unwrap();
    assert_eq!(info.creation_ttl, TEN_MINUTES);
    assert_eq!(info.explicit_max_ttl, TEN_MINUTES);
    assert!(
        info.ttl <= TEN_MINUTES && info.ttl >= TEN_MINUTES - Duration::from_secs(30),
        "{info:?}"
    );
    assert_eq!(
        info.policies,
        vec![token.policy().to_owned()],
        "no default policy"
    );
    assert!(!info.renewable);
    assert!(
        token.policy().starts_with("relo-step-ttl-"),
        "{}",
        token.policy()
    );
    token.revoke().await;
}

#[tokio::test]
async fn revoking_mid_step_fails_the_next_read() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let token = Arc::new(
        provider
            .scoped(&[bao.path("app#token")], TEN_MINUTES, "mid-step")
            .await
            .unwrap(),
    );
    // The step reads through its StepSecrets; the orchestrator keeps the token.
    let step = StepSecrets::new(
        Arc::clone(&token) as Arc<dyn SecretProvider>,
        [("forge".to_owned(), bao.path("app#token"))].into(),
    );
    assert_eq!(step.read("forge").await.unwrap().expose(), APP_TOKEN_V2);
    token.revoke().await;
    let error = step.read("forge").await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
}

#[tokio::test]
async fn an_expired_token_is_denied() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let token = provider
        .scoped(&[bao.path("app#token")], Duration::from_secs(1), "short")
        .await
        .unwrap();
    assert_eq!(token.ttl(), Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let error = token.read(&bao.path("app#token")).await.unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
    token.revoke().await;
}

#[tokio::test]
async fn wildcards_and_zero_ttls_are_refused_before_vault() {
    let bao = Bao::start().await;
    let provider = bao.root_provider().await;
    let error = provider
        .scoped(&[bao.path("*#token")], TEN_MINUTES, "glob")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider-config", "{error}");
    let error = provider
        .scoped(&[bao.path("app#token")], Duration::ZERO, "zero")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider-config", "{error}");
}

#[tokio::test]
async fn a_parent_without_rights_to_write_policies_is_denied() {
    let bao = Bao::start().await;
    let reader = relo_secrets::VaultProvider::connect(&bao.address, bao.approle().await)
        .await
        .unwrap();
    let error = reader
        .scoped(&[bao.path("app#token")], TEN_MINUTES, "no-rights")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "secret-denied", "{error}");
    assert!(
        error
            .to_string()
            .contains("sys/policies/acl/relo-step-no-rights-"),
        "{error}"
    );
}
