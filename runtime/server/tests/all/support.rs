//! A server over a test database, a clock the tests move, and request helpers.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use std::collections::BTreeMap;

use base64ct::{Base64, Encoding as _};
use relo_manifest::{OperatorConfig, parse_operator};
use relo_orchestrator::{CredentialSource, PluginCatalog, Runner, Workspaces};
use relo_sandbox::{LoopbackOnly, Sandbox, SandboxConfig};
use relo_server::{
    AppState, JwtSecret, Limit, ManualClock, RateLimits, Role, app, create_user, metrics_app,
};
use relo_store::Store;
use relo_store::{CheckpointPolicy, EvidenceWriter, WriterOptions};
use relo_trust::{KeyAlgorithm, PrivateKey, TrustPolicy, VerifiedPlugin};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};
use std::net::SocketAddr;
use tempfile::TempDir;
use tower::ServiceExt as _;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// The secret the test server signs access tokens with.
pub const SECRET: [u8; 32] = *b"relo-server-tests-hs256-secret!!";

/// Runs each named `async fn(TestServer)` of the calling module on both backends, as
/// `sqlite::NAME` and `postgres::NAME`; the PostgreSQL half passes without running when
/// `RELO_TEST_POSTGRES_URL` is unset.
macro_rules! server_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::TestServer::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = $crate::support::TestServer::postgres().await {
                        super::$name(server).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use server_tests;

/// Limits high enough that no ordinary test meets them.
pub fn generous() -> RateLimits {
    RateLimits {
        login_per_client: Limit::per_minute(10_000),
        login_per_name: Limit::per_minute(10_000),
        per_client: Limit::per_minute(10_000),
        per_principal: Limit::per_minute(10_000),
    }
}

/// The trust policy of every test server's relo home: plugins named `relo-test/*` are
/// signed by `keys/author.pub` (attributed to paul) or `keys/olga-signing.pub`
/// (attributed to olga); olga and oscar are operators who approve with their own keys.
pub const TRUST_CONFIG: &str = r#"
[[trust.signers]]
key = "keys/author.pub"
plugins = ["relo-test/*"]
person = "paul"

[[trust.signers]]
key = "keys/olga-signing.pub"
plugins = ["relo-test/*"]
person = "olga"

[[people]]
name = "olga"
keys = ["keys/olga.pub"]
roles = ["operator"]

[[people]]
name = "oscar"
keys = ["keys/oscar.pub"]
roles = ["operator"]

[[people]]
name = "paul"
keys = ["keys/author.pub"]
roles = ["plugin-author"]
"#;

/// The private keys of the test home's trust policy, generated for each server.
pub struct TrustKeys {
    /// Signs plugins; `[[trust.signers]]` attributes it to paul.
    pub author: PrivateKey,
    /// Signs plugins; `[[trust.signers]]` attributes it to olga.
    pub olga_signing: PrivateKey,
    /// olga's approval key (`[[people]]`).
    pub olga: PrivateKey,
    /// oscar's approval key (`[[people]]`).
    pub oscar: PrivateKey,
}

impl TrustKeys {
    /// New keys, their public halves written under `home/keys`.
    fn generate(home: &std::path::Path) -> TrustKeys {
        std::fs::create_dir_all(home.join("keys")).unwrap();
        let keys = TrustKeys {
            author: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
            olga_signing: PrivateKey::generate(KeyAlgorithm::Ed25519),
            olga: PrivateKey::generate(KeyAlgorithm::Ed25519),
            oscar: PrivateKey::generate(KeyAlgorithm::Ed25519),
        };
        for (name, key) in [
            ("author", &keys.author),
            ("olga-signing", &keys.olga_signing),
            ("olga", &keys.olga),
            ("oscar", &keys.oscar),
        ] {
            std::fs::write(
                home.join(format!("keys/{name}.pub")),
                key.public_key().to_pem(),
            )
            .unwrap();
        }
        keys
    }
}

/// The server under test, over a database of its own, with users `olga` (operator,
/// auditor), `ivan` (release-manager) and `ada` (admin), and the trust policy
/// [`TRUST_CONFIG`].
pub struct TestServer {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub keys: TrustKeys,
    pub config: OperatorConfig,
    router: Router,
    state: AppState,
    _home: TempDir,
    _schema: Option<PgSchema>,
}

/// A response: status, headers, and the body as JSON (`Null` when empty, a string for
/// `text/plain`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error answer: {} {}", self.status, self.body))
    }

    /// Asserts the status and the error code, and that the error has exactly the
    /// documented shape.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        let error = self.body["error"].as_object().unwrap();
        let mut keys: Vec<_> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "field", "message"], "{}", self.body);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["field"].is_null() || error["field"].is_string());
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
        );
    }

    /// The `field` of an error answer.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// An access and a refresh token.
