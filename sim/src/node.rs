//! One node of the simulated cluster, built from the node's own stages (`tpx-node`) on the
//! simulator's log, network and clock, on one thread:
//!
//! - the gateway's session layer (`gateway/session/`: the node's `SessionTable`), driven as the
//!   gateway core drives it (`gateway/io.rs`, whose pure parts it calls: `login_answer`,
//!   `on_message`, `serving`, `deliver_report`): logins and replay from the journals, the
//!   checks of each request, order ownership, the logout (`Failover`) of every session when
//!   the node stops being primary, and the shards' reports turned into numbered, journaled,
//!   encoded replies in log order (`gateway/merge.rs`'s `ReportMerge` over the watermarks, as
//!   the gateway does with several shards); the table is fed every applied record's reports on
//!   every node (primary, standby, the log replayed at start);
//! - the gateway's ring into the sequencing stage (`runtime/ring.rs`), which the session layer
//!   offers each checked request to as the node's `Request`;
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

use tpx_node::gateway::accounts::Accounts;
use tpx_node::gateway::merge::ReportMerge;
use tpx_node::gateway::routing::Routing;
use tpx_node::gateway::session::{
    serving, ConnId, LoginOptions, SessionCounters, SessionSettings, SessionTable,
};
use tpx_node::msg::{Report, Request, Sequenced};
use tpx_node::runtime::ring::{ring, Consumer, Producer};
use tpx_node::runtime::state::NodeState;
use tpx_node::sequencing::stage::{SequencerStage, StageRings};
use tpx_node::shard::md::MemoryPackets;
use tpx_node::shard::stage::ShardStage;
use tpx_sequencer::writer::LogSink;
use tpx_sequencer::{LogReader, ManualClock, MemStorage, Replica};
use tpx_wire::enums::LoginRejectReason;
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::session::Login;

use crate::lag_log::LagLog;
use crate::net::SimEndpoint;
use crate::shards::{combined_hash, ShardPlan, HASH_EVERY, INVARIANTS_EVERY};

pub type Rep = Replica<LagLog, SimEndpoint, ManualClock>;
pub type Stage = SequencerStage<LagLog, SimEndpoint, ManualClock, MemStorage>;

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
    /// The gateway's session layer (one gateway core: every account is homed on it).
    sessions: SessionTable,
    accounts: Arc<Accounts>,
    /// Several shards: their reports, held until released in log order.
    merge: ReportMerge,
    /// Every reply of every record at or below this seq is in the sessions' journals.
    pub complete_seq: u64,
    /// When `Some`, the stage's own answers (duplicate, unavailable, ...) are also kept here
    /// as reports, for tests that hand requests to the stage with [`SimNode::submit`].
    pub stage_answers: Option<Vec<Report>>,
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
/// Replies each session's journal keeps: a run sends far fewer to one session, so a client
/// resuming at its last seq always finds them (PROTOCOL.md's default).
const JOURNAL_CAPACITY: usize = 1 << 14;
/// The reports the gateway takes from one ring per cycle (as `gateway/io.rs`).
const DRAIN_PER_RING: usize = 4096;
/// The heartbeat interval a login is told (the simulator sends no heartbeats).
const HEARTBEAT_MS: u32 = 1000;

