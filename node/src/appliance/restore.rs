//! A start from a snapshot, beside the cores' own start: a loader thread reads, verifies and
//! restores the newest valid image (`shard/snapshot.rs`) while the sequencing core opens (and
//! recovers) the log; each core then takes its part: a shard core its restored shard, a
//! gateway core its session table, the sequencing core the image's seq and de-duplication
//! table (it replays the log after it). Without `[snapshots]`, or without a valid image, the
//! parts are empty and the node replays the whole log; a log whose first records retention
//! deleted is then refused.

use crate::runtime::lines::say;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use crate::config::snapshots::SnapshotsConfig;
use crate::gateway::routing::Routing;
use crate::gateway::session::{SessionSettings, SessionTable};
use crate::runtime::state::NodeState;
use crate::sequencing::stage::StartFrom;
use crate::shard::apply::Shard;
use crate::shard::plan::ShardPlan;

/// What the cores take.
#[derive(Debug, Default)]
struct Parts {
    /// By shard id: the restored shard and its checkpoint seed.
    shards: Vec<Option<(Shard, (u64, u64))>>,
    /// By gateway number.
    tables: Vec<Option<SessionTable>>,
    from: Option<StartFrom>,
    image: Option<PathBuf>,
    error: Option<String>,
}

/// The loader's result, once ready.
#[derive(Debug)]
pub struct Restore {
    parts: Mutex<Option<Parts>>,
    ready: Condvar,
    /// The seq of the newest image (0: none): the log's open trusts the segments wholly at or
    /// before it, and this loader checks them.
    trusted: u64,
}

/// The process status of a node that found a trusted segment damaged after it started (as
/// a start that finds it refuses: `tpx node` exits 1).
pub const EXIT_LOG_CORRUPT: u32 = 1;

/// What the loader needs.
#[derive(Debug)]
pub struct RestoreInput {
    pub snapshots: Option<SnapshotsConfig>,
    pub log_dir: PathBuf,
    /// The log is in memory (`log = "in-process"`): nothing to load, nothing to check.
    pub in_memory: bool,
    pub plan: ShardPlan,
    pub gateways: usize,
    pub sessions: SessionSettings,
    pub routing: Routing,
}

