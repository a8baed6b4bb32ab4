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

/// Commits in flight at most by default (see the module docs and docs/ARCHITECTURE.md).
pub const DEFAULT_DEPTH: usize = 4;

/// How long an idle `poll` waits in the kernel for a completion at most (see [`UringLog::poll`]
/// on why it waits at all): longer than a write takes, so that the worker finishes it while
/// the core sleeps (with 100 µs the core went back to spinning before the write completed and
/// the worker then waited for the scheduler's 4 ms tick to post the completion: ack p50
/// 4.0 ms with a disk floor of 156 µs).
const IDLE_WAIT_NS: u32 = 2_000_000;

/// How long a failed write waits before it is tried again (space may be freed).
const RETRY_AFTER: Duration = Duration::from_millis(2);

/// The log written through io_uring by the thread that appends (see the module docs).
pub struct UringLog<S: Storage + Clone + Send + 'static> {
    /// Dropped by hand: never while the kernel may still write from its buffer (see `Drop`).
    log: ManuallyDrop<SegmentLog<S>>,
    ring: IoUring,
    /// Commits in flight at most (see the module docs).
    depth: usize,
    reader: LogReader<S>,
    terms: Vec<(u64, u64)>,
    error: Option<String>,
    retry_at: Option<Instant>,
    max_staged: usize,
    /// Writes submitted whose completion was not reaped.
    writing: usize,
    /// Whether a record was appended since the last `poll`.
    appended: bool,
    preparer: Option<JoinHandle<()>>,
    preparer_stop: Arc<AtomicBool>,
}

impl<S: Storage + Clone + Send + 'static> std::fmt::Debug for UringLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringLog")
            .field("last_seq", &self.log.last_seq())
            .field("durable_seq", &self.log.durable_seq())
            .field("in_flight", &self.log.in_flight())
            .finish()
    }
}

impl<S: Storage + Clone + Send + 'static> UringLog<S> {
    /// Opens (recovers) the log, makes its ring and starts the spare-segment preparer (a
    /// thread that sleeps but for making a segment ahead of each roll).
    pub fn open(st: S, cfg: LogConfig) -> Result<(UringLog<S>, Recovery), LogError> {
        UringLog::open_with_depth(st, cfg, DEFAULT_DEPTH)
    }

    /// [`UringLog::open`] with at most `depth` commits in flight (1: each commit is submitted
    /// once the previous one completed).
    pub fn open_with_depth(
        st: S,
        cfg: LogConfig,
        depth: usize,
    ) -> Result<(UringLog<S>, Recovery), LogError> {
        UringLog::open_trusting(st, cfg, depth, 0, Arc::default())
    }

    /// [`UringLog::open_with_depth`] recovering with [`SegmentLog::open_trusting`].
    pub fn open_trusting(
        st: S,
        cfg: LogConfig,
        depth: usize,
        trusted_through: u64,
        slot: Arc<SpareSlot>,
    ) -> Result<(UringLog<S>, Recovery), LogError> {
        let depth = depth.clamp(1, 64);
        let ring = IoUring::new((depth as u32).next_power_of_two().max(8)).map_err(LogError::Io)?;
        let reader = LogReader::new(st.clone())?;
        let spare_st = st.clone();
        let (mut log, rec) = SegmentLog::open_trusting(st, cfg, trusted_through)?;
        log.use_spares(slot.clone());
        // The core commits: a roll with no spare ready must not zero-fill 64 MiB inside its
        // poll (the preparer's spares are zero-filled; see `SegmentLog::zero_fill_inline`).
        log.zero_fill_inline(false);
        if log.segment_names().is_empty() && !slot.ready.load(Ordering::Acquire) {
            // An empty log's first append rolls at once, before any preparer could have made
            // a spare: make that one here, at open (the node serves nothing yet), so that the
            // first segment is zero-filled too. Preallocated only, each O_DSYNC commit into it
            // converts unwritten extents: `log-bench` `commit_unwritten` p50 138-144 µs
            // against 87-91 µs zero-filled.
            let mut st = spare_st.clone();
            let never = AtomicBool::new(false);
            crate::log::make_spare(&mut st, &cfg, &never).map_err(LogError::Io)?;
            slot.ready.store(true, Ordering::Release);
        }
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
                depth,
                reader,
                terms,
                error: None,
                retry_at: None,
                max_staged: 64 << 20,
                writing: 0,
                appended: false,
                preparer: Some(preparer),
                preparer_stop,
            },
            rec,
        ))
    }

    /// Lets the spare-segment preparer run on `cpus` only (see
    /// [`crate::process::set_thread_cpus`]): spawned from the core that opens the log, it
    /// would zero-fill each next segment (64 MiB of writes) on that core's CPU.
    pub fn set_preparer_cpus(&self, cpus: &[usize]) -> std::io::Result<()> {
        match &self.preparer {
            Some(t) => crate::process::set_thread_cpus(t, cpus),
            None => Ok(()),
        }
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
            if self.writing > 0 {
                let _ = self.ring.submit_and_wait(1);
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Waits until no write is in the kernel's hands (before a truncation or a drop); failed
    /// commits stay failed (a truncation writes them again itself).
    fn drain(&mut self) {
        while self.writing > 0 {
            if self.reap() > 0 {
                continue;
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) {
                    // The ring is unusable; the writes' fate is unknown (`Drop` leaks the
                    // buffers rather than free them under the kernel).
                    self.error = Some(format!("io_uring wait: {e}"));
                    return;
                }
            }
        }
    }

    /// Takes the completions that are there. Returns how many.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            n += 1;
            self.writing -= 1;
            let id = cqe.user_data();
            let len = self.log.flight_bytes(id).len();
            let r = cqe.result();
            let res = if r < 0 {
                Err(std::io::Error::from_raw_os_error(-r))
            } else if r as usize != len {
                // A short write: the rest never reached the disk; the commit is written again.
                Err(std::io::Error::other(format!(
                    "short write: {r} of {len} bytes"
                )))
            } else {
                Ok(())
            };
            self.finished(id, res);
        }
        n
    }

    fn finished(&mut self, id: u64, res: std::io::Result<()>) {
        match self.log.finish_commit(id, res) {
            Ok(_) => {
                if self.log.failed_commits().is_empty() {
                    self.error = None;
                    self.retry_at = None;
                }
            }
            Err(e) => {
                self.error = Some(e.to_string());
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
    }

    /// Writes commit `w`: an io_uring write on the direct descriptor (submitted by the caller),
    /// or inline through the storage. Returns whether an SQE was queued.
    fn write(&mut self, w: CommitWrite) -> bool {
        let Some(fd) = self.log.storage().direct_fd(w.file) else {
            let res = self.log.write_in_flight(&w);
            self.finished(w.id, res);
            return false;
        };
        let bytes = self.log.flight_bytes(w.id);
        let sqe = opcode::Write::new(types::Fd(fd), bytes.as_ptr(), bytes.len() as u32)
            .offset(w.offset)
            .build()
            .user_data(w.id);
        // SAFETY: the buffer is owned by the log's flight `w.id`, whose address is stable and
        // which is neither touched nor freed until the completion is reaped (or ever, if the
        // ring fails: see `Drop`); the descriptor stays open as long (a roll happens only with
        // nothing in flight).
        if unsafe { self.ring.submission().push(&sqe).is_ok() } {
            self.writing += 1;
            true
        } else {
            self.finished(
                w.id,
                Err(std::io::Error::other("io_uring submission queue full")),
            );
            false
        }
    }

    /// Writes failed commits again (after a pause), then starts new commits while records
    /// wait and fewer than `depth` are in flight; one `io_uring_enter` for all of them.
    fn submit(&mut self) {
        if let Some(t) = self.retry_at {
            if Instant::now() < t {
                return;
            }
            self.retry_at = None;
        }
        let mut queued = false;
        for w in self.log.failed_commits() {
            self.log.retrying(w.id);
            queued |= self.write(w);
        }
        while self.log.has_staged() {
            match self.log.start_commit(self.depth) {
                Ok(Some(w)) => queued |= self.write(w),
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(e.to_string());
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                    break;
                }
            }
        }
        if queued {
            if let Err(e) = self.ring.submit() {
                // Nothing is known of the queued writes until their completions come (the
                // kernel keeps them in the submission queue); say so.
                self.error = Some(format!("io_uring submit: {e}"));
            }
        }
    }
}

