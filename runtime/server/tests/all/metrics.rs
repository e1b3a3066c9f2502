//! `/metrics`: only admins and auditors (or an API token with `metrics.read`) read it,
//! it is answered from memory (the evidence-derived counts are read in the background
//! at most every ten seconds of the server's clock), and the loopback listener of
//! `relo serve --metrics-listen` serves it without a token.

use std::time::Duration;

use axum::http::StatusCode;
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_server::EVIDENCE_COUNTS_EVERY;
use serde_json::json;

use crate::support::{PASSWORD, TestServer, server_tests};

async fn make_token(server: &TestServer, bearer: &str, scopes: &[&str]) -> crate::support::Answer {
    server
        .call(
            "POST",
            "/v1/tokens",
            Some(bearer),
            Some(json!({"name": "scraper", "scopes": scopes, "expires_in_days": 30})),
            None,
        )
        .await
}

async fn metrics_need_an_auditor_an_admin_or_the_metrics_scope(server: TestServer) {
    server
        .get("/metrics", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let ivan = server.login("ivan").await.access;
    let forbidden = server.get("/metrics", Some(&ivan)).await;
    forbidden.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        forbidden.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metrics.read")
    );
    // A release manager cannot give a token the scope either.
    make_token(&server, &ivan, &["metrics.read"])
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let olga = server.login("olga").await.access;
    let answer = server.get("/metrics", Some(&olga)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let text = answer.body.as_str().unwrap();
    for series in [
        r#"relo_http_requests_total{method="GET",route="/metrics",status="401"} 1"#,
        r#"relo_http_requests_total{method="GET",route="/metrics",status="403"} 1"#,
        r#"relo_auth_refusals_total{code="unauthenticated"} 1"#,
        r#"relo_auth_refusals_total{code="forbidden"} 2"#,
        "relo_runs_started_total 0",
    ] {
        assert!(text.contains(&format!("{series}\n")), "{series} in {text}");
    }
    let ada = server.login("ada").await.access;
    assert_eq!(
        server.get("/metrics", Some(&ada)).await.status,
        StatusCode::OK
    );

    // An auditor's API token with the scope reads them; one without it does not.
    let scraper = make_token(&server, &olga, &["metrics.read"]).await;
    assert_eq!(scraper.status, StatusCode::CREATED, "{}", scraper.body);
    let scraper = scraper.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get("/metrics", Some(&scraper)).await.status,
        StatusCode::OK
    );
    let other = make_token(&server, &olga, &["audit.read"]).await;
    let other = other.body["token"].as_str().unwrap().to_owned();
    server
        .get("/metrics", Some(&other))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let refused: Vec<_> = server
        .audit_bodies("auth.refused")
        .await
        .into_iter()
        .filter(|b| b["route"] == "GET /metrics")
        .map(|b| {
            (
                b["code"].as_str().unwrap().to_owned(),
                b["who"].as_str().map(str::to_owned),
                b["detail"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let forbidden = |who: &str| {
        (
            "forbidden".to_owned(),
            Some(who.to_owned()),
            Some("metrics.read".to_owned()),
        )
    };
    assert_eq!(
        refused,
        [
            ("unauthenticated".to_owned(), None, None),
            forbidden("ivan"),
            forbidden("olga"),
        ]
    );
    server
        .assert_audit_sound(&[PASSWORD, &scraper[8..], &other[8..]])
        .await;
}

/// The count of `plugin.refused` entries `/metrics` shows, 0 when absent.
fn refused_plugins(text: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(r#"relo_denials_total{kind="plugin.refused"} "#))
        .map_or(0, |n| n.parse().unwrap())
}

/// One scrape with `token`: the `plugin.refused` count it shows.
async fn scrape(server: &TestServer, token: &str) -> u64 {
    let answer = server.get("/metrics", Some(token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    refused_plugins(answer.body.as_str().unwrap())
}

async fn metrics_are_answered_from_memory_between_reads(server: TestServer) {
    let olga = server.login("olga").await.access;
    server.refresh_evidence_counts().await;
    assert_eq!(scrape(&server, &olga).await, 0);
    let mut denial = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginRefused {
            digest: "00".repeat(32),
            code: "forbidden-import".into(),
            reason: "a test denial".into(),
        },
    );
    denial.time = relo_server::Clock::now(&*server.clock);
    server.store.record(&denial).await.unwrap();
    // Within the period no scrape reads the store: the new denial does not show.
    server
        .clock
        .advance(EVIDENCE_COUNTS_EVERY - Duration::from_secs(1));
    assert_eq!(scrape(&server, &olga).await, 0);
    assert_eq!(scrape(&server, &olga).await, 0);
    // Once the counts are a period old, a scrape has them read in the background; a
    // later scrape shows the new count.
    server.clock.advance(Duration::from_secs(1));
    let mut seen = scrape(&server, &olga).await;
    for _ in 0..200 {
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        seen = scrape(&server, &olga).await;
    }
    assert_eq!(seen, 1, "the background read brought the new denial");
}

async fn the_metrics_listener_serves_them_without_a_token(server: TestServer) {
    assert_eq!(server.get("/healthz", None).await.status, StatusCode::OK);
    let (status, text) = server.metrics_listener_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"relo_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "it shares the API's counters: {text}"
    );
    // It serves nothing else.
    let (status, _) = server.metrics_listener_get("/v1/users").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

server_tests!(
    metrics_need_an_auditor_an_admin_or_the_metrics_scope,
    metrics_are_answered_from_memory_between_reads,
    the_metrics_listener_serves_them_without_a_token
);