#[derive(Debug, Clone)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
}

/// Runs one requester may have that have not ended, on every test server.
pub const MAX_ACTIVE_RUNS: u32 = 3;

/// A runner over the test home: loopback-only egress, no secrets, evidence checkpoints
/// signed by a fresh key, at most [`MAX_ACTIVE_RUNS`] unended runs per requester.
async fn runner(store: &Store, config: &OperatorConfig, home: &std::path::Path) -> Arc<Runner> {
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            address_filter: Arc::new(LoopbackOnly),
            ..SandboxConfig::default()
        })
        .unwrap(),
    );
    let catalog = PluginCatalog::new(store.clone(), Arc::clone(&sandbox), config.clone(), home)
        .await
        .unwrap();
    let origin = store.evidence_origin().await.unwrap();
    let writer = EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            checkpoints: Some(CheckpointPolicy {
                every: 10_000,
                signer: Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519)),
                key_name: origin.clone(),
                origin,
            }),
            ..WriterOptions::default()
        },
    );
    Arc::new(Runner {
        store: store.clone(),
        catalog: Arc::new(catalog),
        sandbox,
        credentials: CredentialSource::new(None, config, BTreeMap::new()),
        evidence: Arc::new(writer),
        workspaces: Workspaces::new(home.join("workspaces")),
        progress: None,
        owner: "server-test".into(),
        lease: Duration::from_secs(60),
        parallel: 4,
        max_active_runs: Some(MAX_ACTIVE_RUNS),
    })
}

/// The name the test plugins are signed under.
pub const NAME: &str = "relo-test/echo";

/// The echo component.
pub fn echo() -> Vec<u8> {
    std::fs::read(relo_test_components::ECHO).unwrap()
}

/// Another component (its output is not JSON).
pub fn other_component() -> Vec<u8> {
    std::fs::read(relo_test_components::OUTPUT_NOT_JSON).unwrap()
}

/// The attestation (DSSE envelope, JSON) of `wasm` as `NAME@version`, signed by `key`.
pub fn attest(wasm: &[u8], version: &str, key: &PrivateKey) -> String {
    let manifest = format!("[plugin]\nname = \"{NAME}\"\nversion = \"{version}\"\n");
    let manifest = relo_manifest::parse_plugin("relo-plugin.toml", manifest.as_bytes()).unwrap();
    relo_trust::SignedPlugin::sign(wasm, &manifest, key)
        .unwrap()
        .envelope
        .to_json()
}

/// The upload request body.
pub fn upload_body(wasm: &[u8], attestation: &str) -> Value {
    json!({ "wasm_base64": Base64::encode_string(wasm), "attestation": attestation })
}

/// What the trust policy verifies `wasm` with `attestation` as.
pub fn verified(server: &TestServer, wasm: &[u8], attestation: &str) -> VerifiedPlugin {
    server
        .policy()
        .verify_plugin(wasm, attestation.as_bytes())
        .unwrap()
}

