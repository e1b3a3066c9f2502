//! Egress through wasi:http: an allowed request really goes out to a loopback server; a
//! denied one never reaches it, gets `HttpRequestDenied`, and is recorded with its code.

use relo_evidence::{EgressOutcome, EvidenceEvent};
use relo_policy::{
    EgressRule, Grant, LimitKind, Limits, Method, declared_capabilities, effective_grant,
    operator_ceilings,
};
use relo_sandbox::StepFailure;
use serde_json::json;

use crate::support::{Ran, Step, TEST_NAME, TestServer, assert_engine_still_serves, grant_get};

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
    // The grant allows a private address; the network policy (internal networks
    // blocked) refuses it after the grant, before any connection.
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

fn denial_codes(ran: &Ran) -> Vec<String> {
    ran.events("egress.denied")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::EgressDenied { code, .. } => code.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
pub async fn egress_private_ip() {
    // The grant names a host; the name resolves to loopback, which the built-in network
    // policy blocks: the grant is checked first, then every resolved address.
    let server = TestServer::start("must not be served").await;
    let url = format!("http://{TEST_NAME}:{}/api/tags", server.port);
    let mut grant = Grant::deny_all();
    grant.egress.push(
        EgressRule::parse(
            &format!("http://{TEST_NAME}:{}/api/*", server.port),
            &[Method::Get],
        )
        .expect("rule"),
    );
    let ran = Step::new("egress-private-ip")
        .input(json!({"url": url}))
        .grant(grant.clone())
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
    assert!(
        server.seen().is_empty(),
        "a blocked address was connected to"
    );
    ran.only("egress.allowed");
    match ran.only("egress.completed") {
        EvidenceEvent::EgressCompleted {
            outcome:
                EgressOutcome::Failed {
                    code,
                    resolved_ip,
                    error,
                },
            ..
        } => {
            assert_eq!(code, "address-blocked");
            assert_eq!(resolved_ip.as_deref(), Some("127.0.0.1"));
            assert!(error.contains("loopback"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_engine_still_serves().await;

    // The twin: with loopback allowed by the operator, the same step reaches the server,
    // and the Host header is the one the host set from the checked URL.
    grant
        .networks
        .allowed
        .push("127.0.0.0/8".parse().expect("cidr"));
    let ran = Step::new("egress-private-ip")
        .input(json!({"url": url}))
        .grant(grant)
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "sent", "{}", ran.output());
    assert_eq!(server.hosts(), [format!("{TEST_NAME}:{}", server.port)]);
}

#[tokio::test]
pub async fn an_unknown_name_fails_resolution_and_is_recorded() {
    let mut grant = grant_get("http://unknown.test/*");
    grant.networks.allowed.clear();
    let ran = Step::new("egress-allowed")
        .input(json!({"url": "http://unknown.test/x"}))
        .grant(grant)
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "error");
    match ran.only("egress.completed") {
        EvidenceEvent::EgressCompleted {
            outcome: EgressOutcome::Failed { code, .. },
            ..
        } => assert_eq!(code, "dns-failed"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn egress_redirect_escape() {
    let elsewhere = TestServer::start("secret").await;
    let target = elsewhere.url("/secret");
    let redirecting = TestServer::answering(move |_| {
        (
            302,
            vec![("location".into(), target.clone())],
            String::new(),
        )
    })
    .await;
    let ran = Step::new("egress-redirect-escape")
        .input(json!({"url": redirecting.url("/api/start")}))
        .grant(grant_get(&redirecting.url("/api/*")))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["first"]["status"], 302, "{output}");
    assert_eq!(output["follow"]["outcome"], "denied", "{output}");
    assert_eq!(redirecting.seen(), ["GET /api/start"]);
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect carried the step past its grant"
    );
    assert_eq!(denial_codes(&ran), ["destination-not-granted"]);
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn egress_host_header_spoof() {
    let server = TestServer::start("must not be served").await;
    let ran = Step::new("egress-host-header-spoof")
        .input(json!({"url": server.url("/api/tags"), "host": "forge.example.com"}))
        .grant(grant_get(&server.url("/api/*")))
        .run()
        .await;
    let output = ran.output();
    for way in ["append", "from_list"] {
        assert_eq!(output[way]["outcome"], "refused-header", "{output}");
    }
    assert!(server.seen().is_empty());
    assert!(ran.events("egress.allowed").is_empty());
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn egress_userinfo() {
    let server = TestServer::start("must not be served").await;
    let ran = Step::new("egress-userinfo")
        .input(json!({"scheme": "http", "authority": format!("user:pw@127.0.0.1:{}", server.port), "path": "/api/tags"}))
        .grant(grant_get(&server.url("/api/*")))
        .run()
        .await;
    let output = ran.output();
    assert!(
        server.seen().is_empty(),
        "credentials in the URL went out: {output}"
    );
    match output["outcome"].as_str() {
        Some("denied") => assert_eq!(denial_codes(&ran), ["userinfo-forbidden"]),
        Some("refused-authority") => assert!(ran.events("egress.allowed").is_empty()),
        _ => panic!("userinfo was not refused: {output}"),
    }
    assert_engine_still_serves().await;
}

const ESCAPES: &[&str] = &[
    "/api/../admin",
    "/api/%2e%2e/admin",
    "/api/%2E%2E/admin",
    "/api/..%2fadmin",
    "/api/./../../etc/passwd",
    "/api/%00/x",
];

#[tokio::test]
pub async fn egress_path_escape() {
    let server = TestServer::start("served").await;
    let mut paths = ESCAPES.to_vec();
    paths.push("/api/./tags");
    let ran = Step::new("egress-path-escape")
        .input(json!({"base": server.url(""), "paths": paths}))
        .grant(grant_get(&server.url("/api/*")))
        .run()
        .await;
    let results = &ran.output()["results"];
    for path in ESCAPES {
        let outcome = results[path]["outcome"].as_str().unwrap_or("");
        assert!(
            outcome == "denied" || outcome == "refused-path",
            "{path} escaped: {results}"
        );
    }
    assert_eq!(results["/api/./tags"]["outcome"], "sent", "{results}");
    assert_eq!(server.seen(), ["GET /api/./tags"]);
    let codes = denial_codes(&ran);
    assert!(
        codes
            .iter()
            .all(|c| c == "destination-not-granted" || c == "invalid-path"),
        "{codes:?}"
    );
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn the_egress_request_budget_ends_the_step() {
    let server = TestServer::start("served").await;
    let limits = Limits {
        egress_requests: 2,
        ..Limits::default()
    };
    let ran = Step::new("egress-path-escape")
        .input(json!({"base": server.url(""), "paths": ["/api/1", "/api/2", "/api/3", "/api/4"]}))
        .grant(grant_get(&server.url("/api/*")))
        .limits(limits)
        .run()
        .await;
    assert_eq!(
        ran.failure().limit(),
        Some(LimitKind::EgressRequests),
        "{:?}",
        ran.failure()
    );
    assert_eq!(server.seen(), ["GET /api/1", "GET /api/2"]);
    assert!(denial_codes(&ran).contains(&"egress-requests".to_owned()));
    match ran.only("limit.exceeded") {
        EvidenceEvent::LimitExceeded { limit, allowed, .. } => {
            assert_eq!((limit.as_str(), *allowed), ("egress-requests", 2));
        }
        other => panic!("{other:?}"),
    }
    ran.assert_bracketed("limit-exceeded");
}

#[tokio::test]
pub async fn the_egress_byte_budget_ends_the_step() {
    let server = TestServer::answering(|_| (200, Vec::new(), "x".repeat(256 * 1024))).await;
    let limits = Limits {
        egress_bytes: 4096,
        ..Limits::default()
    };
    let ran = Step::new("egress-allowed")
        .input(json!({"url": server.url("/api/big")}))
        .grant(grant_get(&server.url("/api/*")))
        .limits(limits)
        .run()
        .await;
    match ran.failure() {
        StepFailure::LimitExceeded(limit) => {
            assert_eq!(limit.kind, LimitKind::EgressBytes);
            assert_eq!(limit.allowed, 4096);
        }
        other => panic!("expected the egress-bytes limit, got {other:?}"),
    }
    ran.only("limit.exceeded");
    assert!(ran.outcome.usage.egress_bytes_in <= 256 * 1024);
}

#[tokio::test]
pub async fn the_sandbox_enforces_the_grant_computed_from_the_manifests() {
    let server = TestServer::start("v1.2.3").await;
    let plugin = relo_manifest::parse_plugin(
        "relo-plugin.toml",
        br#"
[plugin]
name = "acme/probe"
version = "0.1.0"
[[egress]]
url = "{{ endpoints.forge }}/api/*"
methods = ["GET"]
"#,
    )
    .expect("valid plugin manifest");
    let config = format!(
        "[ceilings]\nallowed_networks = [\"127.0.0.0/8\"]\negress_requests = 5\n[endpoints]\nforge = \"http://127.0.0.1:{}\"\n",
        server.port
    );
    let config = relo_manifest::parse_operator("relo.toml", config.as_bytes())
        .expect("valid operator config");
    let declared = declared_capabilities(&plugin, &config).expect("endpoints bound");
    let ceilings = operator_ceilings(&config).expect("ceilings");
    let (grant, limits) = effective_grant(&declared, &declared, &ceilings);
    assert_eq!(limits.egress_requests, 5);

    let allowed = Step::new("egress-allowed")
        .input(json!({"url": server.url("/api/tags")}))
        .grant(grant.clone())
        .limits(limits)
        .run()
        .await;
    assert_eq!(allowed.output()["outcome"], "sent", "{}", allowed.output());
    let denied = Step::new("egress-allowed")
        .input(json!({"url": server.url("/admin")}))
        .grant(grant)
        .limits(limits)
        .run()
        .await;
    assert_eq!(denied.output()["outcome"], "denied");
    assert_eq!(denial_codes(&denied), ["destination-not-granted"]);
    assert_eq!(server.seen(), ["GET /api/tags"]);
}
