//! Requests per second, p50 and p99 of the run API on loopback, beside `GET /healthz`
//! served by the same server in the same run: starting a no-op run (a signed request for
//! a workflow whose only step is an approval gate, so the run is stored, driven and
//! parked without running a component) and reading a run. A Rust load generator keeps
//! `CONNECTIONS` requests in flight for `SECONDS` per figure, over HTTP/1.1 keep-alive;
//! the run requests are signed before the clock starts. SQLite in a temporary home,
//! evidence on. Printed as a Markdown table for `docs/benchmarks.md`.
//!
//! ```sh
//! cargo bench -p relo-server --bench api
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use relo_manifest::parse_operator;
use relo_orchestrator::{CredentialSource, PluginCatalog, RunRequest, Runner, Workspaces};
use relo_sandbox::{Sandbox, SandboxConfig};
use relo_server::{AppState, JwtSecret, Limit, RateLimits, Role, SystemClock, app, create_user};
use relo_store::{CheckpointPolicy, EvidenceWriter, Store, WriterOptions};
use relo_trust::{KeyAlgorithm, PrivateKey, sha256_hex};
use serde_json::{Value, json};

const CONNECTIONS: usize = 16;
const SECONDS: u64 = 5;
const PASSWORD: &str = "a long benchmark password";

const CONFIG: &str =
    "[[people]]\nname = \"olga\"\nkeys = [\"keys/olga.pub\"]\nroles = [\"operator\"]\n";

const WORKFLOW: &str = "apiVersion: relo.dev/v1\nkind: Workflow\nname: noop\nsteps:\n  \
                        - id: approve\n    approval: { roles: [operator], quorum: 1 }\n";

/// A server over a fresh SQLite home, on a loopback port; olga's key and token.
async fn serve(home: &std::path::Path) -> (SocketAddr, PrivateKey) {
    std::fs::create_dir_all(home.join("keys")).expect("keys");
    let olga = PrivateKey::generate(KeyAlgorithm::Ed25519);
    std::fs::write(home.join("keys/olga.pub"), olga.public_key().to_pem()).expect("key");
    let config = parse_operator("relo.toml", CONFIG.as_bytes()).expect("config");
    let store = Store::connect(home, "sqlite://relo.db")
        .await
        .expect("store");
    create_user(&store, "olga", PASSWORD, &[Role::Operator])
        .await
        .expect("user");
    let sandbox = Arc::new(Sandbox::new(SandboxConfig::default()).expect("sandbox"));
    let catalog = PluginCatalog::new(store.clone(), Arc::clone(&sandbox), config.clone(), home)
        .await
        .expect("catalog");
    let origin = store.evidence_origin().await.expect("origin");
    let writer = EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            checkpoints: Some(CheckpointPolicy {
                every: 100_000,
                signer: Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519)),
                key_name: origin.clone(),
                origin,
            }),
            ..WriterOptions::default()
        },
    );
    let runner = Arc::new(Runner {
        store: store.clone(),
        catalog: Arc::new(catalog),
        sandbox,
        credentials: CredentialSource::new(None, &config, BTreeMap::new()),
        evidence: Arc::new(writer),
        workspaces: Workspaces::new(home.join("workspaces")),
        progress: None,
        owner: "bench".into(),
        lease: Duration::from_secs(60),
        parallel: 4,
        max_active_runs: None,
    });
    let unlimited = Limit::per_minute(u32::MAX / 2);
    let limits = RateLimits {
        login_per_client: unlimited,
        login_per_name: unlimited,
        per_client: unlimited,
        per_principal: unlimited,
    };
    let state = AppState::with_limits(
        store,
        &JwtSecret::generate().expect("secret"),
        Arc::new(SystemClock),
        limits,
    )
    .with_trust(config, home)
    .expect("trust")
    .with_runner(runner, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (address, olga)
}

