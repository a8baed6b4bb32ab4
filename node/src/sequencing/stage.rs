//! The sequencing stage: the one ordering point every state-changing request passes through,
//! a [`Replica`] on the sequencing core's duty cycle. Its log and transport are `log.rs`'s
//! (a file log and TCP, or for a single node an in-process witness over an in-memory
//! transport, and for `log = "in-process"` an in-memory log); its feed to the shards is
//! `feed.rs`.
//!
//! One cycle: (1) move records waiting for room to the shard rings; (2) while the log recovered
//! at start is being replayed into the shards, only that; (3) primary: `submit` the gateways'
//! requests, their log input as it came (a refused one is answered on the sequencer → gateway
//! ring: duplicate, unavailable); (4) `poll` the replica: IO, replication, witness lease,
//! commit, and the applier, which hands records to the shards (primary: up to
//! `acknowledgeable_seq`; standby: every record received); (5) role changes set
//! `NodeState::active` (the gateways refuse logins while it is false, the shards may read it);
//! (6) ring the doorbells of the shards it pushed to.
//!
//! Hot-path discipline: the stage's own queues (`meta`, `overflow`) are preallocated and bounded
//! (input stops while they are full); requests and records are `Copy`. What it cannot keep, all
//! inside `tpx-sequencer`: `ThreadedLog::append` takes a mutex per record to hand the bytes to
//! the writer thread (uncontended unless the writer is swapping buffers); the replica's `recent`
//! queue and the TCP transport's buffers grow amortised (no allocation once warm);
//! `TcpTransport` dials a missing peer without blocking (a connect in flight is finished or
//! dropped after 20 ms by later polls).

use crate::runtime::lines::say;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tpx_sequencer::log::SpareSlot;
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::{
    Clock, FileStorage, LogConfig, LogReader, LogSink, Replica, ReplicaConfig, ReplicaEvent, Role,
    Storage, SubmitError, SystemClock, TcpTransport, ThreadedLog, Transport, UringLog,
    WitnessServer, WriteMode, WITNESS_ID,
};
use tpx_wire::enums::RejectReason;
use tpx_wire::log_record::{Checkpoint, Input, Tick};

use crate::config::replication::{LogWrite, LogWriter, ReplicationConfig};
use crate::msg::{Report, ReportKind, Request, Sequenced, ALL_SHARDS};
use crate::runtime::doorbell::Doorbell;
use crate::runtime::ring::{Consumer, Producer};
use crate::runtime::state::NodeState;
use crate::sequencing::feed::{origin_fits, origin_of, LocalMeta, ShardFeed, EXIT_REJOIN};
use crate::sequencing::fence::Fences;
use crate::sequencing::log::{LocalLink, MemLog, NodeLog, NodeTransport};
use crate::sequencing::read_ahead::ReplaySource;

/// Most items taken from one ring (or replayed) per duty cycle.
const BATCH: usize = 1024;

/// Requests submitted but not yet applied (their answers pending) before the stage stops taking
/// input; bounds `meta` (preallocated to this).
const MAX_IN_FLIGHT: usize = 1 << 16;

/// How often a quiet single node polls its replica (see `SequencerStage::cycle`).
const QUIET_POLL_NS: u64 = 20_000;

/// How often (the core's monotonic clock) an idle primary checks whether a GTD order is due
/// with no record to carry the log's time past its expiry (see `SequencerStage::tick_if_due`).
const TICK_CHECK_NS: u64 = 1_000_000;

/// How long a parked core sleeps at most while its log writer has records to make durable and
/// rings nothing when a commit completes (`log_writer = "uring"`): the core looks again this
/// often (µs; the timeout ends on time: `runtime::idle::tighten_timer_slack`). The thread
/// writer's wake-up (`poll_fds`), data from the standby, the witness or a client wake it
/// sooner.
pub const LOG_WAIT_POLL_US: u64 = 25;

/// How a node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartRole {
    /// Ask the witness for a term at once.
    Primary,
    /// Follow the peer; ask for a term only when the primary is silent for `timeout_us`.
    Standby,
}

/// The answer to a duplicate whose original is record `seq`, deferred in `dup_term`, now that
/// the replica is (or is not) `primary` of `term` with `acked` acknowledgeable: `None` while it
/// must wait; `DuplicateClientOrderId` ("already sequenced": a promise) only once the original
/// is acknowledgeable in the term it was found in; `Unavailable` once this node can no longer
/// tell (it stepped down: the new term may cut the original; the client re-sends there).
pub fn duplicate_answer(
    primary: bool,
    term: u64,
    acked: u64,
    seq: u64,
    dup_term: u64,
) -> Option<RejectReason> {
    if !primary || term != dup_term {
        Some(RejectReason::Unavailable)
    } else if seq <= acked {
        Some(RejectReason::DuplicateClientOrderId)
    } else {
        None
    }
}

/// A start from a node snapshot (`shard/snapshot.rs`): the shards already hold every record up
/// to `seq`; the stage replays the log after it, and the replica reads only the log after it
/// for its de-duplication table.
#[derive(Debug)]
pub struct StartFrom {
    pub seq: u64,
    pub dedup: tpx_sequencer::replica::Dedup,
    /// The image's file name (for the REPLAYED line).
    pub name: String,
}

/// The stage's rings: from every gateway, to every shard, and its own answers (duplicate,
/// unavailable) to every gateway.
#[derive(Debug)]
pub struct StageRings {
    pub inputs: Vec<Consumer<Request>>,
    /// By shard id.
    pub outputs: Vec<Producer<Sequenced>>,
    /// By gateway number.
    pub rejects: Vec<Producer<Report>>,
}

/// The sequencing stage: the replica and what it keeps around it, and its rings.
///
/// The node runs it over its file log, TCP and the system clock (the defaults, built by
/// [`SequencerStage::open`]); the simulator (`tpx-sim`) runs the same stage over a simulated
/// log, network and clock ([`SequencerStage::over`]).
pub struct SequencerStage<
    L: LogSink = NodeLog,
    T: Transport = NodeTransport,
    C: Clock = SystemClock,
    S: Storage = FileStorage,
