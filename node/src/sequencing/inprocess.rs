//! The sequencing stage: the one ordering point every state-changing request passes through.
//!
//! It stamps each request with the next log position (`seq`) and a timestamp (`ts_ns`,
//! non-decreasing) and says which stamped entries may be released to the shards. In this node the
//! log is in-process and every entry is final the moment it is stamped; the seam for the durable,
//! replicated log of a later issue is [`InputLog`]: an implementation that appends to a file and
//! a standby reports a `committed_seq` that lags `append`, and the core running the sequencer
//! releases entries to the shards only up to it (see `on_core.rs`), so nothing reaches an engine,
//! and no reply reaches a client, before it is durable.

/// Where sequenced inputs go. `append` assigns the position; `committed_seq` is the highest
/// position that may be applied (durable on every replica that must have it).
pub trait InputLog {
    /// Appends one entry stamped `ts_ns`, returns its position (`1, 2, 3, ...`).
    fn append(&mut self, ts_ns: u64, entry: &[u8]) -> u64;
    /// The highest position that may be released to the shards.
    fn committed_seq(&self) -> u64;
}

/// The in-process log: positions only, everything committed at once, nothing stored.
#[derive(Clone, Debug, Default)]
pub struct InProcessLog {
    last_seq: u64,
}

impl InputLog for InProcessLog {
    #[inline]
    fn append(&mut self, _ts_ns: u64, _entry: &[u8]) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    #[inline]
    fn committed_seq(&self) -> u64 {
        self.last_seq
    }
}

/// A stamp: log position and sequencer time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub ts_ns: u64,
}

/// Stamps requests in arrival order. Time enters here and nowhere else on the request path: the
/// caller reads the clock and passes `now_ns`; the stamp never goes backwards.
#[derive(Clone, Debug, Default)]
pub struct Sequencer<L: InputLog = InProcessLog> {
    log: L,
    last_ts_ns: u64,
}

impl<L: InputLog> Sequencer<L> {
    pub fn new(log: L) -> Self {
        Sequencer { log, last_ts_ns: 0 }
    }

    /// Stamps one request (`entry` is its log form; the in-process log ignores it).
    #[inline]
    pub fn stamp(&mut self, now_ns: u64, entry: &[u8]) -> Stamp {
        let ts_ns = now_ns.max(self.last_ts_ns);
        self.last_ts_ns = ts_ns;
        let seq = self.log.append(ts_ns, entry);
        Stamp { seq, ts_ns }
    }

    /// Whether the entry at `seq` may be released to the shards.
    #[inline]
    pub fn is_committed(&self, seq: u64) -> bool {
        seq <= self.log.committed_seq()
    }

    pub fn last_seq(&self) -> u64 {
        self.log.committed_seq()
    }

    pub fn log(&self) -> &L {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_increases_and_time_never_goes_back() {
        let mut s = Sequencer::new(InProcessLog::default());
        let a = s.stamp(100, &[]);
        let b = s.stamp(50, &[]);
        let c = s.stamp(200, &[]);
        assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
        assert_eq!((a.ts_ns, b.ts_ns, c.ts_ns), (100, 100, 200));
        assert!(s.is_committed(3));
        assert!(!s.is_committed(4));
    }
}
