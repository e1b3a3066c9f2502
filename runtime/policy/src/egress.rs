//! Egress rules and the decision for one outgoing HTTP request.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// One destination a step may reach, and the methods it may use there.
///
/// The path is matched exactly, or as a prefix when the pattern ends in `/*`
/// (`/api/*` matches `/api/tags` and `/api/tags/v1`, not `/api` or `/apix`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    /// The scheme the request must use.
    pub scheme: Scheme,
    /// The host name or IP literal, lower case, without brackets.
    pub host: String,
    /// The port the request must use.
    pub port: u16,
    /// The path, exact or ending in `/*`.
    pub path: String,
    /// The methods allowed; never empty.
    pub methods: Vec<Method>,
}

/// Why a textual egress rule is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The pattern does not start with `http://` or `https://`.
    #[error("egress url `{0}` must start with http:// or https://")]
    Scheme(String),
    /// The pattern has no host.
    #[error("egress url `{0}` has no host")]
    MissingHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("egress url `{0}` has an invalid port")]
    Port(String),
    /// The path is not absolute, or has a wildcard somewhere other than a final `/*`.
    #[error("egress url `{0}` has an invalid path: a `*` may only end the path as `/*`")]
    Path(String),
    /// No methods were given.
    #[error("egress url `{0}` allows no methods")]
    NoMethods(String),
}

impl EgressRule {
    /// Parses `scheme://host[:port][/path]` with the methods it allows.
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
        let (host, port) =
            split_authority(authority).ok_or_else(|| RuleError::Port(url.to_owned()))?;
        if host.is_empty() || host.contains(['@', '?', '#']) {
            return Err(RuleError::MissingHost(url.to_owned()));
        }
        let wildcard_ok =
            !path.contains('*') || (path.ends_with("/*") && path.matches('*').count() == 1);
        if !wildcard_ok || path.contains(['?', '#']) {
            return Err(RuleError::Path(url.to_owned()));
        }
        if methods.is_empty() {
            return Err(RuleError::NoMethods(url.to_owned()));
        }
        let mut methods = methods.to_vec();
        methods.sort();
        methods.dedup();
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(scheme.default_port()),
            path: path.to_owned(),
            methods,
        })
    }

    fn matches_destination(&self, request: &EgressRequest<'_>) -> bool {
        self.scheme == request.scheme
            && self.port == request.port
            && self.host.eq_ignore_ascii_case(request.host)
            && path_matches(&self.path, request.path)
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<_> = self.methods.iter().map(|m| m.as_str()).collect();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{} {}://{}:{}{}",
            methods.join(","),
            self.scheme.as_str(),
            host,
            self.port,
            self.path
        )
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when the port is malformed.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return None,
        };
        (&rest[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(text) => match text.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(port) => Some(port),
        },
        None => None,
    };
    Some((host, port))
}

/// Whether a request path (its query already removed) matches a rule's path.
fn path_matches(pattern: &str, path: &str) -> bool {
    if has_dot_segment(path) {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix) && path.len() > prefix.len(),
        None => pattern == path,
    }
}

/// `.` and `..` segments, literal or percent-encoded, are never matched: a server may
/// resolve them to a path outside the rule.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// One outgoing request, as the host sees it before connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRequest<'a> {
    /// The request method.
    pub method: Method,
    /// The URL scheme.
    pub scheme: Scheme,
    /// The host name or IP literal, without brackets.
    pub host: &'a str,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
    /// The path, without the query.
    pub path: &'a str,
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
        /// The requested path.
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
    /// The request URL has no host.
    #[error("the request has no host")]
    MissingHost,
}

impl EgressDenial {
    /// The stable machine code of this denial.
    pub fn code(&self) -> &'static str {
        match self {
            EgressDenial::DestinationNotGranted { .. } => "destination-not-granted",
            EgressDenial::MethodNotGranted { .. } => "method-not-granted",
            EgressDenial::MethodForbidden { .. } => "method-forbidden",
            EgressDenial::SchemeForbidden { .. } => "scheme-forbidden",
            EgressDenial::MissingHost => "missing-host",
        }
    }
}