> {
    replica: Replica<L, T, C>,
    inputs: Vec<Consumer<Request>>,
    /// By shard id.
    outputs: Vec<Producer<Sequenced>>,
    /// By shard id: the doorbell of the shard's core, when it is another core (park mode).
    shard_wake: Vec<Option<Arc<Doorbell>>>,
    /// By shard id: pushed to this cycle (its doorbell is rung).
    pushed: Vec<bool>,
    /// The gateway ring read first next cycle (round robin).
    next_input: usize,
    /// A quiet single node polls its replica next at this `now_ns`.
    next_poll_ns: u64,
    /// An idle primary checks for a due GTD expiry next at this `now_ns`.
    next_tick_check_ns: u64,
    /// A single node's in-process witness.
    witness: Option<WitnessServer<T, C>>,
    /// The recovered log, replayed into the shards before the replica runs.
    replay: Option<ReplaySource<S>>,
    replay_upto: u64,
    replayed: u64,
    /// The log's spare-segment slot, held while the replay runs and the candidacy after it is
    /// decided.
    spares_held: Option<Arc<SpareSlot>>,
    /// The snapshot the shards started from: `(seq, file name)`.
    from_snapshot: Option<(u64, String)>,
    meta: VecDeque<LocalMeta>,
    /// Requests sequenced but never acknowledged here (the replica stepped down first): to be
    /// answered "unavailable".
    unsequenced: VecDeque<LocalMeta>,
    /// Duplicates waiting for their original to be acknowledgeable: `(seq, term, request)`;
    /// answered `DuplicateClientOrderId` once `acknowledgeable_seq() >= seq` in the same term,
    /// "unavailable" if the node is no longer primary of that term.
    dup_wait: VecDeque<(u64, u64, LocalMeta)>,
    /// Accounts refused `Unavailable`: their later orders wait for the refused one's re-send
    /// (`fence.rs`).
    fences: Fences,
    overflow: VecDeque<Sequenced>,
    /// Set by a rewind (the new term cut records the shards applied), and kept: the feed stops
    /// (see `ShardFeed::feed`) and the node exits with `EXIT_REJOIN`.
    rewound: Option<u64>,
    /// The `REJOIN` line was said and the shutdown asked.
    rejoining: bool,
    applied: u64,
    /// By gateway number: answers the stage makes itself (duplicate, unavailable).
    rejects: Vec<Producer<Report>>,
    reject_wake: Vec<Option<Arc<Doorbell>>>,
    shared: Arc<NodeState>,
    node_id: u32,
    /// The last role line printed: `(primary, term, primary id)`.
    printed: Option<(bool, u64, u32)>,
    /// The witness's last refusal printed (a `DENIED` line when it changes).
    printed_denial: Option<(tpx_sequencer::proto::DenyReason, u64, u32)>,
    /// Prints no ROLE / DENIED / REPLAYED lines (the simulator runs thousands of nodes).
    quiet: bool,
    /// Replica checkpoints: one record per shard every this many records (0: off).
    checkpoint_every: u64,
    /// Primary: the next checkpoint is due once the log reaches this seq.
    next_checkpoint_seq: u64,
    /// The next shard whose checkpoint record is to be submitted (0 when none is pending).
    checkpoint_shard: usize,
    /// A shard found a checkpoint mismatch: the replica was told never to become primary.
    unpromotable: bool,
    /// `idle = "park"`: records waiting for the standby or the log writer are not work (the
    /// core parks on the replication sockets and the log writer's wake-up, see
    /// [`Self::park_bound_us`]); else they are, so a spinning core keeps polling.
    park_waiting: bool,
    /// The last `poll_fds` put the log writer's armed wake-up in the core's sleep set.
    log_wake_armed: bool,
}

impl<L: LogSink, T: Transport, C: Clock, S: Storage> std::fmt::Debug
    for SequencerStage<L, T, C, S>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerStage")
            .field("replica", &self.replica)
            .field("replaying", &self.replay.is_some())
            .field("in_flight", &self.meta.len())
            .field("overflow", &self.overflow.len())
            .finish()
    }
}

/// Opens the file log in `cfg.log_dir` (recovering a torn tail) and a reader for the replay of
/// what it holds.
fn open_file_log(
    cfg: &ReplicationConfig,
    spares: &Arc<SpareSlot>,
    core_cpus: &[usize],
) -> Result<(NodeLog, LogReader<FileStorage>), String> {
    let dir = &cfg.log_dir;
    let mode = match cfg.write {
        LogWrite::Direct => WriteMode::DirectSync,
        LogWrite::Buffered => WriteMode::Buffered,
    };
    let st = FileStorage::new(dir, mode).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut lcfg = LogConfig {
        zero_fill: cfg.zero_fill,
        ..LogConfig::default()
    };
    if let Some(b) = cfg.segment_bytes {
        lcfg.segment_bytes = b;
    }
    let idle = cfg.writer_idle;
    // Segments wholly before the snapshot the node starts from are checked by the loader.
    let trust = cfg.trusted_through_seq;
    let open = |st: FileStorage| match cfg.log_writer {
        LogWriter::Thread => {
            let depth = cfg.writer_commits_in_flight;
            ThreadedLog::open_pipelined(st, lcfg, idle, trust, spares.clone(), depth)
                .map(|(l, r)| (NodeLog::File(l), r))
        }
        LogWriter::Uring => {
            UringLog::open_trusting(st, lcfg, cfg.uring_depth, trust, spares.clone())
                .map(|(l, r)| (NodeLog::Uring(l), r))
        }
    };
    let (log, rec) = match open(st) {
        Ok(x) => x,
        Err(e) if mode == WriteMode::DirectSync => {
            // A filesystem without O_DIRECT (tmpfs): buffered writes + fdatasync are as
            // durable, a little slower. Say so; any other error shows again below.
            say(format_args!(
                "tpx node: O_DIRECT log in {} failed ({e}); using buffered writes + fdatasync",
                dir.display()
            ));
            let st = FileStorage::new(dir, WriteMode::Buffered)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            open(st).map_err(|e| format!("opening the log in {}: {e}", dir.display()))?
        }
        Err(e) => return Err(format!("opening the log in {}: {e}", dir.display())),
    };
    if let (NodeLog::File(l), prio) = (&log, cfg.writer_rt_priority) {
        if prio > 0 && cfg.writer_idle == crate::config::IdleMode::Park {
            // A commit's wake-ups must not wait for a time slice behind a spinning core.
            if let Err(e) = l.set_writer_rt_priority(prio) {
                say(format_args!(
                    "tpx node: log writer at normal scheduling: SCHED_FIFO {prio} refused ({e}); \
                     grant CAP_SYS_NICE or set writer_rt_priority = 0"
                ));
            }
        }
    }
    // The writer, its IO workers and the spare's preparer were spawned from this core's
    // thread and so share its CPU: move them to the process's other CPUs, if it has any
    // (ARCHITECTURE.md, "Measured (e2e-bench)": on the core's CPU the writer's system calls
    // and wake-ups took a third of the pipelined run's core; the io_uring log's preparer
    // zero-fills each next segment, 64 MiB of writes).
    let cpus = crate::runtime::affinity::cpus_for_the_writer(core_cpus);
    let moved = match &log {
        NodeLog::File(l) => l.set_writer_cpus(&cpus),
        NodeLog::Uring(l) => l.set_preparer_cpus(&cpus),
        NodeLog::Mem(_) => Ok(()),
    };
    if let Err(e) = moved {
        say(format_args!(
            "tpx node: log threads left on the sequencing core's CPU: affinity {cpus:?} \
             refused ({e})"
        ));
    }
    if let Some((seg, off, n)) = &rec.torn {
        say(format_args!(
            "tpx node: TORN log tail cut: segment={seg} offset={off} bytes={n}"
        ));
    }
    let reader = LogReader::new(
        FileStorage::new(dir, WriteMode::Buffered)
            .map_err(|e| format!("{}: {e}", dir.display()))?,
    )
    .map_err(|e| format!("reading the log: {e}"))?;
    Ok((log, reader))
}

impl SequencerStage {
    /// Opens the log (a file log, recovering a torn tail; `in_memory`: the in-memory log of
    /// `log = "in-process"`, a single node only), connects the transport and creates the
    /// replica. Runs on the sequencing core's thread.
    pub fn open(
        cfg: &ReplicationConfig,
        in_memory: bool,
        role: StartRole,
        rings: StageRings,
        shared: Arc<NodeState>,
    ) -> Result<SequencerStage, String> {
        Self::open_from(cfg, in_memory, role, rings, shared, || Ok(None))
    }

