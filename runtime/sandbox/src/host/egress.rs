//! Egress: the `wasi:http` send hook that checks every request against the grant.
//!
//! The decision (allowed or denied) is recorded before anything leaves the host; a
//! denied request gets wasi-http's `HttpRequestDenied` and a note in the step log. An
//! allowed request is sent over a connection to an address the [`AddressFilter`]
//! permitted, and its outcome (status, address, time) is recorded too.
//!
//! Circuit breaker: an allowed request whose destination's breaker is open (it failed
//! too often lately, in any step of this sandbox) is refused without connecting, with
//! `ConnectionRefused` and an `egress.circuit-refused` entry instead of `egress.allowed`;
//! the outcome of every request that went out is counted by its destination's breaker,
//! which records `egress.circuit-opened` and `egress.circuit-closed` when it changes.
//!
//! Secret injection: a header value holding `{{secret:NAME}}` is filled in by the host,
//! after the request passed the egress check, only if one of that secret's inject rules
//! takes the destination and names that header. Otherwise the whole request is denied:
//! `secret-injection-denied` when no rule takes the destination,
//! `inject-header-not-granted` when one does but for another header (a placeholder in
//! `Origin`, say, which a destination may echo back). Only header values are searched
//! for placeholders: the URL and the body are sent as the step wrote them. The value is
//! read through the step's provider for each request and never reaches the step.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Scheme as UriScheme;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use relo_evidence::{EgressOutcome, EvidenceEvent};
use relo_policy::{EgressDecision, EgressRequest, Grant, LimitKind, Limits};
use relo_secrets::StepSecrets;
use tokio::sync::Notify;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::budget::{MAX_NAME_BYTES, MAX_TEXT_BYTES, RefusedCalls, bounded};
use crate::capture::StepLog;
use crate::circuit::{
    CircuitBreakers, CircuitOpen, CircuitPermit, Destination, Transition, Verdict,
};
use crate::error::LimitExceeded;
use crate::host::reflect::{self, Injected};
use crate::network::{self, AddressFilter, ConnectPolicy, Resolver};
use crate::recorder::Recorder;
use crate::redact::Redactor;

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

/// Egress counts and budgets of one step, shared with the bodies still streaming.
#[derive(Debug)]
pub(crate) struct EgressCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    max_requests: u64,
    max_bytes: u64,
    exceeded: Mutex<Option<LimitExceeded>>,
}

impl EgressCounters {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            requests: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            max_requests: limits.egress_requests,
            max_bytes: limits.egress_bytes,
            exceeded: Mutex::new(None),
        }
    }

    /// The egress limit the step exceeded, if any: the step must stop.
    pub(crate) fn exceeded(&self) -> Option<LimitExceeded> {
        *self.exceeded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn exceed(&self, limit: LimitExceeded) {
        self.exceeded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(limit);
    }

    /// Counts one more request; `false` once the step has used its budget.
    fn admit_request(&self) -> bool {
        let made = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        if made > self.max_requests {
            self.exceed(LimitExceeded {
                kind: LimitKind::EgressRequests,
                allowed: self.max_requests,
                requested: made,
            });
            return false;
        }
        true
    }

    /// Counts body bytes in either direction; `false` once the step has used its budget.
    fn admit_bytes(&self, direction: &AtomicU64, bytes: u64) -> bool {
        direction.fetch_add(bytes, Ordering::AcqRel);
        let total = self.bytes_in.load(Ordering::Acquire) + self.bytes_out.load(Ordering::Acquire);
        if total > self.max_bytes {
            self.exceed(LimitExceeded {
                kind: LimitKind::EgressBytes,
                allowed: self.max_bytes,
                requested: total,
            });
            return false;
        }
        true
    }
}

/// Which way a metered body flows.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Out,
    In,
}

