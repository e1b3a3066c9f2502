//! The egress circuit breaker: a destination that keeps failing is paused.
//!
//! A [`Sandbox`](crate::Sandbox) keeps one breaker per plugin and destination (the
//! plugin's digest; scheme, host, port), shared by every step of that plugin it runs, so
//! one hostile plugin cannot pause a destination for the others. `failures` consecutive
//! failed requests (a transport error or a 5xx answer, never a timeout the step chose
//! itself) open it; while it is open, a request that passed the grant is
//! refused without connecting. After `cooldown` one trial request goes through: its
//! success closes the breaker, its failure opens it for another cooldown. Outcomes of
//! requests that were sent before the breaker opened are ignored while it is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// When the circuit breaker of an egress destination opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed requests to one destination (transport errors, 5xx answers)
    /// that open its breaker; `0` turns the breaker off.
    pub failures: u32,
    /// How long an open breaker refuses requests before it lets one trial through.
    pub cooldown: Duration,
}

impl Default for CircuitBreakerConfig {
    /// 5 failures, 30 seconds.
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// Where requests go, and from which plugin, as far as a breaker is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Destination {
    /// The sha256 of the plugin whose steps make the requests.
    pub(crate) plugin: Arc<str>,
    pub(crate) scheme: String,
    /// Lowercase, without a trailing dot.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Destination {
    pub(crate) fn new(plugin: Arc<str>, scheme: &str, host: &str, port: u16) -> Self {
        Self {
            plugin,
            scheme: scheme.to_ascii_lowercase(),
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
        }
    }
}

/// How a request that went out ended, for its destination's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An answer below 500.
    Success,
    /// A transport error (name resolution, connect, TLS, reset, timeout) or a 5xx answer.
    Failure,
    /// Nothing about the destination: the host refused the address it resolved to, a
    /// secret could not be injected, or the step dropped the request.
    Neutral,
}

/// A breaker's change of state, to record as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Requests are refused for `cooldown`.
    Opened {
        consecutive_failures: u32,
        cooldown: Duration,
    },
    /// A trial succeeded: requests flow again.
    Closed,
}

/// Why a request was refused: its destination's breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CircuitOpen {
    pub(crate) consecutive_failures: u32,
    /// Until a trial request goes through; zero while one is under way.
    pub(crate) reopens_in: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        since: Instant,
    },
    /// Open past its cooldown: the next request is the trial.
    TrialDue,
    /// Open, with one trial request under way.
    Trial,
}

#[derive(Debug)]
struct Breaker {
    failures: u32,
    phase: Phase,
}

/// The breakers of the destinations that failed lately; a destination without failures
/// has no entry.
#[derive(Debug)]
pub(crate) struct CircuitBreakers {
    config: CircuitBreakerConfig,
    breakers: Mutex<HashMap<Destination, Breaker>>,
}

