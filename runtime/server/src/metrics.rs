//! A small registry of counters, rendered in the Prometheus text format at `/metrics`:
//! requests by route and status, authentication and authorisation refusals by code,
//! rate-limit hits by limit, and the runs this instance drove: started, taken over, how
//! each drive stopped and how long it took, steps started and ended, gates waiting; and
//! the denials of the evidence log, counted in the store.
//!
//! A scrape is answered from memory: the evidence-derived counts are read from the store
//! in the background, at most every [`EVIDENCE_COUNTS_EVERY`] of the server's clock, so
//! scraping never costs a query per request. `/metrics` needs `metrics.read` (admins and
//! auditors, or an API token with that scope); [`metrics_app`] serves it without
//! authentication for a loopback listener of its own (`relo serve --metrics-listen`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use relo_orchestrator::{Progress, RunOutcome};

use crate::state::AppState;

/// How often, at most, a scrape has the evidence-derived counts read again.
pub const EVIDENCE_COUNTS_EVERY: Duration = Duration::from_secs(10);

/// The server's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    rate_limited: Mutex<BTreeMap<String, u64>>,
    /// Run counters without labels, by metric name.
    runs: Mutex<BTreeMap<&'static str, u64>>,
    drives: Mutex<BTreeMap<&'static str, u64>>,
    drive_seconds: Mutex<(f64, u64)>,
    steps_ended: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

impl Metrics {
    /// One answered request of `method route` (a path template) with `status`.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16) {
        bump(
            &self.requests,
            (method.to_owned(), route.to_owned(), status),
        );
    }

    /// One refusal with `code`.
    pub(crate) fn refusal(&self, code: &str) {
        bump(&self.refusals, code.to_owned());
    }

    /// One request over `limit`.
    pub(crate) fn rate_limited(&self, limit: &str) {
        bump(&self.rate_limited, limit.to_owned());
    }

    /// One run started through the API.
    pub(crate) fn run_started(&self) {
        bump(&self.runs, "relo_runs_started_total");
    }

    /// One run taken up from a runner that stopped driving it.
    pub(crate) fn run_taken_over(&self) {
        bump(&self.runs, "relo_runs_taken_over_total");
    }

    /// One drive of a run stopped with `outcome` (`None`: an error) after `took`.
    pub(crate) fn run_driven(&self, outcome: Option<&RunOutcome>, took: Duration) {
        let name = match outcome {
            Some(RunOutcome::Succeeded) => "succeeded",
            Some(RunOutcome::Failed { .. }) => "failed",
            Some(RunOutcome::Waiting { .. }) => "waiting",
            Some(RunOutcome::Cancelled) => "cancelled",
            None => "error",
        };
        bump(&self.drives, name);
        let mut seconds = self
            .drive_seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seconds.0 += took.as_secs_f64();
        seconds.1 += 1;
    }

    /// A runner's progress report.
    pub(crate) fn progress(&self, report: &Progress) {
        match report {
            Progress::StepStarted { .. } => bump(&self.runs, "relo_step_attempts_total"),
            Progress::StepEnded { state, .. } => bump(&self.steps_ended, *state),
            Progress::GateWaiting { .. } => bump(&self.runs, "relo_gates_waiting_total"),
            _ => {}
        }
    }

    /// The counters in the Prometheus text exposition format (0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP relo_http_requests_total Requests answered, by method, route and status.\n\
             # TYPE relo_http_requests_total counter\n",
        );
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP relo_auth_refusals_total Refused authentications and authorisations, by code.\n\
             # TYPE relo_auth_refusals_total counter\n",
        );
        for (code, n) in self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_auth_refusals_total{{code=\"{}\"}} {n}",
                escape(code)
            );
        }
        out.push_str(
            "# HELP relo_rate_limited_total Requests refused with 429, by limit.\n\
             # TYPE relo_rate_limited_total counter\n",
        );
        for (limit, n) in self
            .rate_limited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "relo_rate_limited_total{{limit=\"{}\"}} {n}",
                escape(limit)
            );
        }
        for (name, help) in [
            ("relo_runs_started_total", "Runs started through the API."),
            (
                "relo_runs_taken_over_total",
                "Runs taken up after their runner stopped driving them.",
            ),
            ("relo_step_attempts_total", "Step attempts begun."),
            (
                "relo_gates_waiting_total",
                "Times a run stopped at a gate short of its quorum.",
            ),
        ] {
            let n = self
                .runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .copied()
                .unwrap_or(0);
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}\n"
            );
        }
        out.push_str(
            "# HELP relo_run_drives_total Drives of a run that stopped, by how.\n\
             # TYPE relo_run_drives_total counter\n",
        );
        for (outcome, n) in self
            .drives
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "relo_run_drives_total{{outcome=\"{outcome}\"}} {n}");
        }
        let (sum, count) = *self
            .drive_seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = write!(
            out,
            "# HELP relo_run_drive_seconds Time spent driving runs until they ended or waited.\n\
             # TYPE relo_run_drive_seconds summary\n\
             relo_run_drive_seconds_sum {sum}\nrelo_run_drive_seconds_count {count}\n"
        );
        out.push_str(
            "# HELP relo_steps_ended_total Steps ended, by state.\n\
             # TYPE relo_steps_ended_total counter\n",
        );
        for (state, n) in self
            .steps_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "relo_steps_ended_total{{state=\"{state}\"}} {n}");
        }
        out
    }
}

