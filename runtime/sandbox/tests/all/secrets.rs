//! Secrets through a provider: handles, reveal, host-side injection, and the hostile
//! components that try to leak a value, each with what the host must do about it.

use relo_evidence::EvidenceEvent;
use relo_policy::{EgressRule, Grant, InjectRule, Method, SecretGrant};
use relo_sandbox::StepFailure;
use serde_json::json;

use crate::support::{Ran, Step, TestServer, assert_engine_still_serves};

/// A value whose base64 form does not contain it.
const VALUE: &str = "s3cr3t-forge-token-value-42";
const REDACTED: &str = "[REDACTED:forge_token]";

/// A grant of `forge_token`, injected into `authorization` toward `inject`.
fn grant(reveal: bool, inject: Vec<EgressRule>) -> Grant {
    let inject = inject
        .into_iter()
        .map(|destination| InjectRule {
            destination,
            header: "authorization".parse().expect("header name"),
        })
        .collect();
    let mut grant = Grant::deny_all();
    grant.declared_secrets.insert("forge_token".into());
    grant
        .secrets
        .insert("forge_token".into(), SecretGrant { inject, reveal });
    grant
        .networks
        .allowed
        .push("127.0.0.0/8".parse().expect("cidr"));
    grant
}

fn step(component: &'static str) -> Step {
    Step::new(component)
        .grant(grant(true, Vec::new()))
        .secrets(&[("forge_token", VALUE)])
}

/// Nothing the host kept of the step holds the value: log lines, captured output,
/// the failure message, the evidence.
fn assert_nothing_holds_the_value(ran: &Ran) {
    for line in &ran.outcome.logs {
        assert!(!line.message.contains(VALUE), "log line: {}", line.message);
    }
    for (stream, bytes) in [
        ("stdout", &ran.outcome.stdout),
        ("stderr", &ran.outcome.stderr),
    ] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(VALUE), "{stream}: {text}");
    }
    if let Err(failure) = &ran.outcome.result {
        assert!(!failure.to_string().contains(VALUE), "{failure}");
    }
    assert!(!ran.evidence_text().contains(VALUE));
}