/// What each request of a figure is.
#[derive(Clone)]
enum Load {
    /// `GET path`.
    Get(String),
    /// `POST /v1/runs` with one of these bodies each, in turn.
    Start(Arc<Vec<String>>),
}

/// Latencies of a figure, and how long it ran.
struct Measured {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[at]
    }
}

/// Keeps `CONNECTIONS` requests of `load` in flight for `seconds`; every answer must be
/// `expected`.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    load: Load,
    expected: u16,
    seconds: u64,
) -> Measured {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (client, base, token, load, next) = (
            client.clone(),
            base.to_owned(),
            token.to_owned(),
            load.clone(),
            Arc::clone(&next),
        );
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let request = match &load {
                    Load::Get(path) => client.get(format!("{base}{path}")),
                    Load::Start(bodies) => {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(n) else { break };
                        client
                            .post(format!("{base}/v1/runs"))
                            .header("content-type", "application/json")
                            .body(body.clone())
                    }
                };
                let sent = Instant::now();
                let response = request.bearer_auth(&token).send().await.expect("send");
                let status = response.status().as_u16();
                response.bytes().await.expect("body");
                assert_eq!(status, expected, "unexpected answer");
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done.expect("worker"));
    }
    Measured {
        latencies,
        elapsed: started.elapsed(),
    }
}

/// `count` run requests signed by olga, as `POST /v1/runs` bodies.
fn signed_bodies(olga: &PrivateKey, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let request = RunRequest {
                run_id: format!("bench-{n}"),
                workflow: "noop".into(),
                workflow_sha256: sha256_hex(WORKFLOW.as_bytes()),
                params: BTreeMap::new(),
                requested_by: "olga".into(),
                requested_at: relo_store::rfc3339_utc(SystemTime::now()),
            };
            let envelope: Value =
                serde_json::from_str(&request.sign(olga).expect("sign").to_json()).expect("json");
            json!({ "request": envelope, "workflow_text": WORKFLOW }).to_string()
        })
        .collect()
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // reqwest's rustls wants a process-wide provider even for plain HTTP: ring, as
    // everywhere in relo.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let (address, olga) = serve(home.path()).await;
        let base = format!("http://{address}");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .expect("client");
        let login = client
            .post(format!("{base}/v1/auth/login"))
            .header("content-type", "application/json")
            .body(json!({"name": "olga", "password": PASSWORD}).to_string())
            .send()
            .await
            .expect("login")
            .bytes()
            .await
            .expect("token");
        let login: Value = serde_json::from_slice(&login).expect("token pair");
        let token = login["access_token"].as_str().expect("token").to_owned();
        // Enough signed requests for any rate this machine reaches.
        let bodies = Arc::new(signed_bodies(&olga, 20_000));

        let health = measure(
            &client,
            &base,
            &token,
            Load::Get("/healthz".into()),
            200,
            SECONDS,
        )
        .await;
        let start = measure(
            &client,
            &base,
            &token,
            Load::Start(Arc::clone(&bodies)),
            202,
            SECONDS,
        )
        .await;
        let read = measure(
            &client,
            &base,
            &token,
            Load::Get("/v1/runs/bench-0".into()),
            200,
            SECONDS,
        )
        .await;
        let baseline = health.per_second();
        println!("{CONNECTIONS} connections, {SECONDS} s per figure, SQLite, release build\n");
        println!("| request | requests/s | p50 | p99 | ratio to `GET /healthz` |");
        println!("|---|---|---|---|---|");
        for (name, figure) in [
            ("`GET /healthz` (baseline)", &health),
            ("`POST /v1/runs` (start a no-op run)", &start),
            ("`GET /v1/runs/{id}` (read a run)", &read),
        ] {
            println!(
                "| {name} | {:.0} | {} | {} | {:.3}× |",
                figure.per_second(),
                ms(figure.quantile(0.50)),
                ms(figure.quantile(0.99)),
                figure.per_second() / baseline
            );
        }
    });
}
