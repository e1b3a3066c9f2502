//! URL patterns for egress and secret injection, and the base URLs the operator binds
//! endpoints to.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::{EndpointName, InvalidValue, string_value};

/// The scheme of an egress destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Inclusive port ranges, sorted and merged.
pub type PortRanges = Vec<(u16, u16)>;

/// The pieces of `scheme://host[:ports][/path]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Absolute {
    scheme: Scheme,
    /// Lower case; IPv6 without brackets.
    host: String,
    ports: Option<PortRanges>,
    path: String,
}

impl Absolute {
    fn write(&self, out: &mut String) {
        out.push_str(self.scheme.as_str());
        out.push_str("://");
        if self.host.contains(':') {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        if let Some(ports) = &self.ports {
            out.push(':');
            let parts: Vec<String> = ports
                .iter()
                .map(|(low, high)| {
                    if low == high {
                        low.to_string()
                    } else {
                        format!("{low}-{high}")
                    }
                })
                .collect();
            out.push_str(&parts.join(","));
        }
        out.push_str(&self.path);
    }
}

/// Where a step may send requests or have a secret injected: `scheme://host[:ports][/path]`
/// or `{{ endpoints.NAME }}[/path]`.
///
/// - scheme `http` or `https`; host a DNS name (a leading `*.` matches subdomains), an
///   IPv4 address or a bracketed IPv6 address; optional ports: `443`, a list `80,8080`
///   or a range `8000-8100` (the scheme's default when absent);
/// - the path is matched exactly, or as a prefix when it ends in `/*` (the only place a
///   `*` may appear); a missing path is `/`;
/// - no user info (`user@host`), no query, no fragment, no `.` or `..` segments;
/// - `{{ endpoints.NAME }}` stands for the base URL the operator binds to `NAME` in
///   `relo.toml`; see [`UrlPattern::resolve`].
///
/// ```
/// use relo_manifest::UrlPattern;
///
/// let direct: UrlPattern = "https://API.example.com:8443/v1/*".parse().unwrap();
/// assert_eq!(direct.as_str(), "https://api.example.com:8443/v1/*");
/// assert_eq!(direct.host(), Some("api.example.com"));
/// assert!(direct.is_prefix());
///
/// let bound: UrlPattern = "{{endpoints.forge}}/api/tags".parse().unwrap();
/// assert_eq!(bound.as_str(), "{{ endpoints.forge }}/api/tags");
/// assert_eq!(bound.endpoint().map(|name| name.as_str()), Some("forge"));
/// let forge = "https://forge.example.com".parse().unwrap();
/// assert_eq!(bound.resolve(&forge).unwrap().as_str(), "https://forge.example.com/api/tags");
///
/// assert!("https://user:pw@example.com/".parse::<UrlPattern>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlPattern {
    text: String,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Absolute(Absolute),
    Endpoint { name: EndpointName, path: String },
}

impl UrlPattern {
    /// The pattern in canonical form (lower-case scheme and host, `{{ endpoints.NAME }}`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The endpoint this pattern starts with, if it is `{{ endpoints.NAME }}…`.
    pub fn endpoint(&self) -> Option<&EndpointName> {
        match &self.target {
            Target::Endpoint { name, .. } => Some(name),
            Target::Absolute(_) => None,
        }
    }

    /// The scheme, unless the pattern starts with an endpoint.
    pub fn scheme(&self) -> Option<Scheme> {
        match &self.target {
            Target::Absolute(parts) => Some(parts.scheme),
            Target::Endpoint { .. } => None,
        }
    }

    /// The host (lower case, IPv6 without brackets, possibly starting with `*.`), unless
    /// the pattern starts with an endpoint.
    pub fn host(&self) -> Option<&str> {
        match &self.target {
            Target::Absolute(parts) => Some(&parts.host),
            Target::Endpoint { .. } => None,
        }
    }

    /// The port ranges as written (sorted and merged), if any.
    pub fn ports(&self) -> Option<&[(u16, u16)]> {
        match &self.target {
            Target::Absolute(parts) => parts.ports.as_deref(),
            Target::Endpoint { .. } => None,
        }
    }