/// An approval of everything `plugin` declares by `person` with `key`, signed at
/// `signed_at`, as the JSON document `relo plugin approve --out` writes.
pub fn approval(
    server: &TestServer,
    plugin: &VerifiedPlugin,
    person: &str,
    key: &PrivateKey,
    signed_at: SystemTime,
) -> Value {
    let declared = relo_policy::declared_capabilities(&plugin.manifest, &server.config).unwrap();
    let signed =
        relo_trust::SignedApproval::sign(plugin, declared, person, key, signed_at, None).unwrap();
    serde_json::from_str(&signed.envelope.to_json_pretty()).unwrap()
}

/// The moment the test clock starts at: fixed, so runs are repeatable.
pub fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_900_000_000)
}

impl TestServer {
    /// A server on SQLite in a new temporary home.
    pub async fn sqlite() -> TestServer {
        TestServer::sqlite_with(generous()).await
    }

    /// A server on SQLite with the rate limits `limits`.
    pub async fn sqlite_with(limits: RateLimits) -> TestServer {
        let home = tempfile::tempdir().unwrap();
        let store = Store::connect(home.path(), "sqlite://relo.db")
            .await
            .unwrap();
        TestServer::over(store, home, None, limits).await
    }

    /// A server on SQLite whose requests may take at most `limit`.
    pub async fn sqlite_with_request_timeout(limit: Duration) -> TestServer {
        let mut server = TestServer::sqlite().await;
        server.router = app(server.state.clone().with_request_timeout(limit));
        server
    }

    /// A server on PostgreSQL (when configured) with generous rate limits.
    pub async fn postgres() -> Option<TestServer> {
        TestServer::postgres_with(generous()).await
    }

    /// A server on a fresh schema of the `RELO_TEST_POSTGRES_URL` database, or `None`
    /// when `RELO_SKIP_POSTGRES=1` (outside CI); an unset variable fails the test.
    pub async fn postgres_with(limits: RateLimits) -> Option<TestServer> {
        let base = relo_test_env::postgres_url()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "relo_server_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&base).await.unwrap();
        admin
            .execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap();
        let _ = admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        let home = tempfile::tempdir().unwrap();
        let store = Store::connect(home.path(), &url).await.unwrap();
        Some(TestServer::over(store, home, Some(PgSchema { base, name }), limits).await)
    }

    async fn over(
        store: Store,
        home: TempDir,
        schema: Option<PgSchema>,
        limits: RateLimits,
    ) -> TestServer {
        create_user(&store, "olga", PASSWORD, &[Role::Operator, Role::Auditor])
            .await
            .unwrap();
        create_user(&store, "ivan", PASSWORD, &[Role::ReleaseManager])
            .await
            .unwrap();
        create_user(&store, "ada", PASSWORD, &[Role::Admin])
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let keys = TrustKeys::generate(home.path());
        let config = parse_operator("relo.toml", TRUST_CONFIG.as_bytes()).unwrap();
        let state = AppState::with_limits(
            store.clone(),
            &JwtSecret::from_bytes(&SECRET).unwrap(),
            clock.clone(),
            limits,
        )
        .with_trust(config.clone(), home.path())
        .unwrap()
        .with_runner(runner(&store, &config, home.path()).await, None);
        TestServer {
            store,
            clock,
            keys,
            config,
            router: app(state.clone()),
            state,
            _home: home,
            _schema: schema,
        }
    }

    /// The same server, believing `X-Forwarded-For` from peers inside `proxies`.
    pub fn with_trusted_proxies(mut self, proxies: &[&str]) -> TestServer {
        let proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        self.state = self.state.clone().with_trusted_proxies(proxies);
        self.router = app(self.state.clone());
        self
    }

    /// Reads the evidence-derived counts of `/metrics` now.
    pub async fn refresh_evidence_counts(&self) {
        self.state.refresh_evidence_counts().await.unwrap();
    }