/// The evidence kinds `/metrics` counts as denials and limit hits: what the sandbox, the
/// catalog and the gates refused, in every instance's runs (they are counted in the
/// store, which all instances share).
pub(crate) const DENIAL_KINDS: &[&str] = &[
    "egress.denied",
    "egress.circuit-refused",
    "secret.denied",
    "signer.denied",
    "limit.exceeded",
    "plugin.refused",
    "gate.refused",
];

/// The denial and limit-hit counters of `counts` (kind, entries) in the text format.
fn render_denials(counts: &[(String, u64)]) -> String {
    let mut out = String::from(
        "# HELP relo_denials_total Denials and limit hits recorded in the evidence log, by kind.\n\
         # TYPE relo_denials_total counter\n",
    );
    for (kind, n) in counts {
        let _ = writeln!(out, "relo_denials_total{{kind=\"{}\"}} {n}", escape(kind));
    }
    out
}

/// The evidence-derived counts as last read from the store.
#[derive(Debug, Default)]
pub(crate) struct EvidenceCounts {
    inner: Mutex<CountsRead>,
}

#[derive(Debug, Default)]
struct CountsRead {
    denials: Vec<(String, u64)>,
    /// When the counts may be read again; `None` before the first read.
    next_read: Option<SystemTime>,
    reading: bool,
}

impl EvidenceCounts {
    /// The counts as last read.
    fn denials(&self) -> Vec<(String, u64)> {
        self.lock().denials.clone()
    }

    /// Whether a read is due at `now` and none is under way; if so, one is begun, and
    /// the next is due [`EVIDENCE_COUNTS_EVERY`] later.
    fn begin_read(&self, now: SystemTime) -> bool {
        let mut read = self.lock();
        if read.reading || read.next_read.is_some_and(|due| now < due) {
            return false;
        }
        read.reading = true;
        read.next_read = Some(now + EVIDENCE_COUNTS_EVERY);
        true
    }

    /// Ends the read begun by [`EvidenceCounts::begin_read`], keeping `denials` if it
    /// succeeded.
    fn end_read(&self, denials: Option<Vec<(String, u64)>>) {
        let mut read = self.lock();
        read.reading = false;
        if let Some(denials) = denials {
            read.denials = denials;
        }
    }