    /// Whether a request to `port` is within the pattern's ports (the scheme's default
    /// when it names none); `false` for an unresolved endpoint pattern.
    pub fn allows_port(&self, port: u16) -> bool {
        match &self.target {
            Target::Absolute(parts) => match &parts.ports {
                Some(ranges) => ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&port)),
                None => port == parts.scheme.default_port(),
            },
            Target::Endpoint { .. } => false,
        }
    }

    /// The path: for an absolute pattern it starts with `/`; after an endpoint it is
    /// what follows the endpoint (possibly empty). It may end in `/*`.
    pub fn path(&self) -> &str {
        match &self.target {
            Target::Absolute(parts) => &parts.path,
            Target::Endpoint { path, .. } => path,
        }
    }

    /// Whether the path ends in `/*` (matches every path below it).
    pub fn is_prefix(&self) -> bool {
        self.path().ends_with("/*")
    }

    /// Whether the host starts with `*.` (matches subdomains).
    pub fn is_wildcard_host(&self) -> bool {
        self.host().is_some_and(|host| host.starts_with("*."))
    }

    /// The concrete pattern when the endpoint is bound to `base`: the base URL followed
    /// by this pattern's path. A pattern without an endpoint is returned as it is.
    pub fn resolve(&self, base: &BaseUrl) -> Result<UrlPattern, InvalidValue> {
        match &self.target {
            Target::Absolute(_) => Ok(self.clone()),
            Target::Endpoint { path, .. } => format!("{}{path}", base.as_str()).parse(),
        }
    }
}

impl FromStr for UrlPattern {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        if text.starts_with("{{") {
            let (name, path) = parse_placeholder(text)?;
            check_path(path, text, "URL pattern", true)?;
            return Ok(UrlPattern {
                text: format!("{{{{ endpoints.{name} }}}}{path}"),
                target: Target::Endpoint {
                    name,
                    path: path.to_owned(),
                },
            });
        }
        let mut parts = parse_absolute(text, "URL pattern", true)?;
        if parts.path.is_empty() {
            parts.path.push('/');
        }
        let mut canonical = String::new();
        parts.write(&mut canonical);
        Ok(UrlPattern {
            text: canonical,
            target: Target::Absolute(parts),
        })
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(
    UrlPattern,
    "A URL pattern: `http(s)://host[:ports][/path]` or `{{ endpoints.NAME }}[/path]`; a leading `*.` in the host matches subdomains; a final `/*` matches every path below; no user info, query or fragment."
);

/// `{{ endpoints.NAME }}` at the start of `text`: the name and the rest.
fn parse_placeholder(text: &str) -> Result<(EndpointName, &str), InvalidValue> {
    let Some(close) = text.find("}}") else {
        return Err(InvalidValue::new(format!(
            "`{text}` has `{{{{` without `}}}}`"
        )));
    };
    let inner = text[2..close].trim();
    let rest = &text[close + 2..];
    let Some(name) = inner.strip_prefix("endpoints.") else {
        return Err(InvalidValue::new(format!(
            "`{text}`: only `{{{{ endpoints.NAME }}}}` may stand for a URL"
        ))
        .with_hint(
            "name an endpoint the operator binds in relo.toml, e.g. `{{ endpoints.forge }}/api/*`",
        ));
    };
    let name: EndpointName = name.parse()?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(InvalidValue::new(format!(
            "`{text}`: after `{{{{ endpoints.{name} }}}}` only a path starting with `/` may follow"
        )));
    }
    Ok((name, rest))
}

