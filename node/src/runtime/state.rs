//! What every core of one node shares: lifecycle (shutdown, exit status), the node's role in
//! the replicated log (active, term, acknowledgeable seq, market-data role), and what `tpx up`
//! displays (counters, tops of book).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use tpx_engine::InstrumentId;

/// Top of book of one instrument, published by its shard once per duty cycle in which it changed
/// (price 0 = empty side).
#[derive(Debug, Default)]
pub struct Top {
    pub bid_px: AtomicI64,
    pub bid_qty: AtomicU64,
    pub ask_px: AtomicI64,
    pub ask_qty: AtomicU64,
}

/// A price in ticks and a quantity in lots.
pub type PriceQty = (i64, u64);

/// Node-wide counters and the published tops, read by `tpx up` once a second.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Requests stamped by the sequencer.
    pub sequenced: AtomicU64,
    /// Fills (trades).
    pub trades: AtomicU64,
    /// Requests the shards applied.
    pub applied: AtomicU64,
    /// Requests the sequencing stage answered `Unavailable` (a standby, a term not granted, a
    /// log that refused the append, or a fence), and of them those a fence refused
    /// (`sequencing/fence.rs`: a later id of an account with an earlier id refused).
    pub unavailable: AtomicU64,
    pub fenced: AtomicU64,
}

/// An `AtomicU64` on its own cache line (written by one core, read by others).
pub type PaddedU64 = CachePadded<AtomicU64>;

/// How far the log has reached the gateways: what lets a gateway number a session's replies,
/// which come from several shards on separate rings, in log order (the same on every node).
///
/// The sequencing stage stores, for each shard, the seq of the last entry it pushed to that
/// shard's ring (`pushed`), and after it the last seq it fed (`fed`: pushed to the rings, or a
/// record with no entry for any shard). A shard stores the seq of each entry once
/// every report of it is on the gateways' rings (`applied`). A gateway that loads `fed`, then
/// each shard's `pushed` and `applied`, and then drains its rings holds every report of every
/// record at or below [`Watermarks::complete_through`].
#[derive(Debug, Default)]
pub struct Watermarks {
    pub fed: PaddedU64,
    /// By shard id.
    pub pushed: Vec<PaddedU64>,
    /// By shard id.
    pub applied: Vec<PaddedU64>,
    /// Logins wait until the gateway's replies are complete through this seq: what the node
    /// had fed to its shards when it became primary (the log replayed at start included), so
    /// that a session resuming at `n` finds every reply the log gives it.
    pub login_floor: AtomicU64,
}

impl Watermarks {
    pub fn new(shards: usize) -> Watermarks {
        Watermarks {
            fed: PaddedU64::new(AtomicU64::new(0)),
            pushed: (0..shards)
                .map(|_| PaddedU64::new(AtomicU64::new(0)))
                .collect(),
            applied: (0..shards)
                .map(|_| PaddedU64::new(AtomicU64::new(0)))
                .collect(),
            login_floor: AtomicU64::new(0),
        }
    }

    /// The seq through which every shard has put all its reports on the gateways' rings (load
    /// before draining them). A shard that applied all that was pushed to it counts as
    /// complete through `fed` (it has nothing below).
    pub fn complete_through(&self) -> u64 {
        let fed = self.fed.load(Ordering::Acquire);
        let mut w = fed;
        for (p, a) in self.pushed.iter().zip(&self.applied) {
            let pushed = p.load(Ordering::Acquire);
            let applied = a.load(Ordering::Acquire);
            if applied < pushed {
                w = w.min(applied);
            }
        }
        w
    }
}