    /// [`SequencerStage::open`] for shards restored from a snapshot: `from`, asked once the log
    /// is open (the snapshot loads meanwhile), says after which seq the replay starts.
    pub fn open_from(
        cfg: &ReplicationConfig,
        in_memory: bool,
        role: StartRole,
        rings: StageRings,
        shared: Arc<NodeState>,
        from: impl FnOnce() -> Result<Option<StartFrom>, String>,
    ) -> Result<SequencerStage, String> {
        cfg.validate()?;
        if in_memory && (cfg.peer_addr.is_some() || cfg.witness_addr.is_some()) {
            return Err(
                "log = \"in-process\" runs a single node: [replication] must name no peer and no witness"
                    .into(),
            );
        }
        let mut from_image = None;
        let mut first = 1;
        // The records the replay reads after this seq are the replica's de-duplication scan.
        let mut scan_after = 0;
        // The log's spare segment waits for the replay (`SpareSlot::held`).
        let spares = Arc::new(SpareSlot::held());
        let (log, replay, last) = if in_memory {
            (NodeLog::Mem(MemLog::default()), None, 0)
        } else {
            let (log, mut reader) = open_file_log(cfg, &spares, &shared.core_cpus)?;
            let last = log.last_seq();
            first = reader.next_seq().min(last.max(1));
            // The loader nearly always starts from the image the open trusted: the reader
            // seeks past it while the loader works (the seek hops a segment's records, ~10 ms
            // this core would otherwise spend after the loader, which the start waits for).
            let trusted = cfg.trusted_through_seq;
            let guessed = trusted > 0 && last > trusted;
            let seeked_past = (guessed && reader.seek(trusted + 1).is_ok()).then_some(trusted);
            from_image = from()?;
            let from = &from_image;
            let after = from.as_ref().map_or(0, |f| f.seq);
            if after > last {
                // The image was checked against the files while the log recovered; a recovery
                // that cut the log below it leaves shards ahead of the log.
                return Err(format!(
                    "the log ends at seq {last}, before the snapshot's seq {after}: move the \
                     snapshot away and restart (OPERATIONS.md, \"Restart policy\")"
                ));
            }
            scan_after = after;
            if after > 0 && last > after && seeked_past != Some(after) {
                reader
                    .seek(after + 1)
                    .map_err(|e| format!("reading the log after the snapshot: {e}"))?;
            } else if after == 0 && guessed && last > 0 {
                // No image after all: the whole log, from its first record.
                reader
                    .seek(first)
                    .map_err(|e| format!("reading the log from its start: {e}"))?;
            }
            (log, (last > after).then_some(reader), last)
        };
        let clock = SystemClock::new();
        let handshake = tpx_sequencer::transport::Handshake {
            cluster_id: cfg.cluster_id,
            secret: match &cfg.secret_file {
                Some(f) => tpx_sequencer::transport::read_secret_file(f)?,
                None => [0; 32],
            },
            config_digest: cfg.config_digest,
            who: "tpx node",
        };
        let (net, witness) = match (cfg.peer_addr, cfg.witness_addr) {
            (Some(peer), Some(w)) => {
                let listen = cfg.listen.ok_or("[replication]: listen is required")?;
                let t = TcpTransport::new(
                    cfg.node_id,
                    Some(listen),
                    vec![(cfg.peer_id, peer), (WITNESS_ID, w)],
                )
                .map_err(|e| format!("replication listen {listen}: {e}"))?
                .with_handshake(handshake);
                (NodeTransport::Tcp(t), None)
            }
            (None, Some(w)) => {
                let t = TcpTransport::new(cfg.node_id, cfg.listen, vec![(WITNESS_ID, w)])
                    .map_err(|e| format!("replication transport: {e}"))?
                    .with_handshake(handshake);
                (NodeTransport::Tcp(t), None)
            }
            _ => {
                let (me, witness) = LocalLink::pair(cfg.node_id, WITNESS_ID);
                let w = WitnessServer::new(
                    cfg.lease_us * 1_000,
                    NodeTransport::Local(witness),
                    clock,
                    None,
                );
                (NodeTransport::Local(me), Some(w))
            }
        };
        let want_primary = role == StartRole::Primary || cfg.peer_addr.is_none();
        let rcfg = ReplicaConfig {
            node_id: cfg.node_id,
            peer_id: cfg.peer_id,
            witness_id: WITNESS_ID,
            durability: cfg.durability()?,
            heartbeat_ns: cfg.heartbeat_us * 1_000,
            timeout_ns: cfg.timeout_us * 1_000,
            lease_margin_ns: cfg.timeout_us * 100,
            ..ReplicaConfig::default()
        };
        let from_snapshot = from_image.as_ref().map(|f| (f.seq, f.name.clone()));
        let dedup_base = from_image.map(|f| (f.seq, f.dedup));
        // With a replay, its reader thread notes the de-duplication entries of the records it
        // reads for the shards, and the stage installs them when the replay ends (before the
        // replica is first polled): the log after the image is read once, not twice.
        let replica = if replay.is_some() {
            Replica::new_dedup_later(rcfg, log, net, clock, last, want_primary, dedup_base)
        } else {
            Replica::new_with_dedup(rcfg, log, net, clock, last, want_primary, dedup_base)
        }
        .map_err(|e| format!("starting the replica: {e}"))?;
        let place = if in_memory {
            "in memory".to_string()
        } else {
            cfg.log_dir.display().to_string()
        };
        say(format_args!(
            "tpx node: log {place} holds seq {first}..={last}, durability {:?}, starting as {}",
            cfg.durability()?,
            if want_primary { "candidate" } else { "standby" }
        ));
        let mut stage = SequencerStage::over(replica, replay, last, rings, shared, cfg.node_id)
            .with_checkpoints(cfg.checkpoint_every);
        // The node reads its replay on a thread of its own (`read_ahead.rs`).
        if let Some(ReplaySource::Inline(r)) = stage.replay.take() {
            let scan = tpx_sequencer::replica::DedupScan::starting(scan_after);
            let beside = crate::runtime::affinity::cpus_free_of_the_cores(&stage.shared.core_cpus);
            stage.replay = Some(ReplaySource::ahead(r, last, Some(scan), beside));
        }
        stage.witness = witness;
        if stage.replay.is_some() {
            stage.spares_held = Some(spares);
        } else {
            spares.release();
        }
        if let Some((seq, name)) = from_snapshot {
            stage.applied = seq;
            if stage.replay.is_none() {
                say(format_args!(
                    "tpx node: REPLAYED 0 records into the shards after snapshot seq={seq} ({name})"
                ));
            }
            stage.from_snapshot = Some((seq, name));
        }
        Ok(stage)
    }

    /// Waits (bounded) for the writer to make everything appended durable (at shutdown).
    pub fn sync(&mut self) {
        let _ = self
            .replica
            .log_mut()
            .sync(std::time::Duration::from_secs(2));
    }