/// A body whose bytes count against the step's egress budget; past it, the body fails.
struct Metered<B> {
    inner: B,
    counters: Arc<EgressCounters>,
    direction: Direction,
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let bytes = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.data_ref().map_or(0, |data| data.len() as u64),
            _ => 0,
        };
        if bytes > 0 {
            let (counter, error) = match self.direction {
                Direction::Out => (
                    &self.counters.bytes_out,
                    HttpError::HttpRequestBodySize(Some(self.counters.max_bytes)),
                ),
                Direction::In => (
                    &self.counters.bytes_in,
                    HttpError::HttpResponseBodySize(Some(self.counters.max_bytes)),
                ),
            };
            if !self.counters.admit_bytes(counter, bytes) {
                return Poll::Ready(Some(Err(error)));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn metered(body: WasiBody, counters: &Arc<EgressCounters>, direction: Direction) -> WasiBody {
    Metered {
        inner: body,
        counters: Arc::clone(counters),
        direction,
    }
    .boxed_unsync()
}

/// The send hook of one step.
pub(crate) struct EgressGate {
    pub(crate) grant: Arc<Grant>,
    pub(crate) recorder: Recorder,
    pub(crate) log: StepLog,
    /// The sandbox's second guard on connected addresses.
    pub(crate) guard: Arc<dyn AddressFilter>,
    pub(crate) resolver: Arc<dyn Resolver>,
    /// The sandbox's circuit breakers, by destination.
    pub(crate) circuits: Arc<CircuitBreakers>,
    pub(crate) counters: Arc<EgressCounters>,
    pub(crate) in_flight: InFlight,
    /// Where injected secrets are read from.
    pub(crate) secrets: Option<StepSecrets>,
    /// The values the step touched, for redaction.
    pub(crate) redactor: Redactor,
    /// The step's refused host calls; a denied request is one.
    pub(crate) refused: Arc<RefusedCalls>,
    /// The plugin's digest: circuit breakers are per plugin and destination.
    pub(crate) plugin: Arc<str>,
}

/// The opening of a secret placeholder in a header value: `{{secret:NAME}}`.
const PLACEHOLDER_OPEN: &str = "{{secret:";

/// One placeholder to fill: the header and the secret's logical name.
#[derive(Debug, Clone)]
struct Injection {
    header: http::HeaderName,
    name: String,
}

/// The placeholders of `headers`, or the text of a malformed one.
fn injections(headers: &http::HeaderMap) -> Result<Vec<Injection>, String> {
    let mut found = Vec::new();
    for (header, value) in headers {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(start) = rest.find(PLACEHOLDER_OPEN) {
            let after = &rest[start + PLACEHOLDER_OPEN.len()..];
            let Some(end) = after.find("}}") else {
                return Err(format!(
                    "header `{header}` has an unterminated `{{{{secret:` placeholder"
                ));
            };
            found.push(Injection {
                header: header.clone(),
                name: after[..end].trim().to_owned(),
            });
            rest = &after[end + 2..];
        }
    }
    Ok(found)
}

/// Reads every injected secret and writes its value into its header, recording each
/// injection; the values, to mask in the answer. Fails (naming the secret, never the
/// value) if a read fails.
async fn inject(
    request: &mut http::Request<WasiBody>,
    injections: &[Injection],
    secrets: &StepSecrets,
    recorder: &Recorder,
    redactor: &Redactor,
    target: &Target,
) -> Result<Injected, (String, String, String)> {
    let mut injected = Injected::default();
    for injection in injections {
        let value = secrets.read(&injection.name).await.map_err(|error| {
            (
                injection.name.clone(),
                error.code().to_owned(),
                error.to_string(),
            )
        })?;
        redactor.add(&injection.name, value.expose());
        injected.add(&injection.name, value.expose());
        let placeholder = format!("{PLACEHOLDER_OPEN}{}}}}}", injection.name);
        let headers = request.headers_mut();
        let current = headers
            .get(&injection.header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let filled = current.replace(&placeholder, value.expose());
        let mut header_value = http::HeaderValue::from_str(&filled).map_err(|_| {
            (
                injection.name.clone(),
                "secret-not-a-header-value".to_owned(),
                format!(
                    "the value of secret `{}` cannot be sent in a header",
                    injection.name
                ),
            )
        })?;
        header_value.set_sensitive(true);
        headers.insert(injection.header.clone(), header_value);
        recorder.record(EvidenceEvent::SecretInjected {
            name: injection.name.clone(),
            reference: secrets
                .path(&injection.name)
                .map(ToString::to_string)
                .unwrap_or_default(),
            version: value.version(),
            header: injection.header.as_str().to_owned(),
            method: target.method.clone(),
            scheme: target.scheme.clone(),
            host: target.host.clone(),
            port: target.port,
            path: target.path.clone(),
        });
    }
    Ok(injected)
}

impl EgressGate {
    /// Checks every placeholder of an allowed request: the secret is granted for
    /// injection into this header toward this destination, and there is a provider. On
    /// refusal, records the secret denial and returns the code and reason that deny the
    /// request.
    fn check_injections(
        &self,
        target: &Target,
        injections: &[Injection],
    ) -> Result<(), (String, String)> {
        let request = EgressRequest {
            method: &target.method,
            scheme: &target.scheme,
            host: &target.host,
            port: target.port,
            path: &target.path,
            has_userinfo: target.has_userinfo,
        };
        for injection in injections {
            let (name, header) = (&injection.name, injection.header.as_str());
            let refusal = match self.grant.injection(name, header, &request) {
                Err(denial) => Some((denial.code().to_owned(), denial.to_string())),
                Ok(()) if self.secrets.is_none() => Some((
                    "provider-unavailable".to_owned(),
                    crate::host::secrets::NO_PROVIDER.to_owned(),
                )),
                Ok(()) => None,
            };
            if let Some((code, reason)) = refusal {
                let reason = self.redactor.shown(reason, MAX_TEXT_BYTES);
                self.recorder.record(EvidenceEvent::SecretDenied {
                    name: self.redactor.shown(injection.name.clone(), MAX_NAME_BYTES),
                    reference: self
                        .secrets
                        .as_ref()
                        .and_then(|secrets| secrets.path(&injection.name))
                        .map(ToString::to_string),
                    code: code.clone(),
                    reason: reason.clone(),
                });
                return Err((code, reason));
            }
        }
        Ok(())
    }

    /// Refuses a request: one refused host call, recorded with the destination as
    /// [`Target::for_evidence`] shows it. Past the step's budget of refused calls nothing
    /// is recorded, and the step is stopped with the limit `host-calls`.
    fn deny(
        &self,
        target: &Target,
        code: &str,
        reason: String,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if self.refused.charge().is_err() {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let reason = self.redactor.shown(reason, MAX_TEXT_BYTES);
        self.log
            .host_note("warn", format!("egress denied ({code}): {reason}"));
        self.recorder.record(EvidenceEvent::EgressDenied {
            method: target.method.clone(),
            scheme: target.scheme.clone(),
            host: target.host.clone(),
            port: target.port,
            path: target.path.clone(),
            code: code.to_owned(),
            reason,
        });
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }

    /// Refuses an allowed request because its destination's breaker is open. The
    /// destination is failing rather than forbidden, so the guest gets
    /// `ConnectionRefused`, not `HttpRequestDenied`.
    fn refuse_open_circuit(
        &self,
        target: &Target,
        open: CircuitOpen,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let reopens_in_ms = u64::try_from(open.reopens_in.as_millis()).unwrap_or(u64::MAX);
        let trial = match reopens_in_ms {
            0 => "a trial request is under way".to_owned(),
            ms => format!("a trial request goes through in {ms} ms"),
        };
        self.log.host_note(
            "warn",
            format!(
                "egress refused (circuit-open): {}://{}:{} failed {} times in a row; {trial}",
                target.scheme, target.host, target.port, open.consecutive_failures
            ),
        );
        self.recorder.record(EvidenceEvent::EgressCircuitRefused {
            method: target.method.clone(),
            scheme: target.scheme.clone(),
            host: target.host.clone(),
            port: target.port,
            path: target.path.clone(),
            reopens_in_ms,
        });
        Box::new(async { Err(HttpError::ConnectionRefused) })
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
    has_userinfo: bool,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Self {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        Self {
            method: request.method().as_str().to_owned(),
            scheme,
            host: uri.host().unwrap_or("").to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
            path: uri.path().to_owned(),
            has_userinfo: uri.authority().is_some_and(|a| a.as_str().contains('@')),
        }
    }

    /// The destination as notes and evidence show it: guest-chosen parts redacted and
    /// bounded (the decision is made on the request itself, never on this copy).
    fn for_evidence(&self, redactor: &Redactor) -> Self {
        let shown = |text: &str| redactor.shown(text.to_owned(), MAX_TEXT_BYTES);
        Self {
            method: bounded(&self.method, MAX_NAME_BYTES),
            scheme: bounded(&self.scheme, MAX_NAME_BYTES),
            host: shown(&self.host),
            port: self.port,
            path: shown(&self.path),
            has_userinfo: self.has_userinfo,
        }
    }

    /// The destination as the circuit breaker of `plugin` names it.
    fn destination(&self, plugin: Arc<str>) -> Destination {
        Destination::new(plugin, &self.scheme, &self.host, self.port)
    }

    fn decide(&self, grant: &Grant) -> EgressDecision {
        grant.egress_decision(&EgressRequest {
            method: &self.method,
            scheme: &self.scheme,
            host: &self.host,
            port: self.port,
            path: &self.path,
            has_userinfo: self.has_userinfo,
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
        let checked = Target::of(&request);
        let target = checked.for_evidence(&self.redactor);
        if !self.counters.admit_request() {
            let reason = format!(
                "the step may make at most {} requests",
                self.counters.max_requests
            );
            return self.deny(&target, LimitKind::EgressRequests.code(), reason);
        }
        let rule = match checked.decide(&self.grant) {
            EgressDecision::Denied(denial) => {
                return self.deny(&target, denial.code(), denial.to_string());
            }
            EgressDecision::Allowed { rule } => rule,
        };
        let injections = match injections(request.headers()) {
            Ok(found) => found,
            Err(reason) => return self.deny(&target, "malformed-secret-placeholder", reason),
        };
        if let Err((code, reason)) = self.check_injections(&checked, &injections) {
            return self.deny(&target, &code, reason);
        }
        let circuit = match self.circuits.admit(
            checked.destination(Arc::clone(&self.plugin)),
            Instant::now(),
        ) {
            Ok(permit) => permit,
            Err(open) => return self.refuse_open_circuit(&target, open),
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
        let mut guard = self
            .in_flight
            .start(self.recorder.clone(), target.clone(), circuit);
        let mut request = request.map(|body| metered(body, &self.counters, Direction::Out));
        let connection = Connection {
            grant: Arc::clone(&self.grant),
            guard: Arc::clone(&self.guard),
            resolver: Arc::clone(&self.resolver),
        };
        let counters = Arc::clone(&self.counters);
        let secrets = self.secrets.clone();
        let recorder = self.recorder.clone();
        let redactor = self.redactor.clone();
        let log = self.log.clone();
        Box::new(async move {
            let mut injected = Injected::default();
            if let (false, Some(secrets)) = (injections.is_empty(), &secrets) {
                match inject(
                    &mut request,
                    &injections,
                    secrets,
                    &recorder,
                    &redactor,
                    &target,
                )
                .await
                {
                    Ok(values) => injected = values,
                    Err((name, code, reason)) => {
                        log.host_note(
                            "warn",
                            format!("secret `{name}` not injected ({code}): {reason}"),
                        );
                        recorder.record(EvidenceEvent::SecretDenied {
                            reference: secrets.path(&name).map(ToString::to_string),
                            name,
                            code: code.clone(),
                            reason: reason.clone(),
                        });
                        guard.fail(&code, reason, None, Verdict::Neutral);
                        return Err(HttpError::HttpRequestDenied);
                    }
                }
            }
            let (response, io) = send(request, options, connection, counters, guard).await?;
            if injected.is_empty() {
                return Ok((response, io));
            }
            // An injected value never comes back to the step (a destination that echoes).
            let (mut parts, body) = response.into_parts();
            reflect::mask_headers(&mut parts, &injected, &recorder);
            let body = reflect::mask_body(body, injected, recorder);
            Ok((http::Response::from_parts(parts, body), io))
        })
    }
}

/// What an allowed request's connection is checked against.
struct Connection {
    grant: Arc<Grant>,
    guard: Arc<dyn AddressFilter>,
    resolver: Arc<dyn Resolver>,
}

/// Connects to a permitted address, sends the request and records how it ended.
async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    connection: Connection,
    counters: Arc<EgressCounters>,
    mut guard: InFlightGuard,
) -> SendResult {
    let started = Instant::now();
    let scheme = request.uri().scheme().cloned().unwrap_or(UriScheme::HTTP);
    let target = guard.target.clone();
    let policy = ConnectPolicy {
        networks: &connection.grant.networks,
        guard: connection.guard.as_ref(),
        resolver: connection.resolver.as_ref(),
    };
    let (stream, ip) = match network::connect(
        &policy,
        &scheme,
        &target.host,
        target.port,
        options.and_then(|o| o.connect_timeout),
    )
    .await
    {
        Ok(connected) => connected,
        Err(failure) => {
            // A timeout the step chose itself says nothing about the destination.
            let chosen = failure.code == "connect-timeout"
                && options.is_some_and(|o| o.connect_timeout.is_some());
            let verdict = if failure.is_destination_failure() && !chosen {
                Verdict::Failure
            } else {
                Verdict::Neutral
            };
            guard.fail(failure.code, failure.message, failure.address, verdict);
            return Err(failure.error);
        }
    };
    let (mut sender, connection) = match hyper::client::conn::http1::handshake(stream).await {
        Ok(pair) => pair,
        Err(err) => {
            guard.fail(
                "handshake-failed",
                err.to_string(),
                Some(ip),
                Verdict::Failure,
            );
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
            guard.fail(
                "request-failed",
                err.to_string(),
                Some(ip),
                Verdict::Failure,
            );
            return Err(HttpError::from(err));
        }
        Err(_) => {
            // A first-byte timeout the step chose itself says nothing about the
            // destination; the host's own default does.
            let verdict = if options.is_some_and(|o| o.first_byte_timeout.is_some()) {
                Verdict::Neutral
            } else {
                Verdict::Failure
            };
            guard.fail(
                "response-timeout",
                "no response headers in time".into(),
                Some(ip),
                verdict,
            );
            return Err(HttpError::ConnectionReadTimeout);
        }
    };
    guard.succeed(response.status().as_u16(), ip, started.elapsed());
    let response = response.map(|body| {
        metered(
            body.map_err(HttpError::from).boxed_unsync(),
            &counters,
            Direction::In,
        )
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
    fn start(
        &self,
        recorder: Recorder,
        target: Target,
        circuit: Option<CircuitPermit>,
    ) -> InFlightGuard {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            in_flight: self.clone(),
            recorder,
            target,
            outcome: None,
            circuit,
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

/// One request in flight; records its outcome when dropped, `abandoned` if it has none,
/// and settles its destination's circuit breaker with it.
struct InFlightGuard {
    in_flight: InFlight,
    recorder: Recorder,
    target: Target,
    outcome: Option<(EgressOutcome, Verdict)>,
    /// `None` when the circuit breaker is off.
    circuit: Option<CircuitPermit>,
}

impl InFlightGuard {
    /// No response: `verdict` says whether the destination is to blame.
    fn fail(&mut self, code: &str, error: String, address: Option<IpAddr>, verdict: Verdict) {
        let outcome = EgressOutcome::Failed {
            code: code.to_owned(),
            error,
            resolved_ip: address.map(|ip| ip.to_string()),
        };
        self.outcome = Some((outcome, verdict));
    }

    /// A response: a 5xx status is a failure of the destination.
    fn succeed(&mut self, status: u16, ip: IpAddr, elapsed: Duration) {
        let outcome = EgressOutcome::Response {
            status,
            resolved_ip: ip.to_string(),
            ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        };
        let verdict = if status >= 500 {
            Verdict::Failure
        } else {
            Verdict::Success
        };
        self.outcome = Some((outcome, verdict));
    }

    /// Records how the destination's breaker changed.
    fn record_transition(&self, destination: &Destination, transition: Transition) {
        let Destination {
            scheme, host, port, ..
        } = destination.clone();
        self.recorder.record(match transition {
            Transition::Opened {
                consecutive_failures,
                cooldown,
            } => EvidenceEvent::EgressCircuitOpened {
                scheme,
                host,
                port,
                consecutive_failures,
                cooldown_ms: u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
            },
            Transition::Closed => EvidenceEvent::EgressCircuitClosed { scheme, host, port },
        });
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let (outcome, verdict) = self.outcome.take().unwrap_or_else(|| {
            let abandoned = EgressOutcome::Failed {
                code: "abandoned".into(),
                error: "the step ended or dropped the request before a response".into(),
                resolved_ip: None,
            };
            (abandoned, Verdict::Neutral)
        });
        self.recorder.record(EvidenceEvent::EgressCompleted {
            method: self.target.method.clone(),
            host: self.target.host.clone(),
            port: self.target.port,
            path: self.target.path.clone(),
            outcome,
        });
        if let Some(permit) = self.circuit.take() {
            let destination = permit.destination().clone();
            if let Some(transition) = permit.settle(verdict, Instant::now()) {
                self.record_transition(&destination, transition);
            }
        }
        self.in_flight.0.count.fetch_sub(1, Ordering::AcqRel);
        self.in_flight.0.idle.notify_waiters();
    }
}