fn parse_absolute(text: &str, what: &str, wildcards: bool) -> Result<Absolute, InvalidValue> {
    let shown = redact_userinfo(text);
    let invalid =
        |reason: &str| InvalidValue::new(format!("`{shown}` is not a valid {what}: {reason}"));
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace"));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        let error = invalid("it has no scheme");
        return Err(if text.starts_with('/') {
            error.with_hint("write an absolute URL, e.g. `https://forge.example.com/api`")
        } else {
            error.with_hint(format!("write `https://{shown}`"))
        });
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid("the scheme must be http or https")),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..authority_end].contains('@') {
        return Err(invalid("user info (`user@host`) is not allowed").with_hint(
            "credentials never go in a URL: declare a secret and have the host inject it",
        ));
    }
    if rest.contains('?') {
        return Err(
            invalid("a query (`?…`) is not allowed").with_hint("remove everything from the `?`")
        );
    }
    if rest.contains('#') {
        return Err(
            invalid("a fragment (`#…`) is not allowed").with_hint("remove everything from the `#`")
        );
    }
    let (authority, path) = rest.split_at(authority_end);
    let (host, ports) = split_port(authority).map_err(invalid)?;
    let host = check_host(host, wildcards).map_err(|reason| invalid(&reason))?;
    check_path(path, text, what, wildcards)?;
    Ok(Absolute {
        scheme,
        host,
        ports,
        path: path.to_owned(),
    })
}

/// The text with any `user:password@` in the authority replaced by `***@`, so a
/// credential written into a URL does not spread further through error messages.
fn redact_userinfo(text: &str) -> String {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return text.to_owned();
    };
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| start + at);
    match text[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

/// `host[:ports]` or `[v6][:ports]`.
fn split_port(authority: &str) -> Result<(&str, Option<PortRanges>), &'static str> {
    let (host, ports) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("an IPv6 address is missing its `]`")?;
        let after = &rest[end + 1..];
        let ports = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 address")?,
            ),
        };
        (&authority[..end + 2], ports)
    } else {
        match authority.rsplit_once(':') {
            Some((host, ports)) => (host, Some(ports)),
            None => (authority, None),
        }
    };
    let ports = match ports {
        None => None,
        Some(text) => Some(parse_ports(text).ok_or(
            "the ports must be numbers from 1 to 65535: one (`443`), a list (`80,8080`) or a range (`8000-8100`)",
        )?),
    };
    Ok((host, ports))
}

/// `443`, `80,8080`, `8000-8100`, or lists of those; sorted and merged.
fn parse_ports(text: &str) -> Option<PortRanges> {
    let number = |part: &str| -> Option<u16> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse::<u16>().ok().filter(|port| *port > 0)
    };
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (number(low)?, number(high)?),
            None => (number(part)?, number(part)?),
        };
        if low > high {
            return None;
        }
        ranges.push((low, high));
    }
    ranges.sort_unstable();
    let mut merged: PortRanges = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(low) <= u32::from(last.1) + 1 => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    Some(merged)
}

/// Validates and lower-cases a host; returns IPv6 addresses without brackets.
fn check_host(host: &str, wildcards: bool) -> Result<String, String> {
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let address: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("`{inner}` is not an IPv6 address"))?;
        return Ok(address.to_string());
    }
    if !host.is_ascii() {
        return Err(
            "the host is not ASCII: write internationalised names in their `xn--` form".into(),
        );
    }
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(name) if wildcards => (true, name),
        Some(_) => return Err("a wildcard host is not allowed here".into()),
        None => (false, host),
    };
    if name.contains('*') {
        return Err(
            "a `*` may only stand for the first label of the host, as in `*.example.com`".into(),
        );
    }
    let labels: Vec<&str> = name.split('.').collect();
    let numeric = labels
        .last()
        .is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        if wildcard {
            return Err("a wildcard cannot precede an IP address".into());
        }
        let address: Ipv4Addr = name
            .parse()
            .map_err(|_| format!("`{name}` is not an IPv4 address in dotted-quad form"))?;
        return Ok(address.to_string());
    }
    if name.len() > 253 {
        return Err("the host is longer than 253 characters".into());
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!("`{name}` is not a valid host name"));
        }
    }
    if wildcard && labels.len() < 2 {
        return Err(
            "a wildcard must be followed by at least two labels, as in `*.example.com`".into(),
        );
    }
    Ok(if wildcard {
        format!("*.{name}")
    } else {
        name.to_owned()
    })
}

