//! Outgoing HTTP requests, through the standard `wasi:http/outgoing-handler`.
//!
//! A small blocking client: build a [`Request`], [`send`](Request::send) it, get the whole
//! [`Response`]. The host checks every request against the grant (scheme, host, port,
//! method, path) before anything leaves the sandbox; a refused request is
//! [`HttpError::Denied`], an error value the step can handle.
//!
//! ```
//! use relo_sdk::http::{self, Method, Request};
//! use relo_sdk::StepError;
//!
//! # fn example() -> Result<(), StepError> {
//! let tags = http::get("https://forge.example.com/api/tags")?;
//! let created = Request::new(Method::Post, "https://forge.example.com/api/releases")
//!     .header("content-type", "application/json")
//!     .header("authorization", "Bearer {{secret:forge_token}}")
//!     .body(r#"{"tag":"v1.2.3"}"#)
//!     .send()?;
//! # let _ = (tags, created);
//! # Ok(())
//! # }
//! ```
//!
//! # Secrets in headers
//!
//! A header value may contain `{{secret:NAME}}` (see
//! [`Secret::header_placeholder`](crate::secrets::Secret::header_placeholder)): the host
//! replaces it with the value of the secret the plugin declared as `NAME`, only when the
//! request goes to a destination the grant lists for that secret **and** the placeholder
//! is in the header that rule names (`inject = [{ url, header }]`; the string form means
//! `authorization`). A placeholder in any other header refuses the whole request
//! (`inject-header-not-granted`). The step never sees the value.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, Scheme as WasiScheme,
};
use wasi::io::streams::{OutputStream, StreamError};

use crate::StepError;

/// How many bytes to ask for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends a `GET` to `url` and returns the whole response.
///
/// # Errors
///
/// As [`Request::send`].
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new(Method::Get, url).send()
}

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The method's name, upper case, as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }

    fn to_wasi(self) -> wasi::http::types::Method {
        use wasi::http::types::Method as M;
        match self {
            Self::Get => M::Get,
            Self::Head => M::Head,
            Self::Post => M::Post,
            Self::Put => M::Put,
            Self::Patch => M::Patch,
            Self::Delete => M::Delete,
            Self::Options => M::Options,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = HttpError;

    /// Parses an upper-case method name (`"GET"`, `"POST"`, ...).
    fn from_str(name: &str) -> Result<Self, HttpError> {
        [
            Self::Get,
            Self::Head,
            Self::Post,
            Self::Put,
            Self::Patch,
            Self::Delete,
            Self::Options,
        ]
        .into_iter()
        .find(|method| method.as_str() == name)
        .ok_or_else(|| HttpError::InvalidRequest(format!("unsupported method `{name}`")))
    }
}

/// An HTTP request to send. Build it, then [`send`](Request::send) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    ///
    /// `url` is absolute: `http` or `https`, a host, an optional port, path and query
    /// (`https://forge.example.com:8443/api/tags?page=2`). Characters outside ASCII,
    /// spaces and user information (`user:pass@`) are refused; percent-encode them, and
    /// pass credentials as secrets in headers. A fragment (`#...`) is not sent.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header; a name may repeat. The value may contain `{{secret:NAME}}`, which the
    /// host replaces with that secret toward the destinations the grant lists for it.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the request body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request, waits for the response and reads its whole body.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidUrl`] or [`HttpError::InvalidRequest`] before anything is sent;
    /// [`HttpError::Denied`] if the host's policy refused the request;
    /// [`HttpError::Transport`] if it could not be sent or the response not received.
    pub fn send(self) -> Result<Response, HttpError> {
        let target = Target::parse(&self.url)?;
        let request = self.outgoing_request(&target)?;
        let body = request
            .body()
            .map_err(|()| self.transport("the request body was already taken"))?;
        let future = outgoing_handler::handle(request, None).map_err(|code| self.refused(code))?;
        let sent = self
            .write_body(&body)
            .and_then(|()| OutgoingBody::finish(body, None).map_err(|code| self.refused(code)));
        // A host that refuses the request closes the body stream; the response future
        // then holds the reason (a denial), which says more than "stream closed".
        let response = self.wait(future);
        match (sent, response) {
            (_, Err(refused)) => Err(refused),
            (Err(write_failed), Ok(_)) => Err(write_failed),
            (Ok(()), Ok(response)) => self.read(response),
        }
    }

    fn outgoing_request(&self, target: &Target<'_>) -> Result<OutgoingRequest, HttpError> {
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields.append(name, value.as_bytes()).map_err(|error| {
                HttpError::InvalidRequest(format!("header `{name}` refused: {error:?}"))
            })?;
        }
        let request = OutgoingRequest::new(fields);
        let scheme = match target.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        let invalid =
            |part: &str| HttpError::InvalidUrl(format!("{part} refused in `{}`", self.url));
        request
            .set_method(&self.method.to_wasi())
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(target.authority))
            .map_err(|()| invalid("authority"))?;
        request
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| invalid("path"))?;
        Ok(request)
    }

    /// Writes the body as fast as the stream accepts it, honouring `check-write`.
    fn write_body(&self, body: &OutgoingBody) -> Result<(), HttpError> {
        if self.body.is_empty() {
            return Ok(());
        }
        let stream = body
            .write()
            .map_err(|()| self.transport("the request body stream was already taken"))?;
        let result = self.write_all(&stream);
        drop(stream);
        result
    }

    fn write_all(&self, stream: &OutputStream) -> Result<(), HttpError> {
        let mut rest = self.body.as_slice();
        while !rest.is_empty() {
            let permitted = stream
                .check_write()
                .map_err(|error| self.stream_error(error))?;
            if permitted == 0 {
                stream.subscribe().block();
                continue;
            }
            let len = usize::try_from(permitted).map_or(rest.len(), |n| n.min(rest.len()));
            let (chunk, remaining) = rest.split_at(len);
            stream
                .write(chunk)
                .map_err(|error| self.stream_error(error))?;
            rest = remaining;
        }
        stream
            .blocking_flush()
            .map_err(|error| self.stream_error(error))
    }

    fn wait(&self, future: FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
        let pollable = future.subscribe();
        pollable.block();
        drop(pollable);
        match future.get() {
            Some(Ok(Ok(response))) => Ok(response),
            Some(Ok(Err(code))) => Err(self.refused(code)),
            Some(Err(())) => Err(self.transport("the response was already taken")),
            None => Err(self.transport("the response is not ready")),
        }
    }

    fn read(&self, response: IncomingResponse) -> Result<Response, HttpError> {
        let status = response.status();
        let fields = response.headers();
        let headers = fields
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        drop(fields);
        let body = response
            .consume()
            .map_err(|()| self.transport("the response body was already taken"))?;
        let bytes = self.read_body(&body);
        drop(IncomingBody::finish(body));
        drop(response);
        Ok(Response {
            status,
            headers,
            body: bytes?,
        })
    }

    fn read_body(&self, body: &IncomingBody) -> Result<Vec<u8>, HttpError> {
        let stream = body
            .stream()
            .map_err(|()| self.transport("the response body stream was already taken"))?;
        let mut bytes = Vec::new();
        let result = loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break Ok(bytes),
                Err(error) => break Err(self.stream_error(error)),
            }
        };
        drop(stream);
        result
    }

    fn refused(&self, code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied(format!(
                "{} {} refused by the host's egress policy",
                self.method, self.url
            )),
            other => HttpError::Transport(format!("{} {}: {other:?}", self.method, self.url)),
        }
    }

    fn stream_error(&self, error: StreamError) -> HttpError {
        match error {
            StreamError::Closed => self.transport("the stream closed early"),
            StreamError::LastOperationFailed(error) => {
                match wasi::http::types::http_error_code(&error) {
                    Some(code) => self.refused(code),
                    None => self.transport(&error.to_debug_string()),
                }
            }
        }
    }

    fn transport(&self, message: &str) -> HttpError {
        HttpError::Transport(format!("{} {}: {message}", self.method, self.url))
    }
}

