//! Where the replica puts records: [`LogSink`], with a synchronous implementation
//! ([`SyncLog`], for tests and the simulator: `poll` commits inline) and the production one
//! ([`ThreadedLog`]: a writer thread that commits, as one group, everything appended while its
//! previous write was in flight).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tpx_wire::log_record::LogRecord;

use crate::log::{
    last_seq_of_term, make_spare, record_seq_term, LogConfig, LogError, LogReader, Recovery,
    SegmentLog, SpareSlot,
};
use crate::storage::Storage;

/// The replica's view of its input log.
pub trait LogSink {
    /// Stages one encoded record (it must continue the log); it is durable once
    /// [`LogSink::durable_seq`] reaches its seq.
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError>;
    /// Drives the IO (the synchronous log commits here; the threaded one wakes its writer).
    fn poll(&mut self);
    fn last_seq(&self) -> u64;
    fn last_term(&self) -> u64;
    /// The highest seq on disk.
    fn durable_seq(&self) -> u64;
    /// `(term, first seq)` of every term in the log.
    fn terms(&self) -> &[(u64, u64)];
    /// The last seq of `term` (see [`crate::log::last_seq_of_term`]).
    fn last_seq_of_term(&self, term: u64) -> u64 {
        last_seq_of_term(self.terms(), self.last_seq(), term)
    }
    /// Removes every record after `seq`, durably.
    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError>;
    /// Reads durable records from `from_seq` (at most `max`) into `out`.
    fn read(&mut self, from_seq: u64, max: usize, out: &mut Vec<LogRecord>)
        -> Result<(), LogError>;
    /// The error of the last failed write, while writes fail (nothing new becomes durable).
    fn error(&self) -> Option<String>;
    /// Whether appends should stop for now (too much waiting to be written).
    fn is_full(&self) -> bool;
    /// The term stored beside the log by [`LogSink::store_term`] (0: none); an unreadable
    /// term file is an error (see [`crate::term_store`]).
    fn stored_term(&mut self) -> Result<u64, LogError>;
    /// Stores `term` durably beside the log before the replica acts on it (a grant, or a
    /// higher term heard of): a restart starts from it (see [`crate::term_store`]).
    fn store_term(&mut self, term: u64) -> Result<(), LogError>;
}

pub(crate) fn read_records<S: Storage>(
    reader: &mut LogReader<S>,
    from_seq: u64,
    max: usize,
    durable: u64,
    out: &mut Vec<LogRecord>,
) -> Result<(), LogError> {
    if reader.next_seq() != from_seq {
        reader.seek(from_seq)?;
    }
    while out.len() < max && reader.next_seq() <= durable {
        match reader.next()? {
            Some(r) => out.push(r),
            None => break,
        }
    }
    Ok(())
}

/// The log committed inline by [`LogSink::poll`].
pub struct SyncLog<S: Storage + Clone> {
    log: SegmentLog<S>,
    reader: LogReader<S>,
    error: Option<String>,
    terms: Vec<(u64, u64)>,
    max_staged: usize,
    staged: usize,
}

impl<S: Storage + Clone> std::fmt::Debug for SyncLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncLog").field("log", &self.log).finish()
    }
}

impl<S: Storage + Clone> SyncLog<S> {
    pub fn open(st: S, cfg: LogConfig) -> Result<(SyncLog<S>, Recovery), LogError> {
        let reader = LogReader::new(st.clone())?;
        let (log, rec) = SegmentLog::open(st, cfg)?;
        let terms = log.terms().to_vec();
        Ok((
            SyncLog {
                log,
                reader,
                error: None,
                terms,
                max_staged: 64 << 20,
                staged: 0,
            },
            rec,
        ))
    }

    pub fn inner(&self) -> &SegmentLog<S> {
        &self.log
    }
}

