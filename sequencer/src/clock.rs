//! The clock seam. Time enters the sequencer here only: record timestamps, heartbeats, timeouts
//! and leases all read [`Clock::now_ns`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, never going backwards.
pub trait Clock {
    fn now_ns(&self) -> u64;
}

/// The real clock: the Unix time at construction plus a monotonic clock since (so it never
/// jumps, and stamps are Unix nanoseconds).
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    base_unix_ns: u64,
    base: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            base_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            base: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.base_unix_ns + self.base.elapsed().as_nanos() as u64
    }
}

/// A clock tests and the simulator move by hand (clones share the time).
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(start_ns: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start_ns)))
    }
    pub fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