impl Restore {
    /// Starts the loader thread; the node's marks are set from the image before the parts are
    /// ready.
    ///
    /// The log's segments wholly at or before the newest image's seq ([`Restore::trusted_through`])
    /// are not scanned by the log's open (`SegmentLog::open_trusting`): the node replays none of
    /// their records when it starts from that image. When it starts from an older image or from
    /// the log's start after all, this loader checks them (`tpx_sequencer::log::check_trusted`)
    /// before the parts are ready, so a damaged one refuses the start as `open` would; else it
    /// checks them once the replay is done, beside the running node, and a damaged one stops
    /// the node (`LOGERROR`, exit status [`EXIT_LOG_CORRUPT`]): acknowledged records are
    /// damaged, which a start would have refused.
    pub fn start(input: RestoreInput, shared: Arc<NodeState>) -> Result<Arc<Restore>, String> {
        let trusted = match (&input.snapshots, input.in_memory) {
            (Some(s), false) => crate::shard::snapshot::images(&s.dir_for(&input.log_dir))
                .first()
                .map_or(0, |i| i.0),
            _ => 0,
        };
        let r = Arc::new(Restore {
            parts: Mutex::new(None),
            ready: Condvar::new(),
            trusted,
        });
        // With an image to load, the shards' engines are built (their memory mapped) on a
        // thread of their own while the loader reads and checks the image; once the loader is
        // done, the same thread faults their tables in (all but what the restore wrote) while
        // the core replays the log's tail: the replay does not end before it is done
        // (`NodeState::tables_faulted`; the core faults in what is left then). Not sooner:
        // beside the loader it took the CPU and the kernel's page allocation from the image's
        // read (file 32-37 → 101-343 ms here); and at the lowest CPU priority, which on the
        // 2-vCPU VM slowed the replay by a third otherwise.
        // Both threads run beside the cores (the CPUs the plan leaves free, if any): left to
        // the scheduler, the table thread took half of the sequencing core's CPU through the
        // log's open and the replay's first 100 ms.
        let beside = crate::runtime::affinity::cpus_free_of_the_cores(&shared.core_cpus);
        let prebuilt = if trusted > 0 {
            let (tx, rx) = std::sync::mpsc::channel();
            let plan = input.plan.clone();
            shared.tables_faulted.store(false, Ordering::Release);
            let faulted = TablesFaulted(shared.clone());
            let loaded = r.clone();
            let cpus = beside.clone();
            std::thread::Builder::new()
                .name("tpx-restore-mem".into())
                .spawn(move || {
                    let _ = crate::runtime::affinity::allow_current_thread_on(&cpus);
                    let Some((engines, rest)) = crate::shard::snapshot::build_engines(&plan) else {
                        return;
                    };
                    let rest = Arc::new(rest);
                    *faulted
                        .0
                        .tables_pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(rest.clone());
                    let _ = tx.send(engines);
                    loaded.wait_loaded();
                    // Beside the replay, at the lowest priority: the replay's core and its
                    // reader come first; the core takes what is left at the replay's end.
                    lowest_priority();
                    let t0 = crate::runtime::clock::now_ns();
                    if let Some(ms) = tables_delay_from_env() {
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                    }
                    rest.run();
                    while !rest.is_done() {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    let ms = crate::runtime::clock::now_ns().saturating_sub(t0) / 1_000_000;
                    drop(faulted);
                    say(format_args!(
                        "tpx node: TABLES faulted in: {} MiB of the engines' tables, done {ms} \
                         ms after the restore",
                        rest.bytes() >> 20
                    ));
                })
                .map_err(|e| format!("starting the snapshot loader: {e}"))?;
            Some(rx)
        } else {
            None
        };
        let done = r.clone();
        std::thread::Builder::new()
            .name("tpx-restore".into())
            .spawn(move || {
                let _ = crate::runtime::affinity::allow_current_thread_on(&beside);
                let parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    load(&input, &shared, trusted, prebuilt)
                }))
                .unwrap_or_else(|_| Parts {
                    error: Some("the snapshot loader panicked".into()),
                    ..Parts::default()
                });
                let from_trusted = parts.from.as_ref().is_some_and(|f| f.seq >= trusted);
                if let Ok(mut g) = done.parts.lock() {
                    *g = Some(parts);
                }
                done.ready.notify_all();
                if trusted > 0 && from_trusted {
                    check_after_replay(&input.log_dir, trusted, &shared);
                }
            })
            .map_err(|e| format!("starting the snapshot loader: {e}"))?;
        Ok(r)
    }

    /// The seq through which the log's open may trust the segments (see [`Restore::start`]).
    pub fn trusted_through(&self) -> u64 {
        self.trusted
    }

    /// Waits until the loader is done (its parts ready, whatever they hold).
    fn wait_loaded(&self) {
        self.with(|_| ());
    }

    fn with<T>(&self, f: impl FnOnce(&mut Parts) -> T) -> T {
        let mut g = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        while g.is_none() {
            g = self.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        f(g.as_mut().expect("ready"))
    }

    /// Shard `k` restored from the image (waits for the loader), with its checkpoint seed.
    pub fn shard(&self, k: usize) -> Option<(Shard, (u64, u64))> {
        self.with(|p| p.shards.get_mut(k).and_then(Option::take))
    }

    /// Gateway `g`'s session table restored from the image (waits for the loader).
    pub fn table(&self, g: usize) -> Option<SessionTable> {
        self.with(|p| p.tables.get_mut(g).and_then(Option::take))
    }

    /// Where the sequencing stage starts (waits for the loader): after the image, or at the
    /// log's start (`None`); an error when neither is possible.
    pub fn from(&self) -> Result<Option<StartFrom>, String> {
        self.with(|p| match p.error.take() {
            Some(e) => Err(e),
            None => Ok(p.from.take()),
        })
    }

    /// The image the node started from (waits for the loader).
    pub fn image(&self) -> Option<PathBuf> {
        self.with(|p| p.image.clone())
    }
}

