//! The node's statistics in shared memory, in the way of AeronStat: one file under `/dev/shm`
//! that the node's cores write with plain relaxed stores (one writer per block) and any process
//! on the host maps read-only (`tpx stat`, `tpx-load`, the Prometheus endpoint).
//!
//! Layout (all little-endian `u64` words; offsets in words):
//!
//! | words | what |
//! |---|---|
//! | `0..HEADER_WORDS` | header: magic, version, cores, pid, TSC ticks per second (f64 bits), start time, layout sizes, node-wide counters |
//! | one block per core | `COUNTERS` counters, then `STAGES × BUCKETS` histogram buckets, then the trace ring |
//!
//! Stage latencies are kept in TSC ticks (no conversion on the hot path) in log-linear buckets
//! with 16 sub-buckets per power of two (at most 6.25 % relative error); readers convert with
//! the header's calibration. The per-order trace ring is in [`crate::observe::trace`].
//!
//! Timestamps are `quanta`'s raw counter (the invariant TSC on x86-64), one clock for every
//! process on the host, so a load generator can join its own send/receive stamps with the
//! node's per-stage stamps.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// "TPXSTAT1".
pub const MAGIC: u64 = u64::from_le_bytes(*b"TPXSTAT1");
pub const VERSION: u64 = 1;
pub const HEADER_WORDS: usize = 64;
/// Counters per core block.
pub const COUNTERS: usize = 16;
/// Histogram buckets per stage.
pub const BUCKETS: usize = 640;
/// Words per trace record (one cache line).
pub const TRACE_WORDS: usize = 8;

/// Header word indices.
mod h {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const CORES: usize = 2;
    pub const PID: usize = 3;
    pub const TSC_HZ_BITS: usize = 4;
    pub const START_UNIX_NS: usize = 5;
    pub const TRACE_SLOTS: usize = 6;
    pub const BLOCK_WORDS: usize = 7;
    pub const TRACE_EVERY: usize = 8;
    /// Node-wide counters (copied by the publisher thread): sequenced, applied, trades.
    pub const SEQUENCED: usize = 16;
    pub const APPLIED: usize = 17;
    pub const TRADES: usize = 18;
    pub const HEARTBEAT_UNIX_NS: usize = 19;
    /// Replica checkpoints: the last checked seq, matches, mismatches.
    pub const CHECKPOINT_SEQ: usize = 20;
    pub const CHECKPOINTS_MATCHED: usize = 21;
    pub const CHECKPOINT_MISMATCHES: usize = 22;
}

/// Per-core counters (index into a block's counters).
pub mod counter {
    /// Requests forwarded to the sequencer by this gateway.
    pub const REQUESTS: usize = 0;
    /// Reports turned into replies.
    pub const REPORTS: usize = 1;
    /// Answers stamped through every stage (recorded in the histograms).
    pub const STAMPED: usize = 2;
    /// Trace records written.
    pub const TRACED: usize = 3;
    /// `write(2)` calls that sent replies.
    pub const WRITES: usize = 4;
    pub const NAMES: [&str; 5] = ["requests", "reports", "stamped", "traced", "writes"];
}

/// The stages of one order through the node, as histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Gateway read → sequencer stamped.
    RxToSequenced = 0,
    /// Sequenced → durable (with `log = "in-process"`: until the in-memory log's record is
    /// acknowledged).
    SequencedToDurable = 1,
    /// Durable (or sequenced, without a durable step) → first report out of the engine.
    ToMatched = 2,
    /// First report → the gateway starts writing the reply (`write(2)` about to be called).
    MatchedToWritten = 3,
    /// Gateway read → reply write starts: the node's share of the round trip.
    RxToWritten = 4,
}

pub const STAGES: usize = 5;
pub const STAGE_NAMES: [&str; STAGES] = [
    "rx_to_sequenced",
    "sequenced_to_durable",
    "to_matched",
    "matched_to_written",
    "rx_to_written",
];

/// Histogram bucket of a value (ticks): exact below 32, then 16 sub-buckets per power of two.
#[inline]
pub fn bucket_of(v: u64) -> usize {
    if v < 32 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // >= 5
    let sub = ((v >> (e - 4)) & 15) as usize;
    (32 + (e - 5) * 16 + sub).min(BUCKETS - 1)
}

