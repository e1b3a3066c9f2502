//! The step's log: log lines, stdout and stderr, captured under one byte budget.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use relo_policy::LimitKind;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::error::LimitExceeded;

/// Who wrote a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogSource {
    /// The step, through the `log` interface.
    Step,
    /// The host, explaining a decision it made (a denial, a limit).
    Host,
}

/// One line of a step's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Who wrote it.
    pub source: LogSource,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text.
    pub message: String,
}

/// At most this many host notes are kept, so a step cannot make the host log unboundedly.
const MAX_HOST_NOTES: usize = 256;
/// The most bytes one `check-write` permits.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct StepLogInner {
    budget: u64,
    used: u64,
    lines: Vec<LogLine>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    host_notes: usize,
}

/// What a step wrote, shared by the log host, the stdio streams and the egress gate.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepLog(Arc<Mutex<StepLogInner>>);

/// Which standard stream a [`CapturedStream`] writes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stdio {
    Stdout,
    Stderr,
}

impl StepLog {
    /// A log that accepts `budget` bytes of guest output in total.
    pub(crate) fn new(budget: u64) -> Self {
        Self(Arc::new(Mutex::new(StepLogInner {
            budget,
            ..StepLogInner::default()
        })))
    }

    fn lock(&self) -> MutexGuard<'_, StepLogInner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn charge(inner: &mut StepLogInner, bytes: usize) -> Result<(), LimitExceeded> {
        let requested = inner.used.saturating_add(bytes as u64);
        if requested > inner.budget {
            return Err(LimitExceeded {
                kind: LimitKind::Log,
                allowed: inner.budget,
                requested,
            });
        }
        inner.used = requested;
        Ok(())
    }

    /// Appends a line the step logged, or refuses it past the budget.
    pub(crate) fn step_line(&self, level: &str, message: String) -> Result<(), LimitExceeded> {
        let mut inner = self.lock();
        Self::charge(&mut inner, message.len())?;
        inner.lines.push(LogLine {
            source: LogSource::Step,
            level: level.to_owned(),
            message,
        });
        Ok(())
    }

    /// Appends a line the host wrote about a decision; not charged to the step.
    pub(crate) fn host_note(&self, level: &str, message: String) {
        let mut inner = self.lock();
        if inner.host_notes < MAX_HOST_NOTES {
            inner.host_notes += 1;
            inner.lines.push(LogLine {
                source: LogSource::Host,
                level: level.to_owned(),
                message,
            });
        }
    }

    fn write_stdio(&self, stream: Stdio, bytes: &[u8]) -> Result<(), LimitExceeded> {
        let mut inner = self.lock();
        Self::charge(&mut inner, bytes.len())?;
        match stream {
            Stdio::Stdout => inner.stdout.extend_from_slice(bytes),
            Stdio::Stderr => inner.stderr.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// Bytes of guest output charged so far.
    pub(crate) fn used(&self) -> u64 {
        self.lock().used
    }

    /// The last `max` bytes of stderr, as text.
    pub(crate) fn stderr_tail(&self, max: usize) -> String {
        let inner = self.lock();
        let start = inner.stderr.len().saturating_sub(max);
        String::from_utf8_lossy(&inner.stderr[start..])
            .trim()
            .to_owned()
    }

    /// Takes everything captured: lines, stdout, stderr.
    pub(crate) fn take(&self) -> (Vec<LogLine>, Vec<u8>, Vec<u8>) {
        let mut inner = self.lock();
        (
            std::mem::take(&mut inner.lines),
            std::mem::take(&mut inner.stdout),
            std::mem::take(&mut inner.stderr),
        )
    }

    /// A stdout or stderr stream for the guest that writes into this log.
    pub(crate) fn stream(&self, stream: Stdio) -> CapturedStream {
        CapturedStream {
            log: self.clone(),
            stream,
        }
    }
}

/// A guest's stdout or stderr; a write past the budget traps with the `log` limit.
#[derive(Debug, Clone)]
pub(crate) struct CapturedStream {
    log: StepLog,
    stream: Stdio,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log
            .write_stdio(self.stream, &bytes)
            .map_err(|limit| StreamError::Trap(wasmtime::Error::new(limit)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.log
                .write_stdio(self.stream, buf)
                .map(|()| buf.len())
                .map_err(io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_by_lines_and_streams() {
        let log = StepLog::new(10);
        log.step_line("info", "12345".into())
            .expect("within budget");
        log.write_stdio(Stdio::Stdout, b"1234")
            .expect("within budget");
        let limit = log.write_stdio(Stdio::Stderr, b"12").unwrap_err();
        assert_eq!(limit.kind, LimitKind::Log);
        assert_eq!((limit.allowed, limit.requested), (10, 11));
        assert_eq!(log.used(), 9);
    }

    #[test]
    fn host_notes_are_capped_and_free() {
        let log = StepLog::new(0);
        for n in 0..(MAX_HOST_NOTES + 10) {
            log.host_note("warn", format!("note {n}"));
        }
        let (lines, _, _) = log.take();
        assert_eq!(lines.len(), MAX_HOST_NOTES);
        assert_eq!(log.used(), 0);
    }
}
