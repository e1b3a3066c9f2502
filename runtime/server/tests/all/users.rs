//! The bootstrap `create_user`: argon2id with default parameters, the password never
//! stored, and refusals with stable codes for short, empty and long passwords, bad
//! names and names taken.

use axum::http::StatusCode;
use relo_server::{ApiError, Role, UserError, create_user};

use crate::support::{PASSWORD, TestServer, server_tests};

async fn passwords_are_stored_as_argon2id_hashes(server: TestServer) {
    create_user(
        &server.store,
        "rita",
        "a long enough password",
        &[Role::PluginAuthor],
    )
    .await
    .unwrap();
    let rita = server.store.user("rita").await.unwrap().unwrap();
    assert!(
        rita.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        rita.password_hash
    );
    assert!(!rita.password_hash.contains("a long enough password"));
    assert_eq!(rita.roles, ["plugin-author"]);
    // The same password hashes differently each time (a random salt).
    create_user(&server.store, "sam", "a long enough password", &[])
        .await
        .unwrap();
    let sam = server.store.user("sam").await.unwrap().unwrap();
    assert_ne!(sam.password_hash, rita.password_hash);

    let login = server.try_login("sam", "a long enough password").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let me = server.me(&crate::support::pair(&login).access).await;
    assert_eq!(me.body["roles"], serde_json::json!([]));
}

async fn weak_passwords_bad_names_and_taken_names_are_refused(server: TestServer) {
    let cases: [(&str, &str, &str, StatusCode, &str); 6] = [
        (
            "rita",
            "",
            "password-empty",
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            "rita",
            "elevenchars",
            "password-too-short",
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            "rita",
            &"x".repeat(1025),
            "password-too-long",
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            "",
            PASSWORD,
            "invalid-user-name",
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "rita smith",
            PASSWORD,
            "invalid-user-name",
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "olga",
            PASSWORD,
            "user-exists",
            StatusCode::CONFLICT,
            "name",
        ),
    ];
    for (name, password, code, status, field) in cases {
        let err = create_user(&server.store, name, password, &[Role::Admin])
            .await
            .expect_err(code);
        assert_eq!(err.code(), code, "{err}");
        let api = ApiError::from(err);
        assert_eq!(api.status, status);
        assert_eq!(api.code, code);
        assert_eq!(api.field.as_deref(), Some(field));
    }
    assert!(matches!(
        create_user(&server.store, "rita", "elevenchars", &[]).await,
        Err(UserError::PasswordTooShort { min: 12, got: 11 })
    ));
    assert_eq!(server.store.user("rita").await.unwrap(), None);
    // Twelve characters are enough.
    create_user(&server.store, "rita", "twelve chars", &[])
        .await
        .unwrap();
    let answer = server.try_login("rita", "twelve chars").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

server_tests!(
    passwords_are_stored_as_argon2id_hashes,
    weak_passwords_bad_names_and_taken_names_are_refused,
);
