//! Every refused authentication or authorisation lands in the control chain (bad
//! credentials, bad and expired tokens, refresh reuse, a missing permission), the chain
//! still verifies, no password or token is in it, `GET /v1/audit` shows it, and
//! `/metrics` counts requests, refusals and rate-limit hits.

use std::time::Duration;

use axum::http::StatusCode;

use crate::support::{PASSWORD, TestServer, server_tests};

async fn each_refusal_kind_is_recorded(server: TestServer) {
    server.try_login("olga", "not the password").await;
    server.try_login("nobody", PASSWORD).await;
    server.me("not-a-jwt").await;
    let pair = server.login("ivan").await;
    server.clock.advance(Duration::from_secs(15 * 60));
    server
        .me(&pair.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-expired");
    let next = crate::support::pair(&server.refresh(&pair.refresh).await);
    server
        .refresh(&pair.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    server
        .refresh("garbage")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    server
        .get("/v1/users", Some(&next.access))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let refused = server.audit_bodies("auth.refused").await;
    let seen: Vec<_> = refused
        .iter()
        .map(|b| {
            (
                b["code"].as_str().unwrap(),
                b["who"].as_str(),
                b["route"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("invalid-credentials", Some("olga"), "POST /v1/auth/login"),
            ("invalid-credentials", Some("nobody"), "POST /v1/auth/login"),
            ("invalid-token", None, "GET /v1/me"),
            ("token-expired", None, "GET /v1/me"),
            ("invalid-refresh-token", None, "POST /v1/auth/refresh"),
            ("forbidden", Some("ivan"), "GET /v1/users"),
        ]
    );
    assert!(refused.iter().all(|b| b["client"] == "unknown"));
    assert_eq!(refused[5]["detail"], "users.read");
    let reused = server.audit_bodies("auth.token-reused").await;
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0]["user"], "ivan");
    assert!(reused[0]["family"].as_str().is_some_and(|f| !f.is_empty()));
    server
        .assert_audit_sound(&[
            PASSWORD,
            "not the password",
            &pair.refresh,
            &pair.access,
            &next.access,
        ])
        .await;

    // An auditor reads the same chain over the API.
    let olga = server.login("olga").await.access;
    let audit = server.get("/v1/audit", Some(&olga)).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let kinds: Vec<_> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "auth.refused").count(), 6);
    assert_eq!(
        kinds.iter().filter(|k| **k == "auth.token-reused").count(),
        1
    );
    let after = server.get("/v1/audit?after=6", Some(&olga)).await;
    assert_eq!(after.body.as_array().unwrap().len(), kinds.len() - 6);
    server
        .get("/v1/audit?after=x", Some(&olga))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid-field");
}

fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

async fn metrics_count_requests_and_refusals(server: TestServer) {
    assert_eq!(server.get("/healthz", None).await.status, StatusCode::OK);
    server.get("/healthz", None).await;
    server.me("bad").await;
    let ivan = server.login("ivan").await.access;
    server.get("/v1/users", Some(&ivan)).await;
    server.get("/nowhere", None).await;
    let text = server.metrics_text().await;
    let healthz = r#"relo_http_requests_total{method="GET",route="/healthz",status="200"}"#;
    assert_eq!(counter(&text, healthz), 2, "{text}");
    assert_eq!(
        counter(
            &text,
            r#"relo_http_requests_total{method="GET",route="/v1/users",status="403"}"#
        ),
        1
    );
    assert_eq!(
        counter(&text, r#"relo_auth_refusals_total{code="invalid-token"}"#),
        1
    );
    assert_eq!(
        counter(&text, r#"relo_auth_refusals_total{code="forbidden"}"#),
        1
    );
    assert_eq!(
        counter(
            &text,
            r#"relo_http_requests_total{method="*",route="unmatched",status="404"}"#
        ),
        1
    );
    server.get("/healthz", None).await;
    assert_eq!(counter(&server.metrics_text().await, healthz), 3);
}

/// A login name is whatever the client sends: the refusal records at most 64 bytes of
/// it, marked when cut, so a client cannot make the evidence hold what it likes.
async fn a_refused_login_records_a_bounded_name(server: TestServer) {
    let name = "x".repeat(10_000);
    server.try_login(&name, PASSWORD).await;
    let refused = server.audit_bodies("auth.refused").await;
    let who = refused[0]["who"].as_str().unwrap();
    assert_eq!(who, format!("{}…[truncated 9936 bytes]", "x".repeat(64)));
}

server_tests!(
    each_refusal_kind_is_recorded,
    a_refused_login_records_a_bounded_name,
    metrics_count_requests_and_refusals
);