impl CircuitBreakers {
    pub(crate) fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            config,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Destination, Breaker>> {
        self.breakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a request to `destination` through, or refuses it while its breaker is open.
    /// `None`: the breaker is off, there is nothing to settle.
    pub(crate) fn admit(
        self: &Arc<Self>,
        destination: Destination,
        now: Instant,
    ) -> Result<Option<CircuitPermit>, CircuitOpen> {
        if self.config.failures == 0 {
            return Ok(None);
        }
        let trial = match self.lock().get_mut(&destination) {
            None => false,
            Some(breaker) => match breaker.phase {
                Phase::Closed => false,
                Phase::Open { since }
                    if now.saturating_duration_since(since) < self.config.cooldown =>
                {
                    return Err(CircuitOpen {
                        consecutive_failures: breaker.failures,
                        reopens_in: self.config.cooldown - now.saturating_duration_since(since),
                    });
                }
                Phase::Trial => {
                    return Err(CircuitOpen {
                        consecutive_failures: breaker.failures,
                        reopens_in: Duration::ZERO,
                    });
                }
                Phase::Open { .. } | Phase::TrialDue => {
                    breaker.phase = Phase::Trial;
                    true
                }
            },
        };
        Ok(Some(CircuitPermit {
            breakers: Arc::clone(self),
            destination,
            trial,
            settled: false,
        }))
    }

    fn settle(
        &self,
        destination: &Destination,
        trial: bool,
        verdict: Verdict,
        now: Instant,
    ) -> Option<Transition> {
        let mut breakers = self.lock();
        match verdict {
            Verdict::Success => match (breakers.get(destination)?.phase, trial) {
                (Phase::Closed, _) => {
                    breakers.remove(destination);
                    None
                }
                (Phase::Trial, true) => {
                    breakers.remove(destination);
                    Some(Transition::Closed)
                }
                _ => None,
            },
            Verdict::Failure => {
                let breaker = breakers.entry(destination.clone()).or_insert(Breaker {
                    failures: 0,
                    phase: Phase::Closed,
                });
                match (breaker.phase, trial) {
                    (Phase::Closed, _) | (Phase::Trial, true) => {
                        breaker.failures = breaker.failures.saturating_add(1);
                        if breaker.failures < self.config.failures {
                            return None;
                        }
                        breaker.phase = Phase::Open { since: now };
                        Some(Transition::Opened {
                            consecutive_failures: breaker.failures,
                            cooldown: self.config.cooldown,
                        })
                    }
                    _ => None,
                }
            }
            Verdict::Neutral => {
                // A trial that said nothing hands the trial to the next request.
                if let (true, Some(breaker)) = (trial, breakers.get_mut(destination))
                    && matches!(breaker.phase, Phase::Trial)
                {
                    breaker.phase = Phase::TrialDue;
                }
                None
            }
        }
    }
}

/// Leave to send one request to a destination, settled with how the request ended.
/// Dropped unsettled, it counts as [`Verdict::Neutral`].
#[derive(Debug)]
pub(crate) struct CircuitPermit {
    breakers: Arc<CircuitBreakers>,
    destination: Destination,
    trial: bool,
    settled: bool,
}

impl CircuitPermit {
    /// The destination, as its breaker names it.
    pub(crate) fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Counts the request's outcome; returns how the breaker changed, if it did.
    pub(crate) fn settle(mut self, verdict: Verdict, now: Instant) -> Option<Transition> {
        self.settled = true;
        self.breakers
            .settle(&self.destination, self.trial, verdict, now)
    }
}

impl Drop for CircuitPermit {
    fn drop(&mut self) {
        if !self.settled {
            self.breakers.settle(
                &self.destination,
                self.trial,
                Verdict::Neutral,
                Instant::now(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn breakers(failures: u32) -> Arc<CircuitBreakers> {
        Arc::new(CircuitBreakers::new(CircuitBreakerConfig {
            failures,
            cooldown: COOLDOWN,
        }))
    }

    fn plugin(digest: &str) -> Arc<str> {
        Arc::from(digest)
    }

    fn forge() -> Destination {
        Destination::new(plugin("a"), "https", "forge.example.com", 443)
    }

    /// Sends one request at `now` that ends with `verdict`; `Err` if it was refused.
    fn request(
        breakers: &Arc<CircuitBreakers>,
        verdict: Verdict,
        now: Instant,
    ) -> Result<Option<Transition>, CircuitOpen> {
        let permit = breakers.admit(forge(), now)?.expect("the breaker is on");
        Ok(permit.settle(verdict, now))
    }

    fn opened(consecutive_failures: u32) -> Option<Transition> {
        Some(Transition::Opened {
            consecutive_failures,
            cooldown: COOLDOWN,
        })
    }

    #[test]
    fn consecutive_failures_open_the_breaker_for_the_cooldown() {
        let breakers = breakers(3);
        let t0 = Instant::now();
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(None));
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(None));
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(3)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            request(&breakers, Verdict::Success, later),
            Err(CircuitOpen {
                consecutive_failures: 3,
                reopens_in: Duration::from_secs(20),
            })
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let breakers = breakers(2);
        let t0 = Instant::now();
        for verdict in [Verdict::Failure, Verdict::Success, Verdict::Failure] {
            assert_eq!(request(&breakers, verdict, t0), Ok(None));
        }
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(2)));
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_reset() {
        let breakers = breakers(2);
        let t0 = Instant::now();
        for verdict in [Verdict::Failure, Verdict::Neutral] {
            assert_eq!(request(&breakers, verdict, t0), Ok(None));
        }
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(2)));
    }

