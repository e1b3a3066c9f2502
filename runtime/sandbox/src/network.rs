//! Name resolution, the address checks, and the connection to a checked address.
//!
//! The host resolves a destination's name itself, checks every address it gets against
//! the grant's [`NetworkPolicy`] and then against the sandbox's [`AddressFilter`] (a
//! second guard), and connects to an address it checked: the name is never resolved a
//! second time, so DNS rebinding has no window.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::uri::Scheme;
use hyper_util::rt::TokioIo;
use relo_policy::NetworkPolicy;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring::default_provider as rustls_ring_provider;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use wasmtime_wasi_http::Error as HttpError;

/// A second guard on the addresses egress connects to, after the grant's network
/// policy: the sandbox's own, whatever the grant says.
pub trait AddressFilter: Send + Sync + 'static {
    /// Whether a connection to `ip` is allowed.
    fn permits(&self, ip: IpAddr) -> bool;
}

/// What resolving a name yields.
pub type Resolution = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. The host resolves names itself, once per request.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host`.
    fn resolve(&self, host: &str) -> Resolution;
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Resolution {
        let host = host.to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// Fixed answers for fixed names, and "not found" for every other name: for offline
/// demonstrations and tests, where nothing may be looked up outside the machine.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    entries: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// Answers `addresses` for `name` (compared without case).
    pub fn with(mut self, name: &str, addresses: &[IpAddr]) -> Self {
        self.entries
            .insert(name.to_ascii_lowercase(), addresses.to_vec());
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str) -> Resolution {
        let found = self.entries.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "name not known to the static resolver",
                )
            })
        })
    }
}

/// Permits only loopback addresses. Tests use it as a second guard, so that a policy
/// bug can never send traffic off the machine; the offline demo uses it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopbackOnly;

impl AddressFilter for LoopbackOnly {
    fn permits(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// Permits every address. Only for hosts whose network is isolated by other means.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyAddress;

impl AddressFilter for AnyAddress {
    fn permits(&self, _ip: IpAddr) -> bool {
        true
    }
}

/// How long name resolution and connecting may take, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no connection was made, with the address tried when there was one.
pub(crate) struct ConnectFailure {
    pub(crate) code: &'static str,
    pub(crate) error: HttpError,
    pub(crate) message: String,
    pub(crate) address: Option<IpAddr>,
}

impl ConnectFailure {
    /// Whether the destination failed (its name did not resolve, it did not accept the
    /// connection or TLS), as opposed to the host refusing the address it resolved to.
    pub(crate) fn is_destination_failure(&self) -> bool {
        !matches!(self.error, HttpError::DestinationIpProhibited)
    }
}

/// A stream to the checked address: plain TCP or TLS over it.
pub(crate) type Stream = TokioIo<Box<dyn IoStream>>;

/// What a connection is made of.
pub(crate) trait IoStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> IoStream for T {}

/// Where and how to connect: the checks every address must pass.
pub(crate) struct ConnectPolicy<'a> {
    pub(crate) networks: &'a NetworkPolicy,
    pub(crate) guard: &'a dyn AddressFilter,
    pub(crate) resolver: &'a dyn Resolver,
}

/// Resolves `host`, refuses it if any address it resolves to is blocked, and connects
/// to the first one.
pub(crate) async fn connect(
    policy: &ConnectPolicy<'_>,
    scheme: &Scheme,
    host: &str,
    port: u16,
    connect_timeout: Option<Duration>,
) -> Result<(Stream, IpAddr), ConnectFailure> {
    let timeout = connect_timeout
        .unwrap_or(CONNECT_TIMEOUT)
        .min(CONNECT_TIMEOUT);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let candidates: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(timeout, policy.resolver.resolve(bare)).await {
            Ok(Ok(addresses)) if !addresses.is_empty() => addresses,
            Ok(Ok(_)) => {
                return Err(failure(
                    "dns-failed",
                    dns_error("no addresses"),
                    format!("{host} has no addresses"),
                    None,
                ));
            }
            Ok(Err(err)) => {
                return Err(failure(
                    "dns-failed",
                    dns_error(&err.to_string()),
                    err.to_string(),
                    None,
                ));
            }
            Err(_) => {
                return Err(failure(
                    "dns-timeout",
                    HttpError::DnsTimeout,
                    "name resolution timed out".into(),
                    None,
                ));
            }
        },
    };
    for &candidate in &candidates {
        if let Err(blocked) = policy.networks.check(candidate) {
            return Err(failure(
                "address-blocked",
                HttpError::DestinationIpProhibited,
                format!("{host} resolves to {blocked}"),
                Some(candidate),
            ));
        }
        if !policy.guard.permits(candidate) {
            return Err(failure(
                "address-blocked",
                HttpError::DestinationIpProhibited,
                format!("{host} resolves to {candidate}, which this host's connect guard refuses"),
                Some(candidate),
            ));
        }
    }
    let address = SocketAddr::new(candidates[0], port);
    let ip = address.ip();
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(err)) => {
            return Err(failure(
                "connect-failed",
                HttpError::ConnectionRefused,
                err.to_string(),
                Some(ip),
            ));
        }
        Err(_) => {
            return Err(failure(
                "connect-timeout",
                HttpError::ConnectionTimeout,
                "connect timed out".into(),
                Some(ip),
            ));
        }
    };
    if *scheme != Scheme::HTTPS {
        return Ok((TokioIo::new(Box::new(tcp)), ip));
    }
    let server_name = ServerName::try_from(host.to_owned()).map_err(|err| {
        failure(
            "tls-failed",
            HttpError::TlsProtocolError,
            err.to_string(),
            Some(ip),
        )
    })?;
    let config = tls_config()
        .map_err(|err| failure("tls-failed", HttpError::TlsProtocolError, err, Some(ip)))?;
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|err| {
            failure(
                "tls-failed",
                HttpError::TlsCertificateError,
                err.to_string(),
                Some(ip),
            )
        })?;
    Ok((TokioIo::new(Box::new(tls)), ip))
}

fn failure(
    code: &'static str,
    error: HttpError,
    message: String,
    address: Option<IpAddr>,
) -> ConnectFailure {
    ConnectFailure {
        code,
        error,
        message,
        address,
    }
}

fn dns_error(message: &str) -> HttpError {
    HttpError::DnsError {
        rcode: Some(message.to_owned()),
        info_code: None,
    }
}

/// One TLS client configuration per process, trusting the web PKI roots.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls_ring_provider());
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
                })
                .map_err(|err| err.to_string())
        })
        .clone()
}
