//! `relo serve`: the API server (relo-server) over TLS, or over plain HTTP on loopback
//! only, with a warning.
//!
//! TLS uses rustls (ring) with the certificate chain and key the operator names;
//! `relo init --tls` makes a development CA and a server certificate for localhost. Each
//! TLS handshake runs in its own task with a time limit, so a slow or silent client
//! never holds up the others. The access token key is kept in the home (0600), so
//! tokens stay valid across restarts. `--bootstrap-admin NAME` creates the first admin,
//! with the password in `RELO_ADMIN_PASSWORD`, unless that user exists.
//! `--metrics-listen ADDR` serves `/metrics` without authentication on a second,
//! loopback-only listener; `--trusted-proxy CIDR` names the reverse proxies whose
//! `X-Forwarded-For` is believed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::serve::ListenerExt as _;
use relo_server::{
    AppState, JwtSecret, Limit, RateLimits, Role, SystemClock, app, check_metrics_listen,
    create_user, import_people, metrics_app,
};
use relo_trust::TrustPolicy;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::args::ServeArgs;
use crate::evidence::HomeEvidence;
use crate::home::Home;
use crate::run::{RunnerOptions, hostname, runner};

/// The environment variable holding the first admin's password.
pub const ADMIN_PASSWORD_ENV: &str = "RELO_ADMIN_PASSWORD";

/// Where the access token key is kept in the home.
const JWT_SECRET_FILE: &str = "server/jwt.secret";

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at most; more connections wait in the accept queue.
const MAX_HANDSHAKES: usize = 256;

/// Runs `relo serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve plain HTTP on {}: pass --tls-cert and --tls-key (or listen on a loopback address)",
            args.listen
        );
    }
    if let Some(address) = args.metrics_listen {
        check_metrics_listen(address).context("--metrics-listen")?;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let home = Arc::new(Home::load(&args.home)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = served_store(&home).await?;
        bootstrap(&store, args.bootstrap_admin.as_deref()).await?;
        let secret = jwt_secret(&home.path)?;
        let limits = RateLimits {
            login_per_client: Limit::per_minute(args.logins_per_minute.max(1)),
            login_per_name: Limit::per_minute(args.logins_per_minute.max(1)),
            per_client: Limit::per_minute(
                args.client_requests_per_minute
                    .unwrap_or(args.requests_per_minute.saturating_mul(5))
                    .max(1),
            ),
            per_principal: Limit::per_minute(args.requests_per_minute.max(1)),
        };
        let mut state =
            AppState::with_limits(store.clone(), &secret, Arc::new(SystemClock), limits)
                .with_trusted_proxies(args.trusted_proxies.clone());
        state
            .refresh_evidence_counts()
            .await
            .context("cannot read the evidence counts for /metrics")?;
        let mut sweeper = None;
        // The trust policy of relo.toml: plugin uploads, approvals, run requests and gate
        // approvals are verified with it, and runs run with its sandbox and secrets.
        if let Some(config) = home.config.clone() {
            // The people of relo.toml, with their keys, move into the store at first
            // start; from then on the store says whose signature counts.
            let people = TrustPolicy::load(&config, &home.path)
                .context("cannot load relo.toml's [[people]]")?;
            let imported = import_people(&store, people.people())
                .await
                .context("cannot import [[people]] into the store")?;
            if !imported.users.is_empty() {
                eprintln!(
                    "relo serve: imported {} from [[people]] as users without a password; an admin sets theirs with PUT /v1/users/NAME/password",
                    imported.users.join(", ")
                );
            }
            if !imported.left_out.is_empty() {
                eprintln!(
                    "relo serve: warning: relo.toml's [[people]] names {}, who are not in the store; people now change only through the API (POST /v1/users, POST /v1/users/NAME/keys)",
                    imported.left_out.join(", ")
                );
            }
            if imported.opened_directory {
                eprintln!(
                    "relo serve: people, their roles and keys now live in the store, which from now on says whose signature counts, not relo.toml's [[people]] (manage them with /v1/users)"
                );
            }
            state = state
                .with_trust(config, &home.path)
                .context("cannot load relo.toml's trust policy")?;
            let options = RunnerOptions {
                owner: format!("serve@{}:{}", hostname(), std::process::id()),
                parallel: args.parallel.max(1),
                lease: Duration::from_secs(args.lease_seconds.max(1)),
                max_active_runs: Some(args.max_active_runs.max(1)),
            };
            let (runner, progress) = runner(&home, &store, options).await?;
            state = state
                .with_runner(runner, Some(progress))
                .with_evidence_service(Arc::new(HomeEvidence::new(
                    Arc::clone(&home),
                    store.clone(),
                )));
            sweeper = state.spawn_sweeper(Duration::from_secs(args.sweep_seconds.max(1)));
        }
        let metrics = match args.metrics_listen {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?;
                let local = listener.local_addr()?;
                println!("relo serve: metrics on http://{local}/metrics");
                let router = metrics_app(state.clone());
                Some(tokio::spawn(async move {
                    if let Err(error) = axum::serve(listener, router).await {
                        tracing::error!(%error, "the metrics listener stopped");
                    }
                }))
            }
            None => None,
        };
        let router = app(state).into_make_service_with_connect_info::<SocketAddr>();
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let local = listener.local_addr()?;
        match tls {
            Some(config) => {
                println!("relo serve: listening on https://{local}");
                // `tap_io` is what lets axum hand the peer address to handlers
                // (`ConnectInfo`) for a listener of our own.
                let listener = TlsListener::start(listener, local, TlsAcceptor::from(config))
                    .tap_io(|_| {});
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown())
                    .await?;
            }
            None => {
                eprintln!(
                    "warning: serving plain HTTP on loopback ({local}); use --tls-cert and --tls-key for anything else"
                );
                println!("relo serve: listening on http://{local}");
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown())
                    .await?;
            }
        }
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM: requests in flight finish, new ones are not taken.
async fn shutdown() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!("cannot watch for SIGTERM: {error}");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("relo serve: stopping");
}

