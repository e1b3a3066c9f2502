//! Refusals counted rather than written one by one (DESIGN §7, THREATS.md T2), so that
//! no client can turn requests into evidence writes.
//!
//! Refusals are tallied per (client, code), the client being its rate-limit key (an
//! IPv6 client's /64). The first refusal of a burst is recorded in full, as an
//! `auth.refused` entry; the ones after it are only counted. When the burst's window
//! ([`REFUSAL_WINDOW`]) closes, one `auth.refusals-counted` entry carries the count, and
//! the burst goes on with a new window; a window that counted nothing ends the burst. So
//! a client refused without pause for an hour under one code leaves one full entry and
//! at most one counted entry a minute. Deciding is here; the access guard writes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How long a burst's counted refusals wait to be written, at most one entry each.
pub(crate) const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Bursts tracked at once; beyond them, new clients' refusals are tallied together
/// under [`OTHER_CLIENTS`].
const MAX_BURSTS: usize = 10_000;

/// The client of the refusals tallied once [`MAX_BURSTS`] are tracked.
const OTHER_CLIENTS: &str = "other";

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    /// The first of a burst: record it in full.
    First,
    /// Counted into its burst's next `auth.refusals-counted` entry.
    Counted,
}

/// The refusals of one (client, code) counted since `since`, to be written as one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) client: String,
    pub(crate) code: &'static str,
    pub(crate) count: u64,
    pub(crate) since: SystemTime,
}

#[derive(Debug, Clone, Copy)]
struct Burst {
    since: SystemTime,
    closes_at: SystemTime,
    counted: u64,
}

#[derive(Debug, Default)]
struct Bursts {
    open: HashMap<(String, &'static str), Burst>,
    /// The earliest `closes_at` of `open`, so most requests look at one field.
    next_close: Option<SystemTime>,
}

/// The bursts of refusals under way.
#[derive(Debug, Default)]
pub(crate) struct RefusalCounter {
    bursts: Mutex<Bursts>,
}

impl RefusalCounter {
    /// Tallies one refusal with `code` from `client` at `now`.
    pub(crate) fn tally(&self, client: &str, code: &'static str, now: SystemTime) -> Tally {
        let mut bursts = self.bursts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = (client.to_owned(), code);
        if bursts.open.len() >= MAX_BURSTS && !bursts.open.contains_key(&key) {
            key.0 = OTHER_CLIENTS.to_owned();
        }
        if let Some(burst) = bursts.open.get_mut(&key) {
            burst.counted += 1;
            return Tally::Counted;
        }
        let closes_at = now + REFUSAL_WINDOW;
        bursts.open.insert(
            key,
            Burst {
                since: now,
                closes_at,
                counted: 0,
            },
        );
        bursts.next_close = Some(bursts.next_close.map_or(closes_at, |t| t.min(closes_at)));
        Tally::First
    }

    /// The counts of the windows closed by `now`, each to be written as one entry (oldest
    /// burst first, then by client and code); their bursts go on with a new window, and
    /// those that counted nothing end.
    pub(crate) fn close_due(&self, now: SystemTime) -> Vec<Summary> {
        let mut bursts = self.bursts.lock().unwrap_or_else(PoisonError::into_inner);
        if bursts.next_close.is_none_or(|t| t > now) {
            return Vec::new();
        }
        let mut due = Vec::new();
        bursts.open.retain(|(client, code), burst| {
            if burst.closes_at > now {
                return true;
            }
            if burst.counted == 0 {
                return false;
            }
            due.push(Summary {
                client: client.clone(),
                code,
                count: burst.counted,
                since: burst.since,
            });
            *burst = Burst {
                since: now,
                closes_at: now + REFUSAL_WINDOW,
                counted: 0,
            };
            true
        });
        bursts.next_close = bursts.open.values().map(|b| b.closes_at).min();
        due.sort_by(|a, b| (a.since, &a.client, a.code).cmp(&(b.since, &b.client, b.code)));
        due
    }

    /// Puts back the count of `summary`, which could not be written, into its burst's
    /// next window.
    pub(crate) fn restore(&self, summary: Summary, now: SystemTime) {
        let mut bursts = self.bursts.lock().unwrap_or_else(PoisonError::into_inner);
        let closes_at = now + REFUSAL_WINDOW;
        let burst = bursts
            .open
            .entry((summary.client, summary.code))
            .or_insert(Burst {
                since: summary.since,
                closes_at,
                counted: 0,
            });
        burst.since = burst.since.min(summary.since);
        burst.counted += summary.count;
        let closes_at = burst.closes_at;
        bursts.next_close = Some(bursts.next_close.map_or(closes_at, |t| t.min(closes_at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    #[test]
    fn a_burst_is_one_entry_then_one_count_a_window() {
        let counter = RefusalCounter::default();
        assert_eq!(counter.tally("a", "invalid-token", at(0)), Tally::First);
        for _ in 0..99 {
            assert_eq!(counter.tally("a", "invalid-token", at(1)), Tally::Counted);
        }
        // Another code and another client are bursts of their own.
        assert_eq!(counter.tally("a", "rate-limited", at(1)), Tally::First);
        assert_eq!(counter.tally("b", "invalid-token", at(1)), Tally::First);
        assert!(counter.close_due(at(59)).is_empty());
        assert_eq!(
            counter.close_due(at(60)),
            [Summary {
                client: "a".into(),
                code: "invalid-token",
                count: 99,
                since: at(0),
            }]
        );
        // The burst goes on: the next refusal is counted into the next window.
        assert_eq!(counter.tally("a", "invalid-token", at(70)), Tally::Counted);
        assert!(counter.close_due(at(119)).is_empty());
        let next = counter.close_due(at(120));
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].count, next[0].since), (1, at(60)));
        // A window that counted nothing ends the burst; the next refusal starts one.
        assert!(counter.close_due(at(180)).is_empty());
        assert_eq!(counter.tally("a", "invalid-token", at(181)), Tally::First);
    }

    #[test]
    fn a_count_that_was_not_written_goes_into_the_next_window() {
        let counter = RefusalCounter::default();
        counter.tally("a", "invalid-token", at(0));
        counter.tally("a", "invalid-token", at(0));
        let due = counter.close_due(at(60));
        counter.restore(due[0].clone(), at(60));
        counter.tally("a", "invalid-token", at(61));
        assert!(counter.close_due(at(100)).is_empty());
        let again = counter.close_due(at(120));
        assert_eq!((again[0].count, again[0].since), (2, at(0)));
    }

    #[test]
    fn beyond_the_tracked_bursts_new_clients_are_tallied_together() {
        let counter = RefusalCounter::default();
        for n in 0..MAX_BURSTS {
            assert_eq!(
                counter.tally(&n.to_string(), "invalid-token", at(0)),
                Tally::First
            );
        }
        assert_eq!(
            counter.tally("late-1", "invalid-token", at(1)),
            Tally::First
        );
        assert_eq!(
            counter.tally("late-2", "invalid-token", at(1)),
            Tally::Counted
        );
        assert!(counter.close_due(at(60)).is_empty());
        let due = counter.close_due(at(61));
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].client.as_str(), due[0].count), (OTHER_CLIENTS, 1));
    }
}
