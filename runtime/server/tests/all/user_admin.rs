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

server_tests!(
    people_are_imported_without_a_password_until_an_admin_sets_one,
    an_admin_creates_lists_changes_and_disables_users,
    an_admin_cannot_lock_themselves_out
);
