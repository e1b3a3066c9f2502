//! What a stand-in records of the requests it answered.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::server::lock;

/// One request a stand-in answered. Header values, the token included, are never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `forge` or `target`.
    pub service: &'static str,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Whether the request had an `Authorization` header (its value is not kept).
    pub authorization: bool,
    /// The status answered.
    pub status: u16,
}

impl fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} authorization={} -> {}",
            self.service,
            self.method,
            self.path,
            if self.authorization { "yes" } else { "no" },
            self.status
        )
    }
}

/// The requests one stand-in answered, in order; optionally echoed to stderr.
#[derive(Clone, Default)]
pub(crate) struct Journal {
    entries: Arc<Mutex<Vec<RecordedRequest>>>,
    echo: Arc<AtomicBool>,
}

impl Journal {
    pub(crate) fn record(&self, request: RecordedRequest) {
        if self.echo.load(Ordering::Relaxed) {
            eprintln!("{}: {request}", crate::LABEL);
        }
        lock(&self.entries).push(request);
    }

    pub(crate) fn entries(&self) -> Vec<RecordedRequest> {
        lock(&self.entries).clone()
    }

    pub(crate) fn echo_to_stderr(&self) {
        self.echo.store(true, Ordering::Relaxed);
    }
}