/// What every core shares.
#[derive(Debug)]
pub struct NodeState {
    pub shutdown: AtomicBool,
    /// Whether this node is the primary (serves sessions, its shards' output is authoritative):
    /// set by the sequencing stage on every role change (false until the replica is primary,
    /// with every log). Gateways refuse logins while it is false; shards may read it (e.g.
    /// to publish market data only while primary).
    pub active: AtomicBool,
    /// The replica's term (0 before the first).
    pub term: AtomicU64,
    /// The highest seq acknowledgeable to clients (replicated log).
    pub acked_seq: AtomicU64,
    /// The last seq in this node's log (sequenced here, or received from the primary).
    pub last_seq: AtomicU64,
    /// The last seq on this node's disk (the log writer's durable point).
    pub durable_seq: AtomicU64,
    /// The process exit status a core asks for when it stops the node (0: none).
    pub exit_code: AtomicU32,
    pub stats: NodeStats,
    /// Instruments in config order: `(id, symbol)`; `tops[i]` is `instruments[i]`'s.
    pub instruments: Vec<(InstrumentId, String)>,
    pub tops: Vec<Top>,
    /// Whether the shards' market-data publishers send (primary, the default) or only number
    /// their packets (standby); flipped on a role change.
    pub md_active: AtomicBool,
    /// Set once the log recovered at start has been handed to the shards (at once when there was
    /// none): what systemd's `READY=1` waits for.
    pub replay_done: AtomicBool,
    /// Whether the shards' engine tables are all faulted in (true but while a start from an
    /// image faults them in beside its restore and replay, `appliance/restore.rs`): the replay
    /// does not end, and the node serves nothing, before it is.
    pub tables_faulted: AtomicBool,
    /// The work of faulting them in, once their engines are built (the thread that built them
    /// does it, and [`NodeState::fault_in_tables`] helps).
    pub tables_pending: std::sync::Mutex<Option<std::sync::Arc<tpx_engine::Prefault>>>,
    /// The CPUs of the core plan's cores (empty: not known, as in the simulator).
    pub core_cpus: Vec<usize>,
    /// Per pinned core, its duty cycles so far (each on its own cache line, written only by its
    /// core): the systemd watchdog is pinged only while every one of them advances.
    core_cycles: Vec<CachePadded<AtomicU64>>,
    /// Per shard id: the earliest expiry of a live GTD order in its engine (`u64::MAX`: none),
    /// published by the shard after each batch; the sequencing stage logs a `Tick` when one is
    /// due and no record carried the log's time past it (see [`NodeState::next_expiry_ns`]).
    pub shard_expiry_ns: Vec<AtomicU64>,
    /// The log's progress through the stages (see [`Watermarks`]; empty until
    /// [`NodeState::with_shards`]).
    pub marks: Watermarks,
    /// Replica checkpoints (see ARCHITECTURE.md, "Replicas checked while running").
    pub checkpoints: Checkpoints,
    /// What the peer holds on its disk, as this node's replica last heard (the primary: its
    /// standby's durable seq; 0: nothing heard): retention keeps the segments after it.
    pub peer_durable_seq: AtomicU64,
    /// Node snapshots (`[snapshots]`, `appliance/snapshots.rs`).
    pub snapshots: SnapshotStats,
    /// By shard id: the sessions' queries waiting for the shard (never logged).
    pub queries: Vec<crate::msg::QueryInbox>,
    /// By shard id: its rejects by reason and margin calls, as the shard last published them.
    pub shard_counts: Vec<CachePadded<ShardCountsShared>>,
    /// By gateway index: what each gateway publishes (its unsequenced rejects, whether it
    /// serves logins).
    pub gateways: Vec<CachePadded<GatewayShared>>,
}

/// Reject reason codes a shard counts (every `RejectReason` is below it).
pub const REJECT_CODES: usize = 64;

/// A shard's counters for Prometheus (written by the shard's core, read by the stats thread).
#[derive(Debug)]
pub struct ShardCountsShared {
    /// By `RejectReason` wire code.
    pub rejects: Vec<AtomicU64>,
    pub margin_calls: AtomicU64,
}

impl Default for ShardCountsShared {
    fn default() -> Self {
        ShardCountsShared {
            rejects: (0..REJECT_CODES).map(|_| AtomicU64::new(0)).collect(),
            margin_calls: AtomicU64::new(0),
        }
    }
}