fn read_and_revealed(ran: &Ran) {
    match ran.only("secret.read") {
        EvidenceEvent::SecretRead {
            name,
            reference,
            version,
        } => {
            assert_eq!(name, "forge_token");
            assert_eq!(reference, "test/forge_token#value");
            assert_eq!(*version, None, "the file provider keeps no versions");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ran.events("secret.revealed").len(), 1);
}

#[tokio::test]
pub async fn secrets_leak_log() {
    let ran = step("secrets-leak-log").run().await;
    assert_eq!(ran.output(), json!({"ok": true}));
    let messages: Vec<&str> = ran
        .outcome
        .logs
        .iter()
        .map(|l| l.message.as_str())
        .collect();
    assert!(messages.contains(&REDACTED), "{messages:?}");
    assert!(
        messages.contains(&format!("token={REDACTED};").as_str()),
        "{messages:?}"
    );
    read_and_revealed(&ran);
    assert_nothing_holds_the_value(&ran);
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn secrets_leak_panic() {
    let ran = step("secrets-leak-panic").run().await;
    let failure = ran.failure();
    assert!(matches!(failure, StepFailure::Trap { .. }), "{failure:?}");
    assert!(failure.to_string().contains(REDACTED), "{failure}");
    assert!(String::from_utf8_lossy(&ran.outcome.stderr).contains(REDACTED));
    assert_nothing_holds_the_value(&ran);
    ran.assert_bracketed("trap");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn secrets_leak_stdout() {
    let ran = step("secrets-leak-stdout").run().await;
    assert_eq!(ran.output(), json!({"ok": true}));
    for bytes in [&ran.outcome.stdout, &ran.outcome.stderr] {
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [REDACTED.to_owned(), format!("token={REDACTED};")]
        );
    }
    assert_nothing_holds_the_value(&ran);
}

#[tokio::test]
pub async fn secrets_leak_output() {
    let ran = step("secrets-leak-output").run().await;
    let failure = ran.failure();
    assert_eq!(failure.code(), "secret-in-output");
    assert!(failure.to_string().contains("forge_token"), "{failure}");
    match ran.only("secret.leak-blocked") {
        EvidenceEvent::SecretLeakBlocked { name, channel } => {
            assert_eq!((name.as_str(), channel.as_str()), ("forge_token", "output"));
        }
        other => panic!("{other:?}"),
    }
    ran.assert_bracketed("secret-in-output");
    assert_nothing_holds_the_value(&ran);
}

/// Redaction knows the literal value only: an encoded copy passes. This is documented
/// (docs/secrets.md); the test keeps the documentation honest.
#[tokio::test]
pub async fn secrets_leak_base64() {
    let ran = step("secrets-leak-base64").run().await;
    let encoded = "czNjcjN0LWZvcmdlLXRva2VuLXZhbHVlLTQy";
    assert_eq!(ran.output(), json!({"encoded": encoded}));
    assert!(ran.outcome.logs.iter().any(|l| l.message.contains(encoded)));
    assert_nothing_holds_the_value(&ran);
}

/// Sending a revealed value to a granted destination is allowed by design; the evidence
/// names the destination it went to.
#[tokio::test]
pub async fn secrets_exfil_allowed() {
    let server = TestServer::start("thanks").await;
    let mut grant = grant(true, Vec::new());
    grant
        .egress
        .push(EgressRule::parse(&server.url("/collect"), &[Method::Post]).expect("rule"));
    let ran = Step::new("secrets-exfil-allowed")
        .grant(grant)
        .secrets(&[("forge_token", VALUE)])
        .input(json!({"url": server.url("/collect")}))
        .run()
        .await;
    assert_eq!(ran.output(), json!({"status": 200}));
    assert_eq!(server.seen(), ["POST /collect"]);
    read_and_revealed(&ran);
    match ran.only("egress.allowed") {
        EvidenceEvent::EgressAllowed {
            method,
            host,
            port,
            path,
            ..
        } => assert_eq!(
            (method.as_str(), host.as_str(), *port, path.as_str()),
            ("POST", "127.0.0.1", server.port, "/collect")
        ),
        other => panic!("{other:?}"),
    }
    assert_nothing_holds_the_value(&ran);
}

fn inject_request(server: &TestServer, header: &str) -> serde_json::Value {
    json!({
        "url": server.url("/api/tags"),
        "headers": {"authorization": header},
    })
}

fn get_rule(server: &TestServer, path: &str) -> EgressRule {
    EgressRule::parse(&server.url(path), &[Method::Get]).expect("rule")
}

#[tokio::test]
pub async fn the_host_injects_a_secret_toward_a_listed_destination() {
    let server = TestServer::start("v1.2.3").await;
    let mut grant = grant(false, vec![get_rule(&server, "/api/*")]);
    grant.egress.push(get_rule(&server, "/api/*"));
    let ran = Step::new("egress-allowed")
        .grant(grant)
        .secrets(&[("forge_token", VALUE)])
        .input(inject_request(&server, "Bearer {{secret:forge_token}}"))
        .run()
        .await;
    assert_eq!(ran.output()["status"], 200, "{}", ran.output());
    let heads = server.heads();
    assert!(
        heads[0].contains(&format!("authorization: Bearer {VALUE}")),
        "{heads:?}"
    );
    match ran.only("secret.injected") {
        EvidenceEvent::SecretInjected {
            name,
            reference,
            header,
            host,
            port,
            path,
            ..
        } => {
            assert_eq!(name, "forge_token");
            assert_eq!(reference, "test/forge_token#value");
            assert_eq!(header, "authorization");
            assert_eq!(
                (host.as_str(), *port, path.as_str()),
                ("127.0.0.1", server.port, "/api/tags")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(ran.events("secret.revealed").is_empty());
    assert_nothing_holds_the_value(&ran);
}

#[tokio::test]
pub async fn injection_toward_an_unlisted_destination_denies_the_request() {
    let server = TestServer::start("v1.2.3").await;
    // Egress to /api/* is granted, but the secret may only go to /auth/*.
    let mut grant = grant(false, vec![get_rule(&server, "/auth/*")]);
    grant.egress.push(get_rule(&server, "/api/*"));
    let ran = Step::new("egress-allowed")
        .grant(grant)
        .secrets(&[("forge_token", VALUE)])
        .input(inject_request(&server, "Bearer {{secret:forge_token}}"))
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "denied", "{}", ran.output());
    assert!(server.seen().is_empty(), "nothing may reach the server");
    match ran.only("egress.denied") {
        EvidenceEvent::EgressDenied { code, .. } => assert_eq!(code, "secret-injection-denied"),
        other => panic!("{other:?}"),
    }
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied { name, code, .. } => {
            assert_eq!(
                (name.as_str(), code.as_str()),
                ("forge_token", "secret-injection-denied")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(ran.events("secret.injected").is_empty());
}

#[tokio::test]
pub async fn injection_of_an_ungranted_secret_or_without_a_provider_is_denied() {
    let server = TestServer::start("v1.2.3").await;
    let mut grant = grant(false, vec![get_rule(&server, "/api/*")]);
    grant.egress.push(get_rule(&server, "/api/*"));
    let undeclared = Step::new("egress-allowed")
        .grant(grant.clone())
        .secrets(&[("forge_token", VALUE)])
        .input(inject_request(&server, "{{secret:other_token}}"))
        .run()
        .await;
    match undeclared.only("egress.denied") {
        EvidenceEvent::EgressDenied { code, .. } => assert_eq!(code, "secret-not-declared"),
        other => panic!("{other:?}"),
    }
    let no_provider = Step::new("egress-allowed")
        .grant(grant)
        .input(inject_request(&server, "{{secret:forge_token}}"))
        .run()
        .await;
    match no_provider.only("egress.denied") {
        EvidenceEvent::EgressDenied { code, .. } => assert_eq!(code, "provider-unavailable"),
        other => panic!("{other:?}"),
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
pub async fn a_granted_but_unbound_secret_is_unavailable() {
    let ran = Step::new("reveal-without-grant")
        .grant(grant(true, Vec::new()))
        .secrets(&[("other", VALUE)])
        .input(json!({"name": "forge_token"}))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "get-denied", "{output}");
    assert_eq!(output["kind"], "unavailable");
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied { code, .. } => assert_eq!(code, "secret-unbound"),
        other => panic!("{other:?}"),
    }
}

/// Each `get` reads through the step's own Vault token: revoked while the step waits
/// on an HTTP call, the step's next read fails with `unavailable` (a real OpenBao).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn secrets_read_twice() {
    use std::sync::Arc;
    use std::time::Duration;

    use relo_secrets::{SecretProvider, StepSecrets};
    use relo_test_openbao::{APP_TOKEN_V2, Bao};

    let bao = Bao::start().await;
    let vault = bao.root_provider().await;
    let token = Arc::new(
        vault
            .scoped(
                &[bao.path("app#token")],
                Duration::from_secs(60),
                "read-twice",
            )
            .await
            .expect("scoped token"),
    );
    let provider: Arc<dyn SecretProvider> = token.clone();
    let secrets = StepSecrets::new(
        provider,
        [("forge_token".to_owned(), bao.path("app#token"))].into(),
    );
    let revoking = Arc::clone(&token);
    let server = TestServer::answering(move |_| {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(revoking.revoke());
        });
        (200, Vec::new(), "revoked".to_owned())
    })
    .await;
    let mut grant = grant(false, Vec::new());
    grant.egress.push(get_rule(&server, "/revoke"));
    let mut step = Step::new("secrets-read-twice")
        .grant(grant)
        .input(json!({"url": server.url("/revoke")}));
    step = step.step_secrets(secrets);
    let ran = step.run().await;
    assert_eq!(
        ran.output(),
        json!({"first": "ok", "second": "unavailable"})
    );
    assert_eq!(ran.events("secret.read").len(), 1);
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied { code, reason, .. } => {
            assert_eq!(code, "secret-denied", "{reason}");
            assert!(reason.contains(&bao.kv("app")), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!ran.evidence_text().contains(APP_TOKEN_V2));
}

/// Vault going down while a step runs: the step's next read fails with `unavailable`,
/// and the evidence names the provider failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn vault_down_mid_step_is_unavailable_and_recorded() {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use relo_secrets::{SecretProvider, StepSecrets};
    use relo_test_openbao::Bao;

    // A server of its own: this test stops it.
    let bao = Bao::start_private().await;
    let vault = bao.root_provider().await;
    let app_token = bao.path("app#token");
    let bao = Arc::new(Mutex::new(bao));
    let token = vault
        .scoped(
            std::slice::from_ref(&app_token),
            Duration::from_secs(60),
            "vault-down",
        )
        .await
        .expect("scoped token");
    let provider: Arc<dyn SecretProvider> = Arc::new(token);
    let secrets = StepSecrets::new(provider, [("forge_token".to_owned(), app_token)].into());
    let killing = Arc::clone(&bao);
    let server = TestServer::answering(move |_| {
        killing.lock().expect("lock").kill();
        (200, Vec::new(), "vault is gone".to_owned())
    })
    .await;
    let mut grant = grant(false, Vec::new());
    grant.egress.push(get_rule(&server, "/crash"));
    let ran = Step::new("secrets-read-twice")
        .grant(grant)
        .step_secrets(secrets)
        .input(json!({"url": server.url("/crash")}))
        .run()
        .await;
    assert_eq!(
        ran.output(),
        json!({"first": "ok", "second": "unavailable"})
    );
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied { code, reason, .. } => {
            assert_eq!(code, "provider-unavailable", "{reason}");
            assert!(reason.contains("127.0.0.1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn a_provider_refusal_is_recorded_with_the_secret_s_reference() {
    // Bound, but the file has no such field: the denial names where it looked.
    let mut bindings = std::collections::BTreeMap::new();
    bindings.insert(
        "forge_token".to_owned(),
        "test/other#missing".parse().expect("secret path"),
    );
    let provider = crate::support::file_provider(&[("other", VALUE)]);
    let ran = Step::new("reveal-without-grant")
        .grant(grant(true, Vec::new()))
        .step_secrets(relo_secrets::StepSecrets::new(provider, bindings))
        .input(json!({"name": "forge_token"}))
        .run()
        .await;
    assert_eq!(ran.output()["kind"], "unavailable");
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied {
            reference, code, ..
        } => {
            assert_eq!(code, "secret-not-found");
            assert_eq!(reference.as_deref(), Some("test/other#missing"));
        }
        other => panic!("{other:?}"),
    }
}

/// The output check reads the output as JSON means it: a `\u`-escaped character does not
/// hide the value.
#[tokio::test]
pub async fn secrets_leak_escaped() {
    let ran = step("secrets-leak-escaped").run().await;
    let failure = ran.failure();
    assert_eq!(failure.code(), "secret-in-output", "{failure:?}");
    match ran.only("secret.leak-blocked") {
        EvidenceEvent::SecretLeakBlocked { name, channel } => {
            assert_eq!((name.as_str(), channel.as_str()), ("forge_token", "output"));
        }
        other => panic!("{other:?}"),
    }
    ran.assert_bracketed("secret-in-output");
    assert_nothing_holds_the_value(&ran);
}

/// A 1 MiB secret name is refused, and the host keeps at most 256 bytes of it, marked.
#[tokio::test]
pub async fn secrets_long_name() {
    let ran = Step::new("secrets-long-name").run().await;
    assert_eq!(ran.output()["outcome"], "denied");
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied { name, reason, .. } => {
            assert!(name.len() <= 256 + 32, "{} bytes kept", name.len());
            assert!(
                name.starts_with("aaaa") && name.ends_with("…[truncated 1048320 bytes]"),
                "{name}"
            );
            assert!(
                reason.len() <= 2048 + 32,
                "{} bytes of reason",
                reason.len()
            );
        }
        other => panic!("{other:?}"),
    }
    let noted: usize = ran.outcome.logs.iter().map(|l| l.message.len()).sum();
    assert!(noted < 8 * 1024, "the host note is bounded: {noted} bytes");
    assert_engine_still_serves().await;
}

/// What a step logs reaches the host's own tracing (at debug level) redacted: with every
/// level enabled, the captured trace of a step that logs a revealed value holds
/// `[REDACTED:forge_token]`, never the value.
#[tokio::test]
pub async fn a_leaking_step_prints_no_value_to_the_host_trace_at_any_level() {
    let trace = TraceCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(trace.clone())
        .with_ansi(false)
        .finish();
    let ran = {
        // The test's runtime has one thread: the step's host calls run on it.
        let _guard = tracing::subscriber::set_default(subscriber);
        step("secrets-leak-log").run().await
    };
    assert_eq!(ran.output(), json!({"ok": true}));
    let printed = trace.text();
    assert!(
        printed.contains(REDACTED),
        "the step's lines are traced: {printed}"
    );
    assert!(!printed.contains(VALUE), "{printed}");
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct TraceCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl TraceCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("trace buffer")).into_owned()
    }
}

impl std::io::Write for TraceCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("trace buffer")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TraceCapture {
    type Writer = TraceCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A loopback server that echoes the `authorization` it receives: in `x-echo`, in a
/// header of its own (`x-set-by-server: token=<value>`), and in a JSON body written in
/// two parts with a pause between them, the value split across the two. Its URL.
async fn echoing_server() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0_u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let token = text
                .lines()
                .find_map(|l| l.strip_prefix("authorization: Bearer "))
                .unwrap_or_default()
                .to_owned();
            let (first, second) = token.split_at(token.len() / 2);
            let part_one = format!("{{\"echo\": \"Bearer {first}");
            let part_two = format!("{second}\"}}");
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-echo: Bearer {token}\r\n\
                 x-set-by-server: token={token}; Path=/\r\nconnection: close\r\n\r\n{part_one}",
                part_one.len() + part_two.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.flush().await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let _ = socket.write_all(part_two.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{address}")
}

/// An injected secret echoed back by its destination reaches the step masked, in every
/// header and in a body where the value is split across two chunks; each is recorded as
/// `secret.reflected`. (Reversed by the step, the value would pass the output check.)
#[tokio::test]
pub async fn secrets_reflect() {
    let base = echoing_server().await;
    let rule = EgressRule::parse(&format!("{base}/api/*"), &[Method::Get]).expect("rule");
    let mut grant = grant(false, vec![rule.clone()]);
    grant.egress.push(rule);
    let ran = Step::new("secrets-reflect")
        .grant(grant)
        .secrets(&[("forge_token", VALUE)])
        .input(json!({"url": format!("{base}/api/echo")}))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["status"], 200, "{output}");
    let unreversed = |value: &serde_json::Value| -> String {
        value.as_str().unwrap_or_default().chars().rev().collect()
    };
    let mask = "*".repeat(VALUE.len());
    assert_eq!(
        unreversed(&output["headers"]["x-echo"]),
        format!("Bearer {mask}")
    );
    assert_eq!(
        unreversed(&output["headers"]["x-set-by-server"]),
        format!("token={mask}; Path=/")
    );
    assert_eq!(
        unreversed(&output["body"]),
        format!("{{\"echo\": \"Bearer {mask}\"}}")
    );
    let reflected: Vec<(String, Option<String>)> = ran
        .events("secret.reflected")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::SecretReflected {
                name,
                channel,
                header,
            } => {
                assert_eq!(name, "forge_token");
                (channel.clone(), header.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    for expected in [
        ("header".to_owned(), Some("x-echo".to_owned())),
        ("header".to_owned(), Some("x-set-by-server".to_owned())),
        ("body".to_owned(), None),
    ] {
        assert!(
            reflected.contains(&expected),
            "{expected:?} in {reflected:?}"
        );
    }
    assert_nothing_holds_the_value(&ran);
}

/// The codes of the `egress.denied` and `secret.denied` entries of `ran`, in order.
fn denial_codes(ran: &Ran) -> (Vec<String>, Vec<String>) {
    let egress = ran
        .events("egress.denied")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::EgressDenied { code, .. } => code.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let secret = ran
        .events("secret.denied")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::SecretDenied {
                name, code, reason, ..
            } => {
                assert_eq!(name, "forge_token");
                assert!(reason.contains("header `origin`"), "{reason}");
                code.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    (egress, secret)
}

/// A secret granted into `authorization` toward a destination, placed by the step in
/// `Origin` (a header destinations echo) toward that destination, alone and beside the
/// granted header: both requests are refused as `inject-header-not-granted`, recorded,
/// and the destination sees neither the requests nor the value.
#[tokio::test]
pub async fn secrets_inject_origin() {
    let server = TestServer::start("v1.2.3").await;
    let mut grant = grant(false, vec![get_rule(&server, "/api/*")]);
    grant.egress.push(get_rule(&server, "/api/*"));
    let ran = Step::new("secrets-inject-origin")
        .grant(grant)
        .secrets(&[("forge_token", VALUE)])
        .input(json!({"url": server.url("/api/tags")}))
        .run()
        .await;
    let output = ran.output();
    for attempt in ["origin", "beside_authorization"] {
        assert_eq!(output[attempt]["outcome"], "denied", "{attempt}: {output}");
    }
    assert!(server.seen().is_empty(), "{:?}", server.heads());
    let refused = vec!["inject-header-not-granted".to_owned(); 2];
    assert_eq!(denial_codes(&ran), (refused.clone(), refused));
    assert!(ran.events("secret.injected").is_empty());
    assert!(ran.events("egress.allowed").is_empty());
    assert_nothing_holds_the_value(&ran);
}

/// An inject rule naming another header (`x-api-key`, in any case) fills that header and
/// refuses `authorization`, its default.
#[tokio::test]
pub async fn an_inject_rule_fills_only_its_own_header() {
    let server = TestServer::start("v1.2.3").await;
    let mut grant = grant(false, Vec::new());
    let secret = grant.secrets.get_mut("forge_token").expect("granted");
    secret.inject.push(InjectRule {
        destination: get_rule(&server, "/api/*"),
        header: "X-API-Key".parse().expect("header name"),
    });
    grant.egress.push(get_rule(&server, "/api/*"));
    let send = |header: &str| {
        Step::new("egress-allowed")
            .grant(grant.clone())
            .secrets(&[("forge_token", VALUE)])
            .input(json!({
                "url": server.url("/api/tags"),
                "headers": {header: "{{secret:forge_token}}"},
            }))
            .run()
    };
    let granted = send("X-Api-Key").await;
    assert_eq!(granted.output()["outcome"], "sent", "{}", granted.output());
    assert!(
        server.heads()[0].contains(&format!("x-api-key: {VALUE}")),
        "{:?}",
        server.heads()
    );
    match granted.only("secret.injected") {
        EvidenceEvent::SecretInjected { header, .. } => assert_eq!(header, "x-api-key"),
        other => panic!("{other:?}"),
    }
    let refused = send("authorization").await;
    assert_eq!(
        refused.output()["outcome"],
        "denied",
        "{}",
        refused.output()
    );
    match refused.only("egress.denied") {
        EvidenceEvent::EgressDenied { code, reason, .. } => {
            assert_eq!(code, "inject-header-not-granted");
            assert!(reason.contains("header `authorization`"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.seen().len(), 1, "only the granted request went out");
    assert_nothing_holds_the_value(&refused);
}
