//! Egress rules and the decision for one outgoing HTTP request.
//!
//! A rule names a scheme, a host pattern, ports, a path pattern and methods. A request
//! is matched after normalisation: host names in lower case without a trailing dot and
//! in punycode, IPv6 literals as addresses, the path percent-decoded with its dot
//! segments removed. Rules intersect exactly, so the effective grant is itself a list
//! of rules (what an approval binds and the evidence shows).

mod host;
mod path;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use host::{HostPattern, RequestHost};
pub use path::{PathPattern, normalise_path};

/// An HTTP method a rule can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// Parses an upper-case method name; anything else (including `CONNECT`, `TRACE` and
    /// extension methods) is not a method a rule can allow.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL scheme egress may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The scheme's name, as in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The ports a rule allows: a sorted list of disjoint inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec(Vec<(u16, u16)>);

impl PortSpec {
    /// One port.
    pub fn single(port: u16) -> Self {
        Self(vec![(port, port)])
    }

    /// Parses `443`, `80,8080` or `8000-8100` (and lists of those). Port 0 is invalid.
    pub fn parse(text: &str) -> Option<Self> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (low.parse::<u16>().ok()?, high.parse::<u16>().ok()?),
                None => {
                    let port = part.parse::<u16>().ok()?;
                    (port, port)
                }
            };
            if low == 0 || low > high {
                return None;
            }
            ranges.push((low, high));
        }
        Some(Self::normalised(ranges))
    }

    fn normalised(mut ranges: Vec<(u16, u16)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (low, high) in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(low) <= u32::from(last.1) + 1 => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        Self(merged)
    }

    /// Whether `port` is allowed.
    pub fn contains(&self, port: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&port))
    }

    /// The ports both allow, if any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let mut ranges = Vec::new();
        for &(a_low, a_high) in &self.0 {
            for &(b_low, b_high) in &other.0 {
                let (low, high) = (a_low.max(b_low), a_high.min(b_high));
                if low <= high {
                    ranges.push((low, high));
                }
            }
        }
        (!ranges.is_empty()).then(|| Self::normalised(ranges))
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One destination a step may reach, and the methods it may use there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EgressRule {
    /// The scheme the request must use.
    pub scheme: Scheme,
    /// The hosts allowed.
    pub host: HostPattern,
    /// The ports allowed (the scheme's default when the pattern names none).
    pub ports: PortSpec,
    /// The paths allowed.
    pub path: PathPattern,
    /// The methods allowed; never empty, sorted.
    pub methods: Vec<Method>,
}

/// Why a textual egress rule is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The pattern does not start with `http://` or `https://`.
    #[error("egress url `{0}` must start with http:// or https://")]
    Scheme(String),
    /// The pattern carries `user@` credentials.
    #[error("egress url `{0}` must not contain user information (`user@`)")]
    Userinfo(String),
    /// The host is missing or not a valid name, wildcard or IP literal.
    #[error("egress url `{0}` has an invalid host: use a name, `*.name.tld` or an IP literal")]
    Host(String),
    /// The ports are not numbers from 1 to 65535, lists or ranges of them.
    #[error("egress url `{0}` has an invalid port: use 443, 80,8080 or 8000-8100")]
    Port(String),
    /// The path is not absolute, has a query or fragment, dot segments, or a wildcard
    /// other than a final `/*`.
    #[error("egress url `{0}` has an invalid path: an absolute path, optionally ending in `/*`")]
    Path(String),
    /// No methods were given.
    #[error("egress url `{0}` allows no methods")]
    NoMethods(String),
}

