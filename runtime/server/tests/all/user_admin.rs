//! User management by an admin: create, list, change roles, disable (which revokes the
//! user's refresh and API tokens), set a password; an admin cannot lock themselves out;
//! `[[people]]` imported as users without a password; every change in the control chain.

use axum::http::StatusCode;
use relo_server::{Imported, import_people};
use relo_trust::Identity;
use serde_json::json;

use crate::support::{PASSWORD, TestServer, server_tests};

async fn an_admin_creates_lists_changes_and_disables_users(server: TestServer) {
    let ada = server.login("ada").await.access;
    let created = server
        .call(
            "POST",
            "/v1/users",
            Some(&ada),
            Some(json!({"name": "rita", "password": PASSWORD, "roles": ["plugin-author", "plugin-author"]})),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["roles"], json!(["plugin-author"]));
    assert!(created.body.get("password_hash").is_none());
    let again = server
        .call(
            "POST",
            "/v1/users",
            Some(&ada),
            Some(json!({"name": "rita", "password": PASSWORD, "roles": []})),
            None,
        )
        .await;
    again.assert_error(StatusCode::CONFLICT, "user-exists");
    let bad_role = server
        .call(
            "POST",
            "/v1/users",
            Some(&ada),
            Some(json!({"name": "sam", "password": PASSWORD, "roles": ["root"]})),
            None,
        )
        .await;
    bad_role.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(bad_role.field(), Some("roles[0]"));

    let list = server
        .call("GET", "/v1/users", Some(&ada), None, None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "ivan", "olga", "rita"]);
    assert!(!list.body.to_string().contains("argon2"));

    let rita = server.login("rita").await;
    let changed = server
        .call(
            "PUT",
            "/v1/users/rita/roles",
            Some(&ada),
            Some(json!({"roles": ["auditor"]})),
            None,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    // Roles are read on every request: the change shows at once.
    assert_eq!(
        server.me(&rita.access).await.body["roles"],
        json!(["auditor"])
    );
    let missing = server
        .call(
            "PUT",
            "/v1/users/nobody/roles",
            Some(&ada),
            Some(json!({"roles": []})),
            None,
        )
        .await;
    missing.assert_error(StatusCode::NOT_FOUND, "user-not-found");

    let disabled = server
        .call("POST", "/v1/users/rita/disable", Some(&ada), None, None)
        .await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT, "{}", disabled.body);
    server
        .me(&rita.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    server
        .refresh(&rita.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    server
        .try_login("rita", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");

    // Each change is in the control chain, by whom and to whom; refused ones are not.
    let actions: Vec<String> = server
        .audit_bodies("admin.action")
        .await
        .iter()
        // The test server's own users, made before the test began, are not its subject.
        .filter(|b| b["by"] != "relo serve")
        .map(|b| {
            format!(
                "{} {} {} {}",
                b["by"], b["action"], b["target"], b["detail"]
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            r#""ada" "user.created" "rita" "plugin-author""#,
            r#""ada" "user.roles-set" "rita" "auditor""#,
            r#""ada" "user.disabled" "rita" null"#,
        ]
    );
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn an_admin_cannot_lock_themselves_out(server: TestServer) {
    let ada = server.login("ada").await.access;
    let demote = server
        .call(
            "PUT",
            "/v1/users/ada/roles",
            Some(&ada),
            Some(json!({"roles": ["auditor"]})),
            None,
        )
        .await;
    demote.assert_error(StatusCode::CONFLICT, "self-lockout");
    let disable = server
        .call("POST", "/v1/users/ada/disable", Some(&ada), None, None)
        .await;
    disable.assert_error(StatusCode::CONFLICT, "self-lockout");
    // Keeping admin while adding a role is fine.
    let keep = server
        .call(
            "PUT",
            "/v1/users/ada/roles",
            Some(&ada),
            Some(json!({"roles": ["admin", "auditor"]})),
            None,
        )
        .await;
    assert_eq!(keep.status, StatusCode::OK, "{}", keep.body);
    assert_eq!(
        server.me(&ada).await.body["roles"],
        json!(["admin", "auditor"])
    );
    // A non-admin is refused before any of this, naming the permission.
    let olga = server.login("olga").await.access;
    let refused = server
        .call("POST", "/v1/users/ada/disable", Some(&olga), None, None)
        .await;
    refused.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("users.manage")
    );
}

async fn people_are_imported_without_a_password_until_an_admin_sets_one(server: TestServer) {
    // olga is a user already; oscar and paul of [[people]] are not.
    let policy = server.policy();
    assert_eq!(server.store.people_revision().await.unwrap(), None);
    let imported = import_people(&server.store, policy.people()).await.unwrap();
    assert_eq!(imported.users, ["oscar", "paul"]);
    // Every person's keys, olga's too: she had none in the store.
    let key_of = |name: &str| {
        let person = policy.people().iter().find(|p| p.name == name).unwrap();
        (name.to_owned(), person.keys[0].key_id().to_owned())
    };
    assert_eq!(
        imported.keys,
        [key_of("olga"), key_of("oscar"), key_of("paul")]
    );
    assert!(imported.opened_directory);
    assert!(server.store.people_revision().await.unwrap().is_some());
    assert_eq!(
        import_people(&server.store, policy.people()).await.unwrap(),
        Imported::default(),
        "importing twice changes nothing"
    );
    // Once the store is the source of people, a person added to relo.toml is reported,
    // not imported.
    let mut later = policy.people().to_vec();
    later.push(Identity {
        name: "newbie".to_owned(),
        keys: Vec::new(),
        roles: vec![relo_manifest::Role::Admin],
    });
    let again = import_people(&server.store, &later).await.unwrap();
    assert_eq!(again.left_out, ["newbie"]);
    assert!(again.users.is_empty() && again.keys.is_empty());
    assert!(server.store.user("newbie").await.unwrap().is_none());
    let oscar = server.store.user("oscar").await.unwrap().unwrap();
    assert_eq!(oscar.roles, ["operator"]);
    assert_eq!(
        server.store.user("olga").await.unwrap().unwrap().roles,
        ["operator", "auditor"],
        "an existing user is left as the store has them"
    );
    // No password yet: no password logs in, not even an empty one.
    for attempt in ["", PASSWORD, "anything at all"] {
        server
            .try_login("oscar", attempt)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    let ada = server.login("ada").await.access;
    let olga = server.login("olga").await.access;
    let set = |token: String, password: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    "PUT",
                    "/v1/users/oscar/password",
                    Some(&token),
                    Some(json!({ "password": password })),
                    None,
                )
                .await
        }
    };
    set(olga, PASSWORD)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    set(ada.clone(), "short")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "password-too-short");
    assert_eq!(set(ada, PASSWORD).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.try_login("oscar", PASSWORD).await.status,
        StatusCode::OK
    );

    let actions: Vec<String> = server
        .audit_bodies("admin.action")
        .await
        .iter()
        // The test server's own users, made before the test began, are not its subject.
        .filter(|b| b["by"] != "relo serve")
        .map(|b| format!("{} {} {}", b["by"], b["action"], b["target"]))
        .collect();
    assert_eq!(
        actions,
        [
            r#""relo.toml" "key.imported" "olga""#,
            r#""relo.toml" "user.imported" "oscar""#,
            r#""relo.toml" "key.imported" "oscar""#,
            r#""relo.toml" "user.imported" "paul""#,
            r#""relo.toml" "key.imported" "paul""#,
            r#""ada" "user.password-set" "oscar""#,
        ]
    );
    server.assert_audit_sound(&[PASSWORD]).await;
}