fn check_path(path: &str, text: &str, what: &str, wildcards: bool) -> Result<(), InvalidValue> {
    let invalid =
        |reason: &str| InvalidValue::new(format!("`{text}` is not a valid {what}: {reason}"));
    if path.is_empty() {
        return Ok(());
    }
    if !path.starts_with('/') {
        return Err(invalid("the path must start with `/`"));
    }
    if path.contains(['?', '#']) {
        return Err(invalid("a query or fragment is not allowed"));
    }
    let stars = path.matches('*').count();
    if stars > 0 && !(wildcards && stars == 1 && path.ends_with("/*")) {
        return Err(if wildcards {
            invalid("a `*` may only end the path, as `/*`")
        } else {
            invalid("a `*` is not allowed here")
        });
    }
    let bytes = path.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let hex = bytes.get(index + 1..index + 3);
            if !hex.is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit)) {
                return Err(invalid(
                    "a `%` must start a percent-encoded byte such as `%2F`",
                ));
            }
            index += 3;
            continue;
        }
        let allowed = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if !allowed {
            return Err(invalid(
                "the path has a character that must be percent-encoded",
            ));
        }
        index += 1;
    }
    for segment in path.split('/') {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(invalid("`.` and `..` segments are not allowed in a path"));
        }
    }
    Ok(())
}

/// An absolute `http(s)://host[:port][/path]` URL without user info, query, fragment or
/// wildcards, as endpoints and the Vault address are bound. A trailing `/` is dropped, so
/// `{{ endpoints.NAME }}/api` resolves to `BASE/api`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    text: String,
    parts: Absolute,
}

impl BaseUrl {
    /// The URL in canonical form, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.parts.scheme
    }

    /// The host, lower case (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.parts.host
    }

    /// The port as written, if any.
    pub fn port(&self) -> Option<u16> {
        self.parts
            .ports
            .as_ref()
            .and_then(|ranges| ranges.first())
            .map(|(port, _)| *port)
    }

    /// The path, empty or starting with `/`, never ending in `/`.
    pub fn path(&self) -> &str {
        &self.parts.path
    }
}