impl EgressRule {
    /// Parses `scheme://host[:ports][/path]` with the methods it allows.
    pub fn parse(url: &str, methods: &[Method]) -> Result<Self, RuleError> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(RuleError::Scheme(url.to_owned()));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(RuleError::Userinfo(url.to_owned()));
        }
        let (host, ports) =
            split_host_ports(authority).ok_or_else(|| RuleError::Port(url.to_owned()))?;
        let host = HostPattern::parse(host).ok_or_else(|| RuleError::Host(url.to_owned()))?;
        let ports = match ports {
            Some(text) => PortSpec::parse(text).ok_or_else(|| RuleError::Port(url.to_owned()))?,
            None => PortSpec::single(scheme.default_port()),
        };
        let path = PathPattern::parse(path).ok_or_else(|| RuleError::Path(url.to_owned()))?;
        if methods.is_empty() {
            return Err(RuleError::NoMethods(url.to_owned()));
        }
        let mut methods = methods.to_vec();
        methods.sort();
        methods.dedup();
        Ok(Self {
            scheme,
            host,
            ports,
            path,
            methods,
        })
    }

    fn matches_destination(
        &self,
        scheme: Scheme,
        host: &RequestHost,
        port: u16,
        path: &str,
    ) -> bool {
        self.scheme == scheme
            && self.ports.contains(port)
            && self.host.matches(host)
            && self.path.matches(path)
    }

    /// Whether this rule allows the (normalised) request.
    fn allows(
        &self,
        method: Method,
        scheme: Scheme,
        host: &RequestHost,
        port: u16,
        path: &str,
    ) -> bool {
        self.methods.contains(&method) && self.matches_destination(scheme, host, port, path)
    }

    /// The requests both rules allow, as one rule, if there are any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.scheme != other.scheme {
            return None;
        }
        let methods: Vec<Method> = self
            .methods
            .iter()
            .copied()
            .filter(|m| other.methods.contains(m))
            .collect();
        if methods.is_empty() {
            return None;
        }
        Some(Self {
            scheme: self.scheme,
            host: self.host.intersect(&other.host)?,
            ports: self.ports.intersect(&other.ports)?,
            path: self.path.intersect(&other.path)?,
            methods,
        })
    }

    /// Whether every request this rule allows is allowed by `other` too.
    pub fn is_within(&self, other: &Self) -> bool {
        self.intersect(other).as_ref() == Some(self)
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<_> = self.methods.iter().map(|m| m.as_str()).collect();
        write!(
            f,
            "{} {}://{}:{}{}",
            methods.join(","),
            self.scheme.as_str(),
            self.host,
            self.ports,
            self.path
        )
    }
}

/// Splits `host[:ports]` or `[v6][:ports]`; `None` when the shape is wrong.
fn split_host_ports(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let after = &authority[end + 1..];
        let ports = match after.strip_prefix(':') {
            Some(ports) => Some(ports),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((&authority[..=end], ports));
    }
    Some(match authority.split_once(':') {
        Some((host, ports)) => (host, Some(ports)),
        None => (authority, None),
    })
}

/// One outgoing request, as the host sees it before connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRequest<'a> {
    /// The request method, as sent.
    pub method: &'a str,
    /// The URL scheme, as sent.
    pub scheme: &'a str,
    /// The host as requested (brackets around IPv6 literals allowed).
    pub host: &'a str,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
    /// The path, without the query, as sent.
    pub path: &'a str,
    /// Whether the authority carried `user@` credentials.
    pub has_userinfo: bool,
}

/// The answer to an egress request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDecision {
    /// The request may go out; `rule` is the index of the rule that allowed it.
    Allowed {
        /// Index into [`Grant::egress`](crate::Grant::egress).
        rule: usize,
    },
    /// The request must not go out.
    Denied(EgressDenial),
}

/// Why an egress request was denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum EgressDenial {
    /// No rule names this scheme, host, port and path.
    #[error("no egress rule allows {scheme}://{host}:{port}{path}")]
    DestinationNotGranted {
        /// The requested scheme.
        scheme: String,
        /// The requested host.
        host: String,
        /// The requested port.
        port: u16,
        /// The requested path, normalised.
        path: String,
    },
    /// A rule names the destination but not this method.
    #[error("{method} is not allowed for {destination}")]
    MethodNotGranted {
        /// The requested method.
        method: String,
        /// The destination, as `scheme://host:port/path`.
        destination: String,
    },
    /// The method is not one a rule can ever allow (`CONNECT`, `TRACE`, extensions).
    #[error("method {method} is never allowed")]
    MethodForbidden {
        /// The requested method.
        method: String,
    },
    /// The scheme is neither `http` nor `https`.
    #[error("scheme {scheme} is not supported")]
    SchemeForbidden {
        /// The requested scheme.
        scheme: String,
    },
    /// The request URL has no host, or a host that is not a valid name or address.
    #[error("the request's host `{host}` is not a valid name or address")]
    InvalidHost {
        /// The host as requested.
        host: String,
    },
    /// The authority carried `user@` credentials.
    #[error("user information in the URL is never allowed")]
    UserinfoForbidden,
    /// The path decodes to invalid UTF-8, a NUL or a backslash.
    #[error("the request path `{path}` cannot be normalised")]
    InvalidPath {
        /// The path as requested.
        path: String,
    },
}

