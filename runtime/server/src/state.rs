//! What every request handler shares.

use std::sync::Arc;

use relo_store::Store;

use crate::clock::{Clock, SystemClock};
use crate::tokens::{AccessTokens, JwtSecret, SecretError};

/// The server's shared state: the store, the access token key, and the clock. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    access_tokens: AccessTokens,
    clock: Arc<dyn Clock>,
}

impl AppState {
    /// State signing access tokens with `secret` and reading the time from `clock`.
    pub fn new(store: Store, secret: &JwtSecret, clock: Arc<dyn Clock>) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                store,
                access_tokens: AccessTokens::new(secret),
                clock,
            }),
        }
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

    pub(crate) fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access_tokens
    }
}
