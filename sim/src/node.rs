//! One node of the simulated cluster, built from the node's own stages (`tpx-node`) on the
//! simulator's log, network and clock, on one thread:
//!
//! - the gateway's ring into the sequencing stage (`runtime/ring.rs`), which the simulator's
//!   clients' requests enter as the node's `Request` (the log's input as sent, the session's
//!   slot, the shard it is routed to);
//! - the sequencing stage (`sequencing/stage.rs` over `Replica`, with its feed to the shards,
//!   `sequencing/feed.rs`: de-duplication answers, `dup_wait`, `discard`'s "unavailable", the
//!   replay of the recovered log at start, the rewind that makes the node exit to rejoin);
//! - one shard stage per shard (`shard/stage.rs`: the engine with risk on and the report
//!   mapping of `shard/apply.rs`, market-data numbering of `shard/md.rs` into memory);
//! - the rings back to the gateway: the shards' reports and the stage's own answers.
//!
//! Time enters as the node's duty cycle passes it: one `now` per cycle (the simulator's
//! `ManualClock`, which the replica reads as its clock). The simulator moves each shard's
//! entries from the stage's ring to the shard stage one seq at a time, so the engines' state
//! can be sampled at the same seqs on both nodes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tpx_node::msg::{Report, Request, Sequenced};
use tpx_node::runtime::ring::{ring, Consumer, Producer};
use tpx_node::runtime::state::NodeState;
use tpx_node::sequencing::stage::{SequencerStage, StageRings};
use tpx_node::shard::md::MemoryPackets;
use tpx_node::shard::stage::ShardStage;
use tpx_sequencer::writer::LogSink;
use tpx_sequencer::{LogReader, ManualClock, MemStorage, Replica};

use crate::lag_log::LagLog;
use crate::net::SimEndpoint;
use crate::shards::{combined_hash, ShardPlan, HASH_EVERY, INVARIANTS_EVERY};

pub type Rep = Replica<LagLog, SimEndpoint, ManualClock>;
pub type Stage = SequencerStage<LagLog, SimEndpoint, ManualClock, MemStorage>;

/// Where a report came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The sequencing stage's own answer (duplicate, unavailable).
    Stage,
    /// A shard applying a record.
    Shard,
}

/// A node's stages and the rings between them.
pub struct SimNode {
    pub stage: Stage,
    pub shared: Arc<NodeState>,
    gateway: Producer<Request>,
    /// By shard: the stage's output ring, read by the simulator...
    from_stage: Vec<Consumer<Sequenced>>,
    /// ...which moves each entry on to its shard stage's ring.
    to_shard: Vec<Producer<Sequenced>>,
    shards: Vec<ShardStage>,
    /// By shard: its reports to the (one) gateway.
    reports: Vec<Consumer<Report>>,
    rejects: Consumer<Report>,
    /// By shard: feed A's packets its publisher sent (while the node was primary).
    pub md: Vec<MemoryPackets>,
    /// Every entry up to this seq was applied by its shards.
    pub applied: u64,
    /// The next seq whose state is sampled.
    next_sample: u64,
    /// `seq -> (term, combined state hash of every shard)`, sampled every [`HASH_EVERY`].
    pub hashes: BTreeMap<u64, (u64, u64)>,
    pub invariant_error: Option<String>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("stage", &self.stage)
            .field("applied", &self.applied)
            .finish()
    }
}

/// Ring sizes: the gateway's and the reports' as the node's defaults order of magnitude; the
/// stage's to the shards large enough that the stage never overflows in one cycle.
const GATEWAY_RING: usize = 1 << 12;
const SHARD_RING: usize = 1 << 14;
const REPORT_RING: usize = 1 << 14;

