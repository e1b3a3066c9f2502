//! Rate limits on the injected clock: logins per client address and failed logins per
//! name, refresh and logout per client address, requests per client address before any
//! token is looked at, and requests per principal; 429 `rate-limited` with
//! `Retry-After`, recovery once the clock has moved on, refusals counted and sampled per
//! client in the audit chain, the metrics counting every one, and `X-Forwarded-For`
//! believed only from a trusted proxy.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use relo_server::{Limit, RateLimits};
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestServer};

fn limits() -> RateLimits {
    RateLimits {
        login_per_client: Limit::per_minute(5),
        login_per_name: Limit::per_minute(5),
        per_client: Limit::per_minute(10_000),
        per_principal: Limit::per_minute(3),
    }
}

/// [`limits`] with 100 requests a minute per client address to the guarded routes.
fn flood_limits() -> RateLimits {
    RateLimits {
        per_client: Limit::per_minute(100),
        ..limits()
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
    // olga's failures are spent (five, from any address): a client that fails on her
    // name now is refused at its next try, before any password check...
    login_from(&server, "olga", "another guess!", 3)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(
        retry_after(&login_from(&server, "olga", PASSWORD, 3).await),
        12
    );
    // ...while a client that has not failed on it still has its password checked.
    assert_eq!(
        login_from(&server, "olga", PASSWORD, 2).await.status,
        StatusCode::OK
    );
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
    // One entry per client per burst: client 1's address, then client 3 on olga's name.
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert_eq!(limited[0]["client"], "192.0.2.1");
    assert_eq!(limited[0]["detail"], "login-client");
    assert_eq!(limited[1]["client"], "192.0.2.3");
    assert_eq!(limited[1]["detail"], "login-name");
    assert_eq!(limited[1]["who"], "olga");
    let bad = refused
        .iter()
        .filter(|b| b["code"] == "invalid-credentials")
        .count();
    assert_eq!(bad, 6, "a failed login is recorded in full");
    server
        .assert_audit_sound(&[PASSWORD, "wrong password!", "another guess!"])
        .await;
}

/// More logins per client than failures per name, so that the name's limit shows.
fn owner_limits() -> RateLimits {
    RateLimits {
        login_per_client: Limit::per_minute(10),
        ..limits()
    }
}

/// An attacker at one address spends the failures of a name; its owner, at another,
/// still logs in with the right password, and the attacker's next guess is refused.
async fn an_attacker_spending_a_names_failures_does_not_lock_its_owner_out(server: TestServer) {
    let (attacker, owner) = (66, 7);
    for _ in 0..5 {
        login_from(&server, "ivan", "guessing wrong", attacker)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    // The name's failures are spent: the attacker's next guess is refused unchecked,
    // though its own address may still try.
    let refused = login_from(&server, "ivan", "guessing wrong", attacker).await;
    assert_eq!(retry_after(&refused), 12);
    assert_eq!(
        login_from(&server, "ivan", PASSWORD, owner).await.status,
        StatusCode::OK,
        "the owner's right password is not refused for the attacker's failures"
    );
    // The owner mistyping is a failure like any other: then they wait too.
    login_from(&server, "ivan", "fat fingers!", owner)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(
        retry_after(&login_from(&server, "ivan", PASSWORD, owner).await),
        12
    );
    server.clock.advance(Duration::from_secs(12));
    assert_eq!(
        login_from(&server, "ivan", PASSWORD, owner).await.status,
        StatusCode::OK
    );

    let refused = server.audit_bodies("auth.refused").await;
    let failures: Vec<_> = refused
        .iter()
        .filter(|b| b["code"] == "invalid-credentials")
        .map(|b| b["client"].as_str().unwrap())
        .collect();
    assert_eq!(
        failures,
        [
            "192.0.2.66",
            "192.0.2.66",
            "192.0.2.66",
            "192.0.2.66",
            "192.0.2.66",
            "192.0.2.7"
        ]
    );
    let limited: Vec<_> = refused
        .iter()
        .filter(|b| b["code"] == "rate-limited")
        .map(|b| {
            (
                b["client"].as_str().unwrap(),
                b["detail"].as_str().unwrap(),
                b["who"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        limited,
        [
            ("192.0.2.66", "login-name", "ivan"),
            ("192.0.2.7", "login-name", "ivan")
        ]
    );
    server
        .assert_audit_sound(&[PASSWORD, "guessing wrong", "fat fingers!"])
        .await;
}

/// A login sent by the TCP peer `peer` with `X-Forwarded-For: forwarded`.
async fn login_via(
    server: &TestServer,
    name: &str,
    peer: [u8; 4],
    forwarded: &str,
) -> crate::support::Answer {
    let mut request = Request::post("/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(
            json!({"name": name, "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40_000))));
    server.send(request).await
}

async fn x_forwarded_for_counts_only_from_a_trusted_proxy(server: TestServer) {
    let server = server.with_trusted_proxies(&["10.0.0.0/24"]);
    // From a peer that is not a trusted proxy the header is ignored: five logins
    // claiming five addresses spend the peer's own bucket.
    for n in 0..5 {
        let answer = login_via(&server, "ivan", [192, 0, 2, 9], &format!("198.51.100.{n}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    retry_after(&login_via(&server, "ivan", [192, 0, 2, 9], "198.51.100.99").await);
    // From the trusted proxy the header selects the bucket: the right-most address not
    // a trusted proxy, whatever the client wrote left of it.
    for _ in 0..5 {
        let answer = login_via(&server, "ivan", [10, 0, 0, 1], "198.51.100.7").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let spent = "203.0.113.5, 198.51.100.7, 10.0.0.2";
    retry_after(&login_via(&server, "ivan", [10, 0, 0, 1], spent).await);
    let another = login_via(&server, "ivan", [10, 0, 0, 1], "203.0.113.5, 198.51.100.8").await;
    assert_eq!(another.status, StatusCode::OK, "{}", another.body);

    let limited: Vec<Value> = server
        .audit_bodies("auth.refused")
        .await
        .into_iter()
        .filter(|b| b["code"] == "rate-limited")
        .collect();
    let clients: Vec<_> = limited
        .iter()
        .map(|b| (b["client"].as_str().unwrap(), b["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        clients,
        [
            ("192.0.2.9", "login-client"),
            ("198.51.100.7", "login-client")
        ]
    );
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

/// 1,000 requests with a bad bearer token from one address: the first 100 are looked at
/// and refused 401, the rest get 429 before any token is looked at; the audit chain gets
/// the first refusal of each burst (two entries), and a window later one count per
/// (address, code) standing for the rest. Another address is not affected.
async fn a_bad_token_flood_is_limited_per_address_and_counted_not_written(server: TestServer) {
    let attacker = addr(66);
    for n in 0..1_000 {
        let answer = server
            .call("GET", "/v1/me", Some("not-a-token"), None, Some(attacker))
            .await;
        if n < 100 {
            answer.assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
        } else {
            assert_eq!(retry_after(&answer), 1, "request {n}");
        }
    }
    let other = addr(67);
    server
        .call("GET", "/v1/me", Some("not-a-token"), None, Some(other))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    let ivan = server.login("ivan").await.access;
    let me = server
        .call("GET", "/v1/me", Some(&ivan), None, Some(other))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);

    let of_attacker = |bodies: Vec<Value>| -> Vec<Value> {
        bodies
            .into_iter()
            .filter(|b| b["client"] == "192.0.2.66")
            .collect()
    };
    let recorded = of_attacker(server.audit_bodies("auth.refused").await);
    let codes: Vec<_> = recorded
        .iter()
        .map(|b| (b["code"].as_str().unwrap(), b["detail"].as_str()))
        .collect();
    assert_eq!(
        codes,
        [("invalid-token", None), ("rate-limited", Some("client"))],
        "1,000 refusals, two entries"
    );
    assert!(
        server
            .audit_bodies("auth.refusals-counted")
            .await
            .is_empty()
    );

    // A window later, any request writes the counts that are due.
    server.clock.advance(Duration::from_secs(60));
    assert_eq!(
        server
            .call("GET", "/healthz", None, None, Some(other))
            .await
            .status,
        StatusCode::OK
    );
    let counted = server.audit_bodies("auth.refusals-counted").await;
    let counts: Vec<_> = counted
        .iter()
        .map(|b| {
            (
                b["client"].as_str().unwrap(),
                b["code"].as_str().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("192.0.2.66", "invalid-token", 99),
            ("192.0.2.66", "rate-limited", 899)
        ]
    );
    assert!(
        counted
            .iter()
            .all(|b| b["since"] == "2030-03-17T17:46:40.000000000Z")
    );
    assert_eq!(
        of_attacker(server.audit_bodies("auth.refused").await).len(),
        2
    );
    let text = server.metrics_text().await;
    assert!(
        text.contains("relo_rate_limited_total{limit=\"client\"} 900\n"),
        "{text}"
    );
    assert!(
        text.contains("relo_auth_refusals_total{code=\"invalid-token\"} 101\n"),
        "{text}"
    );
    server.assert_audit_sound(&[&ivan]).await;
}

/// An IPv6 client is limited by its /64: other addresses of the block share its bucket,
/// another block does not.
async fn an_ipv6_client_is_limited_by_its_slash_64(server: TestServer) {
    let v6 = |text: &str| SocketAddr::new(text.parse().unwrap(), 40_000);
    for n in 0..100 {
        server
            .call(
                "GET",
                "/v1/me",
                None,
                None,
                Some(v6(&format!("2001:db8:1:2::{n:x}"))),
            )
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let same_block = v6("2001:db8:1:2:ffff::1");
    retry_after(
        &server
            .call("GET", "/v1/me", None, None, Some(same_block))
            .await,
    );
    server
        .call("GET", "/v1/me", None, None, Some(v6("2001:db8:1:3::1")))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let recorded: Vec<_> = server
        .audit_bodies("auth.refused")
        .await
        .into_iter()
        .map(|b| {
            (
                b["code"].as_str().unwrap().to_owned(),
                b["client"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("unauthenticated".to_owned(), "2001:db8:1:2::".to_owned()),
            ("rate-limited".to_owned(), "2001:db8:1:2:ffff::1".to_owned()),
            ("unauthenticated".to_owned(), "2001:db8:1:3::1".to_owned()),
        ]
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refresh_and_logout_are_limited_per_client() {
    if let Some(server) = TestServer::postgres_with(limits()).await {
        refresh_and_logout_are_limited_per_client(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_attacker_spending_a_names_failures_does_not_lock_its_owner_out() {
    an_attacker_spending_a_names_failures_does_not_lock_its_owner_out(
        TestServer::sqlite_with(owner_limits()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_attacker_spending_a_names_failures_does_not_lock_its_owner_out() {
    if let Some(server) = TestServer::postgres_with(owner_limits()).await {
        an_attacker_spending_a_names_failures_does_not_lock_its_owner_out(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_x_forwarded_for_counts_only_from_a_trusted_proxy() {
    x_forwarded_for_counts_only_from_a_trusted_proxy(TestServer::sqlite_with(limits()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_x_forwarded_for_counts_only_from_a_trusted_proxy() {
    if let Some(server) = TestServer::postgres_with(limits()).await {
        x_forwarded_for_counts_only_from_a_trusted_proxy(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_bad_token_flood_is_limited_per_address_and_counted_not_written() {
    a_bad_token_flood_is_limited_per_address_and_counted_not_written(
        TestServer::sqlite_with(flood_limits()).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_bad_token_flood_is_limited_per_address_and_counted_not_written() {
    if let Some(server) = TestServer::postgres_with(flood_limits()).await {
        a_bad_token_flood_is_limited_per_address_and_counted_not_written(server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_ipv6_client_is_limited_by_its_slash_64() {
    an_ipv6_client_is_limited_by_its_slash_64(TestServer::sqlite_with(flood_limits()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_ipv6_client_is_limited_by_its_slash_64() {
    if let Some(server) = TestServer::postgres_with(flood_limits()).await {
        an_ipv6_client_is_limited_by_its_slash_64(server).await;
    }
}