impl FromStr for BaseUrl {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let mut parts = parse_absolute(text, "URL", false)?;
        if parts
            .ports
            .as_ref()
            .is_some_and(|ranges| ranges.len() != 1 || ranges[0].0 != ranges[0].1)
        {
            return Err(InvalidValue::new(format!(
                "`{}` is not a valid URL: it names one port, not a list or range",
                redact_userinfo(text)
            )));
        }
        while parts.path.ends_with('/') {
            parts.path.pop();
        }
        let mut canonical = String::new();
        parts.write(&mut canonical);
        Ok(BaseUrl {
            text: canonical,
            parts,
        })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(
    BaseUrl,
    "An absolute http or https URL without user info, query, fragment or wildcards.",
    pattern = "^[hH][tT][tT][pP][sS]?://[^@/?#]+(/[^?#]*)?$"
);

crate::decode::decode_from_str!(UrlPattern, BaseUrl);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> UrlPattern {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn bad(text: &str) -> String {
        match text.parse::<UrlPattern>() {
            Ok(pattern) => panic!("{text} parsed as {pattern}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn canonicalises() {
        assert_eq!(ok("HTTPS://Example.COM").as_str(), "https://example.com/");
        assert_eq!(
            ok("https://example.com./x").as_str(),
            "https://example.com/x"
        );
        assert_eq!(ok("http://[::1]:8080/a").host(), Some("::1"));
        assert_eq!(ok("http://[::1]:8080/a").as_str(), "http://[::1]:8080/a");
        assert_eq!(ok("https://*.example.com/*").host(), Some("*.example.com"));
        assert_eq!(
            ok("http://127.0.0.1:8080/api/*").ports(),
            Some(&[(8080, 8080)][..])
        );
        assert!(ok("https://x.example/").allows_port(443));
        assert!(!ok("https://x.example/").allows_port(80));
        let listed = ok("https://registry.example.org:5000,443,9100-9110,9111/v2/*");
        assert_eq!(
            listed.as_str(),
            "https://registry.example.org:443,5000,9100-9111/v2/*"
        );
        assert!(listed.allows_port(9105) && listed.allows_port(5000) && !listed.allows_port(5001));
        assert_eq!(ok("{{ endpoints.forge }}").path(), "");
        assert_eq!(
            ok("{{endpoints.forge}}/*").as_str(),
            "{{ endpoints.forge }}/*"
        );
        assert_eq!(ok("https://x.example/a%20b").path(), "/a%20b");
    }

    #[test]
    fn refuses_what_could_be_abused() {
        assert!(bad("https://user@example.com/").contains("user info"));
        assert!(bad("https://u:p@example.com/").contains("user info"));
        assert!(!bad("https://deploy:hunter2@example.com/").contains("hunter2"));
        assert!(bad("https://example.com/?a=1").contains("query"));
        assert!(bad("https://example.com/#x").contains("fragment"));
        assert!(bad("ftp://example.com/").contains("scheme"));
        assert!(bad("example.com/x").contains("no scheme"));
        assert!(bad("https://example.com/a*").contains("`*`"));
        assert!(bad("https://example.com/*/x").contains("`*`"));
        assert!(bad("https://ex*ample.com/").contains("`*`"));
        assert!(bad("https://*/").contains("`*`"));
        assert!(bad("https://*.com/").contains("wildcard"));
        assert!(bad("https://example.com:0/").contains("port"));
        assert!(bad("https://example.com:99999/").contains("port"));
        assert!(bad("https://example.com:/").contains("port"));
        assert!(bad("https://example.com:90-80/").contains("port"));
        assert!(bad("https://example.com:80,/").contains("port"));
        assert!(bad("https://example.com:+80/").contains("port"));
        assert!(bad("https:///x").contains("no host"));
        assert!(bad("https://127.1/").contains("IPv4"));
        assert!(bad("https://bücher.example/").contains("xn--"));
        assert!(bad("https://example.com/a/../b").contains(".."));
        assert!(bad("https://example.com/a/%2E%2e/b").contains(".."));
        assert!(bad("https://example.com/a b").contains("whitespace"));
        assert!(bad("https://example.com/%zz").contains("percent"));
        assert!(bad("{{ secrets.x }}/a").contains("endpoints"));
        assert!(bad("{{ endpoints.forge }}api").contains("path"));
        assert!(bad("{{ endpoints.forge").contains("}}"));
        assert!(bad("{{ endpoints.Forge }}/").contains("endpoint name"));
        assert!(bad("https://[::1/").contains("IPv6"));
    }

    #[test]
    fn resolves_endpoints() {
        let base: BaseUrl = "https://forge.example.com/gitea/".parse().unwrap();
        assert_eq!(base.as_str(), "https://forge.example.com/gitea");
        let resolved = ok("{{ endpoints.forge }}/api/*").resolve(&base).unwrap();
        assert_eq!(resolved.as_str(), "https://forge.example.com/gitea/api/*");
        assert!(resolved.is_prefix());
        let root = ok("{{ endpoints.forge }}")
            .resolve(&"http://127.0.0.1:9000".parse().unwrap())
            .unwrap();
        assert_eq!(root.as_str(), "http://127.0.0.1:9000/");
    }

    #[test]
    fn base_urls_are_strict() {
        assert!("https://*.example.com".parse::<BaseUrl>().is_err());
        assert!("https://example.com/*".parse::<BaseUrl>().is_err());
        assert!("https://a@example.com".parse::<BaseUrl>().is_err());
        assert!("forge.example.com".parse::<BaseUrl>().is_err());
        assert!(
            "https://forge.example.com:80,443"
                .parse::<BaseUrl>()
                .is_err()
        );
        assert_eq!(
            "https://forge.example.com:8443"
                .parse::<BaseUrl>()
                .unwrap()
                .port(),
            Some(8443)
        );
    }
}
