//! What every request handler shares.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use relo_manifest::{Cidr, OperatorConfig};
use relo_orchestrator::{People, Progress, Runner};
use relo_store::{Store, StoreError};
use relo_trust::{TrustError, TrustPolicy};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use axum::http::StatusCode;

use crate::clock::{Clock, SystemClock};
use crate::context::REQUEST_TIMEOUT;
use crate::engine::{RunEngine, count_progress};
use crate::error::ApiError;
use crate::evidence::EvidenceService;
use crate::metrics::{DENIAL_KINDS, EvidenceCounts, Metrics};
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::refusals::RefusalCounter;
use crate::tokens::{AccessTokens, JwtSecret, SecretError};

/// The most requests held at once waiting for a run to change (`?wait=`); beyond it a
/// read is answered at once.
pub const MAX_HELD_READS: usize = 64;

/// The server's shared state: the store, the access token key, the clock, the rate
/// limits and their buckets, the refusals being counted, the metrics, the trusted
/// proxies, and (for the plugin routes) the operator's trust policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
    trust: Option<Arc<Trust>>,
    engine: Option<Arc<RunEngine>>,
    evidence: Option<Arc<dyn EvidenceService>>,
    request_timeout: Duration,
    trusted_proxies: Arc<[Cidr]>,
}

/// The operator config and the trust policy loaded from it: what the plugin routes verify
/// uploads and approvals against. Its people are the store's once imported.
#[derive(Debug)]
pub(crate) struct Trust {
    pub(crate) config: OperatorConfig,
    pub(crate) people: People,
}

impl Trust {
    /// relo.toml's signers, which verify plugins.
    pub(crate) fn signers(&self) -> &TrustPolicy {
        self.people.configured()
    }

    /// The trust policy with the people whose signatures count now.
    pub(crate) async fn policy(&self) -> Result<Arc<TrustPolicy>, ApiError> {
        self.people.policy().await.map_err(ApiError::internal)
    }
}

#[derive(Debug)]
struct Shared {
    store: Store,
    access_tokens: AccessTokens,
    clock: Arc<dyn Clock>,
    limits: RateLimits,
    limiter: RateLimiter,
    refusals: RefusalCounter,
    metrics: Arc<Metrics>,
    evidence_counts: EvidenceCounts,
    /// Permits for `GET /v1/runs/{id}?wait=` to hold a request.
    held_reads: Arc<Semaphore>,
}

impl AppState {
    /// State signing access tokens with `secret`, reading the time from `clock`, with
    /// the default [`RateLimits`].
    pub fn new(store: Store, secret: &JwtSecret, clock: Arc<dyn Clock>) -> AppState {
        AppState::with_limits(store, secret, clock, RateLimits::default())
    }

