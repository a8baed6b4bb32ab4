//! A log whose durable point lags, as the node's `ThreadedLog` does: [`LagLog`] wraps the
//! production `SyncLog<MemStorage>` and commits (writes + flushes) only every `k`-th
//! [`LogSink::poll`] (`k` drawn again after each commit, `1..=max_lag_polls`), so a record
//! appended by `submit` or received by a standby stays only in memory for a few duty cycles
//! and `durable_seq` trails `last_seq` as it does behind the writer thread.
//!
//! A crash can find the writer in the middle of a commit ([`LagLog::crash_mid_commit`]): the
//! staged records are written as the log writes them (block-aligned, rewriting the partial
//! last block that already holds durable records), and the power fails inside one write: the
//! earlier writes (each flushed) survive, the sector the write was cut in reads back as zeros
//! (a page program cut by power loss), the rest keep their old bytes.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_sequencer::log::{LogConfig, LogError, Recovery};
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::writer::{LogSink, SyncLog};
use tpx_wire::log_record::LogRecord;

/// Torn writes are cut at this granularity (the sector that was being programmed is lost).
pub const SECTOR: usize = 512;

/// A `SyncLog` committed every few polls (see the module docs).
pub struct LagLog {
    inner: SyncLog<MemStorage>,
    disk: MemStorage,
    max_lag_polls: u32,
    until_commit: u32,
    rng: Xoshiro256PlusPlus,
}

impl std::fmt::Debug for LagLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagLog")
            .field("inner", &self.inner)
            .field("until_commit", &self.until_commit)
            .finish()
    }
}

impl LagLog {
    /// Opens the log on `disk`; commits every `1..=max_lag_polls` polls (1: every poll, as
    /// `SyncLog`).
    pub fn open(
        disk: MemStorage,
        cfg: LogConfig,
        max_lag_polls: u32,
        rng: Xoshiro256PlusPlus,
    ) -> Result<(LagLog, Recovery), LogError> {
        let (inner, rec) = SyncLog::open(disk.clone(), cfg)?;
        let mut l = LagLog {
            inner,
            disk,
            max_lag_polls: max_lag_polls.max(1),
            until_commit: 1,
            rng,
        };
        l.until_commit = l.draw();
        Ok((l, rec))
    }

    fn draw(&mut self) -> u32 {
        self.rng.gen_range(1..=self.max_lag_polls)
    }

    /// Commits the staged records now (a clean exit drains the writer).
    pub fn commit_now(&mut self) {
        self.inner.poll();
    }

    /// Whether records wait for a commit (appended, not yet on the disk).
    pub fn has_staged(&self) -> bool {
        self.inner.inner().has_staged()
    }

    /// The crash finds the writer inside a commit of the staged records: writes them, then
    /// tears the disk as a power cut at byte `cut` (modulo the bytes written) would. Returns
    /// `None` when nothing was staged (or the commit failed before writing), else whether the
    /// lost sector held bytes that were already on the disk before this commit (a rewrite of
    /// durable records in place: item 9 of issue 15).
    pub fn crash_mid_commit(&mut self, cut: u64) -> Option<bool> {
        if !self.has_staged() {
            return None;
        }
        let before: Vec<(String, Vec<u8>)> = files(&self.disk);
        self.disk.record_writes(true);
        self.inner.poll();
        let writes = self.disk.take_writes();
        self.disk.record_writes(false);
        let total: u64 = writes.iter().map(|w| w.len as u64).sum();
        if total == 0 {
            return None;
        }
        let mut hit_durable = false;
        let mut at = cut % total;
        // Files as the disk holds them now (every write flushed).
        let mut now: Vec<(String, Vec<u8>)> = files(&self.disk);
        let old = |name: &str| {
            before
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b.clone())
                .unwrap_or_default()
        };
        // Undo every write from the cut on, oldest first: the write holding the cut keeps
        // its bytes before the cut's sector, loses that sector (zeros), keeps old bytes after.
        let mut undoing = false;
        // Files the commit created whose first write came after the cut: the power failed
        // before they were created (the writes are in order, each flushed), so they are gone.
        let mut reached: Vec<&str> = Vec::new();
        for w in &writes {
            let Some(file) = now.iter_mut().find(|(n, _)| *n == w.name) else {
                continue;
            };
            let o = w.offset as usize;
            let end = o + w.len;
            let prev = old(&w.name);
            let restore = |b: &mut Vec<u8>, from: usize, to: usize| {
                for (k, x) in b.iter_mut().enumerate().take(to).skip(from) {
                    *x = prev.get(k).copied().unwrap_or(0);
                }
            };
            let flen = file.1.len();
            if undoing {
                restore(&mut file.1, o, end.min(flen));
                continue;
            }
            reached.push(&w.name);
            if at >= w.len as u64 {
                at -= w.len as u64;
                continue;
            }
            let c = o + at as usize;
            let sector = c / SECTOR * SECTOR;
            let sector_end = (sector + SECTOR).min(end).min(flen);
            hit_durable |= prev
                .get(sector.max(o)..sector_end.min(prev.len()))
                .is_some_and(|b| b.iter().any(|&x| x != 0));
            for x in &mut file.1[sector.max(o)..sector_end] {
                *x = 0;
            }
            restore(&mut file.1, sector_end, end.min(flen));
            undoing = true;
        }
        for (name, bytes) in now {
            let created = !before.iter().any(|(n, _)| *n == name);
            if created && !reached.contains(&name.as_str()) {
                use tpx_sequencer::storage::Storage;
                let _ = self.disk.clone().remove(&name);
                continue;
            }
            self.disk.set_contents(&name, bytes);
        }
        Some(hit_durable)
    }
}

/// Every file of a disk and its bytes.
pub fn files(disk: &MemStorage) -> Vec<(String, Vec<u8>)> {
    use tpx_sequencer::storage::Storage;
    let mut st = disk.clone();
    let mut names = st.list().unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| disk.contents(&n).map(|b| (n, b)))
        .collect()
}

impl LogSink for LagLog {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        self.inner.append(rec)
    }

    fn poll(&mut self) {
        self.until_commit = self.until_commit.saturating_sub(1);
        if self.until_commit == 0 || self.inner.error().is_some() {
            self.inner.poll();
            self.until_commit = self.draw();
        }
    }

    fn last_seq(&self) -> u64 {
        self.inner.last_seq()
    }

    fn last_term(&self) -> u64 {
        self.inner.last_term()
    }

    fn durable_seq(&self) -> u64 {
        self.inner.durable_seq()
    }

    fn terms(&self) -> &[(u64, u64)] {
        self.inner.terms()
    }

    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        self.inner.truncate_after(seq)
    }

    fn read(
        &mut self,
        from_seq: u64,
        max: usize,
        out: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        self.inner.read(from_seq, max, out)
    }

    fn error(&self) -> Option<String> {
        self.inner.error()
    }

    fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    fn stored_term(&mut self) -> Result<u64, LogError> {
        self.inner.stored_term()
    }

    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        self.inner.store_term(term)
    }
}
