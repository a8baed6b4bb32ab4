//! Per-session rate throttle: a token bucket in integer nanotokens. Pure: the caller passes the
//! time.

/// One token is `NANO` nanotokens; refilling `rate` tokens per second adds `rate` nanotokens per
/// nanosecond.
const NANO: u64 = 1_000_000_000;

#[derive(Clone, Debug)]
pub struct Throttle {
    rate_per_sec: u64,
    capacity_nano: u64,
    level_nano: u64,
    last_ns: u64,
}

impl Throttle {
    /// `rate_per_sec` sustained, `burst` messages at once; starts full.
    pub fn new(rate_per_sec: u32, burst: u32, now_ns: u64) -> Throttle {
        let capacity_nano = u64::from(burst.max(1)) * NANO;
        Throttle {
            rate_per_sec: u64::from(rate_per_sec),
            capacity_nano,
            level_nano: capacity_nano,
            last_ns: now_ns,
        }
    }

    /// Takes one token if there is one. `false`: over the limit, reject the message.
    #[inline]
    pub fn try_take(&mut self, now_ns: u64) -> bool {
        if now_ns > self.last_ns {
            // Cap the elapsed time at one second so the product cannot overflow.
            let elapsed = (now_ns - self.last_ns).min(NANO);
            self.level_nano =
                (self.level_nano + elapsed * self.rate_per_sec).min(self.capacity_nano);
            self.last_ns = now_ns;
        }
        if self.level_nano >= NANO {
            self.level_nano -= NANO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut t = Throttle::new(10, 3, 0);
        assert!(t.try_take(0));
        assert!(t.try_take(0));
        assert!(t.try_take(0));
        assert!(!t.try_take(0));
        // 10/s: one token per 100 ms.
        assert!(!t.try_take(50_000_000));
        assert!(t.try_take(100_000_000));
        assert!(!t.try_take(100_000_000));
        // A long pause refills only up to the burst.
        let later = 100 * NANO;
        for _ in 0..3 {
            assert!(t.try_take(later));
        }
        assert!(!t.try_take(later));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut t = Throttle::new(1, 1, 1_000);
        assert!(t.try_take(1_000));
        assert!(!t.try_take(10));
    }
}
