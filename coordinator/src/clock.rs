//! Lease time: wall-clock milliseconds derived from tokio's clock.
//!
//! Lease deadlines are stored as unix milliseconds so they survive a coordinator restart.
//! Reading `SystemTime` directly would make lease expiry untestable with tokio's paused
//! time, so the coordinator reads the wall clock once at start and advances it with
//! [`tokio::time::Instant`], which `tokio::time::pause`/`advance` control.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall time in unix milliseconds, advancing with tokio's (pausable) clock.
#[derive(Debug, Clone, Copy)]
pub struct LeaseClock {
    base_wall_ms: i64,
    base: tokio::time::Instant,
}

impl LeaseClock {
    /// A clock starting at the current wall time.
    pub fn new() -> LeaseClock {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        LeaseClock { base_wall_ms: wall, base: tokio::time::Instant::now() }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        self.base_wall_ms + self.base.elapsed().as_millis() as i64
    }
}

impl Default for LeaseClock {
    fn default() -> Self {
        LeaseClock::new()
    }
}

/// Unix milliseconds from the system clock (for read-only tools that run no lease logic).
pub fn wall_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