/// `TPX_TEST_TABLES_DELAY_MS=<ms>`, read only by a binary built with debug assertions: the
/// thread that faults the tables in waits that long first (a starved thread, for the test
/// that the node serves only once they are in: the core then faults them in itself).
fn tables_delay_from_env() -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("TPX_TEST_TABLES_DELAY_MS").ok()?.parse().ok()
}

/// Sets [`NodeState::tables_faulted`] when dropped: by the thread that faults the tables in,
/// once it is done, or whenever it ends otherwise (an engine it could not build, a panic).
struct TablesFaulted(Arc<NodeState>);

impl Drop for TablesFaulted {
    fn drop(&mut self) {
        self.0.tables_faulted.store(true, Ordering::Release);
    }
}

/// Checks the trusted segments; `Err` names the damage.
fn check_trusted(log_dir: &std::path::Path, trusted: u64) -> Result<usize, String> {
    let st = tpx_sequencer::FileStorage::new(log_dir, tpx_sequencer::WriteMode::Buffered)
        .map_err(|e| format!("{}: {e}", log_dir.display()))?;
    tpx_sequencer::log::check_trusted(st, trusted).map_err(|e| e.to_string())
}

/// The check of the trusted segments beside the running node, once its replay is done (it
/// would compete with the replay for the cores otherwise), at the lowest CPU priority.
fn check_after_replay(log_dir: &std::path::Path, trusted: u64, shared: &NodeState) {
    while !shared.replay_done.load(Ordering::Acquire) {
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    lowest_priority();
    match check_trusted(log_dir, trusted) {
        Ok(_) => {}
        Err(e) if shared.shutdown.load(Ordering::Relaxed) => {
            // Stopping (a test's folder may be gone already): nothing to tell.
            let _ = e;
        }
        Err(e) => {
            say(format_args!(
                "tpx node: LOGERROR the log before the snapshot's seq {trusted} is damaged: {e};                  stopping (OPERATIONS.md, \"Restart policy\")"
            ));
            shared.exit_code.store(EXIT_LOG_CORRUPT, Ordering::Relaxed);
            shared.shutdown.store(true, Ordering::Relaxed);
        }
    }
}

/// Puts the calling thread at the lowest CPU priority, so that the check beside a running
/// node takes only CPU time its cores leave (Linux: per thread): `SCHED_IDLE`, which runs
/// only when no other thread wants the CPU, even against a node started at nice 19 (where
/// nice 19 alone got the check an equal share of the CPU as the core during the candidacy
/// and the first logins); nice 19 if that is refused. Its reads take the idle I/O class
/// (where the disk's scheduler has classes).
fn lowest_priority() {
    // SAFETY: gettid, sched_setscheduler, setpriority and ioprio_set on the calling thread;
    // `param` lives across the call.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
        // IOPRIO_WHO_PROCESS (1), IOPRIO_CLASS_IDLE (3) << IOPRIO_CLASS_SHIFT (13).
        libc::syscall(libc::SYS_ioprio_set, 1, tid, 3 << 13);
    }
}