    #[test]
    fn one_trial_after_the_cooldown_closes_or_reopens_the_breaker() {
        let breakers = breakers(1);
        let t0 = Instant::now();
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(1)));

        let t1 = t0 + COOLDOWN;
        let trial = breakers.admit(forge(), t1).expect("a trial").expect("on");
        assert_eq!(
            breakers.admit(forge(), t1).map(|_| ()),
            Err(CircuitOpen {
                consecutive_failures: 1,
                reopens_in: Duration::ZERO,
            }),
            "only one trial at a time"
        );
        assert_eq!(trial.settle(Verdict::Failure, t1), opened(2));
        assert!(breakers.admit(forge(), t1 + COOLDOWN / 2).is_err());

        let t2 = t1 + COOLDOWN;
        assert_eq!(
            request(&breakers, Verdict::Success, t2),
            Ok(Some(Transition::Closed))
        );
        assert_eq!(request(&breakers, Verdict::Success, t2), Ok(None));
        assert!(
            breakers.lock().is_empty(),
            "a closed breaker keeps no entry"
        );
    }

    #[test]
    fn an_abandoned_trial_hands_the_trial_to_the_next_request() {
        let breakers = breakers(1);
        let t0 = Instant::now();
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(1)));
        let t1 = t0 + COOLDOWN;
        drop(breakers.admit(forge(), t1).expect("a trial"));
        assert_eq!(
            request(&breakers, Verdict::Success, t1),
            Ok(Some(Transition::Closed))
        );
    }

    #[test]
    fn outcomes_of_requests_sent_before_the_breaker_opened_are_ignored() {
        let breakers = breakers(1);
        let t0 = Instant::now();
        let early_success = breakers.admit(forge(), t0).expect("closed").expect("on");
        let early_failure = breakers.admit(forge(), t0).expect("closed").expect("on");
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(1)));
        assert_eq!(early_success.settle(Verdict::Success, t0), None);
        assert_eq!(early_failure.settle(Verdict::Failure, t0), None);
        assert!(breakers.admit(forge(), t0).is_err(), "still open");
    }

    #[test]
    fn breakers_are_per_plugin_and_destination_compared_without_case() {
        let breakers = breakers(1);
        let t0 = Instant::now();
        assert_eq!(request(&breakers, Verdict::Failure, t0), Ok(opened(1)));
        assert!(
            breakers
                .admit(
                    Destination::new(plugin("a"), "HTTPS", "Forge.Example.com.", 443),
                    t0
                )
                .is_err()
        );
        for other in [
            Destination::new(plugin("a"), "https", "forge.example.com", 8443),
            Destination::new(plugin("a"), "http", "forge.example.com", 443),
            Destination::new(plugin("a"), "https", "api.example.com", 443),
            Destination::new(plugin("b"), "https", "forge.example.com", 443),
        ] {
            assert!(breakers.admit(other, t0).is_ok());
        }
    }

    #[test]
    fn zero_failures_turns_the_breaker_off() {
        let breakers = breakers(0);
        for _ in 0..10 {
            assert_eq!(
                breakers.admit(forge(), Instant::now()).map(|p| p.is_none()),
                Ok(true)
            );
        }
    }
}
