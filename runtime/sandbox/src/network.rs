//! Which addresses egress may connect to, and the connection to a checked address.
//!
//! The host resolves a destination's name itself, checks every address against an
//! [`AddressFilter`], and connects to the address it checked: the name is never
//! resolved a second time, so DNS rebinding has no window.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::uri::Scheme;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring::default_provider as rustls_ring_provider;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use wasmtime_wasi_http::Error as HttpError;

/// Decides whether egress may connect to an address after the name was resolved.
pub trait AddressFilter: Send + Sync + 'static {
    /// Whether a connection to `ip` is allowed.
    fn permits(&self, ip: IpAddr) -> bool;
}

/// Refuses loopback, private, link-local (including cloud metadata addresses), CGNAT,
/// multicast, broadcast and unspecified addresses, in IPv4 and IPv6 (IPv4-mapped
/// addresses are checked as IPv4). The default for production.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockInternal;

impl AddressFilter for BlockInternal {
    fn permits(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4_is_public(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4_is_public(v4),
                None => v6_is_public(v6),
            },
        }
    }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let cgnat = a == 100 && (64..128).contains(&b);
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || a == 0
        || cgnat)
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local)
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

/// A stream to the checked address: plain TCP or TLS over it.
pub(crate) type Stream = TokioIo<Box<dyn IoStream>>;

/// What a connection is made of.
pub(crate) trait IoStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> IoStream for T {}

/// Resolves `host`, keeps the first address the filter permits, and connects to it.
pub(crate) async fn connect(
    filter: &dyn AddressFilter,
    scheme: &Scheme,
    host: &str,
    port: u16,
    connect_timeout: Option<Duration>,
) -> Result<(Stream, IpAddr), ConnectFailure> {
    let timeout = connect_timeout
        .unwrap_or(CONNECT_TIMEOUT)
        .min(CONNECT_TIMEOUT);
    let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(err)) => {
                    return Err(failure(
                        "dns-failed",
                        dns_error(&err),
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
            }
        }
    };
    let Some(address) = candidates
        .iter()
        .copied()
        .find(|addr| filter.permits(addr.ip()))
    else {
        let tried = candidates.first().map(SocketAddr::ip);
        let listed: Vec<String> = candidates.iter().map(|a| a.ip().to_string()).collect();
        return Err(failure(
            "address-blocked",
            HttpError::DestinationIpProhibited,
            format!(
                "{host} resolves only to blocked addresses ({})",
                listed.join(", ")
            ),
            tried,
        ));
    };
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

fn dns_error(err: &std::io::Error) -> HttpError {
    HttpError::DnsError {
        rcode: Some(err.to_string()),
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
