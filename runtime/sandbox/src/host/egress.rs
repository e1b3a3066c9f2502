//! Egress: the `wasi:http` send hook that checks every request against the grant.
//!
//! The decision (allowed or denied) is recorded before anything leaves the host; a
//! denied request gets wasi-http's `HttpRequestDenied` and a note in the step log. An
//! allowed request is sent over a connection to an address the [`AddressFilter`]
//! permitted, and its outcome (status, address, time) is recorded too.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::uri::Scheme as UriScheme;
use http_body_util::BodyExt;
use relo_evidence::{EgressOutcome, EvidenceEvent};
use relo_policy::{EgressDecision, EgressDenial, EgressRequest, Grant, Method, Scheme};
use tokio::sync::Notify;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capture::StepLog;
use crate::network::{self, AddressFilter};
use crate::recorder::Recorder;

/// How long a request may wait for its response headers when the step sets no timeout.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the host's send hook returns to wasi-http.
type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

/// Egress counts of one step.
#[derive(Debug, Default)]
pub(crate) struct EgressCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
}

/// The send hook of one step.
pub(crate) struct EgressGate {
    grant: Arc<Grant>,
    recorder: Recorder,
    log: StepLog,
    filter: Arc<dyn AddressFilter>,
    counters: Arc<EgressCounters>,
    in_flight: InFlight,
}

impl EgressGate {
    pub(crate) fn new(
        grant: Arc<Grant>,
        recorder: Recorder,
        log: StepLog,
        filter: Arc<dyn AddressFilter>,
        counters: Arc<EgressCounters>,
        in_flight: InFlight,
    ) -> Self {
        Self {
            grant,
            recorder,
            log,
            filter,
            counters,
            in_flight,
        }
    }

    fn deny(
        &self,
        target: &Target,
        denial: &EgressDenial,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        self.recorder.record(EvidenceEvent::EgressDenied {
            method: target.method.clone(),
            scheme: target.scheme.clone(),
            host: target.host.clone(),
            port: target.port,
            path: target.path.clone(),
            code: denial.code().to_owned(),
            reason: denial.to_string(),
        });
        self.log.host_note(
            "warn",
            format!("egress denied ({}): {denial}", denial.code()),
        );
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// A request's destination as recorded in the evidence.
#[derive(Debug, Clone)]
struct Target {
    method: String,
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Self {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Self {
            method: request.method().as_str().to_owned(),
            scheme,
            host,
            port: uri.port_u16().unwrap_or(default_port),
            path: uri.path().to_owned(),
        }
    }

    /// The policy's view of the request, or why it can never be allowed.
    fn decide(&self, grant: &Grant) -> EgressDecision {
        let Some(method) = Method::parse(&self.method) else {
            return EgressDecision::Denied(EgressDenial::MethodForbidden {
                method: self.method.clone(),
            });
        };
        let scheme = match self.scheme.as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return EgressDecision::Denied(EgressDenial::SchemeForbidden {
                    scheme: other.to_owned(),
                });
            }
        };
        grant.egress_decision(&EgressRequest {
            method,
            scheme,
            host: &self.host,
            port: self.port,
            path: &self.path,
        })
    }
}

impl WasiHttpHooks for EgressGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let target = Target::of(&request);
        let rule = match target.decide(&self.grant) {
            EgressDecision::Denied(denial) => return self.deny(&target, &denial),
            EgressDecision::Allowed { rule } => rule,
        };
        self.recorder.record(EvidenceEvent::EgressAllowed {
            method: target.method.clone(),
            scheme: target.scheme.clone(),
            host: target.host.clone(),
            port: target.port,
            path: target.path.clone(),
            rule: self.grant.egress[rule].to_string(),
            header_names: request
                .headers()
                .keys()
                .map(|name| name.as_str().to_owned())
                .collect(),
        });
        let guard = self.in_flight.start(self.recorder.clone(), target);
        Box::new(send(
            request,
            options,
            Arc::clone(&self.filter),
            Arc::clone(&self.counters),
            guard,
        ))
    }
}

/// Connects to a permitted address, sends the request and records how it ended.
async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    filter: Arc<dyn AddressFilter>,
    counters: Arc<EgressCounters>,
    mut guard: InFlightGuard,
) -> SendResult {
    let started = Instant::now();
    let scheme = request.uri().scheme().cloned().unwrap_or(UriScheme::HTTP);
    let target = guard.target.clone();
    let (stream, ip) = match network::connect(
        filter.as_ref(),
        &scheme,
        &target.host,
        target.port,
        options.and_then(|o| o.connect_timeout),
    )
    .await
    {
        Ok(connected) => connected,
        Err(failure) => {
            guard.fail(failure.code, failure.message, failure.address);
            return Err(failure.error);
        }
    };
    let (mut sender, connection) = match hyper::client::conn::http1::handshake(stream).await {
        Ok(pair) => pair,
        Err(err) => {
            guard.fail("handshake-failed", err.to_string(), Some(ip));
            return Err(HttpError::from(err));
        }
    };
    let connection = wasmtime_wasi::runtime::spawn(connection);

    // The connection already goes to the checked address: send only the origin form.
    let origin = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<http::Uri>()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = origin;

    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(FIRST_BYTE_TIMEOUT);
    let response = match tokio::time::timeout(first_byte, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            guard.fail("request-failed", err.to_string(), Some(ip));
            return Err(HttpError::from(err));
        }
        Err(_) => {
            guard.fail(
                "response-timeout",
                "no response headers in time".into(),
                Some(ip),
            );
            return Err(HttpError::ConnectionReadTimeout);
        }
    };
    guard.succeed(response.status().as_u16(), ip, started.elapsed());
    let response = response.map(move |body| {
        body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counters
                    .bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            frame
        })
        .map_err(HttpError::from)
        .boxed_unsync()
    });
    let io = async move { connection.await.map_err(HttpError::from) };
    Ok((response, Box::new(io)))
}

/// Counts the requests of a step still on their way, so the step's evidence waits for
/// their outcome before it is flushed.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<InFlightInner>);

#[derive(Debug, Default)]
struct InFlightInner {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn start(&self, recorder: Recorder, target: Target) -> InFlightGuard {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            in_flight: self.clone(),
            recorder,
            target,
            outcome: None,
        }
    }

    /// Waits until no request is in flight, or `limit` passes.
    pub(crate) async fn idle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.0.idle.notified();
            if self.0.count.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

/// One request in flight; records its outcome when dropped, `abandoned` if it has none.
struct InFlightGuard {
    in_flight: InFlight,
    recorder: Recorder,
    target: Target,
    outcome: Option<EgressOutcome>,
}

impl InFlightGuard {
    fn fail(&mut self, code: &str, error: String, address: Option<IpAddr>) {
        self.outcome = Some(EgressOutcome::Failed {
            code: code.to_owned(),
            error,
            resolved_ip: address.map(|ip| ip.to_string()),
        });
    }

    fn succeed(&mut self, status: u16, ip: IpAddr, elapsed: Duration) {
        self.outcome = Some(EgressOutcome::Response {
            status,
            resolved_ip: ip.to_string(),
            ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| EgressOutcome::Failed {
                code: "abandoned".into(),
                error: "the step ended or dropped the request before a response".into(),
                resolved_ip: None,
            });
        self.recorder.record(EvidenceEvent::EgressCompleted {
            method: self.target.method.clone(),
            host: self.target.host.clone(),
            port: self.target.port,
            path: self.target.path.clone(),
            outcome,
        });
        self.in_flight.0.count.fetch_sub(1, Ordering::AcqRel);
        self.in_flight.0.idle.notify_waiters();
    }
}
