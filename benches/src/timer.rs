//! A cheap per-operation timer: the TSC on x86_64 (calibrated against [`Instant`]), `Instant`
//! elsewhere. Ticks are converted to nanoseconds only when reporting.

use std::time::{Duration, Instant};

/// Reads ticks and converts them to nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timer {
    /// Nanoseconds per tick.
    ns_per_tick: f64,
    /// What an empty measurement (two reads back to back) costs, in nanoseconds (median).
    overhead_ns: f64,
    source: &'static str,
    /// Where `Instant`-based ticks count from (off x86_64).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    origin: Instant,
}

impl Timer {
    /// Calibrates the tick rate over `calibration` (the thread sleeps meanwhile) and measures
    /// the overhead of one measurement.
    pub fn calibrate(calibration: Duration) -> Timer {
        let origin = Instant::now();
        let mut timer = Timer {
            ns_per_tick: 1.0,
            overhead_ns: 0.0,
            source: if cfg!(target_arch = "x86_64") {
                "rdtsc"
            } else {
                "Instant"
            },
            origin,
        };
        if cfg!(target_arch = "x86_64") {
            let t0 = Instant::now();
            let c0 = timer.now();
            std::thread::sleep(calibration);
            let c1 = timer.now();
            let elapsed = t0.elapsed();
            timer.ns_per_tick = elapsed.as_nanos() as f64 / (c1.wrapping_sub(c0)).max(1) as f64;
        }
        let mut samples: Vec<u64> = (0..100_000)
            .map(|_| {
                let a = timer.now();
                let b = timer.now();
                b.wrapping_sub(a)
            })
            .collect();
        samples.sort_unstable();
        timer.overhead_ns = timer.to_ns(samples[samples.len() / 2]);
        timer
    }

    /// The current tick count.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // `lfence` keeps the read from being hoisted above earlier instructions.
            // SAFETY: `lfence` and `rdtsc` exist on every x86_64 CPU.
            unsafe {
                std::arch::x86_64::_mm_lfence();
                std::arch::x86_64::_rdtsc()
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.origin.elapsed().as_nanos() as u64
        }
    }

    pub fn to_ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ns
    }

    pub fn source(&self) -> &'static str {
        self.source
    }
}