impl<S: Storage + Clone> LogSink for SyncLog<S> {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        let seq = self.log.append(rec)?;
        self.staged += rec.len();
        if self.terms.last().map(|t| t.0) != Some(self.log.last_term()) {
            self.terms = self.log.terms().to_vec();
        }
        Ok(seq)
    }

    fn poll(&mut self) {
        if !self.log.has_staged() {
            return;
        }
        match self.log.commit() {
            Ok(_) => {
                self.error = None;
                self.staged = 0;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    fn last_term(&self) -> u64 {
        self.log.last_term()
    }

    fn durable_seq(&self) -> u64 {
        self.log.durable_seq()
    }

    fn terms(&self) -> &[(u64, u64)] {
        &self.terms
    }

    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        let r = self.log.truncate_after(seq);
        // A failed cut changed nothing in memory, but a commit before it may have written.
        self.terms = self.log.terms().to_vec();
        if !self.log.has_staged() {
            self.staged = 0;
        }
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
        self.staged >= self.max_staged
    }

    fn stored_term(&mut self) -> Result<u64, LogError> {
        crate::term_store::read_term(&mut self.log.storage().clone())
    }

    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        crate::term_store::write_term(&mut self.log.storage().clone(), term)
    }
}

/// How a waiting thread (or a node's core) waits when it found no work; the one idle mode of
/// the workspace (`tpx-node` re-exports it for its `idle` and `writer_idle` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Sleep on a condition variable / short sleeps, or a node's core parks in `ppoll(2)` on
    /// its sockets and doorbell after a back-off (the default; no core is burnt).
    #[default]
    Park,
    /// Busy-poll: never sleep. Lowest latency; burns the core (a dedicated core). Opt in only.
    Spin,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    stop: bool,
    /// A truncation for the writer to do, and its answer.
    truncate: Option<u64>,
    /// `Ok(last seq after the cut)` (at most the seq asked).
    truncated: Option<Result<u64, String>>,
    writer_waiting: bool,
    /// Writes the workers finished (`commits_in_flight` > 1): commit id and errno (0: ok).
    completions: Vec<(u64, i32)>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    done: Condvar,
    /// Bytes in `pending.bytes` (read without the lock by a spinning writer).
    pending_len: AtomicU64,
    durable: AtomicU64,
    failing: AtomicBool,
    error: Mutex<Option<String>>,
    commits: AtomicU64,
    /// Set with `stop` or `truncate` (read by a spinning writer without the lock).
    attention: AtomicBool,
    /// An eventfd the writer writes (once per arming) when the durable seq moves while
    /// `wake_armed` is set ([`ThreadedLog::durable_wake_fd`]): a parked core sleeps on it.
    durable_fd: OnceLock<OwnedFd>,
    wake_armed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The durable seq moved: wakes a core parked on the eventfd (full fence, then the flag:
    /// either the core's check after arming sees the new seq or this sees the flag).
    fn durable_moved(&self, seq: u64) {
        self.durable.store(seq, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.wake_armed.load(Ordering::SeqCst) && self.wake_armed.swap(false, Ordering::SeqCst) {
            if let Some(fd) = self.durable_fd.get() {
                let one = 1u64;
                // SAFETY: writing 8 bytes to our eventfd.
                unsafe {
                    libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
                }
            }
        }
    }
}

/// The production log: appends go to a shared buffer; a writer thread takes the whole buffer
/// each time its previous write completes and writes it as one group commit.
pub struct ThreadedLog<S: Storage + Clone + Send + 'static> {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Makes the next segment ahead of its roll (see `log::SpareSlot`), off the writer thread
    /// so that no commit waits for it.
    preparer: Option<JoinHandle<()>>,
    preparer_stop: Arc<AtomicBool>,
    /// The threads that write commits while others are in flight (`commits_in_flight` > 1).
    workers: Vec<JoinHandle<()>>,
    reader: LogReader<S>,
    storage: S,
    last_seq: u64,
    last_term: u64,
    terms: Vec<(u64, u64)>,
    max_pending: usize,
    idle: IdleMode,
}

impl<S: Storage + Clone + Send + 'static> std::fmt::Debug for ThreadedLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedLog")
            .field("last_seq", &self.last_seq)
            .field("durable_seq", &self.durable_seq())
            .finish()
    }
}

