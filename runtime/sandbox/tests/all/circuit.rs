//! The egress circuit breaker: a destination that keeps failing (5xx answers, refused
//! connections; never a timeout the step chose) is paused for every step of that
//! plugin — refused without connecting, with `ConnectionRefused` and an
//! `egress.circuit-refused` entry — until, after the cooldown, one trial request decides
//! whether it closes or opens again.
//!
//! These tests run on sandboxes of their own, whose breakers open after three failures:
//! one with a cooldown no test outlasts (so "refused" never depends on timing), and one
//! with a short cooldown for the trial, where the only timing assumed is that a request
//! made after sleeping longer than the cooldown is the trial.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use relo_evidence::{EgressOutcome, EvidenceEvent};
use relo_sandbox::{CircuitBreakerConfig, LoopbackOnly, Sandbox, SandboxConfig, StaticResolver};
use serde_json::{Value, json};

use crate::support::{Answer, Ran, Step, TestServer, grant_get};

/// Consecutive failures that open a breaker in these tests.
const FAILURES: u32 = 3;

/// A cooldown no test outlasts.
const LONG_COOLDOWN: Duration = Duration::from_secs(600);

/// The cooldown of the trial test, and how long it sleeps to outlast it.
const SHORT_COOLDOWN: Duration = Duration::from_millis(200);
const PAST_SHORT_COOLDOWN: Duration = Duration::from_millis(400);