/// The lowest value of a bucket.
pub fn bucket_low(b: usize) -> u64 {
    if b < 32 {
        return b as u64;
    }
    let e = (b - 32) / 16 + 5;
    let sub = ((b - 32) % 16) as u64;
    (16 + sub) << (e - 4)
}

/// The highest value of a bucket.
pub fn bucket_high(b: usize) -> u64 {
    if b + 1 >= BUCKETS {
        return u64::MAX;
    }
    bucket_low(b + 1) - 1
}

/// A read-write or read-only mapping of a stats file.
#[derive(Debug)]
pub struct StatsMap {
    ptr: *mut AtomicU64,
    words: usize,
    path: PathBuf,
    owner: bool,
}

// SAFETY: the mapping is shared memory accessed only through `AtomicU64`s; the pointer stays
// valid until drop.
unsafe impl Send for StatsMap {}
unsafe impl Sync for StatsMap {}

fn map_file(path: &Path, words: usize, write: bool) -> Result<*mut AtomicU64, String> {
    use std::os::fd::AsRawFd;
    let f = OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let prot = if write {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: mapping a file we opened; the length is checked against the file's by the caller.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            words * 8,
            prot,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mmap {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(p.cast())
}

impl StatsMap {
    /// Words of a core block.
    pub fn block_words(trace_slots: usize) -> usize {
        Self::block_words_checked(trace_slots).unwrap_or(usize::MAX)
    }

    /// [`StatsMap::block_words`], `None` where it does not fit a `usize`.
    fn block_words_checked(trace_slots: usize) -> Option<usize> {
        trace_slots
            .checked_mul(TRACE_WORDS)?
            .checked_add(COUNTERS + STAGES * BUCKETS + 8)
    }

    /// Creates (replacing) the file for `cores` cores and maps it read-write.
    pub fn create(
        path: &Path,
        cores: usize,
        trace_slots: usize,
        trace_every: u64,
    ) -> Result<StatsMap, String> {
        let trace_slots = trace_slots.next_power_of_two();
        let block = Self::block_words(trace_slots);
        let words = HEADER_WORDS + cores * block;
        let _ = std::fs::remove_file(path);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.set_len((words * 8) as u64)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        drop(f);
        let ptr = map_file(path, words, true)?;
        let m = StatsMap {
            ptr,
            words,
            path: path.to_path_buf(),
            owner: true,
        };
        let hz = crate::runtime::clock::tsc_hz();
        m.set(h::VERSION, VERSION);
        m.set(h::CORES, cores as u64);
        m.set(h::PID, u64::from(std::process::id()));
        m.set(h::TSC_HZ_BITS, hz.to_bits());
        m.set(h::START_UNIX_NS, crate::runtime::clock::unix_ns());
        m.set(h::TRACE_SLOTS, trace_slots as u64);
        m.set(h::BLOCK_WORDS, block as u64);
        m.set(h::TRACE_EVERY, trace_every.max(1));
        m.word(h::MAGIC).store(MAGIC, Ordering::Release);
        Ok(m)
    }

    /// Maps an existing file read-only (checks magic and version).
    pub fn open(path: &Path) -> Result<StatsMap, String> {
        let len = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len() as usize;
        if len < HEADER_WORDS * 8 {
            return Err(format!("{}: too short for a stats file", path.display()));
        }
        let ptr = map_file(path, len / 8, false)?;
        let m = StatsMap {
            ptr,
            words: len / 8,
            path: path.to_path_buf(),
            owner: false,
        };
        if m.get(h::MAGIC) != MAGIC || m.get(h::VERSION) != VERSION {
            return Err(format!("{}: not a tpx stats file (v1)", path.display()));
        }
        // The header is another process's (or a damaged file's): every size read from it is
        // checked before any is used to index the mapping.
        let slots = m.get(h::TRACE_SLOTS);
        let block = m.get(h::BLOCK_WORDS);
        let least = usize::try_from(slots)
            .ok()
            .filter(|s| s.is_power_of_two())
            .and_then(Self::block_words_checked);
        if least.is_none_or(|l| (block as usize) < l || block > m.words as u64) {
            return Err(format!(
                "{}: header: {slots} trace slots do not fit blocks of {block} words",
                path.display()
            ));
        }
        let need = (m.get(h::CORES) as usize)
            .checked_mul(block as usize)
            .and_then(|w| w.checked_add(HEADER_WORDS));
        match need {
            None => Err(format!(
                "{}: header: {} cores of {block} words",
                path.display(),
                m.get(h::CORES)
            )),
            Some(need) if need > m.words => Err(format!("{}: truncated", path.display())),
            Some(_) => Ok(m),
        }
    }

    #[inline]
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words);
        // SAFETY: in bounds of the mapping, which lives as long as `self`.
        unsafe { &*self.ptr.add(i) }
    }

    #[inline]
    fn get(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Relaxed)
    }

    #[inline]
    fn set(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn cores(&self) -> usize {
        self.get(h::CORES) as usize
    }

    pub fn pid(&self) -> u64 {
        self.get(h::PID)
    }

    /// TSC ticks per second as the node calibrated them.
    pub fn tsc_hz(&self) -> f64 {
        f64::from_bits(self.get(h::TSC_HZ_BITS))
    }

    pub fn trace_slots(&self) -> usize {
        self.get(h::TRACE_SLOTS) as usize
    }

    pub fn trace_every(&self) -> u64 {
        self.get(h::TRACE_EVERY)
    }

    /// Node-wide counters `(sequenced, applied, trades, heartbeat unix ns)`.
    pub fn node_counters(&self) -> (u64, u64, u64, u64) {
        (
            self.get(h::SEQUENCED),
            self.get(h::APPLIED),
            self.get(h::TRADES),
            self.get(h::HEARTBEAT_UNIX_NS),
        )
    }

    /// Replica checkpoints `(last checkpoint seq, matched, mismatched)` (see
    /// `runtime::state::Checkpoints`).
    pub fn checkpoint_counters(&self) -> (u64, u64, u64) {
        (
            self.get(h::CHECKPOINT_SEQ),
            self.get(h::CHECKPOINTS_MATCHED),
            self.get(h::CHECKPOINT_MISMATCHES),
        )
    }

    /// Written by the publisher thread, like [`StatsMap::publish_node_counters`].
    pub fn publish_checkpoints(&self, seq: u64, matched: u64, mismatched: u64) {
        self.set(h::CHECKPOINT_SEQ, seq);
        self.set(h::CHECKPOINTS_MATCHED, matched);
        self.set(h::CHECKPOINT_MISMATCHES, mismatched);
    }

    /// Written by the publisher thread (not a hot core).
    pub fn publish_node_counters(&self, sequenced: u64, applied: u64, trades: u64) {
        self.set(h::SEQUENCED, sequenced);
        self.set(h::APPLIED, applied);
        self.set(h::TRADES, trades);
        self.set(h::HEARTBEAT_UNIX_NS, crate::runtime::clock::unix_ns());
    }

    fn block_base(&self, core: usize) -> usize {
        HEADER_WORDS + core * self.get(h::BLOCK_WORDS) as usize
    }

    /// A core's counter.
    pub fn counter(&self, core: usize, c: usize) -> u64 {
        self.get(self.block_base(core) + c)
    }

    /// A copy of one core's histogram of one stage (bucket counts).
    pub fn histogram(&self, core: usize, stage: usize) -> Vec<u64> {
        let base = self.block_base(core) + COUNTERS + stage * BUCKETS;
        (0..BUCKETS).map(|b| self.get(base + b)).collect()
    }

    /// The writer of one core's block. One per core; the caller guarantees a single writer.
    pub fn core_writer(self: &std::sync::Arc<Self>, core: usize) -> CoreStats {
        assert!(core < self.cores() && self.owner);
        let base = self.block_base(core);
        CoreStats {
            map: self.clone(),
            base,
            trace_base: base + COUNTERS + STAGES * BUCKETS + 8,
            trace_mask: self.trace_slots() as u64 - 1,
            trace_head: 0,
            trace_every: self.trace_every(),
            trace_skip: 0,
        }
    }

    /// The trace ring of one core: `(head, base word, mask)` for [`crate::observe::trace::TraceReader`].
    pub(crate) fn trace_parts(&self, core: usize) -> (&AtomicU64, usize, u64) {
        let base = self.block_base(core) + COUNTERS + STAGES * BUCKETS;
        (self.word(base), base + 8, self.trace_slots() as u64 - 1)
    }

    pub(crate) fn word_at(&self, i: usize) -> &AtomicU64 {
        self.word(i)
    }
}