impl SimNode {
    /// The node `node_id` over `replica` (created with `last` applied: its recovered log,
    /// which the stage replays into fresh shards from `disk` before it runs the replica).
    pub fn new(
        plan: &ShardPlan,
        replica: Rep,
        disk: MemStorage,
        last: u64,
        node_id: u32,
        accounts: Arc<Accounts>,
    ) -> Result<SimNode, String> {
        let shared = Arc::new(NodeState::new(plan.instruments()).with_shards(plan.shards as usize));
        let routing = Routing::new(
            &(1..=crate::shards::INSTRUMENTS)
                .map(|i| (i, plan.shard(i) as u16))
                .collect::<Vec<_>>(),
            plan.shards as u16,
        );
        let sessions = SessionTable::new(
            SessionSettings {
                heartbeat_interval_ms: HEARTBEAT_MS,
                journal_capacity: JOURNAL_CAPACITY,
                max_sessions: 64,
                max_sessions_per_account: 64,
            },
            routing,
        );
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
            sessions,
            accounts,
            merge: if plan.shards > 1 {
                ReportMerge::new(plan.shards as usize, DRAIN_PER_RING)
            } else {
                ReportMerge::default()
            },
            complete_seq: 0,
            stage_answers: None,
        })
    }

    pub fn rep(&self) -> &Rep {
        self.stage.replica()
    }

    pub fn rep_mut(&mut self) -> &mut Rep {
        self.stage.replica_mut()
    }

    /// Whether this node serves logins now (`gateway/io.rs`'s rule: primary, and the replies
    /// of what it applied before are journaled and acknowledgeable).
    pub fn serving(&self) -> bool {
        serving(
            self.shared.active.load(Ordering::Acquire),
            self.complete_seq,
            self.shared.marks.login_floor.load(Ordering::Acquire),
            self.shared.acked_seq.load(Ordering::Acquire),
        )
    }

    /// A `Login` on connection `conn`: the answer (`LoginAccepted` and the replay, or
    /// `LoginRejected`) into `out`; the session's slot on success.
    pub fn login(
        &mut self,
        login: &Login,
        conn: ConnId,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Result<u32, LoginRejectReason> {
        let serving = self.serving();
        self.sessions.login_answer(
            &self.accounts,
            login,
            LoginOptions::default(),
            conn,
            now_ns,
            serving,
            HEARTBEAT_MS,
            out,
        )
    }

    /// A frame of logged-in session `slot` (the gateway's `on_frame`): requests offered to
    /// the ring to the stage (`Backpressure` when it is full); the answers into `out`.
    /// Returns whether the frame ends the connection (a `Logout`).
    pub fn on_frame(
        &mut self,
        slot: u32,
        msg: &ClientMessage,
        now_ns: u64,
        unix_ns: u64,
        out: &mut Vec<(ConnId, Vec<u8>)>,
    ) -> bool {
        let gateway = &mut self.gateway;
        let forward = |r: Request| gateway.try_push(r).is_ok();
        // The simulator's clients send no queries.
        let ask = |_: u16, _| false;
        self.sessions
            .on_message(slot, msg, now_ns, unix_ns, out, forward, ask)
            .is_some()
    }

    /// Hands `req` to the sequencing stage as the gateway does after its session checks
    /// (tests that build a schedule below the session layer); `false` when the ring is full.
    pub fn submit(&mut self, req: Request) -> bool {
        self.gateway.try_push(req).is_ok()
    }

    /// The connection `conn` of session `slot` ended (the session stays, unbound).
    pub fn disconnect(&mut self, slot: u32, conn: ConnId) {
        self.sessions.disconnect(slot, conn);
    }

    /// The session layer's counters.
    pub fn session_counters(&self) -> SessionCounters {
        self.sessions.counters
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
    /// stage released), then the gateway's delivery of their reports (`Gateway::deliver`):
    /// replies, encoded, into `out` by connection.
    pub fn cycle(&mut self, now_ns: u64, out: &mut Vec<(ConnId, Vec<u8>)>) {
        self.stage.step(now_ns);
        self.run_shards(now_ns);
        self.deliver(out);
    }

    /// The gateway's delivery: the shards' reports in log order (held in the merge until the
    /// watermark passes them, with several shards), the stage's own answers as they come.
    fn deliver(&mut self, out: &mut Vec<(ConnId, Vec<u8>)>) {
        let merged = self.reports.len() > 1;
        // Loaded before the rings are read: every report at or below it is on them now.
        let through = self.shared.marks.complete_through();
        let mut drained = true;
        // A node that is no longer primary logs its sessions out before a report reaches them
        // (`SessionTable::deliver_report`); the simulator closes the connections when the
        // clients read the `Logout`.
        let active = &self.shared.active;
        let primary = || active.load(Ordering::Acquire);
        let ended = &mut Vec::new();
        for (i, rx) in self.reports.iter_mut().enumerate() {
            let mut k = 0;
            while k < DRAIN_PER_RING {
                let Some(r) = rx.try_pop() else { break };
                k += 1;
                if merged {
                    self.merge.hold(i, r);
                } else {
                    self.sessions.deliver_report(&r, primary, out, ended);
                }
            }
            drained &= k < DRAIN_PER_RING;
        }
        while let Some(r) = self.rejects.try_pop() {
            if let Some(kept) = self.stage_answers.as_mut() {
                kept.push(r);
            }
            self.sessions.deliver_report(&r, primary, out, ended);
        }
        if merged {
            while let Some(r) = self.merge.pop(through) {
                self.sessions.deliver_report(&r, primary, out, ended);
            }
        }
        if drained {
            self.complete_seq = self.complete_seq.max(through);
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
