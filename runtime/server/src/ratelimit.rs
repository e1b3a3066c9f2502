//! Token buckets on the server's clock (THREATS.md T10): per client address for logins
//! and for every request that needs a token (before the token is looked at), failed
//! logins per login name, and per principal (a user's session or an API token) for
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
    /// Login attempts per client address, whatever their outcome (default 5 a minute).
    pub login_per_client: Limit,
    /// Failed logins per login name, from anywhere (default 5 a minute). Once they are
    /// spent, a client that failed on the name lately is refused until one refills;
    /// any other client still has its password checked.
    pub login_per_name: Limit,
    /// Requests to routes that need a token, per client address, taken before the token
    /// is looked at (default 600 a minute).
    pub per_client: Limit,
    /// Authenticated requests per principal (default 120 a minute).
    pub per_principal: Limit,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            login_per_client: Limit::per_minute(5),
            login_per_name: Limit::per_minute(5),
            per_client: Limit::per_minute(600),
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
}

/// A refusal: the whole seconds until one request fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Limited {
    pub(crate) retry_after_secs: u64,
}

/// Named token buckets.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A limit's rate in requests per second, and its burst, as floats.
fn rate_of(limit: Limit) -> (f64, f64) {
    let burst = f64::from(limit.burst.max(1));
    let per = limit.per.as_secs_f64().max(f64::MIN_POSITIVE);
    (burst / per, burst)
}

/// A hair of slack so that float rounding never withholds a whole refill.
const SLACK: f64 = 1e-9;

impl RateLimiter {
    /// Takes one request from the bucket `key` under `limit` at `now`.
    pub(crate) fn take(&self, key: &str, limit: Limit, now: SystemTime) -> Result<(), Limited> {
        self.with_bucket(key, limit, now, |bucket, rate| {
            if bucket.tokens >= 1.0 - SLACK {
                bucket.tokens = (bucket.tokens - 1.0).max(0.0);
                Ok(())
            } else {
                Err(wait(bucket, rate))
            }
        })
    }

    /// Whether the bucket `key` would let a request through at `now`, taking nothing.
    pub(crate) fn peek(&self, key: &str, limit: Limit, now: SystemTime) -> Result<(), Limited> {
        let (rate, burst) = rate_of(limit);
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let mut bucket = *bucket;
        refill(&mut bucket, rate, burst, now);
        if bucket.tokens >= 1.0 - SLACK {
            Ok(())
        } else {
            Err(wait(&bucket, rate))
        }
    }

    /// Takes one request from the bucket `key` if it holds one: an event counted against
    /// a limit after the fact (a failed login), which is never itself refused.
    pub(crate) fn charge(&self, key: &str, limit: Limit, now: SystemTime) {
        self.with_bucket(key, limit, now, |bucket, _| {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        });
    }

    /// Runs `f` on the bucket `key` (made full if new) refilled to `now`.
    fn with_bucket<T>(
        &self,
        key: &str,
        limit: Limit,
        now: SystemTime,
        f: impl FnOnce(&mut Bucket, f64) -> T,
    ) -> T {
        let (rate, burst) = rate_of(limit);
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
        });
        refill(bucket, rate, burst, now);
        f(bucket, rate)
    }
}

/// Adds what `rate` refilled between the bucket's last use and `now` (a clock set
/// backwards refills nothing).
fn refill(bucket: &mut Bucket, rate: f64, burst: f64, now: SystemTime) {
    let elapsed = now.duration_since(bucket.at).unwrap_or_default();
    bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * rate).min(burst);
    bucket.at = now.max(bucket.at);
}

/// How long until an empty `bucket` holds one request.
fn wait(bucket: &Bucket, rate: f64) -> Limited {
    let wait = ((1.0 - bucket.tokens) / rate - SLACK).ceil();
    Limited {
        retry_after_secs: (wait as u64).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(retry_after_secs: u64) -> Result<(), Limited> {
        Err(Limited { retry_after_secs })
    }

    #[test]
    fn a_bucket_empties_refills_and_names_the_wait() {
        let limiter = RateLimiter::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let limit = Limit::per_minute(2);
        assert!(limiter.take("a", limit, start).is_ok());
        assert!(limiter.take("a", limit, start).is_ok());
        assert_eq!(limiter.take("a", limit, start), limited(30));
        assert_eq!(
            limiter.take("a", limit, start + Duration::from_secs(10)),
            limited(20)
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
                .is_err()
        );
    }

    #[test]
    fn peeking_takes_nothing_and_charging_never_refuses() {
        let limiter = RateLimiter::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let limit = Limit::per_minute(2);
        assert!(limiter.peek("a", limit, start).is_ok());
        assert!(limiter.peek("a", limit, start).is_ok());
        limiter.charge("a", limit, start);
        assert!(limiter.peek("a", limit, start).is_ok());
        limiter.charge("a", limit, start);
        assert_eq!(limiter.peek("a", limit, start), limited(30));
        // Charging an empty bucket leaves it empty, no emptier.
        limiter.charge("a", limit, start);
        assert_eq!(
            limiter.peek("a", limit, start + Duration::from_secs(30)),
            Ok(())
        );
        assert_eq!(
            limiter.take("a", limit, start + Duration::from_secs(30)),
            Ok(())
        );
        assert_eq!(
            limiter.take("a", limit, start + Duration::from_secs(30)),
            limited(30)
        );
    }
}