impl Drop for StatsMap {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map_file` mapped, once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.words * 8);
        }
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One core's writer: counters, stage histograms, trace ring. Single writer: increments are a
/// relaxed load + store (no locked instruction on the hot path).
#[derive(Debug)]
pub struct CoreStats {
    map: std::sync::Arc<StatsMap>,
    base: usize,
    trace_base: usize,
    trace_mask: u64,
    trace_head: u64,
    trace_every: u64,
    trace_skip: u64,
}

impl CoreStats {
    #[inline]
    pub fn add(&self, c: usize, n: u64) {
        let w = self.map.word(self.base + c);
        w.store(w.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    #[inline]
    pub fn record(&self, stage: Stage, ticks: u64) {
        let w = self
            .map
            .word(self.base + COUNTERS + stage as usize * BUCKETS + bucket_of(ticks));
        w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Appends a trace record (every `trace_every`-th call), seqlocked per slot.
    #[inline]
    pub fn trace(&mut self, rec: &[u64; TRACE_WORDS - 1]) {
        if self.trace_skip > 0 {
            self.trace_skip -= 1;
            return;
        }
        self.trace_skip = self.trace_every - 1;
        let i = self.trace_head;
        let slot = self.trace_base + ((i & self.trace_mask) as usize) * TRACE_WORDS;
        let lock = self.map.word(slot);
        lock.store(2 * i + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (k, v) in rec.iter().enumerate() {
            self.map.word(slot + 1 + k).store(*v, Ordering::Relaxed);
        }
        lock.store(2 * i + 2, Ordering::Release);
        self.trace_head = i + 1;
        self.map
            .word(self.trace_base - 8)
            .store(i + 1, Ordering::Release);
        self.add(counter::TRACED, 1);
    }
}

/// Percentile (0..=100) of a bucket histogram, as the bucket's upper bound.
pub fn bucket_percentile(h: &[u64], pct: f64) -> u64 {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return 0;
    }
    let want = ((pct / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, &n) in h.iter().enumerate() {
        seen += n;
        if seen >= want {
            return bucket_high(b).min(bucket_low(b) + bucket_low(b) / 16 + 1);
        }
    }
    0
}

/// Mean of a bucket histogram (bucket midpoints).
pub fn bucket_mean(h: &[u64]) -> f64 {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let s: f64 = h
        .iter()
        .enumerate()
        .map(|(b, &n)| {
            let lo = bucket_low(b) as f64;
            let hi = (bucket_low(b) + (bucket_low(b) / 16).max(1) - 1) as f64;
            n as f64 * (lo + hi) / 2.0
        })
        .sum();
    s / total as f64
}

/// One stage's numbers in a [`Snapshot`] (nanoseconds; percentiles at bucket resolution).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageSummary {
    pub stage: &'static str,
    pub count: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// One core's counters and stages.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CoreSnapshot {
    pub core: usize,
    pub counters: Vec<(&'static str, u64)>,
    pub stages: Vec<StageSummary>,
}

/// Everything a stats file says, read once.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    pub pid: u64,
    pub tsc_hz: f64,
    pub sequenced: u64,
    pub applied: u64,
    pub trades: u64,
    /// When the node last published its node-wide counters (unix ns).
    pub heartbeat_unix_ns: u64,
    /// Replica checkpoints: the seq of the last one a shard applied, how many compared equal,
    /// how many did not (non-zero: this node diverged, see OPERATIONS.md).
    pub checkpoint_seq: u64,
    pub checkpoints_matched: u64,
    pub checkpoint_mismatches: u64,
    /// Only cores that recorded anything (the gateway cores).
    pub cores: Vec<CoreSnapshot>,
}

/// Summarises a bucket histogram of ticks in nanoseconds.
pub fn summarise(stage: &'static str, h: &[u64], tsc_hz: f64) -> StageSummary {
    let ns = |t: u64| (t as f64 * 1e9 / tsc_hz).round() as u64;
    let count = h.iter().sum();
    let max_b = h.iter().rposition(|&n| n > 0);
    StageSummary {
        stage,
        count,
        mean_ns: bucket_mean(h) * 1e9 / tsc_hz,
        p50_ns: ns(bucket_percentile(h, 50.0)),
        p99_ns: ns(bucket_percentile(h, 99.0)),
        p999_ns: ns(bucket_percentile(h, 99.9)),
        max_ns: max_b.map_or(0, |b| ns(bucket_percentile(&h[..=b], 100.0))),
    }
}

impl StatsMap {
    /// Reads every counter and histogram once.
    pub fn snapshot(&self) -> Snapshot {
        let (sequenced, applied, trades, heartbeat_unix_ns) = self.node_counters();
        let (checkpoint_seq, checkpoints_matched, checkpoint_mismatches) =
            self.checkpoint_counters();
        let hz = self.tsc_hz();
        let mut cores = Vec::new();
        for c in 0..self.cores() {
            let counters: Vec<(&'static str, u64)> = counter::NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, self.counter(c, i)))
                .collect();
            if counters.iter().all(|(_, v)| *v == 0) {
                continue;
            }
            let stages = (0..STAGES)
                .map(|s| summarise(STAGE_NAMES[s], &self.histogram(c, s), hz))
                .collect();
            cores.push(CoreSnapshot {
                core: c,
                counters,
                stages,
            });
        }
        Snapshot {
            pid: self.pid(),
            tsc_hz: hz,
            sequenced,
            applied,
            trades,
            heartbeat_unix_ns,
            checkpoint_seq,
            checkpoints_matched,
            checkpoint_mismatches,
            cores,
        }
    }
}

/// The default stats file of a node listening on `port`.
pub fn default_path(port: u16) -> PathBuf {
    PathBuf::from(format!("/dev/shm/tpx-node-{port}.stats"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover() {
        let mut last = 0;
        for v in [0u64, 1, 31, 32, 33, 47, 48, 63, 64, 1000, 1 << 20, 1 << 40] {
            let b = bucket_of(v);
            assert!(b >= last, "{v}");
            last = b;
            assert!(bucket_low(b) <= v && v <= bucket_high(b), "{v} in {b}");
        }
        for b in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(bucket_low(b)), b);
            assert_eq!(bucket_of(bucket_high(b)), b);
        }
    }

    /// A stats file is read by `tpx stat` and the Prometheus thread of another process: a
    /// damaged or foreign one (valid magic, header fields that do not fit together) must be
    /// refused by `open`, not read out of bounds. Before, a core count times block size that
    /// wrapped passed the size check, and a trace-slot count of 0 made the trace mask wrap:
    /// the first read past the mapping panicked.
    #[test]
    fn a_stats_file_whose_header_does_not_fit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.stats");
        let block = StatsMap::block_words(4) as u64;
        for (what, edits) in [
            (
                "cores times block wraps",
                vec![(h::CORES, 1u64 << 62), (h::BLOCK_WORDS, 4)],
            ),
            ("no trace slots", vec![(h::TRACE_SLOTS, 0)]),
            ("trace slots not a power of two", vec![(h::TRACE_SLOTS, 3)]),
            (
                "a block smaller than its traces",
                vec![(h::TRACE_SLOTS, 1 << 40)],
            ),
            (
                "a block smaller than its counters",
                vec![(h::BLOCK_WORDS, 1)],
            ),
        ] {
            let m = StatsMap::create(&p, 2, 4, 1).unwrap();
            for (i, v) in &edits {
                m.set(*i, *v);
            }
            match StatsMap::open(&p) {
                Ok(_) => panic!("{what}: opened"),
                Err(e) => assert!(e.contains("header"), "{what}: {e}"),
            }
            drop(m);
        }
        let m = StatsMap::create(&p, 2, 4, 1).unwrap();
        assert_eq!(m.get(h::BLOCK_WORDS), block);
        assert!(StatsMap::open(&p).is_ok());
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.stats");
        let m = std::sync::Arc::new(StatsMap::create(&p, 2, 4, 1).unwrap());
        let mut w = m.core_writer(1);
        w.add(counter::REPORTS, 3);
        w.record(Stage::RxToWritten, 1000);
        w.record(Stage::RxToWritten, 1000);
        w.trace(&[1 << 8, 2, 3, 4, 5, 6, 7]);
        let r = StatsMap::open(&p).unwrap();
        assert_eq!(r.cores(), 2);
        assert_eq!(r.counter(1, counter::REPORTS), 3);
        assert_eq!(r.counter(0, counter::REPORTS), 0);
        let hist = r.histogram(1, Stage::RxToWritten as usize);
        assert_eq!(hist[bucket_of(1000)], 2);
        let p50 = bucket_percentile(&hist, 50.0);
        assert!((1000..=1000 + 1000 / 16 + 1).contains(&p50), "{p50}");
        let mut tr = crate::observe::trace::TraceReader::new(&r, 1);
        let recs = tr.poll(&r);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].account, 1);
        assert!(r.tsc_hz() > 0.0);
    }
}