/// What a gateway publishes, at its timer tick: requests answered `Throttled` and
/// `Backpressure` (never logged), its connection counters (`gateway::io::GatewayCounters`;
/// all for Prometheus), and whether it serves logins (`gateway::session::serving`; for
/// [`NodeState::serves_logins`]).
#[derive(Debug, Default)]
pub struct GatewayShared {
    pub throttled: AtomicU64,
    pub backpressure: AtomicU64,
    pub accepted: AtomicU64,
    pub logins: AtomicU64,
    pub login_rejects: AtomicU64,
    pub waiting_logins_evicted: AtomicU64,
    pub cancels_on_disconnect: AtomicU64,
    pub serving: AtomicBool,
}

/// Node snapshots, for `tpx stat` and Prometheus.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// The image this process started from (0: none, the whole log was replayed).
    pub start_seq: AtomicU64,
    /// Images written by this process.
    pub taken: AtomicU64,
    /// The seq of the last image written.
    pub seq: AtomicU64,
    /// Log segments deleted by retention.
    pub segments_deleted: AtomicU64,
}

/// Replica checkpoints as the shards found them: what the sequencing stage puts in the next
/// `Checkpoint` record, and what `tpx stat` and Prometheus show.
#[derive(Debug, Default)]
pub struct Checkpoints {
    /// By shard id: `(seq, state hash)` of the last checkpoint record the shard applied (0, 0:
    /// none). Written and read once per checkpoint (a lock keeps the pair whole).
    pub published: Vec<std::sync::Mutex<(u64, u64)>>,
    /// The highest seq of a checkpoint record a shard applied (compared or not).
    pub seq: AtomicU64,
    /// Checkpoints whose hash a shard compared with its own and found equal.
    pub matched: AtomicU64,
    /// Mismatches found (a shard's state differs from the primary's at the same seq). Once
    /// non-zero, the node never becomes primary (the sequencing stage tells the replica).
    pub diverged: AtomicU64,
}

impl Checkpoints {
    /// The `(seq, hash)` shard `shard` last published (0, 0: none).
    pub fn last(&self, shard: usize) -> (u64, u64) {
        self.published
            .get(shard)
            .and_then(|m| m.lock().ok().map(|g| *g))
            .unwrap_or((0, 0))
    }

    /// Shard `shard` hashed its state at checkpoint record `seq`.
    pub fn publish(&self, shard: usize, seq: u64, hash: u64) {
        if let Some(Ok(mut g)) = self.published.get(shard).map(|m| m.lock()) {
            *g = (seq, hash);
        }
        self.seq.fetch_max(seq, Ordering::Relaxed);
    }
}

impl NodeState {
    pub fn new(instruments: Vec<(InstrumentId, String)>) -> NodeState {
        let tops = instruments.iter().map(|_| Top::default()).collect();
        NodeState {
            shutdown: AtomicBool::new(false),
            active: AtomicBool::new(true),
            term: AtomicU64::new(0),
            acked_seq: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            exit_code: AtomicU32::new(0),
            stats: NodeStats::default(),
            instruments,
            tops,
            md_active: AtomicBool::new(true),
            replay_done: AtomicBool::new(false),
            tables_faulted: AtomicBool::new(true),
            tables_pending: std::sync::Mutex::new(None),
            core_cpus: Vec::new(),
            core_cycles: Vec::new(),
            shard_expiry_ns: Vec::new(),
            marks: Watermarks::default(),
            checkpoints: Checkpoints::default(),
            peer_durable_seq: AtomicU64::new(0),
            snapshots: SnapshotStats::default(),
            queries: Vec::new(),
            shard_counts: Vec::new(),
            gateways: Vec::new(),
        }
    }

    /// Gives each of `cores` pinned cores a cycle counter (before the state is shared).
    /// The CPUs the core plan pins its cores to (helper threads such as the log writer go
    /// elsewhere where the process has other CPUs).
    pub fn with_core_cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> NodeState {
        self.core_cpus = cpus.into_iter().collect();
        self
    }

    pub fn with_cores(mut self, cores: usize) -> NodeState {
        self.core_cycles = (0..cores)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect();
        self
    }

    /// Called by core `core` once per duty cycle (a relaxed store to a line only it writes).
    #[inline]
    pub fn core_cycled(&self, core: usize, cycles: u64) {
        if let Some(c) = self.core_cycles.get(core) {
            c.store(cycles, Ordering::Relaxed);
        }
    }