impl SimNode {
    /// The node `node_id` over `replica` (created with `last` applied: its recovered log,
    /// which the stage replays into fresh shards from `disk` before it runs the replica).
    pub fn new(
        plan: &ShardPlan,
        replica: Rep,
        disk: MemStorage,
        last: u64,
        node_id: u32,
    ) -> Result<SimNode, String> {
        let shared = Arc::new(NodeState::new(plan.instruments()));
        let (gateway, gw_rx) = ring::<Request>(GATEWAY_RING);
        let (rej_tx, rejects) = ring::<Report>(GATEWAY_RING);
        let mut outputs = Vec::new();
        let mut from_stage = Vec::new();
        let mut to_shard = Vec::new();
        let mut shards = Vec::new();
        let mut reports = Vec::new();
        let mut md = Vec::new();
        for s in 0..plan.shards {
            let (tx, rx) = ring::<Sequenced>(SHARD_RING);
            outputs.push(tx);
            from_stage.push(rx);
            let (tx, rx) = ring::<Sequenced>(2);
            to_shard.push(tx);
            let (rep_tx, rep_rx) = ring::<Report>(REPORT_RING);
            reports.push(rep_rx);
            let (shard, packets) = plan.build(s);
            md.push(packets);
            shards.push(ShardStage::new(shard, rx, vec![rep_tx], shared.clone()));
        }
        let replay = if last > 0 {
            Some(LogReader::new(disk).map_err(|e| format!("replay reader: {e}"))?)
        } else {
            None
        };
        let stage = SequencerStage::over(
            replica,
            replay,
            last,
            StageRings {
                inputs: vec![gw_rx],
                outputs,
                rejects: vec![rej_tx],
            },
            shared.clone(),
            node_id,
        )
        .quiet();
        Ok(SimNode {
            stage,
            shared,
            gateway,
            from_stage,
            to_shard,
            shards,
            reports,
            rejects,
            md,
            applied: 0,
            // The recovered log replayed at start is not sampled (it is on the disk, and
            // the other node's samples of it are gone): the first sample after it.
            next_sample: (last / HASH_EVERY + 1) * HASH_EVERY,
            hashes: BTreeMap::new(),
            invariant_error: None,
        })
    }

    pub fn rep(&self) -> &Rep {
        self.stage.replica()
    }

    pub fn rep_mut(&mut self) -> &mut Rep {
        self.stage.replica_mut()
    }

    /// Puts a request on the gateway's ring to the stage; false when the ring is full.
    pub fn submit(&mut self, req: Request) -> bool {
        self.gateway.try_push(req).is_ok()
    }

    /// The combined state of every shard.
    pub fn state_hash(&self) -> u64 {
        combined_hash(self.shards.iter().map(|s| s.shard().engine.state_hash()))
    }

    /// The node's shards.
    pub fn shards(&self) -> impl Iterator<Item = &tpx_node::shard::apply::Shard> {
        self.shards.iter().map(|s| s.shard())
    }

    /// One duty cycle at `now_ns`: the sequencing stage, then the shards (every entry the
    /// stage released), then the reports for the gateway into `out`.
    pub fn cycle(&mut self, now_ns: u64, out: &mut Vec<(From, Report)>) {
        self.stage.step(now_ns);
        self.run_shards(now_ns);
        while let Some(r) = self.rejects.try_pop() {
            out.push((From::Stage, r));
        }
        for rx in &mut self.reports {
            while let Some(r) = rx.try_pop() {
                out.push((From::Shard, r));
            }
        }
    }

    /// Whether the node asked to stop (`shutdown`), and its exit status.
    pub fn exit(&self) -> Option<u32> {
        self.shared
            .shutdown
            .load(Ordering::Relaxed)
            .then(|| self.shared.exit_code.load(Ordering::Relaxed))
    }

    /// Moves the stage's entries to the shard stages in seq order, one seq at a time, each
    /// shard stage stepping on it; samples the state before the first entry past each
    /// multiple of [`HASH_EVERY`].
    fn run_shards(&mut self, now_ns: u64) {
        let mut terms: Option<Vec<(u64, u64)>> = None;
        loop {
            let next = self
                .from_stage
                .iter()
                .filter_map(|rx| rx.peek().map(|e| e.seq))
                .min();
            let Some(seq) = next else { break };
            while self.next_sample < seq {
                let at = self.next_sample;
                self.next_sample += HASH_EVERY;
                let terms = terms
                    .get_or_insert_with(|| self.stage.replica_mut().log_mut().terms().to_vec());
                let term = terms
                    .iter()
                    .take_while(|(_, first)| *first <= at)
                    .last()
                    .map_or(0, |t| t.0);
                self.hashes.insert(at, (term, self.state_hash()));
                if self.invariant_error.is_none() && at % INVARIANTS_EVERY == 0 {
                    for (s, st) in self.shards.iter().enumerate() {
                        if let Err(e) = st.shard().engine.check_invariants() {
                            self.invariant_error = Some(format!("seq {at} shard {s}: {e}"));
                            break;
                        }
                    }
                }
            }
            for k in 0..self.from_stage.len() {
                while self.from_stage[k].peek().is_some_and(|e| e.seq == seq) {
                    let e = self.from_stage[k].try_pop().expect("peeked");
                    // The shard stage takes every entry of its ring at each step (the report
                    // rings, drained every cycle, are never full): room for the next.
                    let pushed = self.to_shard[k].try_push(e);
                    assert!(
                        pushed.is_ok(),
                        "shard {k}'s stage left an entry in its ring"
                    );
                    self.shards[k].step(now_ns);
                }
            }
            self.applied = seq;
        }
    }
}