    /// `/metrics` as the auditor olga sees it, with the evidence counts read just before.
    pub async fn metrics_text(&self) -> String {
        self.refresh_evidence_counts().await;
        let olga = self.login("olga").await.access;
        let answer = self.get("/metrics", Some(&olga)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(
            answer.headers[header::CONTENT_TYPE],
            "text/plain; version=0.0.4"
        );
        answer.body.as_str().unwrap().to_owned()
    }

    /// `GET path` on the metrics listener (`relo serve --metrics-listen`), without a
    /// token: the status and the body as text.
    pub async fn metrics_listener_get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = metrics_app(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// The server's relo home.
    pub fn home(&self) -> &std::path::Path {
        self._home.path()
    }

    /// The trust policy the server verifies with.
    pub fn policy(&self) -> TrustPolicy {
        TrustPolicy::load(&self.config, self._home.path()).unwrap()
    }

    /// Sends one request.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let is_text = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
        let body = if bytes.is_empty() {
            Value::Null
        } else if is_text {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!(
                    "{status}: the body is not JSON ({err}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// POSTs `body` as JSON.
    pub async fn post(&self, path: &str, body: impl Into<Body>) -> Answer {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// GETs `path` with `token` as the bearer token, if any.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// `method path` with `token` as the bearer token, a JSON `body` (none when `None`)
    /// and `client` as the connection's address (none when `None`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        client: Option<SocketAddr>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        if let Some(address) = client {
            request.extensions_mut().insert(ConnectInfo(address));
        }
        self.send(request).await
    }

    /// The control chain's entries of `kind`, as JSON bodies.
    pub async fn audit_bodies(&self, kind: &str) -> Vec<Value> {
        self.store
            .scope_entries("control", 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| serde_json::from_str(&e.body).unwrap())
            .collect()
    }

    /// Asserts that the control chain verifies and holds no secret of `secrets`.
    pub async fn assert_audit_sound(&self, secrets: &[&str]) {
        let entries: Vec<_> = self
            .store
            .scope_entries("control", 0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(relo_store::StoredEntry::to_evidence_entry)
            .collect();
        relo_evidence::verify_scope(&entries, None).unwrap();
        for entry in &entries {
            let text = entry.body.to_string();
            for secret in secrets {
                assert!(!text.contains(secret), "{text} holds a secret");
            }
        }
    }

    /// `GET /v1/me` with `token`.
    pub async fn me(&self, token: &str) -> Answer {
        self.get("/v1/me", Some(token)).await
    }

    /// Logs in; the answer as is.
    pub async fn try_login(&self, name: &str, password: &str) -> Answer {
        self.post(
            "/v1/auth/login",
            json!({ "name": name, "password": password }).to_string(),
        )
        .await
    }

    /// Logs in as `name`, which must succeed.
    pub async fn login(&self, name: &str) -> Pair {
        let answer = self.try_login(name, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        pair(&answer)
    }

    /// `POST /v1/auth/refresh` with `refresh`.
    pub async fn refresh(&self, refresh: &str) -> Answer {
        self.post(
            "/v1/auth/refresh",
            json!({ "refresh_token": refresh }).to_string(),
        )
        .await
    }

    /// `POST /v1/auth/logout` with `refresh`.
    pub async fn logout(&self, refresh: &str) -> Answer {
        self.post(
            "/v1/auth/logout",
            json!({ "refresh_token": refresh }).to_string(),
        )
        .await
    }
}

/// The pair of a login or refresh answer, checking its shape.
pub fn pair(answer: &Answer) -> Pair {
    assert_eq!(answer.body["token_type"], "Bearer", "{}", answer.body);
    assert_eq!(answer.body["expires_in"], 900, "{}", answer.body);
    Pair {
        access: answer.body["access_token"].as_str().unwrap().to_owned(),
        refresh: answer.body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

struct PgSchema {
    base: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime, so the cleanup gets a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(options) = PgConnectOptions::from_str(&base)
                    && let Ok(mut conn) = options.connect().await
                {
                    let _ = conn.execute(sql.as_str()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
