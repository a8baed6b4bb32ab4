//! How a core waits when a duty cycle found nothing to do.

use crate::config::IdleMode;

/// How a core waits when a cycle found nothing to do: a pure policy (spin, or back off to
/// sleeps), which `CoreRuntime::run` carries out.
#[derive(Debug)]
pub struct Idler {
    mode: IdleMode,
    empty_cycles: u32,
    sleep_us: u64,
    max_us: u64,
}

/// Empty cycles before `park` starts sleeping. It was 64: under a steady load a core finds
/// work every few cycles, so it never slept and spun its CPU (a primary's sequencing core at
/// 100 k orders/s in `make bench`: 54% of a CPU, 52 sleeps/s). With 4 it sleeps in `ppoll`,
/// which socket data and doorbells end at once: 37-44% of a CPU (`scripts/thread-cpu.py`),
/// sequenced -> durable p50 730-760 -> 510-540 µs on the two-vCPU VM; `e2e-bench` unchanged
/// (ARCHITECTURE.md, "The latency lab").
const PARK_AFTER_EMPTY_CYCLES: u32 = 4;
const PARK_MIN_US: u64 = 10;

impl Idler {
    pub fn new(mode: IdleMode, park_max_us: u64) -> Idler {
        Idler {
            mode,
            empty_cycles: 0,
            sleep_us: PARK_MIN_US,
            max_us: park_max_us.max(PARK_MIN_US),
        }
    }

    /// Whether this core sleeps when idle (`park`), rather than spinning.
    pub fn parks(&self) -> bool {
        self.mode == IdleMode::Park
    }

    /// After a cycle that did `work`: `None` to go on (after yielding to glommio if it wants),
    /// `Some(us)` to sleep up to `us` microseconds.
    #[inline]
    pub fn after_cycle(&mut self, work: usize) -> Option<u64> {
        if work > 0 {
            self.empty_cycles = 0;
            self.sleep_us = PARK_MIN_US;
            return None;
        }
        match self.mode {
            IdleMode::Spin => None,
            IdleMode::Park => {
                self.empty_cycles = self.empty_cycles.saturating_add(1);
                if self.empty_cycles < PARK_AFTER_EMPTY_CYCLES {
                    return None;
                }
                let us = self.sleep_us;
                self.sleep_us = (self.sleep_us * 2).min(self.max_us);
                Some(us)
            }
        }
    }
}

/// Asks the kernel to end this thread's timed sleeps on time: a normal thread's `ppoll`
/// timeout may run up to 50 µs late (the default timer slack, which lets the kernel coalesce
/// wake-ups); a parked core's timeouts pace its heartbeats and its checks of the log writer's
/// progress, so it asks for 1 ns. Data on a socket or a doorbell wakes it at once either way.
/// Best effort: a kernel that refuses leaves the default.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and touches only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// This thread's timer slack (ns), as the kernel reports it.
pub fn timer_slack_ns() -> u64 {
    // SAFETY: PR_GET_TIMERSLACK takes no pointer and returns the slack (or -1).
    let r = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    r.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_backs_off_and_spin_never_sleeps() {
        let mut p = Idler::new(IdleMode::Park, 40);
        for _ in 0..PARK_AFTER_EMPTY_CYCLES - 1 {
            assert_eq!(p.after_cycle(0), None);
        }
        assert_eq!(p.after_cycle(0), Some(10));
        assert_eq!(p.after_cycle(0), Some(20));
        assert_eq!(p.after_cycle(0), Some(40));
        assert_eq!(p.after_cycle(0), Some(40));
        assert_eq!(p.after_cycle(3), None);
        assert_eq!(p.after_cycle(0), None, "work resets the backoff");
        let mut s = Idler::new(IdleMode::Spin, 40);
        assert!((0..1000).all(|_| s.after_cycle(0).is_none()));
        assert!(p.parks() && !s.parks());
    }

    #[test]
    fn a_core_thread_asks_for_a_tight_timer_slack() {
        std::thread::spawn(|| {
            assert!(
                timer_slack_ns() >= 1_000,
                "a new thread starts with the default slack"
            );
            tighten_timer_slack();
            assert_eq!(timer_slack_ns(), 1);
        })
        .join()
        .unwrap();
    }
}