impl EgressDenial {
    /// The stable machine code of this denial.
    pub fn code(&self) -> &'static str {
        match self {
            EgressDenial::DestinationNotGranted { .. } => "destination-not-granted",
            EgressDenial::MethodNotGranted { .. } => "method-not-granted",
            EgressDenial::MethodForbidden { .. } => "method-forbidden",
            EgressDenial::SchemeForbidden { .. } => "scheme-forbidden",
            EgressDenial::InvalidHost { .. } => "invalid-host",
            EgressDenial::UserinfoForbidden => "userinfo-forbidden",
            EgressDenial::InvalidPath { .. } => "invalid-path",
        }
    }
}

/// The first rule that allows the request, or why none does.
pub(crate) fn decide(rules: &[EgressRule], request: &EgressRequest<'_>) -> EgressDecision {
    use EgressDecision::Denied;
    if request.has_userinfo {
        return Denied(EgressDenial::UserinfoForbidden);
    }
    let Some(method) = Method::parse(request.method) else {
        return Denied(EgressDenial::MethodForbidden {
            method: request.method.to_owned(),
        });
    };
    let scheme = match request.scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            return Denied(EgressDenial::SchemeForbidden {
                scheme: other.to_owned(),
            });
        }
    };
    let Some(host) = RequestHost::parse(request.host) else {
        return Denied(EgressDenial::InvalidHost {
            host: request.host.to_owned(),
        });
    };
    let Some(path) = normalise_path(request.path) else {
        return Denied(EgressDenial::InvalidPath {
            path: request.path.to_owned(),
        });
    };
    if let Some(index) = rules
        .iter()
        .position(|rule| rule.allows(method, scheme, &host, request.port, &path))
    {
        return EgressDecision::Allowed { rule: index };
    }
    let host_text = match &host {
        RequestHost::Name(name) => name.clone(),
        RequestHost::Ip(ip) => ip.to_string(),
    };
    if rules
        .iter()
        .any(|rule| rule.matches_destination(scheme, &host, request.port, &path))
    {
        return Denied(EgressDenial::MethodNotGranted {
            method: method.to_string(),
            destination: format!("{}://{host_text}:{}{path}", scheme.as_str(), request.port),
        });
    }
    Denied(EgressDenial::DestinationNotGranted {
        scheme: scheme.as_str().to_owned(),
        host: host_text,
        port: request.port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rule(url: &str, methods: &[Method]) -> EgressRule {
        EgressRule::parse(url, methods).unwrap_or_else(|err| panic!("{url}: {err}"))
    }

    fn request<'a>(
        method: &'a str,
        scheme: &'a str,
        host: &'a str,
        port: u16,
        path: &'a str,
    ) -> EgressRequest<'a> {
        EgressRequest {
            method,
            scheme,
            host,
            port,
            path,
            has_userinfo: false,
        }
    }

    /// The rules every case below is decided against.
    fn rules() -> Vec<EgressRule> {
        use Method::*;
        vec![
            rule("https://forge.example.com/api/*", &[Get]), // 0
            rule("https://forge.example.com/api/releases", &[Post]), // 1
            rule("https://*.cdn.example.net/assets/*", &[Get, Head]), // 2
            rule("http://127.0.0.1:8080/health", &[Get]),    // 3
            rule("http://[::1]:9000/v1/*", &[Get, Put]),     // 4
            rule("https://registry.example.org:443,5000/v2/*", &[Get]), // 5
            rule("http://metrics.example.org:9100-9110/metrics", &[Get]), // 6
            rule("https://bücher.example/katalog/*", &[Get]), // 7
            rule("https://Upper.Example.COM./x", &[Delete]), // 8
            rule("https://any.example.io/*", &[Options, Patch]), // 9
        ]
    }

    #[test]
    fn decisions_table() {
        let cases: &[(EgressRequest<'_>, Result<usize, &str>)] = &[
            // exact host, prefix path
            (
                request("GET", "https", "forge.example.com", 443, "/api/tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/tags/v1/x"),
                Ok(0),
            ),
            (
                request("GET", "HTTPS", "forge.example.com", 443, "/api/tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "FORGE.Example.Com", 443, "/api/tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com.", 443, "/api/tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/apix"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/API/tags"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 8443, "/api/tags"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "forge.example.com", 443, "/api/tags"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "forge.example.com", 80, "/api/tags"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com.evil.net", 443, "/api/x"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "evil-forge.example.com", 443, "/api/x"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "sub.forge.example.com", 443, "/api/x"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "example.com", 443, "/api/x"),
                Err("destination-not-granted"),
            ),
            // dot segments and encodings cannot leave the prefix
            (
                request("GET", "https", "forge.example.com", 443, "/api/../admin"),
                Err("destination-not-granted"),
            ),
            (
                request(
                    "GET",
                    "https",
                    "forge.example.com",
                    443,
                    "/api/%2e%2e/admin",
                ),
                Err("destination-not-granted"),
            ),
            (
                request(
                    "GET",
                    "https",
                    "forge.example.com",
                    443,
                    "/api/%2E%2E/admin",
                ),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/..%2fadmin"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/..%2Fadmin"),
                Err("destination-not-granted"),
            ),
            (
                request(
                    "GET",
                    "https",
                    "forge.example.com",
                    443,
                    "/api/./../../admin",
                ),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/x/../tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/./tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/%61pi/tags"),
                Ok(0),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/%00"),
                Err("invalid-path"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/%ff"),
                Err("invalid-path"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api\\..\\admin"),
                Err("invalid-path"),
            ),
            (
                request(
                    "GET",
                    "https",
                    "forge.example.com",
                    443,
                    "/api/%5c..%5cadmin",
                ),
                Err("invalid-path"),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "api/tags"),
                Err("invalid-path"),
            ),
            // methods
            (
                request("POST", "https", "forge.example.com", 443, "/api/releases"),
                Ok(1),
            ),
            (
                request("GET", "https", "forge.example.com", 443, "/api/releases"),
                Ok(0),
            ),
            (
                request("POST", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-not-granted"),
            ),
            (
                request("PUT", "https", "forge.example.com", 443, "/api/releases"),
                Err("method-not-granted"),
            ),
            (
                request("DELETE", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-not-granted"),
            ),
            (
                request("get", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-forbidden"),
            ),
            (
                request("CONNECT", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-forbidden"),
            ),
            (
                request("TRACE", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-forbidden"),
            ),
            (
                request("PURGE", "https", "forge.example.com", 443, "/api/tags"),
                Err("method-forbidden"),
            ),
            // wildcard hosts at a label boundary
            (
                request("GET", "https", "a.cdn.example.net", 443, "/assets/x.js"),
                Ok(2),
            ),
            (
                request("HEAD", "https", "a.b.cdn.example.net", 443, "/assets/x.js"),
                Ok(2),
            ),
            (
                request("GET", "https", "A.CDN.EXAMPLE.NET.", 443, "/assets/x.js"),
                Ok(2),
            ),
            (
                request("GET", "https", "cdn.example.net", 443, "/assets/x.js"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "evilcdn.example.net", 443, "/assets/x.js"),
                Err("destination-not-granted"),
            ),
            (
                request(
                    "GET",
                    "https",
                    "a.cdn.example.net.evil.org",
                    443,
                    "/assets/x",
                ),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "https", "a-cdn.example.net", 443, "/assets/x.js"),
                Err("destination-not-granted"),
            ),
            (
                request("POST", "https", "a.cdn.example.net", 443, "/assets/x.js"),
                Err("method-not-granted"),
            ),
            (
                request("GET", "https", "a.cdn.example.net", 443, "/other"),
                Err("destination-not-granted"),
            ),
            // IP literals
            (request("GET", "http", "127.0.0.1", 8080, "/health"), Ok(3)),
            (
                request("GET", "http", "127.0.0.1", 8081, "/health"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "127.0.0.2", 8080, "/health"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "localhost", 8080, "/health"),
                Err("destination-not-granted"),
            ),
            (request("GET", "http", "[::1]", 9000, "/v1/x"), Ok(4)),
            (request("PUT", "http", "::1", 9000, "/v1/x"), Ok(4)),
            (
                request("GET", "http", "[0:0:0:0:0:0:0:1]", 9000, "/v1/x"),
                Ok(4),
            ),
            (
                request("GET", "http", "[::2]", 9000, "/v1/x"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "[::ffff:127.0.0.1]", 8080, "/health"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "2130706433", 8080, "/health"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "0x7f.1", 8080, "/health"),
                Err("destination-not-granted"),
            ),
            // port lists and ranges
            (
                request("GET", "https", "registry.example.org", 443, "/v2/x"),
                Ok(5),
            ),
            (
                request("GET", "https", "registry.example.org", 5000, "/v2/x"),
                Ok(5),
            ),
            (
                request("GET", "https", "registry.example.org", 5001, "/v2/x"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "metrics.example.org", 9100, "/metrics"),
                Ok(6),
            ),
            (
                request("GET", "http", "metrics.example.org", 9105, "/metrics"),
                Ok(6),
            ),
            (
                request("GET", "http", "metrics.example.org", 9110, "/metrics"),
                Ok(6),
            ),
            (
                request("GET", "http", "metrics.example.org", 9111, "/metrics"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "metrics.example.org", 9099, "/metrics"),
                Err("destination-not-granted"),
            ),
            (
                request("GET", "http", "metrics.example.org", 9105, "/metrics/"),
                Err("destination-not-granted"),
            ),
            // IDN and normalisation
            (
                request("GET", "https", "xn--bcher-kva.example", 443, "/katalog/1"),
                Ok(7),
            ),
            (
                request("GET", "https", "bücher.example", 443, "/katalog/1"),
                Ok(7),
            ),
            (
                request("GET", "https", "BÜCHER.example", 443, "/katalog/1"),
                Ok(7),
            ),
            (
                request("GET", "https", "bucher.example", 443, "/katalog/1"),
                Err("destination-not-granted"),
            ),
            (
                request("DELETE", "https", "upper.example.com", 443, "/x"),
                Ok(8),
            ),
            (
                request("DELETE", "https", "upper.example.com", 443, "/X"),
                Err("destination-not-granted"),
            ),
            // other methods
            (
                request("OPTIONS", "https", "any.example.io", 443, "/"),
                Ok(9),
            ),
            (
                request("PATCH", "https", "any.example.io", 443, "/deep/path"),
                Ok(9),
            ),
            (
                request("GET", "https", "any.example.io", 443, "/"),
                Err("method-not-granted"),
            ),
            // schemes, hosts, userinfo
            (
                request("GET", "ftp", "forge.example.com", 21, "/api/x"),
                Err("scheme-forbidden"),
            ),
            (
                request("GET", "file", "", 0, "/etc/passwd"),
                Err("scheme-forbidden"),
            ),
            (
                request("GET", "https", "", 443, "/api/x"),
                Err("invalid-host"),
            ),
            (
                request("GET", "https", "bad host", 443, "/api/x"),
                Err("invalid-host"),
            ),
            (
                request("GET", "https", "-bad.example.com", 443, "/api/x"),
                Err("invalid-host"),
            ),
        ];
        assert!(cases.len() >= 80, "{} cases", cases.len());
        let rules = rules();
        for (req, expected) in cases {
            let decision = decide(&rules, req);
            match (expected, &decision) {
                (Ok(index), EgressDecision::Allowed { rule }) => assert_eq!(rule, index, "{req:?}"),
                (Err(code), EgressDecision::Denied(denial)) => {
                    assert_eq!(denial.code(), *code, "{req:?}")
                }
                _ => panic!("{req:?}: expected {expected:?}, got {decision:?}"),
            }
        }
    }

    #[test]
    fn userinfo_is_never_allowed() {
        let rules = rules();
        let mut req = request("GET", "https", "forge.example.com", 443, "/api/tags");
        req.has_userinfo = true;
        assert_eq!(
            decide(&rules, &req),
            EgressDecision::Denied(EgressDenial::UserinfoForbidden)
        );
    }

    #[test]
    fn rule_parsing_rejects_bad_patterns() {
        let bad = [
            "ftp://x.example/",
            "http:///path",
            "http://x.example:0/",
            "http://x.example:99999/",
            "http://x.example:10-5/",
            "http://x.example:/",
            "http://x.example/a*/b",
            "http://x.example/a*",
            "http://x.example/a?q=1",
            "http://x.example/a#f",
            "http://x.example/../etc",
            "http://x.example/a/./b",
            "http://user@x.example/",
            "http://user:pw@x.example/",
            "http://*.com/",
            "http://a*.example.com/",
            "http://*/",
            "http://x..example/",
            "http://[::1/",
            "http://x.example\\/",
        ];
        for url in bad {
            assert!(
                EgressRule::parse(url, &[Method::Get]).is_err(),
                "{url} should be rejected"
            );
        }
        assert!(matches!(
            EgressRule::parse("http://x.example/", &[]),
            Err(RuleError::NoMethods(_))
        ));
        assert!(matches!(
            EgressRule::parse("http://u@x.example/", &[Method::Get]),
            Err(RuleError::Userinfo(_))
        ));
    }

    #[test]
    fn rules_display_normalised() {
        let shown: Vec<String> = rules().iter().map(ToString::to_string).collect();
        assert_eq!(shown[2], "GET,HEAD https://*.cdn.example.net:443/assets/*");
        assert_eq!(shown[4], "GET,PUT http://[::1]:9000/v1/*");
        assert_eq!(shown[5], "GET https://registry.example.org:443,5000/v2/*");
        assert_eq!(shown[7], "GET https://xn--bcher-kva.example:443/katalog/*");
        assert_eq!(shown[8], "DELETE https://upper.example.com:443/x");
    }

    #[test]
    fn intersection_examples() {
        let broad = rule(
            "https://*.example.com:443,8443/api/*",
            &[Method::Get, Method::Post],
        );
        let narrow = rule("https://forge.example.com:8443/api/tags", &[Method::Get]);
        assert_eq!(broad.intersect(&narrow).as_ref(), Some(&narrow));
        assert!(narrow.is_within(&broad));
        assert!(!broad.is_within(&narrow));
        let other_host = rule("https://forge.example.org/api/*", &[Method::Get]);
        assert_eq!(broad.intersect(&other_host), None);
    }

    const HOSTS: &[&str] = &[
        "a.example.com",
        "b.example.com",
        "x.a.example.com",
        "example.com",
        "127.0.0.1",
    ];
    const HOST_PATTERNS: &[&str] = &[
        "a.example.com",
        "*.example.com",
        "*.a.example.com",
        "example.com",
        "127.0.0.1",
    ];
    const PATHS: &[&str] = &["/", "/api/", "/api/x", "/api/x/y", "/other", "/api/../x"];
    const PATH_PATTERNS: &[&str] = &["/*", "/api/*", "/api/x", "/api/x/*", "/other"];
    const PORT_PATTERNS: &[&str] = &["443", "80,443", "8000-8100", "443,8000-8010"];
    const PORTS: &[u16] = &[80, 443, 8000, 8005, 8050, 9000];
    const METHODS: &[Method] = &[Method::Get, Method::Post, Method::Put];

    fn arb_rule() -> impl Strategy<Value = EgressRule> {
        (
            any::<bool>(),
            0..HOST_PATTERNS.len(),
            0..PORT_PATTERNS.len(),
            0..PATH_PATTERNS.len(),
            proptest::sample::subsequence(METHODS.to_vec(), 1..=METHODS.len()),
        )
            .prop_map(|(https, host, ports, path, methods)| {
                let scheme = if https { "https" } else { "http" };
                let url = format!(
                    "{scheme}://{}:{}{}",
                    HOST_PATTERNS[host], PORT_PATTERNS[ports], PATH_PATTERNS[path]
                );
                rule(&url, &methods)
            })
    }

    proptest! {
        /// The intersection of two rules allows exactly what both allow.
        #[test]
        fn intersection_is_exact(a in arb_rule(), b in arb_rule(), https in any::<bool>(),
                                 host in 0..HOSTS.len(), port in 0..PORTS.len(),
                                 path in 0..PATHS.len(), method in 0..METHODS.len()) {
            let req = request(METHODS[method].as_str(), if https { "https" } else { "http" },
                              HOSTS[host], PORTS[port], PATHS[path]);
            let allowed = |rules: &[EgressRule]| matches!(decide(rules, &req), EgressDecision::Allowed { .. });
            let both = allowed(std::slice::from_ref(&a)) && allowed(std::slice::from_ref(&b));
            let meet: Vec<EgressRule> = a.intersect(&b).into_iter().collect();
            prop_assert_eq!(allowed(&meet), both);
        }

        /// Arbitrary text never panics the rule parser or the decision.
        #[test]
        fn parsing_and_deciding_never_panic(url in ".{0,80}", host in ".{0,40}", path in ".{0,60}", method in "[A-Za-z]{0,8}") {
            let _ = EgressRule::parse(&url, &[Method::Get]);
            let _ = decide(&rules(), &request(&method, "https", &host, 443, &path));
        }
    }
}
