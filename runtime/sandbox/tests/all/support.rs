//! What the tests share: one sandbox per process, a step builder, evidence queries, and
//! a loopback HTTP server that records what reached it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use relo_evidence::{EvidenceEvent, EvidenceRecord, MemorySink};
use relo_policy::{EgressRule, Grant, Limits, Method};
use relo_sandbox::{
    LoopbackOnly, Plugin, Sandbox, SandboxConfig, StaticResolver, StepContext, StepCredentials,
    StepFailure, StepOutcome, StepRequest,
};
use relo_secrets::StepSecrets;
use relo_trust::Signer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The one name the tests' resolver knows; it resolves to loopback. Every other name
/// is "not found": nothing is ever looked up outside the machine.
pub const TEST_NAME: &str = "forge.test";

/// One engine for the whole test process, as in production. Egress may reach loopback
/// only: the second guard that keeps a policy bug from sending traffic off the machine.
pub static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| {
    Sandbox::new(SandboxConfig {
        address_filter: Arc::new(LoopbackOnly),
        resolver: Arc::new(
            StaticResolver::default().with(TEST_NAME, &["127.0.0.1".parse().expect("ip")]),
        ),
        max_concurrent_steps: 32,
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
});

/// A grant for GET on `url`, with loopback let through as the offline demo does (the
/// built-in network policy blocks it; the sandbox's loopback-only guard still applies).
pub fn grant_get(url: &str) -> Grant {
    let mut grant = Grant::deny_all();
    grant
        .egress
        .push(EgressRule::parse(url, &[Method::Get]).expect("valid rule"));
    grant
        .networks
        .allowed
        .push("127.0.0.0/8".parse().expect("cidr"));
    grant
}

/// Loads a test component by name into the shared sandbox.
pub fn load(component: &str) -> Arc<Plugin> {
    load_into(&SANDBOX, component)
}

/// Loads a test component by name into `sandbox`.
pub fn load_into(sandbox: &Sandbox, component: &str) -> Arc<Plugin> {
    let path =
        relo_test_components::path(component).unwrap_or_else(|| panic!("no component {component}"));
    let bytes = std::fs::read(path).expect("component was built");
    sandbox
        .load(&bytes, &MemorySink::new(), &relo_evidence::Scope::Control)
        .unwrap_or_else(|err| panic!("{component} loads: {err}"))
}

/// A step to run: a component, its input, grant, limits and workspace.
pub struct Step {
    component: &'static str,
    input: Value,
    grant: Grant,
    limits: Limits,
    workspace: Option<PathBuf>,
    secrets: Option<StepSecrets>,
    signers: BTreeMap<String, Arc<dyn Signer>>,
}

impl Step {
    pub fn new(component: &'static str) -> Self {
        Self {
            component,
            input: Value::Object(Default::default()),
            grant: Grant::deny_all(),
            limits: Limits::default(),
            workspace: None,
            secrets: None,
            signers: BTreeMap::new(),
        }
    }

    /// Reads granted secrets from `values` (logical name → value) through a file
    /// provider, each bound to `test/NAME#value`.
    pub fn secrets(mut self, values: &[(&str, &str)]) -> Self {
        self.secrets = Some(file_secrets(values));
        self
    }

    /// Reads granted secrets through `secrets`.
    pub fn step_secrets(mut self, secrets: StepSecrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Signs with `signer` for the logical key name `name`.
    pub fn signer(mut self, name: &str, signer: Arc<dyn Signer>) -> Self {
        self.signers.insert(name.to_owned(), signer);
        self
    }

    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    pub fn grant(mut self, grant: Grant) -> Self {
        self.grant = grant;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn workspace(mut self, dir: PathBuf) -> Self {
        self.workspace = Some(dir);
        self
    }

    pub async fn run(self) -> Ran {
        self.run_on(&SANDBOX).await
    }

    /// Runs the step on `sandbox` instead of the shared one.
    pub async fn run_on(self, sandbox: &Sandbox) -> Ran {
        let plugin = load_into(sandbox, self.component);
        let sink = Arc::new(MemorySink::new());
        let outcome = sandbox
            .run(
                &plugin,
                StepRequest {
                    context: StepContext {
                        run_id: "run-test".into(),
                        step_id: self.component.into(),
                        attempt: 1,
                    },
                    input: self.input.to_string(),
                    grant: Arc::new(self.grant),
                    limits: self.limits,
                    workspace: self.workspace,
                    evidence: sink.clone(),
                    credentials: StepCredentials {
                        secrets: self.secrets,
                        signers: self.signers,
                    },
                },
            )
            .await;
        Ran {
            outcome,
            evidence: sink.records(),
        }
    }
}

/// A finished step and the evidence it produced.
pub struct Ran {
    pub outcome: StepOutcome,
    pub evidence: Vec<EvidenceRecord>,
}

impl Ran {
    /// The output JSON; panics with the failure if the step failed.
    pub fn output(&self) -> Value {
        match &self.outcome.result {
            Ok(json) => serde_json::from_str(json).expect("output is JSON"),
            Err(failure) => panic!("step failed: {failure}; logs: {:?}", self.outcome.logs),
        }
    }

    /// The failure; panics if the step succeeded.
    pub fn failure(&self) -> &StepFailure {
        match &self.outcome.result {
            Ok(json) => panic!("step succeeded unexpectedly with {json}"),
            Err(failure) => failure,
        }
    }

    /// Every event of `kind`, in order.
    pub fn events(&self, kind: &str) -> Vec<&EvidenceEvent> {
        self.evidence
            .iter()
            .map(|record| &record.event)
            .filter(|event| event.kind() == kind)
            .collect()
    }

    /// The one event of `kind`; panics unless there is exactly one.
    pub fn only(&self, kind: &str) -> &EvidenceEvent {
        let events = self.events(kind);
        assert_eq!(
            events.len(),
            1,
            "expected one {kind}, evidence: {:#?}",
            self.evidence
        );
        events[0]
    }

    /// The evidence as one JSON text, to search for things that must never be there.
    pub fn evidence_text(&self) -> String {
        serde_json::to_string(&self.evidence).expect("evidence serialises")
    }

    /// Asserts the step started and finished with `outcome`, in that order, first and last.
    pub fn assert_bracketed(&self, outcome: &str) {
        let kinds: Vec<&str> = self.evidence.iter().map(|r| r.event.kind()).collect();
        assert_eq!(kinds.first(), Some(&"step.started"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"step.finished"), "{kinds:?}");
        match self.only("step.finished") {
            EvidenceEvent::StepFinished {
                outcome: recorded, ..
            } => assert_eq!(recorded, outcome),
            other => panic!("{other:?}"),
        }
    }
}

/// Runs a normal step on the shared engine: the host must still serve after an attack.
pub async fn assert_engine_still_serves() {
    let ran = Step::new("echo")
        .input(serde_json::json!({"still": "serving"}))
        .run()
        .await;
    assert_eq!(ran.output()["echo"]["still"], "serving");
}

/// What a test server answers: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// A loopback HTTP/1.1 server that answers every request with what `respond` returns
/// for its path, recording `METHOD /path` and the `Host` header of each request it saw.
pub struct TestServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    heads: Arc<Mutex<Vec<String>>>,
    hosts: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Answers 200 with `body` to everything.
    pub async fn start(body: &'static str) -> Self {
        Self::answering(move |_| (200, Vec::new(), body.to_owned())).await
    }

    /// Answers whatever `respond` says for the request's path.
    pub async fn answering(respond: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (recorded, recorded_hosts) = (Arc::clone(&seen), Arc::clone(&hosts));
        let recorded_heads = Arc::clone(&heads);
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (recorded, recorded_hosts, recorded_heads, respond) = (
                    Arc::clone(&recorded),
                    Arc::clone(&recorded_hosts),
                    Arc::clone(&recorded_heads),
                    Arc::clone(&respond),
                );
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    recorded_heads
                        .lock()
                        .expect("lock")
                        .push(text.clone().into_owned());
                    let mut lines = text.lines();
                    let line = lines.next().unwrap_or("").to_owned();
                    let mut parts = line.split(' ');
                    let method = parts.next().unwrap_or("");
                    let path = parts.next().unwrap_or("");
                    recorded
                        .lock()
                        .expect("lock")
                        .push(format!("{method} {path}"));
                    if let Some(host) = lines.find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    }) {
                        recorded_hosts.lock().expect("lock").push(host.to_owned());
                    }
                    let (status, headers, body) = respond(path);
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (name, value) in headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    response.push_str(&body);
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            port,
            seen,
            heads,
            hosts,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `METHOD /path` of every request that reached the server.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    /// The request line and headers of every request that reached the server, as sent.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }

    /// The `Host` header of every request that reached the server.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.lock().expect("lock").clone()
    }
}

/// A file provider holding `values` (logical name → value) at `test/NAME#value`.
pub fn file_provider(values: &[(&str, &str)]) -> Arc<dyn relo_secrets::SecretProvider> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secrets.json");
    let json: serde_json::Map<String, Value> = values
        .iter()
        .map(|(name, value)| {
            (
                format!("test/{name}"),
                serde_json::json!({ "value": value }),
            )
        })
        .collect();
    std::fs::write(&file, Value::Object(json).to_string()).expect("secrets file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Arc::new(relo_secrets::FileProvider::open(&file).expect("file provider"))
}

/// [`file_provider`] with each name bound to `test/NAME#value`.
pub fn file_secrets(values: &[(&str, &str)]) -> StepSecrets {
    let bindings = values
        .iter()
        .map(|(name, _)| {
            let path = format!("test/{name}#value").parse().expect("secret path");
            ((*name).to_owned(), path)
        })
        .collect();
    StepSecrets::new(file_provider(values), bindings)
}
