//! The RBAC matrix: every role against every route of [`relo_server::ROUTES`]. A route
//! needing a permission answers 403 `forbidden` (naming the permission) exactly to the
//! roles the permission table does not grant it, and every refusal is in the audit
//! chain. A route without an [`Access`] cannot be written; a route whose permission row
//! does not name it fails here.

use axum::http::StatusCode;
use relo_server::{Access, PERMISSIONS, ROUTES, Role, allows, create_user};
use serde_json::json;

use crate::support::{PASSWORD, TestServer, server_tests};

fn concrete(path: &str) -> String {
    path.replace("{name}", "nobody")
        .replace("{id}", "no-such-token")
        .replace("{key_id}", "no-such-key")
        .replace("{digest}", &"0".repeat(64))
}

async fn every_role_meets_the_permission_table_on_every_route(server: TestServer) {
    let mut forbidden = 0;
    for role in Role::ALL {
        let name = format!("only-{role}");
        create_user(&server.store, &name, PASSWORD, &[role])
            .await
            .unwrap();
        let token = server.login(&name).await.access;
        for route in ROUTES {
            let path = concrete(route.path);
            let method = route.method.as_str();
            let answer = server
                .call(method, &path, Some(&token), Some(json!({})), None)
                .await;
            let allowed = match route.access {
                Access::Public | Access::Authenticated => true,
                Access::Requires(permission) => allows(role, permission),
            };
            if allowed {
                assert!(
                    answer.status != StatusCode::FORBIDDEN
                        && answer.status != StatusCode::UNAUTHORIZED,
                    "{role} on {method} {path}: {} {}",
                    answer.status,
                    answer.body
                );
            } else {
                answer.assert_error(StatusCode::FORBIDDEN, "forbidden");
                let Access::Requires(permission) = route.access else {
                    unreachable!()
                };
                let message = answer.body["error"]["message"].as_str().unwrap();
                assert!(message.contains(permission.as_str()), "{message}");
                forbidden += 1;
            }
            if route.access != Access::Public {
                let anonymous = server
                    .call(method, &path, None, Some(json!({})), None)
                    .await;
                anonymous.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
            }
        }
    }
    assert!(forbidden > 0);
    let refusals = server.audit_bodies("auth.refused").await;
    let audited_forbidden = refusals.iter().filter(|b| b["code"] == "forbidden").count();
    assert_eq!(audited_forbidden, forbidden);
    server.assert_audit_sound(&[PASSWORD]).await;
}

#[test]
fn each_guarded_route_is_named_by_its_permission_row() {
    for route in ROUTES {
        if let Access::Requires(permission) = route.access {
            let grant = PERMISSIONS
                .iter()
                .find(|g| g.permission == permission)
                .unwrap_or_else(|| panic!("{permission} has no row"));
            let named = format!("`{} {}`", route.method.as_str(), route.path);
            assert!(
                grant.endpoints.contains(&named),
                "the row of {permission} does not name {named}"
            );
        }
    }
    for grant in PERMISSIONS {
        if grant.endpoints.contains("not built yet") {
            continue;
        }
        assert!(
            ROUTES
                .iter()
                .any(|r| r.access == Access::Requires(grant.permission)),
            "{} names endpoints but no route needs it",
            grant.permission
        );
    }
}

server_tests!(every_role_meets_the_permission_table_on_every_route);
