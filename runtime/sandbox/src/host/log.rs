//! `relo:plugin/log`: log lines charged to the step's log budget.

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
        tracing::debug!(step_id = %self.step_id, level, "{message}");
        self.log
            .step_line(level, message)
            .map_err(wasmtime::Error::new)
    }
}
