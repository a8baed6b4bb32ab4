//! [`UringLog`]: the input log written through io_uring from the caller's thread (the
//! sequencing core): no writer thread, no lock, no hand-over per record.
//!
//! `append` stages the record in the [`SegmentLog`] (a copy into its buffer, on the core);
//! `poll` reaps the completion of the commit in flight (a look at the completion ring, no
//! system call) and, when none is in flight and records wait, builds the next commit
//! ([`SegmentLog::start_commit`]: everything staged since the previous one, whole 4 KiB
//! blocks after the previous commit's, trailer, padding) and submits it as one
//! `IORING_OP_WRITE` on the segment's O_DIRECT | O_DSYNC descriptor (one `io_uring_enter`):
//! the completion means the blocks are on the device. The core goes on sequencing while the
//! write is in flight; what arrives meanwhile is the next group commit.
//!
//! One commit is in flight at a time: log format 2's recovery rule (damage followed by a
//! complete later commit is lost acknowledged data) rests on a commit being written only after
//! the previous one is durable, and io_uring's linked writes cannot chain across submissions.
//! See docs/ARCHITECTURE.md "The sequencer" for what several in flight would need.
//!
//! A storage without a direct descriptor ([`Storage::direct_fd`] `None`: buffered files,
//! [`crate::MemStorage`]) is written inline by `poll` through the same start/finish steps,
//! so the simulator's storage and the crash tests drive the same state machine.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};
use tpx_wire::log_record::LogRecord;

use crate::log::{CommitWrite, LogConfig, LogError, LogReader, Recovery, SegmentLog, SpareSlot};
use crate::storage::Storage;
use crate::writer::{preparer_loop, read_records, LogSink};

/// How long a failed write waits before it is tried again (space may be freed).
const RETRY_AFTER: Duration = Duration::from_millis(2);

/// The log written through io_uring by the thread that appends (see the module docs).
pub struct UringLog<S: Storage + Clone + Send + 'static> {
    /// Dropped by hand: never while the kernel may still write from its buffer (see `Drop`).
    log: ManuallyDrop<SegmentLog<S>>,
    ring: IoUring,
    in_flight: Option<CommitWrite>,
    reader: LogReader<S>,
    terms: Vec<(u64, u64)>,
    error: Option<String>,
    retry_at: Option<Instant>,
    max_staged: usize,
    preparer: Option<JoinHandle<()>>,
    preparer_stop: Arc<AtomicBool>,
}

