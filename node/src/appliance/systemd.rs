//! systemd's notify protocol for `tpx node` under `Type=notify` (the `sd-notify` crate; without
//! `$NOTIFY_SOCKET`, outside systemd, every call is a no-op):
//!
//! - `READY=1` once the node has recovered its log, replayed it into the shards and bound its
//!   port (a primary also waited for the witness's grant, bounded, in `Node::start_as`), so a unit
//!   ordered `After=` it finds a node that answers;
//! - `STATUS=` once a second: role, term, the acknowledged seq and the requests sequenced;
//! - `WATCHDOG=1` every half `WatchdogSec=`, only while every pinned core's duty-cycle counter
//!   has advanced since the last ping ([`Watchdog`]): a core wedged in a loop or a stuck syscall
//!   stops the pings, and systemd kills and restarts the process (the unit's restart policy), as
//!   it would a crashed one.

use std::sync::atomic::Ordering;

use sd_notify::NotifyState;

use crate::runtime::state::NodeState;

/// Decides when to ping the watchdog: pure (the caller passes the time and the counters).
#[derive(Debug)]
pub struct Watchdog {
    ping_every_ns: u64,
    last_ping_ns: u64,
    /// Each core's cycle counter at the last ping.
    last_cycles: Vec<u64>,
}

impl Watchdog {
    /// A watchdog that pings every `ping_every_ns` while the cores advance.
    pub fn new(ping_every_ns: u64, now_ns: u64) -> Watchdog {
        Watchdog {
            ping_every_ns,
            last_ping_ns: now_ns,
            last_cycles: Vec::new(),
        }
    }

    /// The watchdog systemd asked for (`WATCHDOG_USEC`, pinging at half of it), if any.
    pub fn from_env(now_ns: u64) -> Option<Watchdog> {
        let mut usec = 0u64;
        sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Watchdog::new(usec.saturating_mul(1_000) / 2, now_ns))
    }

    /// Whether to ping now: the interval has passed and every core ran at least one duty cycle
    /// since the last ping. A core that stopped keeps the answer `false` until it runs again.
    pub fn due(&mut self, now_ns: u64, cycles: impl Iterator<Item = u64>) -> bool {
        if now_ns.saturating_sub(self.last_ping_ns) < self.ping_every_ns {
            return false;
        }
        let now: Vec<u64> = cycles.collect();
        let advanced = self.last_cycles.len() != now.len()
            || now.iter().zip(&self.last_cycles).all(|(n, l)| n > l);
        if advanced {
            self.last_cycles = now;
            self.last_ping_ns = now_ns;
        }
        advanced
    }
}

/// The `STATUS=` line: what `systemctl status` shows.
pub fn status_line(state: &NodeState) -> String {
    let role = if !state.replay_done.load(Ordering::Acquire) {
        "replaying"
    } else if state.active.load(Ordering::Acquire) {
        "primary"
    } else {
        "standby"
    };
    format!(
        "{role} term={} acked_seq={} sequenced={}",
        state.term.load(Ordering::Relaxed),
        state.acked_seq.load(Ordering::Relaxed),
        state.stats.sequenced.load(Ordering::Relaxed),
    )
}

/// Sends `READY=1` with the first status.
pub fn ready(state: &NodeState) {
    let status = status_line(state);
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Sends `READY=1` with a fixed status (a process without a [`NodeState`]: the witness).
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Sends `STATUS=`.
pub fn status(state: &NodeState) {
    let status = status_line(state);
    let _ = sd_notify::notify(false, &[NotifyState::Status(&status)]);
}

/// Sends `WATCHDOG=1`.
pub fn ping() {
    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
}

/// Sends `STOPPING=1`.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_pings_only_while_every_core_advances() {
        let mut w = Watchdog::new(100, 0);
        assert!(!w.due(50, [1, 1].into_iter()), "before the interval");
        assert!(w.due(100, [1, 1].into_iter()), "first ping");
        assert!(!w.due(200, [5, 1].into_iter()), "core 1 did not cycle");
        assert!(!w.due(300, [9, 1].into_iter()), "still stuck");
        assert!(w.due(310, [10, 2].into_iter()), "it ran again");
        assert!(!w.due(320, [11, 3].into_iter()), "interval not passed");
    }

    #[test]
    fn the_status_says_replaying_then_the_role() {
        let s = NodeState::new(Vec::new());
        assert!(status_line(&s).starts_with("replaying term=0"));
        s.replay_done.store(true, Ordering::Release);
        s.term.store(3, Ordering::Relaxed);
        s.acked_seq.store(42, Ordering::Relaxed);
        assert_eq!(status_line(&s), "primary term=3 acked_seq=42 sequenced=0");
        s.active.store(false, Ordering::Release);
        assert!(status_line(&s).starts_with("standby term=3"));
    }
}