/// A received response, with its whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received; names are lower case. Values that are not
    /// UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of the header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidBody`] if the body is not UTF-8.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body)
            .map_err(|error| HttpError::InvalidBody(format!("the body is not UTF-8: {error}")))
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidBody`] with serde_json's message if the body does not fit `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|error| HttpError::InvalidBody(format!("the body does not fit: {error}")))
    }
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HttpError {
    /// The URL is not an absolute `http` or `https` URL this client can send to.
    InvalidUrl(String),
    /// A header or method was refused before sending.
    InvalidRequest(String),
    /// The host's policy refused the request (wasi-http's `HTTP-request-denied`). The
    /// reason is in the step's log and the evidence.
    Denied(String),
    /// The request could not be sent or the response not received; the text carries
    /// wasi-http's error code.
    Transport(String),
    /// The response body is not what was asked for (not UTF-8, not the expected JSON).
    InvalidBody(String),
}

impl HttpError {
    /// A stable machine code: `invalid-url`, `invalid-request`, `denied`, `transport` or
    /// `invalid-body`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid-url",
            Self::InvalidRequest(_) => "invalid-request",
            Self::Denied(_) => "denied",
            Self::Transport(_) => "transport",
            Self::InvalidBody(_) => "invalid-body",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(message) => write!(f, "invalid url: {message}"),
            Self::InvalidRequest(message) => write!(f, "invalid request: {message}"),
            Self::Denied(message) => write!(f, "request denied: {message}"),
            Self::Transport(message) => write!(f, "request failed: {message}"),
            Self::InvalidBody(message) => write!(f, "invalid response body: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for StepError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Denied(_) => Self::Denied(error.to_string()),
            _ => Self::Failed(error.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// An absolute URL split the way wasi-http wants it.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    scheme: Scheme,
    /// `host` or `host:port`, as written.
    authority: &'a str,
    /// `/path?query`; `/` when the URL has no path.
    path_with_query: String,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Self, HttpError> {
        let invalid = |why: &str| HttpError::InvalidUrl(format!("{why} in `{url}`"));
        if let Some(bad) = url
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(invalid(&format!("{bad:?} must be percent-encoded")));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.is_empty() {
            return Err(invalid("no scheme"));
        } else {
            return Err(invalid(&format!("unsupported scheme `{scheme}`")));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(invalid("user information (`user@`) is not allowed"));
        }
        check_authority(authority).map_err(invalid)?;
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let path_with_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Self {
            scheme,
            authority,
            path_with_query,
        })
    }
}

/// Checks `host`, `host:port`, `[v6]` or `[v6]:port`.
fn check_authority(authority: &str) -> Result<(), &'static str> {
    let (host_ok, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or("unclosed `[` in the host")?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("unexpected text after `]`")?),
        };
        let ok = !literal.is_empty()
            && literal.contains(':')
            && literal
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        (ok, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let ok = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%'));
        if host.is_empty() {
            return Err("no host");
        }
        (ok, port)
    };
    if !host_ok {
        return Err("invalid host");
    }
    match port {
        None => Ok(()),
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok() => {
            Ok(())
        }
        Some(_) => Err("invalid port"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> (Scheme, &str, String) {
        match Target::parse(url) {
            Ok(target) => (target.scheme, target.authority, target.path_with_query),
            Err(error) => panic!("{url}: {error}"),
        }
    }

    fn refusal(url: &str) -> String {
        match Target::parse(url) {
            Err(HttpError::InvalidUrl(message)) => message,
            other => panic!("{url}: expected an invalid url, got {other:?}"),
        }
    }

    #[test]
    fn splits_scheme_authority_and_path_with_query() {
        assert_eq!(
            target("https://forge.example.com/api/tags?page=2&per=50"),
            (
                Scheme::Https,
                "forge.example.com",
                "/api/tags?page=2&per=50".to_owned()
            )
        );
        assert_eq!(
            target("http://127.0.0.1:8080/x"),
            (Scheme::Http, "127.0.0.1:8080", "/x".to_owned())
        );
    }

    #[test]
    fn empty_path_is_root() {
        assert_eq!(target("https://example.com").2, "/");
        assert_eq!(target("https://example.com?q=1").2, "/?q=1");
    }

    #[test]
    fn fragment_is_not_sent() {
        assert_eq!(target("https://example.com/a?b=c#frag").2, "/a?b=c");
        assert_eq!(target("https://example.com#frag").2, "/");
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(target("HTTPS://example.com/").0, Scheme::Https);
    }

    #[test]
    fn ipv6_literals_with_and_without_port() {
        assert_eq!(target("http://[::1]:9000/p").1, "[::1]:9000");
        assert_eq!(target("https://[2001:db8::1]/").1, "[2001:db8::1]");
    }

    #[test]
    fn refuses_urls_without_scheme_or_host() {
        assert_eq!(
            refusal("example.com/path"),
            "no scheme in `example.com/path`"
        );
        assert_eq!(refusal("://example.com"), "no scheme in `://example.com`");
        assert_eq!(refusal("https://"), "no host in `https://`");
        assert_eq!(refusal("https:///path"), "no host in `https:///path`");
        assert_eq!(refusal("https://:443/"), "no host in `https://:443/`");
    }

    #[test]
    fn refuses_other_schemes() {
        assert_eq!(
            refusal("ftp://example.com/"),
            "unsupported scheme `ftp` in `ftp://example.com/`"
        );
    }

    #[test]
    fn refuses_bad_ports_hosts_and_characters() {
        assert!(refusal("https://example.com:99999/").starts_with("invalid port"));
        assert!(refusal("https://example.com:/").starts_with("invalid port"));
        assert!(refusal("https://example.com:8a/").starts_with("invalid port"));
        assert!(refusal("https://exa$mple.com/").starts_with("invalid host"));
        assert!(refusal("https://[::1/").starts_with("unclosed"));
        assert!(refusal("https://[::1]x/").starts_with("unexpected text"));
        assert!(refusal("https://user:pw@example.com/").starts_with("user information"));
        assert!(refusal("https://example.com/a b").contains("percent-encoded"));
        assert!(refusal("https://exämple.com/").contains("percent-encoded"));
    }

    #[test]
    fn methods_round_trip() {
        for name in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert_eq!(name.parse::<Method>().map(Method::as_str), Ok(name));
        }
        assert_eq!(
            "get".parse::<Method>(),
            Err(HttpError::InvalidRequest(
                "unsupported method `get`".to_owned()
            ))
        );
    }

    #[test]
    fn response_helpers() {
        let response = Response {
            status: 201,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: br#"{"id": 7}"#.to_vec(),
        };
        assert!(response.is_success());
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.text(), Ok(r#"{"id": 7}"#));
        let value: serde_json::Value = response.json().unwrap_or_default();
        assert_eq!(value["id"], 7);
        let not_utf8 = Response {
            body: vec![0xff],
            ..response
        };
        assert!(matches!(not_utf8.text(), Err(HttpError::InvalidBody(_))));
    }

    #[test]
    fn denied_becomes_step_denied() {
        let error = StepError::from(HttpError::Denied("GET https://x/ refused".to_owned()));
        assert_eq!(
            error,
            StepError::denied("request denied: GET https://x/ refused")
        );
    }
}