impl<S: Storage + Clone + Send + 'static> ThreadedLog<S> {
    /// Opens (recovers) the log and starts its writer thread.
    pub fn open(
        st: S,
        cfg: LogConfig,
        idle: IdleMode,
    ) -> Result<(ThreadedLog<S>, Recovery), LogError> {
        Self::open_trusting(st, cfg, idle, 0, Arc::default())
    }

    /// [`ThreadedLog::open_pipelined`] with one commit in flight at a time.
    pub fn open_trusting(
        st: S,
        cfg: LogConfig,
        idle: IdleMode,
        trusted_through: u64,
        slot: Arc<SpareSlot>,
    ) -> Result<(ThreadedLog<S>, Recovery), LogError> {
        Self::open_pipelined(st, cfg, idle, trusted_through, slot, 1)
    }

    /// [`ThreadedLog::open`] recovering with [`SegmentLog::open_trusting`]; its spare segments
    /// are announced in `slot` (which the caller may hold: [`SpareSlot::held`]). With
    /// `commits_in_flight` above 1 (and an O_DIRECT | O_DSYNC storage) the writer hands each
    /// commit's write to one of that many worker threads and starts the next commit, on the
    /// next fresh blocks, while earlier ones are in flight ([`SegmentLog::start_commit`]; the
    /// durable seq moves only over commits finished with every one before them); a spinning
    /// writer (`IdleMode::Spin`) waits as a parked one does then.
    pub fn open_pipelined(
        st: S,
        cfg: LogConfig,
        idle: IdleMode,
        trusted_through: u64,
        slot: Arc<SpareSlot>,
        commits_in_flight: usize,
    ) -> Result<(ThreadedLog<S>, Recovery), LogError> {
        let depth = commits_in_flight.clamp(1, 64);
        let storage = st.clone();
        let reader = LogReader::new(st.clone())?;
        let spare_st = st.clone();
        let (mut log, rec) = SegmentLog::open_trusting(st, cfg, trusted_through)?;
        log.use_spares(slot.clone());
        let preparer_stop = Arc::new(AtomicBool::new(false));
        let stop = preparer_stop.clone();
        let preparer = std::thread::Builder::new()
            .name("tpx-log-spare".into())
            .spawn(move || preparer_loop(spare_st, cfg, &slot, &stop))
            .map_err(LogError::Io)?;
        let shared = Arc::new(Shared::default());
        shared.durable.store(log.durable_seq(), Ordering::Release);
        let last_seq = log.last_seq();
        let last_term = log.last_term();
        let terms = log.terms().to_vec();
        let sh = shared.clone();
        let mut workers = Vec::new();
        let thread = if depth == 1 {
            std::thread::Builder::new()
                .name("tpx-log-writer".into())
                .spawn(move || writer_loop(log, sh, idle))
                .map_err(LogError::Io)?
        } else {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..depth {
                let (rx, sh) = (rx.clone(), shared.clone());
                workers.push(
                    std::thread::Builder::new()
                        .name("tpx-log-io".into())
                        .spawn(move || io_worker(&rx, &sh))
                        .map_err(LogError::Io)?,
                );
            }
            std::thread::Builder::new()
                .name("tpx-log-writer".into())
                .spawn(move || pipelined_writer_loop(log, sh, depth, tx))
                .map_err(LogError::Io)?
        };
        Ok((
            ThreadedLog {
                shared,
                thread: Some(thread),
                preparer: Some(preparer),
                preparer_stop,
                workers,
                reader,
                storage,
                last_seq,
                last_term,
                terms,
                max_pending: 64 << 20,
                // The pipelined writer never spins: appends must wake it.
                idle: if depth > 1 { IdleMode::Park } else { idle },
            },
            rec,
        ))
    }

    /// Runs the writer thread at `SCHED_FIFO` priority `priority` (1-99), so that a commit's
    /// wake-ups (the core's hand-over, the write's completion) preempt the busy-polling cores
    /// at once instead of waiting for a time slice (ARCHITECTURE.md, "Measured (e2e-bench)":
    /// on two vCPUs with the node's core and a client spinning, the writer waited up to a
    /// 4 ms scheduler tick). Needs `CAP_SYS_NICE` (or an `RLIMIT_RTPRIO` allowing it): without
    /// it the error is `EPERM` and the thread keeps its normal scheduling, which the caller
    /// says. Refused (`InvalidInput`) for a spinning writer (`IdleMode::Spin`), which at a
    /// real-time priority would starve every other thread of its CPU.
    pub fn set_writer_rt_priority(&self, priority: u8) -> std::io::Result<()> {
        if self.idle == IdleMode::Spin || !(1..=99).contains(&priority) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a real-time writer must park (writer_idle = \"park\") at priority 1-99",
            ));
        }
        let param = libc::sched_param {
            sched_priority: i32::from(priority),
        };
        for t in self.thread.iter().chain(self.workers.iter()) {
            // SAFETY: the thread is alive (joined only in `stop`), `param` is valid for the
            // call.
            let r =
                unsafe { libc::pthread_setschedparam(t.as_pthread_t(), libc::SCHED_FIFO, &param) };
            if r != 0 {
                return Err(std::io::Error::from_raw_os_error(r));
            }
        }
        Ok(())
    }

    /// The writer thread's scheduling policy and priority (`libc::SCHED_*`).
    pub fn writer_sched(&self) -> std::io::Result<(i32, i32)> {
        let Some(t) = self.thread.as_ref() else {
            return Err(std::io::Error::other("the writer thread has stopped"));
        };
        let mut policy = 0;
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: the writer thread is alive; both out-pointers are valid.
        let r = unsafe { libc::pthread_getschedparam(t.as_pthread_t(), &mut policy, &mut param) };
        if r == 0 {
            Ok((policy, param.sched_priority))
        } else {
            Err(std::io::Error::from_raw_os_error(r))
        }
    }

    /// Lets the writer thread, its workers and the spare preparer run on `cpus` only (CPU
    /// ids as `sched_setaffinity(2)` numbers them). A thread starts with its creator's
    /// affinity, so a log opened on a pinned, busy-polling core would otherwise write from that
    /// core's CPU: every commit's system calls (on a VM, tens of µs of CPU for each O_DIRECT
    /// write and its cache flush) and wake-ups then preempt the core (ARCHITECTURE.md,
    /// "Measured (e2e-bench)"). An empty `cpus` changes nothing.
    pub fn set_writer_cpus(&self, cpus: &[usize]) -> std::io::Result<()> {
        let threads = self
            .thread
            .iter()
            .chain(&self.workers)
            .chain(&self.preparer);
        for t in threads {
            crate::process::set_thread_cpus(t, cpus)?;
        }
        Ok(())
    }

    /// The CPUs the writer thread may run on.
    pub fn writer_cpus(&self) -> std::io::Result<Vec<usize>> {
        let Some(t) = self.thread.as_ref() else {
            return Err(std::io::Error::other("the writer thread has stopped"));
        };
        // SAFETY: a zeroed cpu_set_t is valid; the writer thread is alive.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::pthread_getaffinity_np(
                t.as_pthread_t(),
                std::mem::size_of::<libc::cpu_set_t>(),
                &mut set,
            )
        };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r));
        }
        // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }

    /// An eventfd (non-blocking) that becomes readable when the durable seq moves while
    /// armed ([`ThreadedLog::arm_durable_wake`]), for a core that sleeps in `ppoll` while
    /// records wait for the writer. Made at the first call; the same descriptor after.
    pub fn durable_wake_fd(&self) -> std::io::Result<RawFd> {
        if let Some(fd) = self.shared.durable_fd.get() {
            return Ok(fd.as_raw_fd());
        }
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor. A racing first call loses its own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(self.shared.durable_fd.get_or_init(|| owned).as_raw_fd())
    }

    /// The caller is about to sleep on [`ThreadedLog::durable_wake_fd`]: empties it and asks
    /// the writer to write it once, at its next durable seq. The caller must look at
    /// [`LogSink::durable_seq`] after this, before it sleeps (a commit may have completed
    /// just before). No-op before the descriptor is made.
    pub fn arm_durable_wake(&self) {
        if let Some(fd) = self.shared.durable_fd.get() {
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
            unsafe {
                libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
            }
            self.shared.wake_armed.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
    }

    /// Group commits written so far.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until everything appended is durable or writes fail.
    pub fn sync(&self, timeout: Duration) -> bool {
        let t0 = std::time::Instant::now();
        while self.durable_seq() < self.last_seq {
            if t0.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        true
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.lock().stop = true;
            self.shared.attention.store(true, Ordering::Release);
            self.shared.wake.notify_all();
            let _ = t.join();
        }
        // The writer dropped the job queue when it returned: the workers end.
        for t in self.workers.drain(..) {
            let _ = t.join();
        }
        if let Some(t) = self.preparer.take() {
            self.preparer_stop.store(true, Ordering::Relaxed);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl<S: Storage + Clone + Send + 'static> Drop for ThreadedLog<S> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keeps a spare segment ready: makes one whenever the log took the last (checked every 20 ms;
/// a segment lasts far longer). A failure (a full disk) is retried a second later; meanwhile
/// rolls make their segments themselves.
pub(crate) fn preparer_loop<S: Storage>(
    mut st: S,
    cfg: LogConfig,
    slot: &SpareSlot,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        if slot.ready.load(Ordering::Acquire) || slot.held.load(Ordering::Acquire) {
            std::thread::park_timeout(Duration::from_millis(20));
            continue;
        }
        match make_spare(&mut st, &cfg, stop) {
            Ok(()) => slot.ready.store(true, Ordering::Release),
            Err(_) => std::thread::park_timeout(Duration::from_secs(1)),
        }
    }
}

/// A cut asked of the writer (`truncate_after(seq)`): the records still pending were
/// appended (the caller counts them), so they go into the log first and the cut keeps those up
/// to `seq`; the answer (the log's last seq, or why not) is left in `p.truncated`. Both writer
/// loops run it with no commit in flight.
fn cut_with_pending<S: Storage>(log: &mut SegmentLog<S>, p: &mut Pending, sh: &Shared, seq: u64) {
    let pending = std::mem::take(&mut p.bytes);
    sh.pending_len.store(0, Ordering::Release);
    let r = log
        .append_many(&pending)
        .and_then(|_| log.truncate_after(seq))
        .map(|()| log.last_seq())
        .map_err(|e| e.to_string());
    if r.is_ok() {
        sh.durable_moved(log.durable_seq());
    }
    p.truncated = Some(r);
    sh.attention.store(p.stop, Ordering::Release);
    sh.done.notify_all();
}

/// The writer waits (at most 5 ms) for an appender's or a control call's wake-up, with
/// `writer_waiting` set so that they know to ring.
fn wait_for_work<'a>(sh: &'a Shared, mut p: MutexGuard<'a, Pending>) -> MutexGuard<'a, Pending> {
    p.writer_waiting = true;
    let mut p = sh
        .wake
        .wait_timeout(p, Duration::from_millis(5))
        .map(|(g, _)| g)
        .unwrap_or_else(|e| e.into_inner().0);
    p.writer_waiting = false;
    p
}

fn writer_loop<S: Storage>(mut log: SegmentLog<S>, sh: Arc<Shared>, idle: IdleMode) {
    let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
    loop {
        if idle == IdleMode::Spin {
            while sh.pending_len.load(Ordering::Acquire) == 0 && !log.has_staged() {
                std::hint::spin_loop();
                if sh.attention.load(Ordering::Acquire) {
                    break;
                }
            }
        }
        {
            let mut p = sh.lock();
            loop {
                if let Some(seq) = p.truncate.take() {
                    // Records still pending were appended (the caller counts them): the cut
                    // keeps those up to `seq`, so they go into the log first (staged; the cut
                    // writes the kept ones before cutting).
                    batch.clear();
                    cut_with_pending(&mut log, &mut p, &sh, seq);
                    continue;
                }
                if p.stop || !p.bytes.is_empty() || log.has_staged() {
                    break;
                }
                p = wait_for_work(&sh, p);
            }
            if p.stop
                && p.bytes.is_empty()
                && (!log.has_staged() || sh.failing.load(Ordering::Acquire))
            {
                // Stopping: what still cannot be written was never durable, so never
                // acknowledged; it is dropped with the process.
                return;
            }
            batch.clear();
            std::mem::swap(&mut batch, &mut p.bytes);
            sh.pending_len.store(0, Ordering::Release);
        }
        if !batch.is_empty() {
            if let Err(e) = log.append_many(&batch) {
                // A caller bug (out of order): nothing of this batch can be written.
                *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                sh.failing.store(true, Ordering::Release);
                continue;
            }
        }
        match log.commit() {
            Ok(d) => {
                sh.durable_moved(d);
                sh.commits.store(log.commits(), Ordering::Relaxed);
                if sh.failing.swap(false, Ordering::AcqRel) {
                    *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
            Err(e) => {
                *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                sh.failing.store(true, Ordering::Release);
                // Keep the records staged; try again shortly (space may be freed).
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// One commit's write for a worker: the `len` bytes at `ptr` (commit `id`'s blocks, which stay
/// allocated and unchanged until the writer finishes the commit, after the worker reported it)
/// to write at `offset` of the O_DIRECT | O_DSYNC descriptor `fd` (open until no commit of its
/// segment is in flight: a roll waits for them).
struct Job {
    id: u64,
    fd: std::os::unix::io::RawFd,
    ptr: *const u8,
    len: usize,
    offset: u64,
}

// SAFETY: see `Job`: the bytes outlive the job and nobody writes them meanwhile.
unsafe impl Send for Job {}

/// A worker: writes each job (`pwrite` until done; O_DSYNC makes it durable) and reports it.
fn io_worker(jobs: &Mutex<std::sync::mpsc::Receiver<Job>>, sh: &Shared) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let mut done = 0usize;
        let mut errno = 0;
        while done < job.len {
            // SAFETY: `job.ptr .. + len` is readable for the job's life (see `Job`).
            let n = unsafe {
                libc::pwrite(
                    job.fd,
                    job.ptr.add(done).cast(),
                    job.len - done,
                    (job.offset + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                errno = e.raw_os_error().unwrap_or(libc::EIO);
                break;
            }
            if n == 0 {
                errno = libc::EIO;
                break;
            }
            done += n as usize;
        }
        sh.lock().completions.push((job.id, errno));
        sh.wake.notify_all();
    }
}

/// The writer with several commits in flight: hands each started commit to a worker, takes
/// their completions, and starts the next commits from what the core appended meanwhile.
fn pipelined_writer_loop<S: Storage>(
    mut log: SegmentLog<S>,
    sh: Arc<Shared>,
    depth: usize,
    jobs: std::sync::mpsc::Sender<Job>,
) {
    let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut done: Vec<(u64, i32)> = Vec::new();
    // Staged records that could not start (a roll waits for the commits in flight).
    let mut stuck = false;
    // Writes handed out and not yet reported back.
    let mut outstanding = 0usize;
    loop {
        {
            let mut p = sh.lock();
            loop {
                if !p.completions.is_empty() {
                    break;
                }
                if log.in_flight() == 0 {
                    if let Some(seq) = p.truncate.take() {
                        // As in `writer_loop`: pending records first, then the cut.
                        cut_with_pending(&mut log, &mut p, &sh, seq);
                        stuck = false;
                        continue;
                    }
                }
                if p.stop && outstanding == 0 {
                    break;
                }
                let can_start = log.in_flight() < depth
                    && (!p.bytes.is_empty() || (log.staged_bytes() > 0 && !stuck));
                if can_start && p.truncate.is_none() {
                    break;
                }
                p = wait_for_work(&sh, p);
            }
            if p.stop
                && p.bytes.is_empty()
                && p.completions.is_empty()
                && outstanding == 0
                && ((log.in_flight() == 0 && log.staged_bytes() == 0)
                    || sh.failing.load(Ordering::Acquire))
            {
                // As in `writer_loop`: what cannot be written was never acknowledged.
                return;
            }
            std::mem::swap(&mut done, &mut p.completions);
            batch.clear();
            if p.truncate.is_none() {
                std::mem::swap(&mut batch, &mut p.bytes);
                sh.pending_len.store(0, Ordering::Release);
            }
        }
        let mut failed = false;
        outstanding -= done.len();
        for (id, errno) in done.drain(..) {
            let res = if errno == 0 {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(errno))
            };
            match log.finish_commit(id, res) {
                Ok(d) => {
                    sh.durable_moved(d);
                    sh.commits.store(log.commits(), Ordering::Relaxed);
                }
                Err(e) => {
                    *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                    sh.failing.store(true, Ordering::Release);
                    failed = true;
                }
            }
        }
        stuck = false;
        if !batch.is_empty() {
            if let Err(e) = log.append_many(&batch) {
                *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                sh.failing.store(true, Ordering::Release);
                continue;
            }
        }
        let retry = log.failed_commits();
        if failed || !retry.is_empty() {
            if outstanding > 0 {
                // Wait for the others first: their completions come back through the loop.
                continue;
            }
            // Keep the records; write the failed commits again, unchanged, at the same
            // offsets (space may be freed).
            std::thread::sleep(Duration::from_millis(2));
            for w in retry {
                log.retrying(w.id);
                send_commit(&mut log, &sh, &jobs, w);
                outstanding += 1;
            }
            continue;
        }
        if log.in_flight() == 0 && sh.failing.swap(false, Ordering::AcqRel) {
            *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        loop {
            match log.start_commit(depth) {
                Ok(Some(w)) => {
                    send_commit(&mut log, &sh, &jobs, w);
                    outstanding += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    *sh.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                    sh.failing.store(true, Ordering::Release);
                    break;
                }
            }
        }
        stuck = log.staged_bytes() > 0;
    }
}

/// Hands commit `w` to a worker, or writes it here when the storage has no O_DIRECT
/// descriptor (buffered logs, tests' memory storage) and reports it as a worker would.
fn send_commit<S: Storage>(
    log: &mut SegmentLog<S>,
    sh: &Shared,
    jobs: &std::sync::mpsc::Sender<Job>,
    w: crate::log::CommitWrite,
) {
    if let Some(fd) = log.storage().direct_fd(w.file) {
        let bytes = log.flight_bytes(w.id);
        let job = Job {
            id: w.id,
            fd,
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            offset: w.offset,
        };
        if jobs.send(job).is_ok() {
            return;
        }
    }
    let errno = match log.write_in_flight(&w) {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    };
    sh.lock().completions.push((w.id, errno));
}

impl<S: Storage + Clone + Send + 'static> LogSink for ThreadedLog<S> {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        let (seq, term, len) = record_seq_term(rec).ok_or(LogError::BadRecord)?;
        if len != rec.len() {
            return Err(LogError::BadRecord);
        }
        if seq != self.last_seq + 1 {
            return Err(LogError::OutOfOrder {
                expected_seq: self.last_seq + 1,
                got_seq: seq,
            });
        }
        if term < self.last_term {
            return Err(LogError::TermWentBack {
                last_term: self.last_term,
                got_term: term,
            });
        }
        if term > self.last_term || self.terms.is_empty() {
            self.terms.push((term, seq));
        }
        let mut p = self.shared.lock();
        p.bytes.extend_from_slice(rec);
        self.shared
            .pending_len
            .store(p.bytes.len() as u64, Ordering::Release);
        let wake = p.writer_waiting;
        drop(p);
        if wake && self.idle == IdleMode::Park {
            self.shared.wake.notify_one();
        }
        self.last_seq = seq;
        self.last_term = term;
        Ok(seq)
    }

    fn poll(&mut self) {}

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn last_term(&self) -> u64 {
        self.last_term
    }

    fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    fn terms(&self) -> &[(u64, u64)] {
        &self.terms
    }

    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        if seq >= self.last_seq {
            return Ok(());
        }
        let mut p = self.shared.lock();
        p.truncate = Some(seq);
        p.truncated = None;
        self.shared.attention.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        while p.truncated.is_none() {
            p = self
                .shared
                .done
                .wait_timeout(p, Duration::from_millis(5))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let r = p.truncated.take().unwrap_or(Ok(seq));
        drop(p);
        let seq = r.map_err(|e| LogError::Io(std::io::Error::other(e)))?;
        self.last_seq = seq;
        self.terms.retain(|&(_, s)| s <= seq);
        self.last_term = self.terms.last().map_or(0, |t| t.0);
        self.reader = LogReader::new(self.storage.clone())?;
        Ok(())
    }

    fn read(
        &mut self,
        from_seq: u64,
        max: usize,
        out: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        let durable = self.durable_seq();
        read_records(&mut self.reader, from_seq, max, durable, out)
    }

    fn error(&self) -> Option<String> {
        if self.shared.failing.load(Ordering::Acquire) {
            self.shared
                .error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            None
        }
    }

    fn is_full(&self) -> bool {
        self.shared.pending_len.load(Ordering::Acquire) as usize >= self.max_pending
    }

    fn stored_term(&mut self) -> Result<u64, LogError> {
        crate::term_store::read_term(&mut self.storage.clone())
    }

    /// Written on the caller's thread (a term change is rare; the write is one block, a
    /// rename and a directory sync), not through the writer thread.
    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        crate::term_store::write_term(&mut self.storage.clone(), term)
    }
}
