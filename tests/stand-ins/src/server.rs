//! The HTTP/1.1 plumbing both stand-ins share: a listener on loopback, a task per
//! connection, every answered request recorded, JSON in and out.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::journal::{Journal, RecordedRequest};

/// A stand-in's answer.
pub(crate) type Answer = Response<Full<Bytes>>;

/// The largest request body a stand-in reads.
const BODY_LIMIT: usize = 64 * 1024;

/// A stand-in's socket, bound but not yet answering.
pub(crate) struct Bound {
    listener: TcpListener,
    service: &'static str,
    url: String,
}

/// A listening stand-in; dropping it stops accepting connections.
pub(crate) struct Server {
    url: String,
    accept: JoinHandle<()>,
}

/// Binds `addr` for the stand-in `service`; `addr` must be a loopback address.
pub(crate) async fn bind(addr: SocketAddr, service: &'static str) -> io::Result<Bound> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{service} stand-in: {addr} is not a loopback address; the stand-ins bind \
                 127.0.0.1 only"
            ),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok(Bound {
        listener,
        service,
        url,
    })
}

impl Bound {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Answers each request with `handler`, recording it in `journal`.
    pub(crate) fn serve<H, F>(self, journal: Journal, handler: H) -> Server
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Answer> + Send + 'static,
    {
        let Self {
            listener,
            service,
            url,
        } = self;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (handler, journal) = (handler.clone(), journal.clone());
                let recorded = service_fn(move |request: Request<Incoming>| {
                    let (handler, journal) = (handler.clone(), journal.clone());
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path().to_owned();
                        let authorization = request.headers().contains_key(AUTHORIZATION);
                        let answer = handler(request).await;
                        journal.record(RecordedRequest {
                            service,
                            method,
                            path,
                            authorization,
                            status: answer.status().as_u16(),
                        });
                        Ok::<_, Infallible>(answer)
                    }
                });
                tokio::spawn(async move {
                    // A client that goes away mid-request is its own problem.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), recorded)
                        .await;
                });
            }
        });
        Server { url, accept }
    }
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A JSON answer.
pub(crate) fn json_answer(status: StatusCode, body: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

/// `{"error": message}` with `status`.
pub(crate) fn error_answer(status: StatusCode, message: impl fmt::Display) -> Answer {
    json_answer(status, &json!({ "error": message.to_string() }))
}

/// A request refused before it was handled: the status and why.
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, message: impl fmt::Display) -> Self {
        Self {
            status,
            message: message.to_string(),
        }
    }

    /// The answer saying so.
    pub(crate) fn answer(&self) -> Answer {
        error_answer(self.status, &self.message)
    }
}

/// The request's body as `T`, or why not (`400`, or `413` if too large).
pub(crate) async fn read_json<T: DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Refusal> {
    let bytes = Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|error| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body could not be read (at most {BODY_LIMIT} bytes): {error}"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON expected: {error}"),
        )
    })
}

/// The `404` or `405` for a request no route took: `405` if `path` is known.
pub(crate) fn no_route(known: &[&str], path: &str) -> Answer {
    if known.contains(&path) {
        error_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} does not take this method"),
        )
    } else {
        error_answer(StatusCode::NOT_FOUND, format!("no such path: {path}"))
    }
}

/// Locks `mutex`; a panic elsewhere while holding it leaves data that is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