    /// The longest a parked core may sleep before this stage has timed work (µs; at least
    /// 1): until the replica's next heartbeat, lease renewal, timeout or retry
    /// ([`Replica::next_deadline_ns`]). Data on the replication sockets wakes it sooner.
    pub fn park_bound_us(&self) -> u64 {
        let due = self.replica.next_deadline_ns();
        let timers = (due.saturating_sub(self.replica.clock_now_ns()) / 1_000).max(1);
        // A primary acknowledges only what its disk holds; a standby's disk matters to the
        // primary in the fsync modes (its `Ack` carries the durable seq).
        let disk_counts = self.replica.role() == Role::Primary
            || self.replica.config().durability != tpx_sequencer::replica::Durability::Replicated;
        if !disk_counts {
            return timers;
        }
        let durable = self.replica.durable_seq();
        if durable > self.shared.durable_seq.load(Ordering::Relaxed) {
            // A commit completed since the last cycle looked (before `poll_fds` armed the
            // writer's wake-up): go round again at once.
            1
        } else if durable < self.replica.last_seq() && !self.log_wake_armed {
            // A log writer that rings nothing (`log_writer = "uring"`): look again soon.
            timers.min(LOG_WAIT_POLL_US)
        } else {
            timers
        }
    }

    /// The replication transport's descriptors (listener, peer and witness connections), for
    /// the core's sleep set: a parked standby wakes when the primary sends, not at its next
    /// timeout. None for the in-process transport (a single node).
    pub fn poll_fds(&mut self, out: &mut Vec<libc::pollfd>) {
        if let NodeTransport::Tcp(t) = self.replica.transport_mut() {
            t.poll_fds(out);
        }
        // The log writer's wake-up when a commit completes (armed for this sleep; see
        // `park_bound_us`, which the core asks next, for a commit that completed just before).
        self.log_wake_armed = false;
        if self.replica.durable_seq() < self.replica.last_seq() {
            if let Some(fd) = self.replica.log().arm_durable_wake() {
                out.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                self.log_wake_armed = true;
            }
        }
    }
}

impl<L: LogSink, T: Transport, C: Clock, S: Storage> SequencerStage<L, T, C, S> {
    /// The stage over `replica` (created with `last` as its applied seq), its rings and the
    /// node's shared state; `replay` reads the recovered log, whose records `1..=last` the
    /// stage hands to the shards before it runs the replica. [`SequencerStage::open`] builds
    /// the node's; the simulator builds one over its simulated log, network and clock.
    pub fn over(
        replica: Replica<L, T, C>,
        replay: Option<LogReader<S>>,
        last: u64,
        rings: StageRings,
        shared: Arc<NodeState>,
        node_id: u32,
    ) -> Self {
        shared.active.store(false, Ordering::Release);
        // Market data: a standby numbers and rings the same packets but sends none, so the md
        // sequence continues exactly when it takes over (see "Market data" in ARCHITECTURE.md).
        shared.md_active.store(false, Ordering::Release);
        let StageRings {
            inputs,
            outputs,
            rejects,
        } = rings;
        let reject_wake = rejects.iter().map(|_| None).collect();
        let replay = replay.filter(|_| last > 0).map(ReplaySource::Inline);
        if replay.is_none() {
            // Nothing to replay: the shards' tables, when a start from an image still faults
            // them in beside (`appliance/restore.rs`), are waited for here.
            while !shared.fault_in_tables() && !shared.shutdown.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            shared.replay_done.store(true, Ordering::Release);
        }
        SequencerStage {
            replica,
            shard_wake: outputs.iter().map(|_| None).collect(),
            pushed: vec![false; outputs.len()],
            inputs,
            outputs,
            next_input: 0,
            next_poll_ns: 0,
            next_tick_check_ns: 0,
            witness: None,
            replay,
            replay_upto: last,
            replayed: 0,
            spares_held: None,
            from_snapshot: None,
            meta: VecDeque::with_capacity(MAX_IN_FLIGHT),
            unsequenced: VecDeque::with_capacity(1 << 10),
            dup_wait: VecDeque::with_capacity(1 << 10),
            fences: Fences::default(),
            overflow: VecDeque::with_capacity(1 << 14),
            rewound: None,
            rejoining: false,
            applied: 0,
            rejects,
            reject_wake,
            shared,
            node_id,
            printed: None,
            printed_denial: None,
            quiet: false,
            checkpoint_every: 0,
            next_checkpoint_seq: 0,
            checkpoint_shard: 0,
            unpromotable: false,
            park_waiting: false,
            log_wake_armed: false,
        }
    }

    /// Logs replica checkpoints every `records` records while primary (0: never); see
    /// `shard/checkpoint.rs`.
    pub fn with_checkpoints(mut self, records: u64) -> Self {
        self.checkpoint_every = records;
        self.next_checkpoint_seq = records;
        self
    }