    /// Keeps `denials`, read at `now`; the next read is due [`EVIDENCE_COUNTS_EVERY`]
    /// later.
    pub(crate) fn set(&self, denials: Vec<(String, u64)>, now: SystemTime) {
        let mut read = self.lock();
        read.denials = denials;
        read.next_read = Some(now + EVIDENCE_COUNTS_EVERY);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CountsRead> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts reading the evidence-derived counts in the background if a read is due.
fn refresh_if_due(state: &AppState) {
    if !state.evidence_counts().begin_read(state.clock().now()) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let read = state.store().evidence_kind_counts(DENIAL_KINDS).await;
        let denials = read
            .inspect_err(
                |error| tracing::warn!(%error, "cannot read the evidence counts for /metrics"),
            )
            .ok();
        state.evidence_counts().end_read(denials);
    });
}

/// `GET /metrics`: every counter, from memory.
pub(crate) async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    refresh_if_due(&state);
    let mut text = state.metrics().render();
    text.push_str(&render_denials(&state.evidence_counts().denials()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// `GET /metrics` alone, without authentication, for a listener of its own that only
/// this machine reaches (`relo serve --metrics-listen`; check its address with
/// [`check_metrics_listen`]). It shares `state`'s counters with [`crate::app`].
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(serve))
        .with_state(state)
}

/// Why an address cannot serve the unauthenticated metrics listener.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsListenError {
    /// The address is not a loopback address.
    #[error(
        "the metrics listener answers without authentication, so it listens on a loopback \
         address only (127.0.0.1 or [::1]), not {0}; other machines scrape /metrics on the \
         main listener with an auditor's API token (scope `metrics.read`)"
    )]
    NotLoopback(SocketAddr),
}

/// Accepts `address` for [`metrics_app`] only if it is a loopback address.
pub fn check_metrics_listen(address: SocketAddr) -> Result<(), MetricsListenError> {
    if address.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(MetricsListenError::NotLoopback(address))
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.request("GET", "/healthz", 200);
        metrics.request("GET", "/healthz", 200);
        metrics.refusal("forbidden");
        metrics.rate_limited("login-client");
        metrics.request("GET", "a\"b", 404);
        let text = metrics.render();
        assert!(text.contains(
            "relo_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2\n"
        ));
        assert!(text.contains("route=\"a\\\"b\""));
        assert!(text.contains("relo_auth_refusals_total{code=\"forbidden\"} 1\n"));
        assert!(text.contains("relo_rate_limited_total{limit=\"login-client\"} 1\n"));
        assert!(text.contains("# TYPE relo_rate_limited_total counter\n"));
    }

    #[test]
    fn the_metrics_listener_is_loopback_only() {
        for ok in [
            "127.0.0.1:9464",
            "127.8.0.1:9464",
            "[::1]:9464",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(check_metrics_listen(ok.parse().unwrap()), Ok(()), "{ok}");
        }
        for refused in [
            "0.0.0.0:9464",
            "192.0.2.1:9464",
            "[::]:9464",
            "[2001:db8::1]:9464",
        ] {
            let address: SocketAddr = refused.parse().unwrap();
            let err = check_metrics_listen(address).unwrap_err();
            assert_eq!(err, MetricsListenError::NotLoopback(address));
            assert!(err.to_string().contains("loopback"));
        }
    }

    #[test]
    fn evidence_counts_are_read_at_most_once_a_period() {
        let counts = EvidenceCounts::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(counts.begin_read(start), "never read: due");
        assert!(!counts.begin_read(start), "one read at a time");
        counts.end_read(Some(vec![("plugin.refused".into(), 2)]));
        assert!(!counts.begin_read(start + Duration::from_secs(9)));
        assert_eq!(counts.denials(), [("plugin.refused".to_owned(), 2)]);
        assert!(counts.begin_read(start + EVIDENCE_COUNTS_EVERY));
        // A failed read keeps the last counts.
        counts.end_read(None);
        assert_eq!(counts.denials(), [("plugin.refused".to_owned(), 2)]);
    }
}
