//! `relo:plugin/log`: log lines charged to the step's log budget. A line also goes to the
//! host's own tracing at debug level, redacted and bounded first.

use crate::bindings::relo::plugin::log::{Host, Level};
use crate::state::StepState;

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

impl Host for StepState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = level_name(level);
        // Nothing of the step leaves its capture unredacted, whatever the log level.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let shown = self.guest_text(message.clone());
            tracing::debug!(step_id = %self.step_id, level, "{shown}");
        }
        self.log
            .step_line(level, message)
            .map_err(wasmtime::Error::new)
    }
}