fn load(
    input: &RestoreInput,
    shared: &NodeState,
    trusted: u64,
    prebuilt: Option<std::sync::mpsc::Receiver<crate::shard::snapshot::Prebuilt>>,
) -> Parts {
    let mut parts = Parts {
        shards: (0..input.plan.shard_count()).map(|_| None).collect(),
        tables: (0..input.gateways).map(|_| None).collect(),
        ..Parts::default()
    };
    if input.in_memory {
        return parts;
    }
    // The tables the check decoded last: the image loaded is the last one checked (a check
    // precedes the rest of an image's verification), so they are kept rather than decoded
    // again.
    let checked: std::cell::RefCell<Vec<SessionTable>> = Default::default();
    let restored = input.snapshots.as_ref().and_then(|s| {
        let check = |images: &[Vec<u8>]| -> Result<(), String> {
            let mut tables = checked.borrow_mut();
            tables.clear();
            for (g, b) in images.iter().enumerate() {
                tables.push(
                    SessionTable::from_image(input.sessions.clone(), input.routing.clone(), b)
                        .map_err(|e| format!("gateway {g}'s sessions: {e}"))?,
                );
            }
            Ok(())
        };
        crate::shard::snapshot::load_newest(
            &s.dir_for(&input.log_dir),
            &input.log_dir,
            &input.plan,
            input.gateways,
            &check,
            &mut |p, why| {
                say(format_args!(
                    "tpx node: SNAPSHOT skipped {}: {why}",
                    p.display()
                ))
            },
            prebuilt,
        )
    });
    if trusted > 0 && restored.as_ref().is_none_or(|r| r.seq < trusted) {
        // The replay reads records the log's open did not scan: check them first.
        if let Err(e) = check_trusted(&input.log_dir, trusted) {
            parts.error = Some(format!(
                "opening the log in {}: {e}",
                input.log_dir.display()
            ));
            return parts;
        }
    }
    let Some(r) = restored else {
        let first = first_log_seq(&input.log_dir);
        if first > 1 {
            parts.error = Some(format!(
                "the log in {} starts at seq {first} (retention) and no valid snapshot covers \
                 the records before it: restore an image into [snapshots] dir, or copy the log \
                 from the peer (OPERATIONS.md, \"Restart policy\")",
                input.log_dir.display()
            ));
        }
        return parts;
    };
    let mut checked = checked.into_inner();
    if checked.len() != r.sessions.len() {
        checked.clear();
        for (g, bytes) in r.sessions.iter().enumerate() {
            match SessionTable::from_image(input.sessions.clone(), input.routing.clone(), bytes) {
                Ok(t) => checked.push(t),
                Err(e) => {
                    parts.error = Some(format!("gateway {g}'s sessions in {}: {e}", r.name));
                    return parts;
                }
            }
        }
    }
    for (g, t) in checked.into_iter().enumerate() {
        parts.tables[g] = Some(t);
    }
    for (sh, check) in r.shards.into_iter().zip(r.checks) {
        let k = usize::from(sh.id);
        parts.shards[k] = Some((sh, check));
    }
    let ms = |ns: u64| ns / 1_000_000;
    say(format_args!(
        "tpx node: SNAPSHOT start from seq={} ({}), {} of {} shard hashes confirmed by the \
         log's checkpoints, loaded in {} ms (file {} ms, log {} ms, waiting for the engines {} \
         ms, restore {} ms; the engines built in {} ms beside)",
        r.seq,
        r.name,
        r.confirmed,
        input.plan.shard_count(),
        ms(r.load_ns),
        ms(r.decode_ns),
        ms(r.log_check_ns),
        ms(r.engines_wait_ns),
        ms(r.restore_ns),
        ms(r.engines_build_ns)
    ));
    // The shards hold every record through the image's seq: the gateways' reply watermarks
    // start there (set before any core takes its part).
    let m = &shared.marks;
    m.fed.store(r.seq, Ordering::Release);
    for p in m.pushed.iter().chain(m.applied.iter()) {
        p.store(r.seq, Ordering::Release);
    }
    shared.snapshots.start_seq.store(r.seq, Ordering::Relaxed);
    parts.image = Some(r.path.clone());
    parts.from = Some(StartFrom {
        seq: r.seq,
        dedup: r.dedup,
        name: r.name,
    });
    parts
}

/// The first seq the log in `dir` holds (1 when it holds none, or cannot be read here: the
/// log's own open reports that).
fn first_log_seq(dir: &std::path::Path) -> u64 {
    if !dir.exists() {
        return 1;
    }
    tpx_sequencer::FileStorage::new(dir, tpx_sequencer::WriteMode::Buffered)
        .ok()
        .and_then(|st| tpx_sequencer::LogReader::new(st).ok())
        .map_or(1, |r| r.next_seq())
}
