//! What every request handler shares.

use std::path::Path;
use std::sync::Arc;

use relo_manifest::OperatorConfig;
use relo_store::Store;
use relo_trust::{TrustError, TrustPolicy};

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::tokens::{AccessTokens, JwtSecret, SecretError};

/// The server's shared state: the store, the access token key, the clock, the rate
/// limits and their buckets, the metrics, and (for the plugin routes) the operator's
/// trust policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
    trust: Option<Arc<Trust>>,
}

/// The operator config and the trust policy loaded from it: what the plugin routes verify
/// uploads and approvals against.
#[derive(Debug)]
pub(crate) struct Trust {
    pub(crate) config: OperatorConfig,
    pub(crate) policy: TrustPolicy,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    access_tokens: AccessTokens,
    clock: Arc<dyn Clock>,
    limits: RateLimits,
    limiter: RateLimiter,
    metrics: Metrics,
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
                metrics: Metrics::default(),
            }),
            trust: None,
        }
    }

    /// The same state, verifying plugins and approvals with the trust policy of `config`
    /// (`[[trust.signers]]`, `[[people]]`), whose key files are read now, relative to the
    /// relo home `home`. Without it the plugin routes that verify answer 409
    /// `no-trust-policy`. A changed `relo.toml` takes effect when the server restarts.
    pub fn with_trust(
        mut self,
        config: OperatorConfig,
        home: &Path,
    ) -> Result<AppState, TrustError> {
        let policy = TrustPolicy::load(&config, home)?;
        self.trust = Some(Arc::new(Trust { config, policy }));
        Ok(self)
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

    /// The rate limits in force.
    pub fn limits(&self) -> RateLimits {
        self.inner.limits
    }

    /// Whether plugins and approvals can be verified ([`AppState::with_trust`]).
    pub fn has_trust(&self) -> bool {
        self.trust.is_some()
    }

    pub(crate) fn trust(&self) -> Option<&Trust> {
        self.trust.as_deref()
    }

    pub(crate) fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access_tokens
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
