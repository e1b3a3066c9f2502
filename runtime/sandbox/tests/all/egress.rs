//! Egress through wasi:http: an allowed request really goes out to a loopback server; a
//! denied one never reaches it, gets `HttpRequestDenied`, and is recorded with its code.

use relo_evidence::{EgressOutcome, EvidenceEvent};
use relo_policy::{EgressRule, Grant, Method};
use serde_json::json;

use crate::support::{Step, TestServer, assert_engine_still_serves};

fn grant_get(url: &str) -> Grant {
    let mut grant = Grant::deny_all();
    grant
        .egress
        .push(EgressRule::parse(url, &[Method::Get]).expect("valid rule"));
    grant
}

#[tokio::test]
pub async fn egress_allowed() {
    let server = TestServer::start("v1.2.3").await;
    let grant = grant_get(&server.url("/api/*"));
    let ran = Step::new("egress-allowed")
        .input(json!({"url": server.url("/api/tags?page=1")}))
        .grant(grant)
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "sent", "{output}");
    assert_eq!(output["status"], 200);
    assert_eq!(output["body"], "v1.2.3");
    assert_eq!(server.seen(), ["GET /api/tags?page=1"]);

    match ran.only("egress.allowed") {
        EvidenceEvent::EgressAllowed {
            method,
            host,
            port,
            path,
            ..
        } => {
            assert_eq!(
                (method.as_str(), host.as_str(), *port, path.as_str()),
                ("GET", "127.0.0.1", server.port, "/api/tags")
            );
        }
        other => panic!("{other:?}"),
    }
    match ran.only("egress.completed") {
        EvidenceEvent::EgressCompleted {
            outcome:
                EgressOutcome::Response {
                    status,
                    resolved_ip,
                    ..
                },
            ..
        } => {
            assert_eq!(*status, 200);
            assert_eq!(resolved_ip, "127.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ran.outcome.usage.egress_requests, 1);
    assert_eq!(ran.outcome.usage.egress_bytes_in, 6);
    ran.assert_bracketed("succeeded");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_step_cannot_set_the_host_header() {
    let server = TestServer::start("must not be served").await;
    let grant = grant_get(&server.url("/api/*"));
    let ran = Step::new("egress-allowed")
        .input(json!({"url": server.url("/api/tags"), "headers": {"host": "forge.example"}}))
        .grant(grant)
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "error", "{output}");
    assert!(
        server.seen().is_empty(),
        "a request with a forged Host header went out"
    );
    assert!(ran.events("egress.allowed").is_empty());
}

#[tokio::test]
pub async fn egress_denied() {
    let server = TestServer::start("must not be served").await;
    let ran = Step::new("egress-denied")
        .input(json!({"url": server.url("/api/tags")}))
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "denied", "{}", ran.output());
    assert!(
        server.seen().is_empty(),
        "a denied request reached the server"
    );
    match ran.only("egress.denied") {
        EvidenceEvent::EgressDenied {
            code,
            host,
            port,
            path,
            ..
        } => {
            assert_eq!(code, "destination-not-granted");
            assert_eq!(
                (host.as_str(), *port, path.as_str()),
                ("127.0.0.1", server.port, "/api/tags")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(ran.events("egress.allowed").is_empty());
    assert!(
        ran.outcome
            .logs
            .iter()
            .any(|l| l.message.contains("destination-not-granted")),
        "the step log explains the denial: {:?}",
        ran.outcome.logs
    );
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn egress_method_denied() {
    let server = TestServer::start("must not be served").await;
    let grant = grant_get(&server.url("/api/*"));
    let ran = Step::new("egress-method-denied")
        .input(json!({"url": server.url("/api/releases")}))
        .grant(grant)
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "denied", "{}", ran.output());
    assert!(server.seen().is_empty(), "a denied POST reached the server");
    match ran.only("egress.denied") {
        EvidenceEvent::EgressDenied { code, method, .. } => {
            assert_eq!(code, "method-not-granted");
            assert_eq!(method, "POST");
        }
        other => panic!("{other:?}"),
    }
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_path_outside_the_rule_is_denied() {
    let server = TestServer::start("must not be served").await;
    let grant = grant_get(&server.url("/api/*"));
    for path in ["/admin", "/api/../admin", "/api/%2e%2e/admin", "/apix"] {
        let ran = Step::new("egress-allowed")
            .input(json!({"url": server.url(path)}))
            .grant(grant.clone())
            .run()
            .await;
        assert_eq!(ran.output()["outcome"], "denied", "{path}");
        assert_eq!(ran.events("egress.denied").len(), 1, "{path}");
    }
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[tokio::test]
pub async fn a_granted_destination_on_a_blocked_address_is_refused_before_connecting() {
    // The grant allows a private address; the host's address filter (loopback only in
    // tests, internal networks blocked in production) refuses it after the grant.
    let grant = grant_get("http://10.255.255.1:9/api/*");
    let ran = Step::new("egress-allowed")
        .input(json!({"url": "http://10.255.255.1:9/api/x"}))
        .grant(grant)
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "error", "{output}");
    assert!(
        output["error"]
            .as_str()
            .unwrap_or("")
            .contains("DestinationIpProhibited"),
        "{output}"
    );
    ran.only("egress.allowed");
    match ran.only("egress.completed") {
        EvidenceEvent::EgressCompleted {
            outcome: EgressOutcome::Failed {
                code, resolved_ip, ..
            },
            ..
        } => {
            assert_eq!(code, "address-blocked");
            assert_eq!(resolved_ip.as_deref(), Some("10.255.255.1"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn an_unsupported_scheme_is_denied() {
    let ran = Step::new("egress-allowed")
        .input(json!({"url": "ftp://127.0.0.1/x"}))
        .run()
        .await;
    assert_ne!(ran.output()["outcome"], "sent");
    assert!(ran.events("egress.allowed").is_empty());
}