impl<S: Storage + Clone + Send + 'static> std::fmt::Debug for UringLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringLog")
            .field("last_seq", &self.log.last_seq())
            .field("durable_seq", &self.log.durable_seq())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl<S: Storage + Clone + Send + 'static> UringLog<S> {
    /// Opens (recovers) the log, makes its ring and starts the spare-segment preparer (a
    /// thread that sleeps but for making a segment ahead of each roll).
    pub fn open(st: S, cfg: LogConfig) -> Result<(UringLog<S>, Recovery), LogError> {
        let ring = IoUring::new(8).map_err(LogError::Io)?;
        let reader = LogReader::new(st.clone())?;
        let spare_st = st.clone();
        let (mut log, rec) = SegmentLog::open(st, cfg)?;
        let slot = Arc::new(SpareSlot::default());
        log.use_spares(slot.clone());
        let preparer_stop = Arc::new(AtomicBool::new(false));
        let stop = preparer_stop.clone();
        let preparer = std::thread::Builder::new()
            .name("tpx-log-spare".into())
            .spawn(move || preparer_loop(spare_st, cfg, &slot, &stop))
            .map_err(LogError::Io)?;
        let terms = log.terms().to_vec();
        Ok((
            UringLog {
                log: ManuallyDrop::new(log),
                ring,
                in_flight: None,
                reader,
                terms,
                error: None,
                retry_at: None,
                max_staged: 64 << 20,
                preparer: Some(preparer),
                preparer_stop,
            },
            rec,
        ))
    }

    /// Group commits written so far.
    pub fn commits(&self) -> u64 {
        self.log.commits()
    }

    /// The log (for tests and stats).
    pub fn inner(&self) -> &SegmentLog<S> {
        &self.log
    }

    /// Polls (waiting in the kernel for each completion) until everything appended is
    /// durable, writes fail, or `timeout` passes.
    pub fn sync(&mut self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            self.retry_at = None;
            self.poll();
            if self.log.durable_seq() >= self.log.last_seq() {
                return true;
            }
            if t0.elapsed() > timeout {
                return false;
            }
            if self.in_flight.is_some() {
                let _ = self.ring.submit_and_wait(1);
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Waits for the commit in flight, if any, to complete (before a truncation or a drop).
    fn drain(&mut self) {
        while self.in_flight.is_some() {
            if self.reap() {
                continue;
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) {
                    // The ring is unusable; the write's fate is unknown, so nothing more of it
                    // counts as durable, and the buffer must outlive the kernel's use of it:
                    // the log is leaked rather than dropped (see `Drop`).
                    self.error = Some(format!("io_uring wait: {e}"));
                    return;
                }
            }
        }
    }

    /// Takes the completion of the commit in flight, if it is there. Returns whether it was.
    fn reap(&mut self) -> bool {
        let Some(w) = self.in_flight else {
            return false;
        };
        let Some(cqe) = self.ring.completion().next() else {
            return false;
        };
        self.in_flight = None;
        let r = cqe.result();
        let res = if r < 0 {
            Err(std::io::Error::from_raw_os_error(-r))
        } else if r as usize != w.len {
            // A short write: the rest never reached the disk; the whole commit is retried.
            Err(std::io::Error::other(format!(
                "short write: {r} of {} bytes",
                w.len
            )))
        } else {
            Ok(())
        };
        self.finished(res);
        true
    }

    fn finished(&mut self, res: std::io::Result<()>) {
        match self.log.finish_commit(res) {
            Ok(_) => {
                self.error = None;
                self.retry_at = None;
            }
            Err(e) => {
                self.error = Some(e.to_string());
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
    }

    /// Starts the next commit if records wait and none is in flight.
    fn submit(&mut self) {
        if self.in_flight.is_some() || !self.log.has_staged() {
            return;
        }
        if let Some(t) = self.retry_at {
            if Instant::now() < t {
                return;
            }
            self.retry_at = None;
        }
        let w = match self.log.start_commit() {
            Ok(Some(w)) => w,
            Ok(None) => return,
            Err(e) => {
                self.error = Some(e.to_string());
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                return;
            }
        };
        let Some(fd) = self.log.storage().direct_fd(w.file) else {
            let res = self.log.write_in_flight(&w);
            self.finished(res);
            return;
        };
        let bytes = self.log.in_flight_bytes();
        let sqe = opcode::Write::new(types::Fd(fd), bytes.as_ptr(), bytes.len() as u32)
            .offset(w.offset)
            .build();
        // SAFETY: the buffer is the log's commit buffer, whose address is stable and which
        // is not touched until `finish_commit` (after the completion is reaped, or after
        // `drain` in `Drop`); the descriptor stays open as long (a roll happens only in
        // `start_commit`, with nothing in flight).
        let pushed = unsafe { self.ring.submission().push(&sqe).is_ok() };
        let res = if pushed {
            self.ring.submit().map(|_| ())
        } else {
            Err(std::io::Error::other("io_uring submission queue full"))
        };
        match res {
            Ok(()) => self.in_flight = Some(w),
            Err(e) => self.finished(Err(e)),
        }
    }
}

impl<S: Storage + Clone + Send + 'static> Drop for UringLog<S> {
    fn drop(&mut self) {
        self.drain();
        if self.in_flight.is_none() {
            // SAFETY: dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.log) }
        }
        // Otherwise the kernel may still write from the log's buffer: it is leaked.
        if let Some(t) = self.preparer.take() {
            self.preparer_stop.store(true, Ordering::Relaxed);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl<S: Storage + Clone + Send + 'static> LogSink for UringLog<S> {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        let seq = self.log.append(rec)?;
        if self.terms.last().map(|t| t.0) != Some(self.log.last_term()) {
            self.terms = self.log.terms().to_vec();
        }
        Ok(seq)
    }

    #[inline]
    fn poll(&mut self) {
        self.reap();
        self.submit();
    }

    fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    fn last_term(&self) -> u64 {
        self.log.last_term()
    }

    #[inline]
    fn durable_seq(&self) -> u64 {
        self.log.durable_seq()
    }

    fn terms(&self) -> &[(u64, u64)] {
        &self.terms
    }

    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        self.drain();
        if self.in_flight.is_some() {
            return Err(LogError::Io(std::io::Error::other(
                "io_uring: a commit is still in flight",
            )));
        }
        let r = self.log.truncate_after(seq);
        self.terms = self.log.terms().to_vec();
        r?;
        self.reader = LogReader::new(self.log.storage().clone())?;
        Ok(())
    }

    fn read(
        &mut self,
        from_seq: u64,
        max: usize,
        out: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        let durable = self.log.durable_seq();
        read_records(&mut self.reader, from_seq, max, durable, out)
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }

    fn is_full(&self) -> bool {
        self.log.staged_bytes() >= self.max_staged
    }

    fn stored_term(&mut self) -> Result<u64, LogError> {
        crate::term_store::read_term(&mut self.log.storage().clone())
    }

    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        crate::term_store::write_term(&mut self.log.storage().clone(), term)
    }
}
