//! Requests built with the raw `wasi:http` types, part by part, exactly as given: no
//! parsing, normalisation or refusal on the guest side, so that only the host decides.
//!
//! [`build`] sets the method, scheme, authority and path on an `outgoing-request`; a
//! setter the host refuses is a [`Refused`]. [`send`] hands the request to
//! `wasi:http/outgoing-handler`, waits for the response and reads its body; the result is
//! an [`Outcome`], which never fails the step.

use serde_json::{Value, json};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasi::io::streams::StreamError;

/// How many bytes to ask for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// The part of a request whose setter the host refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `set-method`
    Method,
    /// `set-scheme`
    Scheme,
    /// `set-authority`
    Authority,
    /// `set-path-with-query`
    Path,
}

impl Refused {
    /// `{"outcome": "refused-method" | "refused-scheme" | "refused-authority" |
    /// "refused-path"}`.
    pub fn to_json(self) -> Value {
        let part = match self {
            Self::Method => "method",
            Self::Scheme => "scheme",
            Self::Authority => "authority",
            Self::Path => "path",
        };
        json!({ "outcome": format!("refused-{part}") })
    }
}

/// What happened to a request given to the outgoing handler.
#[derive(Debug)]
pub enum Outcome {
    /// A response arrived.
    Sent {
        /// The status code.
        status: u16,
        /// The whole body (what could be read of it).
        body: Vec<u8>,
    },
    /// The host refused the request: `error-code.HTTP-request-denied`, whether `handle`
    /// returned it or the response future did.
    Denied(ErrorCode),
    /// Anything else, described (`Debug` of the error code, or what went wrong).
    Error(String),
}

impl Outcome {
    /// As `probe::send`: `{"outcome": "sent", "status", "body"}`,
    /// `{"outcome": "denied", "error"}` or `{"outcome": "error", "error"}`. The error of a
    /// denial is the `Debug` of the error code (`ErrorCode::HttpRequestDenied`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Sent { status, body } => json!({
                "outcome": "sent",
                "status": status,
                "body": String::from_utf8_lossy(body),
            }),
            Self::Denied(code) => json!({
                "outcome": "denied",
                "error": format!("{code:?}"),
            }),
            Self::Error(error) => json!({
                "outcome": "error",
                "error": error,
            }),
        }
    }

    fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => Self::Denied(code),
            other => Self::Error(format!("{other:?}")),
        }
    }
}

/// The scheme, authority and path-with-query of an absolute URL, split as written: no
/// validation, decoding or normalisation. A fragment is dropped; an empty path is `/`.
#[derive(Debug)]
pub struct Target {
    /// `http` or `https` (case-insensitive in the URL).
    pub scheme: Scheme,
    /// Everything between `://` and the first `/`, `?` or `#`, user information included.
    pub authority: String,
    /// `/path?query`.
    pub path_with_query: String,
}

impl Target {
    /// Splits `url`.
    ///
    /// # Errors
    ///
    /// A message when `url` has no `://`, or a scheme other than `http` or `https`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("no `://` in `{url}`"))?;
        let scheme =
            scheme_named(scheme).ok_or_else(|| format!("scheme not http(s) in `{url}`"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let path_with_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

/// `Scheme::Http` for `http`, `Scheme::Https` for `https` (case-insensitive).
pub fn scheme_named(name: &str) -> Option<Scheme> {
    if name.eq_ignore_ascii_case("http") {
        Some(Scheme::Http)
    } else if name.eq_ignore_ascii_case("https") {
        Some(Scheme::Https)
    } else {
        None
    }
}

/// An `outgoing-request` with `fields` as its headers and each part set as given.
///
/// # Errors
///
/// The first part whose setter the host refused.
pub fn build(
    fields: Fields,
    method: &Method,
    scheme: &Scheme,
    authority: &str,
    path_with_query: &str,
) -> Result<OutgoingRequest, Refused> {
    let request = OutgoingRequest::new(fields);
    request.set_method(method).map_err(|()| Refused::Method)?;
    request
        .set_scheme(Some(scheme))
        .map_err(|()| Refused::Scheme)?;
    request
        .set_authority(Some(authority))
        .map_err(|()| Refused::Authority)?;
    request
        .set_path_with_query(Some(path_with_query))
        .map_err(|()| Refused::Path)?;
    Ok(request)
}

/// A `GET` of `target` with `fields` as its headers, sent: [`build`] then [`send`].
///
/// # Errors
///
/// As [`build`].
pub fn get(fields: Fields, target: &Target) -> Result<Outcome, Refused> {
    build(
        fields,
        &Method::Get,
        &target.scheme,
        &target.authority,
        &target.path_with_query,
    )
    .map(send)
}

/// Sends `request` without a body (its body is never taken, so the host sends an empty
/// one), waits for the response and reads the whole body.
pub fn send(request: OutgoingRequest) -> Outcome {
    send_with(request, None)
}

/// [`send`] with request options (timeouts) of the step's choosing.
pub fn send_with(request: OutgoingRequest, options: Option<RequestOptions>) -> Outcome {
    let future = match outgoing_handler::handle(request, options) {
        Ok(future) => future,
        Err(code) => return Outcome::from_code(code),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => read(response),
        Some(Ok(Err(code))) => Outcome::from_code(code),
        Some(Err(())) => Outcome::Error("the response was already taken".to_owned()),
        None => Outcome::Error("the response is not ready".to_owned()),
    }
}

fn read(response: IncomingResponse) -> Outcome {
    let status = response.status();
    let Ok(body) = response.consume() else {
        return Outcome::Error("the response body was already taken".to_owned());
    };
    let Ok(stream) = body.stream() else {
        return Outcome::Error("the response body stream was already taken".to_owned());
    };
    let mut bytes = Vec::new();
    let result = loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(()),
            Err(StreamError::LastOperationFailed(error)) => {
                break Err(wasi::http::types::http_error_code(&error)
                    .map_or_else(|| error.to_debug_string(), |code| format!("{code:?}")));
            }
        }
    };
    drop(stream);
    drop(IncomingBody::finish(body));
    match result {
        Ok(()) => Outcome::Sent {
            status,
            body: bytes,
        },
        Err(error) => Outcome::Error(format!("reading the body of a {status} response: {error}")),
    }
}