/// olga's login and API token, made before an admin acts on her.
struct Held {
    pair: crate::support::Pair,
    token: String,
}

async fn olga_holds_a_login_and_a_token(server: &TestServer) -> Held {
    let pair = server.login("olga").await;
    let made = server
        .call(
            "POST",
            "/v1/tokens",
            Some(&pair.access),
            Some(json!({"name": "ci", "scopes": ["audit.read"], "expires_in_days": 30})),
            None,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let token = made.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get("/v1/audit", Some(&token)).await.status,
        StatusCode::OK
    );
    Held { pair, token }
}

/// After an admin acted on olga: her refresh token and API token are refused, and the
/// store holds both revoked.
async fn assert_olga_holds_nothing(server: &TestServer, held: &Held) {
    server
        .refresh(&held.pair.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    server
        .get("/v1/audit", Some(&held.token))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-revoked");
    let tokens = server.store.api_tokens_of("olga").await.unwrap();
    assert!(!tokens.is_empty() && tokens.iter().all(|t| t.revoked_at.is_some()));
    let refused = server.audit_bodies("auth.refused").await;
    assert!(
        refused
            .iter()
            .any(|b| b["code"] == "token-revoked" && b["who"] == "olga"),
        "{refused:?}"
    );
    assert_eq!(server.audit_bodies("auth.token-reused").await.len(), 1);
}

/// A password reset ends whatever the old password let anyone start: the user's refresh
/// tokens and API tokens are revoked with it; the new password logs in.
async fn a_password_reset_revokes_the_users_refresh_and_api_tokens(server: TestServer) {
    let held = olga_holds_a_login_and_a_token(&server).await;
    let ada = server.login("ada").await.access;
    let new_password = "a brand new passphrase";
    let reset = server
        .call(
            "PUT",
            "/v1/users/olga/password",
            Some(&ada),
            Some(json!({ "password": new_password })),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    assert_olga_holds_nothing(&server, &held).await;
    server
        .try_login("olga", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(
        server.try_login("olga", new_password).await.status,
        StatusCode::OK
    );
    // Another user's tokens are untouched.
    let ivan = server.login("ivan").await;
    assert_eq!(server.refresh(&ivan.refresh).await.status, StatusCode::OK);
    let actions = server.audit_bodies("admin.action").await;
    assert!(
        actions.iter().any(|b| b["by"] == "ada"
            && b["action"] == "user.password-set"
            && b["target"] == "olga")
    );
    server
        .assert_audit_sound(&[PASSWORD, new_password, &held.token[8..]])
        .await;
}

/// Disabling a user revokes their refresh tokens and API tokens, which stay revoked if
/// the user is enabled again.
async fn disabling_a_user_revokes_their_refresh_and_api_tokens(server: TestServer) {
    let held = olga_holds_a_login_and_a_token(&server).await;
    let ada = server.login("ada").await.access;
    let disabled = server
        .call("POST", "/v1/users/olga/disable", Some(&ada), None, None)
        .await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT, "{}", disabled.body);
    server
        .store
        .set_user_disabled("olga", false, relo_server::Clock::now(&*server.clock))
        .await
        .unwrap();
    assert_olga_holds_nothing(&server, &held).await;
    let actions = server.audit_bodies("admin.action").await;
    assert!(
        actions
            .iter()
            .any(|b| b["by"] == "ada" && b["action"] == "user.disabled" && b["target"] == "olga")
    );
    server
        .assert_audit_sound(&[PASSWORD, &held.token[8..]])
        .await;
}

server_tests!(
    a_password_reset_revokes_the_users_refresh_and_api_tokens,
    disabling_a_user_revokes_their_refresh_and_api_tokens,
    people_are_imported_without_a_password_until_an_admin_sets_one,
    an_admin_creates_lists_changes_and_disables_users,
    an_admin_cannot_lock_themselves_out
);
