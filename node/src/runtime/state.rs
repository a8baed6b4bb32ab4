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
    /// Per pinned core, its duty cycles so far (each on its own cache line, written only by its
    /// core): the systemd watchdog is pinged only while every one of them advances.
    core_cycles: Vec<CachePadded<AtomicU64>>,
    /// Per shard id: the earliest expiry of a live GTD order in its engine (`u64::MAX`: none),
    /// published by the shard after each batch; the sequencing stage logs a `Tick` when one is
    /// due and no record carried the log's time past it (see [`NodeState::next_expiry_ns`]).
    pub shard_expiry_ns: Vec<AtomicU64>,
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
            core_cycles: Vec::new(),
            shard_expiry_ns: Vec::new(),
        }
    }

    /// Gives each of `cores` pinned cores a cycle counter (before the state is shared).
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

    /// Every core's duty cycles so far, in core order.
    pub fn core_cycles(&self) -> impl Iterator<Item = u64> + '_ {
        self.core_cycles.iter().map(|c| c.load(Ordering::Relaxed))
    }

    /// With an expiry slot for each of `shards` shards (see [`NodeState::shard_expiry_ns`]).
    pub fn with_shards(mut self, shards: usize) -> NodeState {
        self.shard_expiry_ns = (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect();
        self
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