fn sandbox(cooldown: Duration) -> Sandbox {
    Sandbox::new(SandboxConfig {
        address_filter: Arc::new(LoopbackOnly),
        resolver: Arc::new(StaticResolver::default()),
        max_concurrent_steps: 4,
        circuit_breaker: CircuitBreakerConfig {
            failures: FAILURES,
            cooldown,
        },
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
}

/// The sandbox whose breakers stay open for the whole test run once opened. Every test
/// uses destinations of its own (a fresh server port), so they do not interfere.
static PAUSING: LazyLock<Sandbox> = LazyLock::new(|| sandbox(LONG_COOLDOWN));

/// GETs `base` + each path, in order, from one step, granted GET on `base/api/*`.
async fn get_each(sandbox: &Sandbox, base: &str, paths: &[&str]) -> Ran {
    Step::new("egress-path-escape")
        .input(json!({"base": base, "paths": paths}))
        .grant(grant_get(&format!("{base}/api/*")))
        .run_on(sandbox)
        .await
}

/// The guest's view of the request to `path`.
fn result(ran: &Ran, path: &str) -> Value {
    ran.output()["results"][path].clone()
}

/// Answers 503 to a path containing `/fail`, 200 to any other.
fn failing_on_fail(path: &str) -> Answer {
    if path.contains("/fail") {
        (503, Vec::new(), "unavailable".into())
    } else {
        (200, Vec::new(), "ok".into())
    }
}

fn always_503(_: &str) -> Answer {
    (503, Vec::new(), "unavailable".into())
}

/// The paths of the requests refused because the breaker was open, checking that each
/// names the destination and when it reopens.
fn refused(ran: &Ran, port: u16, cooldown: Duration) -> Vec<String> {
    ran.events("egress.circuit-refused")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::EgressCircuitRefused {
                method,
                scheme,
                host,
                port: refused_port,
                path,
                reopens_in_ms,
            } => {
                assert_eq!(
                    (
                        method.as_str(),
                        scheme.as_str(),
                        host.as_str(),
                        *refused_port
                    ),
                    ("GET", "http", "127.0.0.1", port)
                );
                assert!(
                    *reopens_in_ms <= cooldown.as_millis() as u64,
                    "{reopens_in_ms}"
                );
                path.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The consecutive failures of each `egress.circuit-opened`, checking that each names
/// the destination and the cooldown.
fn opened(ran: &Ran, port: u16, cooldown: Duration) -> Vec<u32> {
    ran.events("egress.circuit-opened")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::EgressCircuitOpened {
                scheme,
                host,
                port: opened_port,
                consecutive_failures,
                cooldown_ms,
            } => {
                assert_eq!(
                    (scheme.as_str(), host.as_str(), *opened_port, *cooldown_ms),
                    ("http", "127.0.0.1", port, cooldown.as_millis() as u64)
                );
                *consecutive_failures
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

fn assert_refused_by_the_host(ran: &Ran, path: &str) {
    let result = result(ran, path);
    assert_eq!(result["outcome"], "error", "{path}: {result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap_or("")
            .contains("ConnectionRefused"),
        "{path}: {result}"
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

#[tokio::test]
async fn server_errors_open_the_circuit_and_later_requests_never_reach_the_server() {
    let server = TestServer::answering(always_503).await;
    let paths = ["/api/1", "/api/2", "/api/3", "/api/4", "/api/5"];
    let ran = get_each(&PAUSING, &server.url(""), &paths).await;

    assert_eq!(server.seen(), ["GET /api/1", "GET /api/2", "GET /api/3"]);
    for path in &paths[..3] {
        assert_eq!(result(&ran, path)["status"], 503, "{path}");
    }
    for path in &paths[3..] {
        assert_refused_by_the_host(&ran, path);
    }
    assert_eq!(opened(&ran, server.port, LONG_COOLDOWN), [FAILURES]);
    assert_eq!(
        refused(&ran, server.port, LONG_COOLDOWN),
        ["/api/4", "/api/5"]
    );
    // A refused request is not allowed and never completes; it counts as attempted.
    assert_eq!(ran.events("egress.allowed").len(), 3);
    assert_eq!(ran.events("egress.completed").len(), 3);
    assert_eq!(ran.outcome.usage.egress_requests, 5);
    let kinds: Vec<&str> = ran.evidence.iter().map(|r| r.event.kind()).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).expect(kind);
    let last_completed = kinds
        .iter()
        .rposition(|k| *k == "egress.completed")
        .expect("completed");
    assert!(
        last_completed < position("egress.circuit-opened")
            && position("egress.circuit-opened") < position("egress.circuit-refused"),
        "{kinds:?}"
    );
    assert!(
        ran.outcome
            .logs
            .iter()
            .any(|l| l.message.contains("circuit-open")),
        "the step log explains the refusal: {:?}",
        ran.outcome.logs
    );
    ran.assert_bracketed("succeeded");
}

#[tokio::test]
async fn refused_connections_open_the_circuit_too() {
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let paths = ["/api/1", "/api/2", "/api/3", "/api/4"];
    let ran = get_each(&PAUSING, &base, &paths).await;

    let codes: Vec<&str> = ran
        .events("egress.completed")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::EgressCompleted {
                outcome: EgressOutcome::Failed { code, .. },
                ..
            } => code.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, ["connect-failed"; 3], "only three connections tried");
    assert_eq!(opened(&ran, port, LONG_COOLDOWN), [FAILURES]);
    assert_eq!(refused(&ran, port, LONG_COOLDOWN), ["/api/4"]);
    assert_refused_by_the_host(&ran, "/api/4");
}

#[tokio::test]
async fn after_the_cooldown_one_trial_closes_or_reopens_the_circuit() {
    let trial_sandbox = sandbox(SHORT_COOLDOWN);
    let server = TestServer::answering(failing_on_fail).await;
    let base = server.url("");

    let tripped = get_each(
        &trial_sandbox,
        &base,
        &["/api/fail/1", "/api/fail/2", "/api/fail/3"],
    )
    .await;
    assert_eq!(opened(&tripped, server.port, SHORT_COOLDOWN), [FAILURES]);

    // A failed trial opens the circuit again, counting one failure more.
    tokio::time::sleep(PAST_SHORT_COOLDOWN).await;
    let failed_trial = get_each(&trial_sandbox, &base, &["/api/fail/4"]).await;
    assert_eq!(result(&failed_trial, "/api/fail/4")["status"], 503);
    assert_eq!(
        opened(&failed_trial, server.port, SHORT_COOLDOWN),
        [FAILURES + 1]
    );
    assert!(failed_trial.events("egress.circuit-closed").is_empty());

    // A successful trial closes it: the requests after it flow.
    tokio::time::sleep(PAST_SHORT_COOLDOWN).await;
    let passed_trial = get_each(&trial_sandbox, &base, &["/api/ok/1", "/api/ok/2"]).await;
    for path in ["/api/ok/1", "/api/ok/2"] {
        assert_eq!(result(&passed_trial, path)["status"], 200, "{path}");
    }
    match passed_trial.only("egress.circuit-closed") {
        EvidenceEvent::EgressCircuitClosed { scheme, host, port } => assert_eq!(
            (scheme.as_str(), host.as_str(), *port),
            ("http", "127.0.0.1", server.port)
        ),
        other => panic!("{other:?}"),
    }
    assert!(passed_trial.events("egress.circuit-refused").is_empty());
    assert!(passed_trial.events("egress.circuit-opened").is_empty());
    assert_eq!(
        server.seen(),
        [
            "GET /api/fail/1",
            "GET /api/fail/2",
            "GET /api/fail/3",
            "GET /api/fail/4",
            "GET /api/ok/1",
            "GET /api/ok/2",
        ]
    );
}

#[tokio::test]
async fn a_success_in_between_resets_the_failure_count() {
    let server = TestServer::answering(failing_on_fail).await;
    let paths = [
        "/api/fail/1",
        "/api/fail/2",
        "/api/ok",
        "/api/fail/3",
        "/api/fail/4",
        "/api/fail/5",
        "/api/fail/6",
    ];
    let ran = get_each(&PAUSING, &server.url(""), &paths).await;

    let reached: Vec<String> = paths[..6].iter().map(|p| format!("GET {p}")).collect();
    assert_eq!(server.seen(), reached);
    assert_eq!(opened(&ran, server.port, LONG_COOLDOWN), [FAILURES]);
    assert_eq!(refused(&ran, server.port, LONG_COOLDOWN), ["/api/fail/6"]);
}

#[tokio::test]
async fn the_circuit_is_per_destination() {
    let failing = TestServer::answering(always_503).await;
    let healthy = TestServer::start("fine").await;
    let failing_paths = ["/api/1", "/api/2", "/api/3", "/api/4"];
    let tripped = get_each(&PAUSING, &failing.url(""), &failing_paths).await;
    assert_eq!(refused(&tripped, failing.port, LONG_COOLDOWN), ["/api/4"]);

    // The same host on another port is another destination.
    let other = get_each(&PAUSING, &healthy.url(""), &["/api/1", "/api/2"]).await;
    assert_eq!(healthy.seen(), ["GET /api/1", "GET /api/2"]);
    assert!(other.events("egress.circuit-refused").is_empty());
    assert!(other.events("egress.circuit-opened").is_empty());

    // And its success did not close the failing destination's circuit.
    let again = get_each(&PAUSING, &failing.url(""), &["/api/5"]).await;
    assert_eq!(refused(&again, failing.port, LONG_COOLDOWN), ["/api/5"]);
    assert_eq!(failing.seen().len(), 3);
}

#[tokio::test]
async fn the_circuit_spans_the_steps_of_a_sandbox() {
    let server = TestServer::answering(always_503).await;
    let first = get_each(&PAUSING, &server.url(""), &["/api/1", "/api/2", "/api/3"]).await;
    assert_eq!(opened(&first, server.port, LONG_COOLDOWN), [FAILURES]);
    assert!(first.events("egress.circuit-refused").is_empty());

    // Another step, with evidence of its own, finds the circuit open.
    let second = get_each(&PAUSING, &server.url(""), &["/api/4"]).await;
    assert_refused_by_the_host(&second, "/api/4");
    assert_eq!(refused(&second, server.port, LONG_COOLDOWN), ["/api/4"]);
    assert!(second.events("egress.allowed").is_empty());
    assert_eq!(second.outcome.usage.egress_requests, 1);
    second.assert_bracketed("succeeded");
    assert_eq!(server.seen().len(), 3);

    // The state is the sandbox's: another sandbox still sends to the destination.
    let elsewhere = Step::new("egress-path-escape")
        .input(json!({"base": server.url(""), "paths": ["/api/5"]}))
        .grant(grant_get(&server.url("/api/*")))
        .run()
        .await;
    assert_eq!(result(&elsewhere, "/api/5")["status"], 503);
    assert_eq!(server.seen().len(), 4);
}

/// A loopback server that accepts connections and never answers; its address.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

/// `count` GETs of `base/api/x` by `egress-guest-timeout`, each with the first-byte
/// timeout the step chooses.
async fn guest_timeouts(base: &str, count: u32, timeout_ms: u64) -> Ran {
    Step::new("egress-guest-timeout")
        .input(json!({
            "base": base,
            "path": "/api/x",
            "count": count,
            "first_byte_timeout_ms": timeout_ms,
        }))
        .grant(grant_get(&format!("{base}/api/*")))
        .run_on(&PAUSING)
        .await
}

/// A step's own tiny timeouts say nothing about the destination: more of them than the
/// breaker's threshold open nothing, so no later request is refused.
#[tokio::test]
pub async fn egress_guest_timeout() {
    let base = silent_server().await;
    let ran = guest_timeouts(&base, FAILURES + 2, 50).await;
    let results = ran.output()["results"].clone();
    let results = results.as_array().expect("results");
    assert_eq!(results.len(), FAILURES as usize + 2);
    for result in results {
        assert_eq!(result["outcome"], "error", "{result}");
        assert!(
            result["error"].as_str().unwrap_or("").contains("Timeout"),
            "timed out: {result}"
        );
    }
    assert!(ran.events("egress.circuit-opened").is_empty());
    assert!(ran.events("egress.circuit-refused").is_empty());
    assert_eq!(ran.events("egress.allowed").len(), FAILURES as usize + 2);
}

/// Breakers are per plugin: one plugin's failures pause the destination for that plugin
/// only, never for another plugin's steps.
#[tokio::test]
async fn a_breaker_opened_by_one_plugin_does_not_pause_another() {
    let server = TestServer::answering(always_503).await;
    let paths = ["/api/1", "/api/2", "/api/3", "/api/4"];
    let ran = get_each(&PAUSING, &server.url(""), &paths).await;
    assert_eq!(opened(&ran, server.port, LONG_COOLDOWN), [FAILURES]);
    assert_refused_by_the_host(&ran, "/api/4");

    let other = guest_timeouts(&server.url(""), 1, 5_000).await;
    let result = &other.output()["results"][0];
    assert_eq!(result["outcome"], "sent", "{result}");
    assert_eq!(result["status"], 503, "{result}");
    assert!(other.events("egress.circuit-refused").is_empty());
}
