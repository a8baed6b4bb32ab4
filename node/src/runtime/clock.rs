//! The node's clocks, the one place that reads time (`node/tests/tidy.rs` fails the build on a
//! read elsewhere in `node/src`): monotonic [`now_ns`] (timers, throttles), wall [`unix_ns`]
//! (timestamps on replies and log entries), and the raw TSC [`tsc`] (stage stamps). A duty
//! cycle reads `now_ns` once and passes it down.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// `CLOCK_MONOTONIC` nanoseconds (the host's, shared by every process on it): for lines
/// another process compares with its own stamps (the `TAKEOVER` line `failover-bench` reads).
pub fn host_monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The raw TSC (`quanta`), the clock of every stage stamp.
#[inline]
pub fn tsc() -> u64 {
    tsc_clock().raw()
}

/// The process's `quanta` clock (calibrated once).
pub fn tsc_clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Raw-counter ticks per second as the process's `quanta` clock scales them (its own
/// calibration against the monotonic clock, made once with the clock): no wait. The node's
/// stats file records it at start; measuring it there (`calibrate_tsc_hz` over 20 ms) held
/// the cores' start back by 20 ms.
pub fn tsc_hz() -> f64 {
    const TICKS: u64 = 1 << 40;
    let ns = tsc_clock().delta_as_nanos(0, TICKS);
    if ns == 0 {
        return 1e9;
    }
    TICKS as f64 * 1e9 / ns as f64
}

/// Measures raw-counter ticks per second against `Instant` over `over`.
pub fn calibrate_tsc_hz(over: Duration) -> f64 {
    let c = tsc_clock();
    let (t0, r0) = (Instant::now(), c.raw());
    std::thread::sleep(over);
    let (t1, r1) = (Instant::now(), c.raw());
    (r1.wrapping_sub(r0)) as f64 / (t1 - t0).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_s_rate_agrees_with_a_measured_one() {
        let scaled = tsc_hz();
        let measured = calibrate_tsc_hz(Duration::from_millis(50));
        let err = (scaled - measured).abs() / measured;
        assert!(err < 0.02, "scaled {scaled} Hz, measured {measured} Hz");
    }
}
