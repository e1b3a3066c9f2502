//! Rate limits on the injected clock: logins per client address and per name, refresh
//! and logout per client address, and requests per principal; 429 `rate-limited` with `Retry-After`, recovery once the
//! clock has moved on, the first refusal of each burst in the audit chain, and the
//! metrics counting every one.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use relo_server::{Limit, RateLimits};
use serde_json::json;

use crate::support::{PASSWORD, TestServer};

fn limits() -> RateLimits {
    RateLimits {
        login_per_client: Limit::per_minute(5),
        login_per_name: Limit::per_minute(5),
        per_principal: Limit::per_minute(3),
    }
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 40_000))
}

async fn login_from(
    server: &TestServer,
    name: &str,
    password: &str,
    client: u8,
) -> crate::support::Answer {
    server
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"name": name, "password": password})),
            Some(addr(client)),
        )
        .await
}

fn retry_after(answer: &crate::support::Answer) -> u64 {
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn logins_are_limited_per_client_and_per_name(server: TestServer) {
    for _ in 0..5 {
        let answer = login_from(&server, "olga", "wrong password!", 1).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    let limited = login_from(&server, "olga", PASSWORD, 1).await;
    assert_eq!(retry_after(&limited), 12);
    // The same client with another name is still over its client limit.
    let other_name = login_from(&server, "ivan", PASSWORD, 1).await;
    retry_after(&other_name);
    // olga's name is spent too (five attempts), from any address.
    let other_client = login_from(&server, "olga", PASSWORD, 2).await;
    retry_after(&other_client);
    // ivan from another address is untouched.
    assert_eq!(
        login_from(&server, "ivan", PASSWORD, 2).await.status,
        StatusCode::OK
    );

    server.clock.advance(Duration::from_secs(12));
    assert_eq!(
        login_from(&server, "olga", PASSWORD, 1).await.status,
        StatusCode::OK
    );

    let refused = server.audit_bodies("auth.refused").await;
    let limited: Vec<_> = refused
        .iter()
        .filter(|b| b["code"] == "rate-limited")
        .collect();
    // One entry per bucket per burst: client 1, then olga's name.
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert_eq!(limited[0]["client"], "192.0.2.1");
    assert_eq!(limited[0]["detail"], "login-client");
    assert_eq!(limited[1]["client"], "192.0.2.2");
    assert_eq!(limited[1]["detail"], "login-name");
    assert_eq!(limited[1]["who"], "olga");
    let bad = refused
        .iter()
        .filter(|b| b["code"] == "invalid-credentials")
        .count();
    assert_eq!(bad, 5);
    server
        .assert_audit_sound(&[PASSWORD, "wrong password!"])
        .await;
}

async fn requests_are_limited_per_principal(server: TestServer) {
    let olga = server.login("olga").await.access;
    let ivan = server.login("ivan").await.access;
    for _ in 0..3 {
        assert_eq!(server.me(&olga).await.status, StatusCode::OK);
    }
    let limited = server.me(&olga).await;
    assert_eq!(retry_after(&limited), 20);
    assert_eq!(
        server.me(&ivan).await.status,
        StatusCode::OK,
        "another user has their own bucket"
    );
    server.clock.advance(Duration::from_secs(19));
    retry_after(&server.me(&olga).await);
    server.clock.advance(Duration::from_secs(1));
    assert_eq!(server.me(&olga).await.status, StatusCode::OK);
    let limited = server.audit_bodies("auth.refused").await;
    assert_eq!(limited.len(), 1, "one entry per burst: {limited:?}");
    assert!(
        limited
            .iter()
            .all(|b| b["who"] == "olga" && b["detail"] == "principal")
    );
}

async fn refresh_and_logout_are_limited_per_client(server: TestServer) {
    let token_call = |route: &'static str, client: u8| {
        server.call(
            "POST",
            route,
            None,
            Some(json!({"refresh_token": "not-a-refresh-token"})),
            Some(addr(client)),
        )
    };
    for route in ["/v1/auth/refresh", "/v1/auth/logout", "/v1/auth/refresh"] {
        token_call(route, 1)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    }
    token_call("/v1/auth/logout", 1)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    token_call("/v1/auth/refresh", 1)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    // The sixth guess from one address within the minute is refused before any lookup.
    assert_eq!(retry_after(&token_call("/v1/auth/logout", 1).await), 12);
    retry_after(&token_call("/v1/auth/refresh", 1).await);
    token_call("/v1/auth/refresh", 2)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    let limited: Vec<_> = server
        .audit_bodies("auth.refused")
        .await
        .into_iter()
        .filter(|b| b["code"] == "rate-limited")
        .collect();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert_eq!(limited[0]["detail"], "token-client");
    assert_eq!(limited[0]["client"], "192.0.2.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refresh_and_logout_are_limited_per_client() {
    refresh_and_logout_are_limited_per_client(TestServer::sqlite_with(limits()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_logins_are_limited_per_client_and_per_name() {
    logins_are_limited_per_client_and_per_name(TestServer::sqlite_with(limits()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_requests_are_limited_per_principal() {
    requests_are_limited_per_principal(TestServer::sqlite_with(limits()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins_are_limited_per_client_and_per_name() {
    if let Some(server) = TestServer::postgres_with(limits()).await {
        logins_are_limited_per_client_and_per_name(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requests_are_limited_per_principal() {
    if let Some(server) = TestServer::postgres_with(limits()).await {
        requests_are_limited_per_principal(server).await;
    }
}