    /// [`AppState::new`] with the rate limits `limits`.
    pub fn with_limits(
        store: Store,
        secret: &JwtSecret,
        clock: Arc<dyn Clock>,
        limits: RateLimits,
    ) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                store,
                access_tokens: AccessTokens::new(secret),
                clock,
                limits,
                limiter: RateLimiter::default(),
                refusals: RefusalCounter::default(),
                metrics: Arc::new(Metrics::default()),
                evidence_counts: EvidenceCounts::default(),
                held_reads: Arc::new(Semaphore::new(MAX_HELD_READS)),
            }),
            trust: None,
            engine: None,
            evidence: None,
            request_timeout: REQUEST_TIMEOUT,
            trusted_proxies: Arc::from([]),
        }
    }

    /// The same state, verifying plugins and approvals with the trust policy of `config`
    /// (`[[trust.signers]]`, `[[people]]`), whose key files are read now, relative to the
    /// relo home `home`; once the store holds people (imported by `relo serve`), theirs
    /// count instead of `[[people]]`. Without it the plugin routes that verify answer 409
    /// `no-trust-policy`. A changed `relo.toml` takes effect when the server restarts.
    pub fn with_trust(
        mut self,
        config: OperatorConfig,
        home: &Path,
    ) -> Result<AppState, TrustError> {
        let policy = TrustPolicy::load(&config, home)?;
        let people = People::new(self.inner.store.clone(), policy);
        self.trust = Some(Arc::new(Trust { config, people }));
        Ok(self)
    }

    /// The same state, starting runs and carrying them on with `runner` (whose `people`
    /// verify run requests and gate approvals), counting what `progress` reports (the
    /// receiving end of the runner's progress channel, if it has one). Without it the run
    /// routes answer 409 `no-runner`. Call within a Tokio runtime.
    pub fn with_runner(
        mut self,
        runner: Arc<Runner>,
        progress: Option<UnboundedReceiver<Progress>>,
    ) -> AppState {
        if let Some(progress) = progress {
            count_progress(progress, Arc::clone(&self.inner.metrics));
        }
        self.engine = Some(Arc::new(RunEngine::new(runner)));
        self
    }

    /// The same state, exporting and verifying evidence with `service` (the relo home's
    /// keys). Without it those routes answer 409 `no-evidence-key`.
    pub fn with_evidence_service(mut self, service: Arc<dyn EvidenceService>) -> AppState {
        self.evidence = Some(service);
        self
    }

    /// The same state, answering a request that takes longer than `limit` with 503
    /// `request-timeout` (the default is [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, limit: Duration) -> AppState {
        self.request_timeout = limit;
        self
    }

    /// The same state, taking a request's client address from its `X-Forwarded-For`
    /// header when the connection comes from one of `proxies` (the right-most address
    /// there that is not one of them); from any other peer the header is ignored. The
    /// default trusts no proxy.
    pub fn with_trusted_proxies(mut self, proxies: Vec<Cidr>) -> AppState {
        self.trusted_proxies = proxies.into();
        self
    }

    /// Reads the evidence-derived counts of `/metrics` from the store now. A scrape has
    /// them read again in the background once they are
    /// [`EVIDENCE_COUNTS_EVERY`](crate::EVIDENCE_COUNTS_EVERY) old (by the server's
    /// clock); until the first read they are absent.
    pub async fn refresh_evidence_counts(&self) -> Result<(), StoreError> {
        let now = self.clock().now();
        let denials = self.store().evidence_kind_counts(DENIAL_KINDS).await?;
        self.inner.evidence_counts.set(denials, now);
        Ok(())
    }

    /// Starts the sweep that, every `every`, takes up the runs nobody drives (their
    /// runner's instance died and its lease ran out) and drives them here. `None`
    /// without a runner. Abort the task to stop it.
    pub fn spawn_sweeper(&self, every: Duration) -> Option<JoinHandle<()>> {
        let engine = self.engine.as_ref()?;
        Some(engine.spawn_sweeper(every, Arc::clone(&self.inner.metrics)))
    }

    /// State with a fresh random secret and the system clock: one instance, whose access
    /// tokens stop working when it restarts (refresh tokens, in the store, go on).
    pub fn with_random_secret(store: Store) -> Result<AppState, SecretError> {
        Ok(AppState::new(
            store,
            &JwtSecret::generate()?,
            Arc::new(SystemClock),
        ))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The clock every expiry is checked against.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// How long a request may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The rate limits in force.
    pub fn limits(&self) -> RateLimits {
        self.inner.limits
    }

    /// Whether plugins and approvals can be verified ([`AppState::with_trust`]).
    pub fn has_trust(&self) -> bool {
        self.trust.is_some()
    }

    /// The trust policy, or 409 `no-trust-policy` when the server has none.
    pub(crate) fn trust(&self) -> Result<&Trust, ApiError> {
        self.trust.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no-trust-policy",
                "this server was started without a trust policy (relo.toml with \
                 [[trust.signers]] and [[people]]), so it cannot verify plugins, approvals or \
                 run requests",
            )
        })
    }

    /// A permit to hold a read for a change, unless [`MAX_HELD_READS`] are held already.
    pub(crate) fn hold_read(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.inner.held_reads).try_acquire_owned().ok()
    }

    pub(crate) fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access_tokens
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub(crate) fn refusals(&self) -> &RefusalCounter {
        &self.inner.refusals
    }

    pub(crate) fn evidence_counts(&self) -> &EvidenceCounts {
        &self.inner.evidence_counts
    }

    pub(crate) fn trusted_proxies(&self) -> &[Cidr] {
        &self.trusted_proxies
    }

    pub(crate) fn evidence_service(&self) -> Option<&Arc<dyn EvidenceService>> {
        self.evidence.as_ref()
    }

    pub(crate) fn engine(&self) -> Option<&Arc<RunEngine>> {
        self.engine.as_ref()
    }
}