impl<S: Storage + Clone + Send + 'static> Drop for UringLog<S> {
    fn drop(&mut self) {
        self.drain();
        if self.writing == 0 {
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
        self.appended = true;
        if self.terms.last().map(|t| t.0) != Some(self.log.last_term()) {
            self.terms = self.log.terms().to_vec();
        }
        Ok(seq)
    }

    /// Reaps completions, then submits what waits. When nothing was appended since the last
    /// poll and writes are in flight, waits in the kernel (at most [`IDLE_WAIT_NS`]) for one to
    /// complete: an O_DIRECT | O_DSYNC write is done by an io_uring worker thread (ext4 cannot
    /// do it without blocking), and a core that spins on the completion ring keeps that
    /// worker from its CPU for a time slice where cores are few (measured: ack p50 9 ms on two
    /// vCPUs with the client spinning on the other). An idle core yields to it instead.
    #[inline]
    fn poll(&mut self) {
        self.reap();
        let idle = !std::mem::take(&mut self.appended);
        self.submit();
        if idle && self.writing > 0 && self.reap() == 0 {
            let ts = types::Timespec::new().nsec(IDLE_WAIT_NS);
            let args = types::SubmitArgs::new().timespec(&ts);
            // ETIME (no completion in time) and EINTR are expected; a completion is reaped
            // by the next poll.
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
        }
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
        if self.writing > 0 {
            return Err(LogError::Io(std::io::Error::other(
                "io_uring: a write is still in the kernel's hands",
            )));
        }
        // Failed commits are written again, synchronously, before the cut.
        for w in self.log.failed_commits() {
            self.log.retrying(w.id);
            let res = self.log.write_in_flight(&w);
            self.finished(w.id, res);
        }
        if !self.log.failed_commits().is_empty() {
            return Err(LogError::Io(std::io::Error::other(
                self.error.clone().unwrap_or_default(),
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
