//! The node's clocks. Time enters the request path here and nowhere else: the duty cycle reads
//! [`now_ns`] once per cycle (timers, throttles) and the sequencer reads [`unix_ns`] to stamp.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds since the process first asked (vDSO `clock_gettime`, ~20 ns).
#[inline]
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Wall-clock nanoseconds since the Unix epoch (timestamps on replies and log entries).
#[inline]
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
