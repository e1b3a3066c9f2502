//! Linear memory and table limits of one store, and its memory peak.

use relo_policy::LimitKind;
use wasmtime::ResourceLimiter;

use crate::error::LimitExceeded;

/// Most core instances, memories and tables one step may create. A Rust component
/// needs a handful of each; these bounds stop a component built to exhaust the pool.
const MAX_INSTANCES: usize = 32;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;

/// Enforces a step's memory and table limits across all its memories and tables.
///
/// A growth past the limit traps at once with the `memory` limit, rather than
/// returning -1 to the guest, so every step that exceeds it ends the same named way.
#[derive(Debug)]
pub(crate) struct StepLimiter {
    memory_limit: u64,
    table_limit: u64,
    memory_total: u64,
    memory_peak: u64,
    table_total: u64,
}

impl StepLimiter {
    pub(crate) fn new(memory_limit: u64, table_limit: u64) -> Self {
        Self {
            memory_limit,
            table_limit,
            memory_total: 0,
            memory_peak: 0,
            table_total: 0,
        }
    }

    /// The most linear memory the step held at once, in bytes.
    pub(crate) fn memory_peak(&self) -> u64 {
        self.memory_peak
    }
}

fn grow(total: &mut u64, current: usize, desired: usize, limit: u64) -> wasmtime::Result<u64> {
    let added = (desired.saturating_sub(current)) as u64;
    let requested = total.saturating_add(added);
    if requested > limit {
        return Err(wasmtime::Error::new(LimitExceeded {
            kind: LimitKind::Memory,
            allowed: limit,
            requested,
        }));
    }
    *total = requested;
    Ok(requested)
}

impl ResourceLimiter for StepLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = grow(&mut self.memory_total, current, desired, self.memory_limit)?;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        grow(&mut self.table_total, current, desired, self.table_limit)?;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_is_a_memory_limit() {
        let mut limiter = StepLimiter::new(100, 10);
        assert!(limiter.memory_growing(0, 60, None).expect("fits"));
        assert!(
            limiter
                .memory_growing(0, 40, None)
                .expect("fits, second memory")
        );
        let err = limiter.memory_growing(40, 41, None).unwrap_err();
        let limit = err.downcast_ref::<LimitExceeded>().expect("a limit");
        assert_eq!(
            (limit.kind, limit.allowed, limit.requested),
            (LimitKind::Memory, 100, 101)
        );
        assert_eq!(limiter.memory_peak(), 100);
        assert!(limiter.table_growing(0, 10, None).expect("fits"));
        assert!(limiter.table_growing(10, 11, None).is_err());
    }
}