    /// Whether the shards' tables are all faulted in ([`NodeState::tables_faulted`]); if not,
    /// the calling thread first faults in what nobody has taken yet (the sequencing core at
    /// the replay's end: the rest of the start waits for it anyway). `false` while another
    /// thread still finishes its part, or the engines are not built yet.
    pub fn fault_in_tables(&self) -> bool {
        if self.tables_faulted.load(Ordering::Acquire) {
            return true;
        }
        let pending = self
            .tables_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(p) = pending else {
            return false;
        };
        p.run();
        if p.is_done() {
            self.tables_faulted.store(true, Ordering::Release);
        }
        p.is_done()
    }

    /// Every core's duty cycles so far, in core order.
    pub fn core_cycles(&self) -> impl Iterator<Item = u64> + '_ {
        self.core_cycles.iter().map(|c| c.load(Ordering::Relaxed))
    }

    /// With `shards` shards: their watermarks (see [`Watermarks`]) and an expiry slot each (see
    /// [`NodeState::shard_expiry_ns`]).
    pub fn with_shards(mut self, shards: usize) -> NodeState {
        self.marks = Watermarks::new(shards);
        self.shard_expiry_ns = (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect();
        self.checkpoints.published = (0..shards).map(|_| std::sync::Mutex::new((0, 0))).collect();
        self.queries = (0..shards).map(|_| Default::default()).collect();
        self.shard_counts = (0..shards).map(|_| Default::default()).collect();
        self
    }

    /// Gives each of `gateways` gateways its shared counters (before the state is shared).
    pub fn with_gateways(mut self, gateways: usize) -> NodeState {
        self.gateways = (0..gateways).map(|_| Default::default()).collect();
        self
    }

    /// Whether every gateway serves logins (a primary whose inherited replies are journaled
    /// and acknowledgeable): what `Node::start` waits for, so that a caller's first login is
    /// answered, not refused `NotPrimary`. False with no gateway.
    pub fn serves_logins(&self) -> bool {
        !self.gateways.is_empty()
            && self
                .gateways
                .iter()
                .all(|g| g.serving.load(Ordering::Acquire))
    }

    /// The earliest GTD expiry across the shards (`u64::MAX`: none).
    pub fn next_expiry_ns(&self) -> u64 {
        self.shard_expiry_ns
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// `(bid, ask)` of an instrument as last published: `Some((price, qty))` per side.
    pub fn top(&self, index: usize) -> (Option<PriceQty>, Option<PriceQty>) {
        let t = &self.tops[index];
        let bid = t.bid_px.load(Ordering::Relaxed);
        let ask = t.ask_px.load(Ordering::Relaxed);
        (
            (bid != 0).then(|| (bid, t.bid_qty.load(Ordering::Relaxed))),
            (ask != 0).then(|| (ask, t.ask_qty.load(Ordering::Relaxed))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard that applied all that was pushed to it is complete through `fed`; a busy one
    /// holds the watermark at what it applied.
    #[test]
    fn the_watermark_is_the_busiest_shards_applied_seq() {
        let m = Watermarks::new(2);
        let set = |a: &PaddedU64, v| a.store(v, Ordering::Relaxed);
        assert_eq!(m.complete_through(), 0);
        // Record 1 to shard 0, 2 to shard 1, 3 with no entry (a term's first record).
        set(&m.pushed[0], 1);
        set(&m.pushed[1], 2);
        set(&m.fed, 3);
        assert_eq!(m.complete_through(), 0, "shard 0 has not applied 1");
        set(&m.applied[0], 1);
        // Shard 1 has not applied 2: complete through what it applied (nothing yet), the
        // conservative bound (it does not know the seq of the entry it will apply next).
        assert_eq!(m.complete_through(), 0);
        set(&m.applied[1], 2);
        assert_eq!(m.complete_through(), 3, "both idle: everything fed");
        // Record 4 to every shard; shard 1 applied it, shard 0 not yet.
        set(&m.pushed[0], 4);
        set(&m.pushed[1], 4);
        set(&m.fed, 4);
        set(&m.applied[1], 4);
        assert_eq!(m.complete_through(), 1);
    }
}
