//! Token buckets on the server's clock (THREATS.md T10): per client address and per
//! login name for logins, per principal (a user's session or an API token) for
//! everything authenticated.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// A bucket's size and refill: `burst` requests, refilled evenly over `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed at once (and per `per`).
    pub burst: u32,
    /// The time in which a whole bucket refills.
    pub per: Duration,
}

impl Limit {
    /// `burst` requests per minute.
    pub const fn per_minute(burst: u32) -> Limit {
        Limit {
            burst,
            per: Duration::from_secs(60),
        }
    }
}

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Login attempts per client address (default 5 a minute).
    pub login_per_client: Limit,
    /// Login attempts per login name, from anywhere (default 5 a minute).
    pub login_per_name: Limit,
    /// Authenticated requests per principal (default 120 a minute).
    pub per_principal: Limit,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            login_per_client: Limit::per_minute(5),
            login_per_name: Limit::per_minute(5),
            per_principal: Limit::per_minute(120),
        }
    }
}

/// Buckets kept before idle full ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
    refusing: bool,
}

/// A refusal: how long until one request fits, and whether it is the first refusal
/// since the bucket last let a request through (only those are written to the audit
/// chain, so a flood does not become a flood of writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) retry_after_secs: u64,
    pub(crate) first: bool,
}

/// Named token buckets.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one request from the bucket `key` under `limit` at `now`.
    pub(crate) fn take(&self, key: &str, limit: Limit, now: SystemTime) -> Result<(), Limited> {
        let burst = f64::from(limit.burst.max(1));
        let per = limit.per.as_secs_f64().max(f64::MIN_POSITIVE);
        let rate = burst / per;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                let idle = now.duration_since(b.at).unwrap_or_default().as_secs_f64();
                b.tokens + idle * rate < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
            refusing: false,
        });
        // A clock set backwards refills nothing.
        let elapsed = now.duration_since(bucket.at).unwrap_or_default();
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * rate).min(burst);
        bucket.at = now.max(bucket.at);
        // A hair of slack so that float rounding never withholds a whole refill.
        if bucket.tokens >= 1.0 - 1e-9 {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            bucket.refusing = false;
            return Ok(());
        }
        let first = !bucket.refusing;
        bucket.refusing = true;
        let wait = ((1.0 - bucket.tokens) / rate - 1e-9).ceil();
        Err(Limited {
            retry_after_secs: (wait as u64).max(1),
            first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_refills_and_names_the_wait() {
        let limiter = RateLimiter::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let limit = Limit::per_minute(2);
        assert!(limiter.take("a", limit, start).is_ok());
        assert!(limiter.take("a", limit, start).is_ok());
        assert_eq!(
            limiter.take("a", limit, start),
            Err(Limited {
                retry_after_secs: 30,
                first: true
            })
        );
        assert_eq!(
            limiter.take("a", limit, start + Duration::from_secs(10)),
            Err(Limited {
                retry_after_secs: 20,
                first: false
            })
        );
        assert!(
            limiter.take("b", limit, start).is_ok(),
            "buckets are separate"
        );
        assert!(
            limiter
                .take("a", limit, start + Duration::from_secs(30))
                .is_ok()
        );
        assert!(
            limiter
                .take("a", limit, start + Duration::from_secs(30))
                .unwrap_err()
                .first
        );
    }
}
