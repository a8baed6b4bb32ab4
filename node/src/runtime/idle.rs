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

/// Empty cycles before `park` starts sleeping.
const PARK_AFTER_EMPTY_CYCLES: u32 = 64;
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
    }
}