/// Creates the admin `name`, with the password in `RELO_ADMIN_PASSWORD`, unless that
/// user exists already.
async fn bootstrap(store: &relo_store::Store, name: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = name else {
        return Ok(());
    };
    if store.user(name).await?.is_some() {
        return Ok(());
    }
    let password = std::env::var(ADMIN_PASSWORD_ENV).with_context(|| {
        format!("--bootstrap-admin {name}: set the password in {ADMIN_PASSWORD_ENV}")
    })?;
    create_user(store, name, &password, &[Role::Admin])
        .await
        .with_context(|| format!("cannot create the admin {name}"))?;
    eprintln!("created the admin {name}");
    Ok(())
}

/// The access token key of this home: read, or made (0600) at first start.
fn jwt_secret(home: &Path) -> anyhow::Result<JwtSecret> {
    let path = home.join(JWT_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            JwtSecret::from_bytes(&bytes).with_context(|| format!("{} is unusable", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, bytes.as_mut())
                .context("the operating system's random source failed")?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write_private(&path, bytes.as_ref())?;
            Ok(JwtSecret::from_bytes(bytes.as_ref())?)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `bytes` to a new file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A rustls server config from PEM files: the certificate chain and its private key.
fn tls_config(cert: &PathBuf, key: &PathBuf) -> anyhow::Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no valid PEM certificate", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no private key", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not go together")?;
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands over those whose TLS handshake finished in time.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, local: SocketAddr, acceptor: TlsAcceptor) -> Self {
        let (sender, ready) = mpsc::channel(MAX_HANDSHAKES);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, "TLS handshake failed: {error}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Self { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The store `relo serve` works on: sealed with the evidence key when the home has one
/// (every control entry the server appends is then covered by a batch seal); a home
/// without one is served unsealed, and says so.
async fn served_store(home: &Home) -> anyhow::Result<relo_store::Store> {
    match home.evidence_signer() {
        Ok(signer) => home.sealed_store(Arc::from(signer)).await,
        Err(error) => {
            eprintln!(
                "relo serve: warning: evidence is not sealed ({error:#}); `relo evidence verify` \
                 reports entries no seal or checkpoint covers"
            );
            home.store().await
        }
    }
}
