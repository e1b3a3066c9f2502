//! Log lines, captured by the host and attached to the step.
//!
//! Use the macros at the crate root: [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn), [`error!`](crate::error), or
//! [`log!`](crate::log!) with a [`Level`]. Log volume is capped per step: a step that
//! logs past the cap is stopped with the `log` limit. Output written with `println!` and
//! `eprintln!` is captured too, and counts against the same cap.
//!
//! ```
//! use relo_sdk::{Level, info, log};
//!
//! # fn example(tag: &str) {
//! info!("tagging {tag}");
//! log!(Level::Debug, "{} bytes", 42);
//! # }
//! ```

use crate::__private::bindings::relo::plugin::log as wit;

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing output.
    Trace,
    /// Information useful when debugging the step.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the step could handle.
    Warn,
    /// Something that made the step fail.
    Error,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Writes one log line at `level`. The macros call this; prefer them.
pub fn write(level: Level, message: &str) {
    wit::log(level.into(), message);
}

/// Writes a log line at the given [`Level`], formatted like [`format!`].
///
/// ```
/// # fn example() {
/// relo_sdk::log!(relo_sdk::Level::Warn, "retrying in {}s", 5);
/// # }
/// ```
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+))
    };
}

/// Writes a log line at [`Level::Trace`](crate::Level::Trace), formatted like [`format!`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log!($crate::Level::Trace, $($arg)+)
    };
}

/// Writes a log line at [`Level::Debug`](crate::Level::Debug), formatted like [`format!`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log!($crate::Level::Debug, $($arg)+)
    };
}

/// Writes a log line at [`Level::Info`](crate::Level::Info), formatted like [`format!`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log!($crate::Level::Info, $($arg)+)
    };
}

/// Writes a log line at [`Level::Warn`](crate::Level::Warn), formatted like [`format!`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log!($crate::Level::Warn, $($arg)+)
    };
}

/// Writes a log line at [`Level::Error`](crate::Level::Error), formatted like [`format!`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log!($crate::Level::Error, $($arg)+)
    };
}
