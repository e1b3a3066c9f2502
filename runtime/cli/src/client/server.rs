//! Which servers the client talks to, and how: the URL policy (tokens never travel in
//! clear) and the HTTP client (rustls with ring, the system's CAs plus `--ca-cert`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use url::{Host, Url};

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may stay silent while answering.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a `--server` URL is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("`{url}` is not a URL: {reason}")]
    Invalid {
        /// What was given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A scheme other than `https` or `http`.
    #[error("`{url}`: the server URL must start with https:// (or http:// for this machine)")]
    Scheme {
        /// What was given.
        url: String,
    },
    /// `http://` to a host that is not this machine: tokens would travel in clear.
    #[error(
        "refusing plain http:// to {host}: passwords and tokens would cross the network \
         unencrypted; use https:// (plain http is only for 127.0.0.1, ::1 and localhost)"
    )]
    Plaintext {
        /// The host named.
        host: String,
    },
    /// A user name or password inside the URL.
    #[error("`{url}`: the server URL must not hold a user name or password; use `relo login`")]
    Credentials {
        /// What was given, without its credentials.
        url: String,
    },
    /// A query or fragment: a base URL has neither.
    #[error("`{url}`: the server URL must not have a query (?...) or fragment (#...)")]
    QueryOrFragment {
        /// What was given.
        url: String,
    },
}

/// The base URL of a relo server, checked against the policy and normalised (lowercase
/// scheme and host, no default port, no trailing slash): the key of its login in the
/// credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    base: Url,
    text: String,
}

impl ServerUrl {
    /// Parses and checks `text`: `https://` to any host; `http://` only to a loopback
    /// host (`127.0.0.0/8`, `::1`, `localhost`).
    pub fn parse(text: &str) -> Result<ServerUrl, UrlError> {
        let mut base = Url::parse(text.trim()).map_err(|error| UrlError::Invalid {
            url: text.to_owned(),
            reason: error.to_string(),
        })?;
        if !base.username().is_empty() || base.password().is_some() {
            // Best effort: the URL without them, so the message repeats no password.
            let _ = base.set_username("");
            let _ = base.set_password(None);
            return Err(UrlError::Credentials {
                url: base.to_string(),
            });
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(UrlError::QueryOrFragment {
                url: text.to_owned(),
            });
        }
        let host = base.host().map(|host| host.to_owned());
        match (base.scheme(), &host) {
            ("https", Some(_)) => {}
            ("http", Some(host)) if is_loopback(host) => {}
            ("http", Some(host)) => {
                return Err(UrlError::Plaintext {
                    host: host.to_string(),
                });
            }
            _ => {
                return Err(UrlError::Scheme {
                    url: text.to_owned(),
                });
            }
        }
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        let text = base.as_str().trim_end_matches('/').to_owned();
        Ok(ServerUrl { base, text })
    }

    /// The normalised URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the connection is encrypted.
    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// The URL of the API path made of `segments` (each percent-encoded as one path
    /// segment) below the base, with the `query` pairs.
    pub fn endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_loopback(host: &Host<String>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The HTTP client for `server`: no redirects (a token must not follow one elsewhere),
/// HTTP/1.1, TLS by rustls with ring trusting the system's CAs (the web PKI roots when
/// the system has none) and the PEM certificates of `ca_cert`.
pub fn http_client(server: &ServerUrl, ca_cert: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut roots = RootCertStore::empty();
    if server.is_https() {
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
    }
    if let Some(file) = ca_cert {
        for cert in ca_certificates(file)? {
            roots.add(cert).with_context(|| {
                format!("--ca-cert {}: unusable CA certificate", file.display())
            })?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("relo/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// The certificates of a PEM file; none is an error.
fn ca_certificates(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("--ca-cert: cannot read {}", file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--ca-cert {}: not valid PEM", file.display()))?;
    if certs.is_empty() {
        bail!("--ca-cert {} holds no certificate", file.display());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_accepted_for_any_host_and_normalised() {
        let url = ServerUrl::parse("HTTPS://Relo.Example.COM:443/api/").expect("accepted");
        assert_eq!(url.as_str(), "https://relo.example.com/api");
        assert_eq!(
            url.endpoint(&["v1", "runs", "run 1/x"], &[("limit", "5")])
                .as_str(),
            "https://relo.example.com/api/v1/runs/run%201%2Fx?limit=5"
        );
        let root = ServerUrl::parse("https://relo.example.com:8443").expect("accepted");
        assert_eq!(root.as_str(), "https://relo.example.com:8443");
        assert_eq!(
            root.endpoint(&["v1", "me"], &[]).as_str(),
            "https://relo.example.com:8443/v1/me"
        );
        assert_eq!(
            ServerUrl::parse("https://relo.example.com:8443/")
                .expect("accepted")
                .as_str(),
            root.as_str(),
            "one server, one key, with or without the trailing slash"
        );
    }

    #[test]
    fn plain_http_is_accepted_for_loopback_hosts_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080/",
            "http://localhost:8080",
            "http://LOCALHOST",
        ] {
            assert!(ServerUrl::parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://relo.example.com",
            "http://10.0.0.7:8080",
            "http://[2001:db8::1]/",
            "http://localhost.example.com",
            "http://0.0.0.0:8080",
        ] {
            assert!(
                matches!(ServerUrl::parse(refused), Err(UrlError::Plaintext { .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn other_schemes_credentials_queries_and_garbage_are_refused() {
        assert!(matches!(
            ServerUrl::parse("ftp://relo.example.com"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            ServerUrl::parse("relo.example.com"),
            Err(UrlError::Invalid { .. })
        ));
        let with_password = ServerUrl::parse("https://olga:hunter2@relo.example.com");
        let Err(error @ UrlError::Credentials { .. }) = with_password else {
            panic!("{with_password:?}");
        };
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(matches!(
            ServerUrl::parse("https://relo.example.com/?x=1"),
            Err(UrlError::QueryOrFragment { .. })
        ));
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let server = ServerUrl::parse("https://relo.example.com").expect("url");
        let error = http_client(&server, Some(&empty)).expect_err("refused");
        assert!(
            error.to_string().contains("holds no certificate"),
            "{error:#}"
        );
        assert!(http_client(&server, None).is_ok());
    }
}