    /// Prints none of the stage's lines (ROLE, DENIED, REPLAYED, ...): the simulator.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    fn say(&self, line: std::fmt::Arguments<'_>) {
        if !self.quiet {
            say(line);
        }
    }

    /// Whether the recovered log is still being replayed into the shards.
    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// The replica (the simulator reads and damages its log).
    pub fn replica_mut(&mut self) -> &mut Replica<L, T, C> {
        &mut self.replica
    }

    /// Doorbells of the shards' cores, by shard id, and of the gateways' cores, by gateway
    /// number (`None`: same core, or spin mode).
    pub fn with_wake(
        mut self,
        shards: Vec<Option<Arc<Doorbell>>>,
        gateways: Vec<Option<Arc<Doorbell>>>,
    ) -> Self {
        self.shard_wake = shards;
        self.reject_wake = gateways;
        self
    }

    /// Whether records waiting to be acknowledgeable (for the standby's acknowledgement or the
    /// log writer) count as work: with `park` (true) they do not, and the core parks on its
    /// sockets (the replication transport's among them: the standby's `Ack` wakes it) and the
    /// log writer's wake-up (`poll_fds`; a writer without one: at most [`LOG_WAIT_POLL_US`],
    /// [`Self::park_bound_us`]); spinning (false, the default) they do. Measured in ARCHITECTURE.md, "Idle strategies".
    pub fn park_while_waiting(&mut self, on: bool) {
        self.park_waiting = on;
    }

    /// Whether records sequenced here, or duplicates of them, wait to be acknowledgeable.
    pub fn awaiting_ack(&self) -> bool {
        (self.replica.role() == Role::Primary
            && self.replica.last_seq() > self.replica.acknowledgeable_seq())
            || !self.dup_wait.is_empty()
    }

    /// Records handed to the shards since start, the replay of the recovered log excluded.
    pub fn sequenced(&self) -> u64 {
        self.applied.saturating_sub(self.replay_upto)
    }

    pub fn replica(&self) -> &Replica<L, T, C> {
        &self.replica
    }

    fn ring_doorbells(&mut self) {
        for (k, pushed) in self.pushed.iter_mut().enumerate() {
            if std::mem::take(pushed) {
                if let Some(d) = self.shard_wake.get(k).and_then(|w| w.as_ref()) {
                    d.ring();
                }
            }
        }
    }

    fn reject(&mut self, gateway: usize, req: &Request, reason: RejectReason) {
        self.answer(&LocalMeta::of(0, gateway, req), reason);
    }

    /// Answers a request the stage remembered (room was checked by the caller).
    fn answer(&mut self, m: &LocalMeta, reason: RejectReason) {
        if reason == RejectReason::Unavailable {
            self.fences.refused(m.account, m.subject);
            self.shared
                .stats
                .unavailable
                .fetch_add(1, Ordering::Relaxed);
        }
        let gateway = m.gateway as usize;
        let Some((request, cl_ord_id)) = m.subject else {
            return;
        };
        let r = Report {
            account: m.account,
            session: m.session,
            seq: crate::msg::UNSEQUENCED,
            ts_ns: self.replica.last_timestamp_ns(),
            kind: ReportKind::Rejected {
                cl_ord_id,
                reason,
                request,
            },
            stamps: m.stamps,
        };
        let Some(ring) = self.rejects.get_mut(gateway) else {
            return;
        };
        let _ = ring.try_push(r);
        if let Some(Some(b)) = self.reject_wake.get(gateway) {
            b.ring();
        }
    }

    /// One duty cycle of the stage (see the module docs) at `now_ns` (the core's monotonic
    /// clock, read once per duty cycle). Returns the work done; non-zero while records wait for
    /// durability, so the core keeps cycling instead of parking.
    pub fn step(&mut self, now_ns: u64) -> usize {
        let n = self.cycle(now_ns);
        self.next_input = (self.next_input + 1) % self.inputs.len().max(1);
        self.ring_doorbells();
        n
    }

    fn cycle(&mut self, now_ns: u64) -> usize {
        let mut n = 0;
        let mut feed = ShardFeed {
            outputs: &mut self.outputs,
            pushed: &mut self.pushed,
            overflow: &mut self.overflow,
            meta: &mut self.meta,
            rewound: &mut self.rewound,
            applied: &mut self.applied,
            durable_tsc: None,
            unsequenced: &mut self.unsequenced,
            marks: &self.shared.marks,
        };
        n += feed.drain();
        if let Some(reader) = self.replay.as_mut() {
            let mut done = false;
            for _ in 0..BATCH {
                if !feed.overflow.is_empty() {
                    break;
                }
                match reader.next() {
                    Ok(Some(rec)) if rec.meta.seq <= self.replay_upto => {
                        feed.feed(&rec);
                        self.replayed += 1;
                    }
                    Ok(_) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        if !self.quiet {
                            say(format_args!("tpx node: LOGERROR replay: {e}"));
                        }
                        self.shared.shutdown.store(true, Ordering::Relaxed);
                        return 1;
                    }
                }
            }
            if done && *feed.applied < self.replay_upto {
                // The reader ended before the log's last seq (a record it could not read
                // cleanly, found neither at open nor here): the shards would start short of
                // the log. Refuse, as for a record that fails to decode.
                if !self.quiet {
                    say(format_args!(
                        "tpx node: LOGERROR replay: the log ended at seq {} before its last \
                         seq {}",
                        *feed.applied, self.replay_upto
                    ));
                }
                self.shared.shutdown.store(true, Ordering::Relaxed);
                return 1;
            }
            if (done || *feed.applied >= self.replay_upto) && !self.shared.fault_in_tables() {
                // Every record is in the shards, but a start from an image still faults the
                // shards' tables in beside (`appliance/restore.rs`; this core helped with what
                // was left): the replay ends, and the node serves, once no order can meet a
                // page fault. The core may park meanwhile.
                return n;
            }
            if done || *feed.applied >= self.replay_upto {
                if self.replica.dedup_pending() {
                    // The de-duplication table before the replica's first poll: the reader
                    // thread's scan of the records just replayed, or the log read again.
                    let scan = reader.take_dedup_scan();
                    if let Err(e) = self.replica.install_dedup(scan) {
                        if !self.quiet {
                            say(format_args!(
                                "tpx node: LOGERROR replay: de-duplication: {e}"
                            ));
                        }
                        self.shared.shutdown.store(true, Ordering::Relaxed);
                        return 1;
                    }
                }
                self.replay = None;
                self.shared.replay_done.store(true, Ordering::Release);
                match &self.from_snapshot {
                    Some((seq, name)) => self.say(format_args!(
                        "tpx node: REPLAYED {} records into the shards after snapshot seq={seq} \
                         ({name})",
                        self.replayed
                    )),
                    None => self.say(format_args!(
                        "tpx node: REPLAYED {} records into the shards",
                        self.replayed
                    )),
                }
            }
            return n + 1;
        }
        if self.spares_held.is_some() && self.replica.role() != Role::Candidate {
            // The replay is done and the candidacy decided (its term stored: three fsyncs the
            // spare's zero-fill would share the disk with): the log may make its spare.
            if let Some(s) = self.spares_held.take() {
                s.release();
            }
        }
        let primary = self.replica.role() == Role::Primary;
        let inputs_len = self.inputs.len();
        let mut seq_tsc: Option<u64> = None;
        'rings: for k in 0..inputs_len {
            let i = (self.next_input + k) % inputs_len;
            for _ in 0..BATCH {
                if primary
                    && (!self.overflow.is_empty()
                        || self.meta.len() + self.dup_wait.len() >= MAX_IN_FLIGHT)
                {
                    break 'rings;
                }
                let Some(req) = self.inputs[i].peek() else {
                    break;
                };
                if self.rejects.get(i).is_none_or(|r| r.free() == 0) {
                    break;
                }
                if !primary {
                    // Sessions connected when the node stepped down.
                    self.reject(i, &req, RejectReason::Unavailable);
                    self.inputs[i].advance();
                    n += 1;
                    continue;
                }
                if !origin_fits(req.account) {
                    // Two accounts would share a de-duplication key.
                    self.reject(i, &req, RejectReason::UnknownAccount);
                    self.inputs[i].advance();
                    n += 1;
                    continue;
                }
                let origin = origin_of(req.shard, req.account);
                if !self.fences.is_empty() {
                    // An earlier order of the account was refused `Unavailable`: a later one
                    // must not overtake it in the log (`fence.rs`).
                    let id = Dedup::key(origin, &req.input).map(|(_, id)| id);
                    let dedup = self.replica.dedup();
                    if !self.fences.admit(req.account, id, || dedup.high(origin)) {
                        self.shared.stats.fenced.fetch_add(1, Ordering::Relaxed);
                        self.reject(i, &req, RejectReason::Unavailable);
                        self.inputs[i].advance();
                        n += 1;
                        continue;
                    }
                }
                let session = match req.session {
                    crate::msg::NO_SESSION => 0,
                    s => s,
                };
                match self
                    .replica
                    .submit_from(origin, req.account, session, &req.input)
                {
                    Ok(seq) => {
                        let mut stamps = req.stamps;
                        if stamps.rx != 0 {
                            // One TSC read per cycle.
                            stamps.seq = *seq_tsc.get_or_insert_with(crate::runtime::clock::tsc);
                        }
                        self.meta.push_back(LocalMeta {
                            stamps,
                            ..LocalMeta::of(seq, i, &req)
                        });
                    }
                    Err(SubmitError::Backpressure) => break 'rings,
                    Err(SubmitError::Duplicate { seq, .. })
                        if seq > self.replica.acknowledgeable_seq() =>
                    {
                        // "Already sequenced" is a promise: answered only once the original
                        // is acknowledgeable (see "Acknowledgements" in ARCHITECTURE.md).
                        let m = LocalMeta::of(seq, i, &req);
                        self.dup_wait.push_back((seq, self.replica.term(), m));
                    }
                    Err(SubmitError::Duplicate { .. }) => {
                        self.reject(i, &req, RejectReason::DuplicateClientOrderId)
                    }
                    Err(_) => self.reject(i, &req, RejectReason::Unavailable),
                }
                self.inputs[i].advance();
                n += 1;
            }
        }
        if primary
            && self.checkpoint_every > 0
            && self.replica.last_seq() >= self.next_checkpoint_seq
        {
            n += self.log_checkpoints();
        }
        if primary && n == 0 && self.overflow.is_empty() && now_ns >= self.next_tick_check_ns {
            self.next_tick_check_ns = now_ns.saturating_add(TICK_CHECK_NS);
            n += self.tick_if_due();
        }
        // A single node (its witness in process, no peer to hear from) with nothing taken and
        // nothing waiting has nothing to poll for but its lease timers (milliseconds): it polls
        // every `QUIET_POLL_NS` then, which keeps the idle cycle of a one-core node short.
        let quiet = self.witness.is_some()
            && n == 0
            && primary
            && self.replica.last_seq() == self.replica.acknowledgeable_seq()
            && now_ns < self.next_poll_ns;
        if quiet {
            return self.after_poll(0);
        }
        self.next_poll_ns = now_ns.saturating_add(QUIET_POLL_NS);
        let mut feed = ShardFeed {
            outputs: &mut self.outputs,
            pushed: &mut self.pushed,
            overflow: &mut self.overflow,
            meta: &mut self.meta,
            rewound: &mut self.rewound,
            applied: &mut self.applied,
            durable_tsc: None,
            unsequenced: &mut self.unsequenced,
            marks: &self.shared.marks,
        };
        if self.replica.poll(&mut feed) {
            n += 1;
        }
        if let Some(w) = self.witness.as_mut() {
            // A single node: the in-process witness answers the replica's lease renewal
            // (which records what it may acknowledge alone) at once, and another poll takes
            // the answer, so a request is released to its shard in the cycle that took it.
            for _ in 0..2 {
                let answered = w.poll();
                if answered == 0 {
                    break;
                }
                n += answered;
                self.replica.poll(&mut feed);
            }
        }
        self.after_poll(n)
    }

    /// GTD expiry by the sequencer's clock: when the earliest expiry the shards published
    /// (`NodeState::next_expiry_ns`) has passed on the replica's clock and no record yet
    /// carries a timestamp at or past it, logs a `Tick` for every shard, whose stamp expires
    /// the order (and every other due one) in the engines, on this node, on the standby and in
    /// any replay alike. Called only by an idle primary (no request taken this cycle), at most
    /// every `TICK_CHECK_NS`; a busy log needs no tick (each record's stamp expires what is
    /// due). Returns 1 if it logged one.
    fn tick_if_due(&mut self) -> usize {
        let due = self.shared.next_expiry_ns();
        if due == u64::MAX
            || self.replica.last_timestamp_ns() >= due
            || self.replica.stamp_now_ns() < due
        {
            return 0;
        }
        let tick = Input::Tick(Tick {});
        match self.replica.submit(origin_of(ALL_SHARDS, 0), 0, &tick) {
            Ok(_) => 1,
            // Full or not primary: the next check tries again.
            Err(_) => 0,
        }
    }

    /// Replica checkpoints (see ARCHITECTURE.md, "Replicas checked while running"): logs one
    /// `Checkpoint` record per shard, routed to it by its `origin`, carrying the `(seq, hash)`
    /// that shard of this node last published. A refused submit (full, not primary) is retried
    /// from that shard next cycle. Returns the records logged.
    fn log_checkpoints(&mut self) -> usize {
        let mut n = 0;
        while self.checkpoint_shard < self.outputs.len() {
            let k = self.checkpoint_shard;
            let (prev_seq, prev_hash) = self.shared.checkpoints.last(k);
            let cp = Input::Checkpoint(Checkpoint {
                prev_seq,
                prev_hash,
            });
            if self.replica.submit(origin_of(k as u16, 0), 0, &cp).is_err() {
                return n;
            }
            self.checkpoint_shard += 1;
            n += 1;
        }
        self.checkpoint_shard = 0;
        self.next_checkpoint_seq = self
            .replica
            .last_seq()
            .saturating_add(self.checkpoint_every);
        n
    }

    /// Role changes, waiting answers, a rewind, the acknowledged seq; `n` plus the work done.
    fn after_poll(&mut self, mut n: usize) -> usize {
        if !self.unpromotable && self.shared.checkpoints.diverged.load(Ordering::Relaxed) > 0 {
            // A shard's state differs from the log's: this node must never serve it.
            self.unpromotable = true;
            self.replica.forbid_promotion();
            self.say(format_args!(
                "tpx node: UNPROMOTABLE node={}: a replica checkpoint mismatched; this node \
                 will not become primary (OPERATIONS.md, \"Replica checkpoints\")",
                self.node_id
            ));
        }
        if !self.unpromotable
            && self.replica.role() != Role::Primary
            && self.replica.transport().config_mismatches() > 0
        {
            // The peer runs another configuration (the digest of what the two must share):
            // this node cannot tell which one is right, and a term taken now would serve a
            // log under a configuration its primary did not write it with. It never pairs
            // with that peer (the transport refuses it) and must not take over from it either.
            self.unpromotable = true;
            self.replica.forbid_promotion();
            self.say(format_args!(
                "tpx node: UNPROMOTABLE node={}: the peer's configuration differs (CONFIG \
                 MISMATCH); this node will not become primary until restarted with the \
                 peer's configuration (OPERATIONS.md, \"Restart policy\")",
                self.node_id
            ));
        }
        while let Some(ev) = self.replica.take_event() {
            match ev {
                ReplicaEvent::BecamePrimary { term, last_seq } => {
                    self.shared.term.store(term, Ordering::Relaxed);
                    // Logins wait for the replies of everything fed so far (the replayed log, a
                    // standby's records) to be in the sessions' journals.
                    self.shared
                        .marks
                        .login_floor
                        .fetch_max(self.applied, Ordering::Release);
                    self.shared.active.store(true, Ordering::Release);
                    self.shared.md_active.store(true, Ordering::Release);
                    self.printed = Some((true, term, self.node_id));
                    self.say(format_args!(
                        "tpx node: ROLE primary node={} term={term} last_seq={last_seq}",
                        self.node_id
                    ));
                    if !self.quiet {
                        self.say_takeover(term);
                    }
                }
                ReplicaEvent::BecameStandby { term, primary } => {
                    self.shared.term.store(term, Ordering::Relaxed);
                    self.shared.active.store(false, Ordering::Release);
                    self.shared.md_active.store(false, Ordering::Release);
                    if self.printed != Some((false, term, primary)) {
                        self.printed = Some((false, term, primary));
                        self.say(format_args!(
                            "tpx node: ROLE standby node={} term={term} primary={primary}",
                            self.node_id
                        ));
                    }
                }
                ReplicaEvent::Truncated { to_seq } => {
                    self.say(format_args!("tpx node: TRUNCATED to_seq={to_seq}"));
                }
                ReplicaEvent::LogError(e) => self.say(format_args!("tpx node: LOGERROR {e}")),
            }
        }
        let denial = self.replica.last_denial();
        if denial != self.printed_denial {
            self.printed_denial = denial;
            if let Some((reason, term, holder)) = denial {
                // `MissingAcked`: this node may lack acknowledged records; it waits for the
                // node that holds them (OPERATIONS.md, "Restart policy").
                self.say(format_args!(
                    "tpx node: DENIED node={} reason={reason:?} witness_term={term} holder={holder}",
                    self.node_id
                ));
            }
        }
        n += self.answer_waiting();
        if let Some(seq) = self.rewound.filter(|_| !self.rejoining) {
            // `rewound` stays set: the feed hands the shards nothing more until the node exits.
            self.rejoining = true;
            // Nor does it take a term before it exits: its shards hold records no log has
            // (the lab saw such a node promoted and serving fills no replay makes).
            self.replica.forbid_promotion();
            self.say(format_args!(
                "tpx node: REJOIN the shards applied records past seq {seq}, which the new term \
                 cut from the log: exiting with status {EXIT_REJOIN} (restart as standby)"
            ));
            self.shared
                .exit_code
                .store(u32::from(EXIT_REJOIN), Ordering::Relaxed);
            self.shared.shutdown.store(true, Ordering::Relaxed);
        }
        self.shared
            .acked_seq
            .store(self.replica.acknowledgeable_seq(), Ordering::Relaxed);
        self.shared
            .last_seq
            .store(self.replica.last_seq(), Ordering::Relaxed);
        self.shared
            .durable_seq
            .store(self.replica.durable_seq(), Ordering::Relaxed);
        self.shared
            .peer_durable_seq
            .store(self.replica.peer_seqs().1, Ordering::Relaxed);
        if (self.awaiting_ack() && !self.park_waiting) || !self.unsequenced.is_empty() {
            // Waiting for the writer thread or the standby while spinning: keep cycling until
            // the records are acknowledgeable (a parked core sleeps on the replication
            // sockets instead: `park_while_waiting`). Answers waiting for a reject ring's room
            // are work in both modes.
            n += 1;
        }
        n
    }

    /// The `TAKEOVER` line, after `ROLE primary`: how the promotion went
    /// ([`tpx_sequencer::replica::TakeoverTrace`]), each moment as the host's
    /// `CLOCK_MONOTONIC` ns (0: did not happen), so that `failover-bench` can split the time
    /// from its kill to the `ROLE` line: `closed` (this node saw the primary's connections
    /// close; 0: its timeout fired), `heard` (the primary last heard), `ask` (the first
    /// `Promote`; `asks` sent), `granted` (the cycle that read the grant began), `stored` (the
    /// term stored beside the log), `primary` (the replica acts as primary), `line` (now,
    /// after the ROLE line was written).
    fn say_takeover(&self, term: u64) {
        let t = self.replica.takeover_trace();
        let line_ns = crate::runtime::clock::host_monotonic_ns();
        let now = self.replica.clock_now_ns();
        let host = |ns: u64| {
            if ns == 0 {
                0
            } else {
                line_ns.saturating_sub(now.saturating_sub(ns))
            }
        };
        self.say(format_args!(
            "tpx node: TAKEOVER node={} term={term} asks={} closed_ns={} heard_ns={} ask_ns={} \
             granted_ns={} stored_ns={} primary_ns={} line_ns={line_ns}",
            self.node_id,
            t.asks,
            host(t.conn_closed_ns),
            host(t.last_heard_ns),
            host(t.first_ask_ns),
            host(t.granted_ns),
            host(t.stored_ns),
            host(t.primary_ns),
        ));
    }

    /// Answers the requests that were waiting: those sequenced but never acknowledged here
    /// ("unavailable"), and duplicates whose original became acknowledgeable (or which this
    /// node can no longer answer: "unavailable"). Stops at a full reject ring (the rest wait
    /// for the next cycle). Returns how many were answered.
    fn answer_waiting(&mut self) -> usize {
        let mut n = 0;
        // Fenced now, even if a full reject ring defers the answer: the next cycle's requests
        // must not overtake them (`fence.rs`).
        for m in &self.unsequenced {
            self.fences.refused(m.account, m.subject);
        }
        while let Some(m) = self.unsequenced.front().copied() {
            if self
                .rejects
                .get(m.gateway as usize)
                .is_some_and(|r| r.free() == 0)
            {
                break;
            }
            self.unsequenced.pop_front();
            self.answer(&m, RejectReason::Unavailable);
            n += 1;
        }
        if self.dup_wait.is_empty() {
            return n;
        }
        let primary = self.replica.role() == Role::Primary;
        let term = self.replica.term();
        let acked = self.replica.acknowledgeable_seq();
        let mut i = 0;
        while i < self.dup_wait.len() {
            let (seq, t, m) = self.dup_wait[i];
            let Some(reason) = duplicate_answer(primary, term, acked, seq, t) else {
                i += 1;
                continue;
            };
            if reason == RejectReason::Unavailable {
                self.fences.refused(m.account, m.subject);
            }
            if self
                .rejects
                .get(m.gateway as usize)
                .is_some_and(|r| r.free() == 0)
            {
                i += 1;
                continue;
            }
            let _ = self.dup_wait.remove(i);
            self.answer(&m, reason);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::runtime::ring::ring;
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::Input;
    use tpx_wire::order_entry::EnterOrder;

    /// A single node's stage over the real file log in `dir` (its writer thread committing),
    /// stepped until its in-process witness made it primary, the shard's ring emptied.
    struct FileNode {
        s: SequencerStage,
        gw: crate::runtime::ring::Producer<Request>,
        shard_in: crate::runtime::ring::Consumer<Sequenced>,
        _answers: crate::runtime::ring::Consumer<Report>,
        now: u64,
    }

    fn file_node_primary(dir: &std::path::Path, park: bool) -> FileNode {
        let cfg = ReplicationConfig {
            log_dir: dir.to_path_buf(),
            ..ReplicationConfig::default()
        };
        let (gw, seq_in) = ring::<Request>(64);
        let (to_shard, mut shard_in) = ring::<Sequenced>(64);
        let (rejects, answers) = ring::<Report>(64);
        let shared = Arc::new(NodeState::new(Vec::new()));
        let rings = StageRings {
            inputs: vec![seq_in],
            outputs: vec![to_shard],
            rejects: vec![rejects],
        };
        let mut s = SequencerStage::open(&cfg, false, StartRole::Primary, rings, shared.clone())
            .unwrap()
            .quiet();
        s.park_while_waiting(park);
        let mut now = 0;
        for k in 0.. {
            if shared.active.load(Ordering::Acquire) {
                break;
            }
            assert!(k < 200_000, "no primary");
            now += 1_000;
            s.step(now);
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        while shard_in.try_pop().is_some() {}
        FileNode {
            s,
            gw,
            shard_in,
            _answers: answers,
            now,
        }
    }

    /// A parked core sleeps on the log writer's wake-up while its records wait for the disk
    /// (`poll_fds` arms it; the bound is the replica's timers, not `LOG_WAIT_POLL_US`), and the
    /// writer's commit wakes it: `ppoll` returns with the descriptor readable long before the
    /// timeout, and the next cycle releases the order.
    #[test]
    fn a_parked_core_is_woken_by_the_log_writer() {
        let dir = tempfile::tempdir().unwrap();
        let FileNode {
            mut s,
            mut gw,
            mut shard_in,
            mut now,
            ..
        } = file_node_primary(dir.path(), true);
        let (mut woken, mut raced) = (0, 0);
        let mut fds = Vec::new();
        for cl in 1..=20 {
            gw.try_push(ioc(cl)).unwrap();
            now += 1_000;
            assert!(s.step(now) > 0, "the request was taken");
            loop {
                fds.clear();
                s.poll_fds(&mut fds);
                let bound_us = s.park_bound_us();
                if s.replica().durable_seq() >= s.replica().last_seq() {
                    // The commit completed before the core would sleep.
                    raced += 1;
                    break;
                }
                assert_eq!(fds.len(), 1, "the log writer's wake-up is in the sleep set");
                assert!(bound_us > LOG_WAIT_POLL_US, "not polling: {bound_us} us");
                let t0 = crate::runtime::clock::now_ns();
                crate::runtime::doorbell::sleep_on(&mut fds, 5_000_000);
                let slept_ns = crate::runtime::clock::now_ns() - t0;
                if fds[0].revents & libc::POLLIN != 0 {
                    assert!(slept_ns < 4_000_000_000, "woken by the commit");
                    woken += 1;
                    break;
                }
            }
            let mut cycles = 0;
            while shard_in.try_pop().is_none() {
                cycles += 1;
                assert!(cycles < 1_000_000, "order {cl} never released");
                now += 1_000;
                s.step(now);
            }
        }
        assert_eq!(woken + raced, 20);
        assert!(woken > 0, "a commit takes longer than arming");
    }

    /// An IOC buy of account 1 from session 0 (the tests of the core's stages).
    pub(crate) fn ioc(cl: u64) -> Request {
        Request::new(
            0,
            0,
            1,
            Input::EnterOrder(EnterOrder {
                cl_ord_id: cl,
                instrument: 1,
                side: Side::Buy,
                kind: OrderKind::Limit,
                price: 50_000,
                qty: 1,
                tif: TimeInForce::Ioc,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
            }),
        )
    }

    /// A single node's stage over the in-memory log, stepped until its in-process witness
    /// made it primary.
    fn in_memory_stage(rings: StageRings) -> SequencerStage {
        let shared = Arc::new(NodeState::new(Vec::new()));
        let cfg = ReplicationConfig::default();
        let mut s =
            SequencerStage::open(&cfg, true, StartRole::Primary, rings, shared.clone()).unwrap();
        for k in 0..100_000 {
            if shared.active.load(Ordering::Acquire) {
                return s;
            }
            s.step(k * 1_000);
            std::thread::sleep(std::time::Duration::from_micros(10));
        }
        panic!("the in-process witness made no primary");
    }

    /// Records waiting for the log writer are not work for a parked core (it sleeps, for at
    /// most `LOG_WAIT_POLL_US` when the writer's wake-up is not in its sleep set, as here) and
    /// are for a spinning one;
    /// either way each is released to its shard once durable. A single node over the real
    /// file log (O_DIRECT in a temp folder), its writer thread doing the commits.
    #[test]
    fn a_parked_primary_does_not_cycle_while_its_log_writer_works() {
        for park in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let FileNode {
                mut s,
                mut gw,
                mut shard_in,
                mut now,
                ..
            } = file_node_primary(dir.path(), park);
            let (mut idle_waits, mut busy_waits, mut released) = (0, 0, 0);
            for cl in 1..=20 {
                gw.try_push(ioc(cl)).unwrap();
                now += 1_000;
                assert!(s.step(now) > 0, "the request was taken");
                let mut cycles = 0;
                while shard_in.try_pop().is_none() {
                    cycles += 1;
                    assert!(cycles < 5_000_000, "order {cl} never became durable");
                    std::thread::yield_now();
                    let waiting = s.awaiting_ack();
                    now += 1_000;
                    let n = s.step(now);
                    if waiting && s.awaiting_ack() {
                        // Still waiting after the cycle: the writer's commit is in flight.
                        if n == 0 {
                            idle_waits += 1;
                            // Bounded while the writer is behind (read after the bound:
                            // the writer thread moves `durable_seq` up meanwhile).
                            let bound_us = s.park_bound_us();
                            let r = s.replica();
                            assert!(
                                bound_us <= LOG_WAIT_POLL_US || r.durable_seq() >= r.last_seq(),
                                "slept {bound_us} us with the writer behind"
                            );
                        } else {
                            busy_waits += 1;
                        }
                    }
                }
                released += 1;
            }
            assert_eq!(released, 20);
            if park {
                assert!(idle_waits > 0, "a commit takes more than one cycle");
            } else {
                assert_eq!(idle_waits, 0, "spinning: waiting is work");
                assert!(busy_waits > 0);
            }
        }
    }

    /// The in-process mode is the same stage: requests are logged (in memory) and released
    /// in order with non-decreasing stamps, in the cycle that took them (a quiet cycle skips
    /// the poll, a cycle with requests does not); while a shard's ring is full, the records
    /// wait in the stage's overflow and it takes no new request (they wait in the gateway's
    /// ring, which fills, and the gateway answers `Backpressure`).
    #[test]
    fn the_stage_stops_taking_requests_while_a_shard_ring_is_full() {
        let (mut gw, seq_in) = ring::<Request>(8);
        let (to_shard, mut shard_in) = ring::<Sequenced>(2);
        let (rejects, mut answers) = ring::<Report>(8);
        let mut s = in_memory_stage(StageRings {
            inputs: vec![seq_in],
            outputs: vec![to_shard],
            rejects: vec![rejects],
        });
        // A microsecond per cycle: most cycles are within the quiet poll interval.
        let mut now = 1_000_000_000;
        let mut step = |s: &mut SequencerStage| {
            now += 1_000;
            s.step(now)
        };
        for _ in 0..10 {
            step(&mut s);
        }
        for cl in 1..=5 {
            gw.try_push(ioc(cl)).unwrap();
        }
        step(&mut s);
        assert_eq!(gw.free_exact(), 8, "all five were logged");
        assert_eq!(shard_in.len(), 2, "released in the cycle that took them");
        for cl in 6..=8 {
            gw.try_push(ioc(cl)).unwrap();
        }
        step(&mut s);
        assert_eq!(gw.free_exact(), 8 - 3, "three wait in the gateway's ring");
        let mut got = Vec::new();
        for _ in 0..100 {
            while let Some(e) = shard_in.try_pop() {
                got.push(e);
            }
            if got.len() == 8 {
                break;
            }
            step(&mut s);
        }
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        assert!(got.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        assert!(got
            .iter()
            .all(|e| e.req.session == crate::msg::NO_SESSION && e.req.account == 1));
        assert_eq!(s.sequenced(), 8);
        assert!(answers.try_pop().is_none(), "nothing refused");
    }

    #[test]
    fn a_duplicate_is_answered_only_once_its_original_is_acknowledgeable() {
        // Original at seq 9, found in term 3.
        assert_eq!(duplicate_answer(true, 3, 8, 9, 3), None);
        assert_eq!(
            duplicate_answer(true, 3, 9, 9, 3),
            Some(RejectReason::DuplicateClientOrderId)
        );
        // Stepped down, or primary again of another term: the original may be gone.
        assert_eq!(
            duplicate_answer(false, 3, 9, 9, 3),
            Some(RejectReason::Unavailable)
        );
        assert_eq!(
            duplicate_answer(true, 4, 20, 9, 3),
            Some(RejectReason::Unavailable)
        );
    }
}