/// The first rule that allows the request, or why none does.
pub(crate) fn decide(rules: &[EgressRule], request: &EgressRequest<'_>) -> EgressDecision {
    if request.host.is_empty() {
        return EgressDecision::Denied(EgressDenial::MissingHost);
    }
    let mut destination_granted = false;
    for (index, rule) in rules.iter().enumerate() {
        if rule.matches_destination(request) {
            if rule.methods.contains(&request.method) {
                return EgressDecision::Allowed { rule: index };
            }
            destination_granted = true;
        }
    }
    let destination = format!(
        "{}://{}:{}{}",
        request.scheme.as_str(),
        request.host,
        request.port,
        request.path
    );
    EgressDecision::Denied(if destination_granted {
        EgressDenial::MethodNotGranted {
            method: request.method.to_string(),
            destination,
        }
    } else {
        EgressDenial::DestinationNotGranted {
            scheme: request.scheme.as_str().to_owned(),
            host: request.host.to_owned(),
            port: request.port,
            path: request.path.to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(method: Method, host: &'a str, port: u16, path: &'a str) -> EgressRequest<'a> {
        EgressRequest {
            method,
            scheme: Scheme::Http,
            host,
            port,
            path,
        }
    }

    fn rules() -> Vec<EgressRule> {
        vec![
            EgressRule::parse("http://forge.test:8080/api/*", &[Method::Get]).expect("valid"),
            EgressRule::parse("http://forge.test:8080/api/releases", &[Method::Post])
                .expect("valid"),
        ]
    }

    #[test]
    fn decisions_table() {
        use EgressDecision::Allowed;
        let cases: &[(EgressRequest<'_>, Result<usize, &str>)] = &[
            (request(Method::Get, "forge.test", 8080, "/api/tags"), Ok(0)),
            (
                request(Method::Get, "FORGE.test", 8080, "/api/tags/v1"),
                Ok(0),
            ),
            (
                request(Method::Post, "forge.test", 8080, "/api/releases"),
                Ok(1),
            ),
            (
                request(Method::Post, "forge.test", 8080, "/api/tags"),
                Err("method-not-granted"),
            ),
            (
                request(Method::Get, "forge.test", 8080, "/api"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "forge.test", 8080, "/apix"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "forge.test", 8081, "/api/tags"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "evil.test", 8080, "/api/tags"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "forge.test.evil", 8080, "/api/x"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "forge.test", 8080, "/api/../admin"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "forge.test", 8080, "/api/%2E%2e/admin"),
                Err("destination-not-granted"),
            ),
            (
                request(Method::Get, "", 8080, "/api/tags"),
                Err("missing-host"),
            ),
        ];
        for (req, expected) in cases {
            let decision = decide(&rules(), req);
            match (expected, &decision) {
                (Ok(index), Allowed { rule }) => assert_eq!(rule, index, "{req:?}"),
                (Err(code), EgressDecision::Denied(denial)) => {
                    assert_eq!(denial.code(), *code, "{req:?}")
                }
                _ => panic!("{req:?}: expected {expected:?}, got {decision:?}"),
            }
        }
    }

    #[test]
    fn https_is_not_http() {
        let rule = EgressRule::parse("https://forge.test/api/*", &[Method::Get]).expect("valid");
        assert_eq!(rule.port, 443);
        let plain = request(Method::Get, "forge.test", 443, "/api/x");
        assert!(matches!(decide(&[rule], &plain), EgressDecision::Denied(_)));
    }

    #[test]
    fn rule_parsing_rejects_bad_patterns() {
        let bad = [
            "ftp://x/",
            "http:///path",
            "http://x:0/",
            "http://x:99999/",
            "http://x/a*/b",
            "http://x/a*",
            "http://x/a?q=1",
            "http://user@x/",
        ];
        for url in bad {
            assert!(
                EgressRule::parse(url, &[Method::Get]).is_err(),
                "{url} should be rejected"
            );
        }
        assert!(matches!(
            EgressRule::parse("http://x/", &[]),
            Err(RuleError::NoMethods(_))
        ));
    }

    #[test]
    fn ipv6_rules_parse_and_display() {
        let rule =
            EgressRule::parse("http://[::1]:9000/x", &[Method::Get, Method::Get]).expect("valid");
        assert_eq!(rule.host, "::1");
        assert_eq!(rule.methods, vec![Method::Get]);
        assert_eq!(rule.to_string(), "GET http://[::1]:9000/x");
    }
}
