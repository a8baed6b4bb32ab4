//! One simulated run: two replicas, a witness and their clients, from one seed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

use tpx_node::gateway::accounts::Accounts;
use tpx_node::gateway::session::ConnId;
use tpx_node::sequencing::feed::EXIT_REJOIN;
use tpx_sequencer::log::{LogConfig, LogError};
use tpx_sequencer::replica::{Durability, Replica, ReplicaConfig, Role};
use tpx_sequencer::storage::{Fault, MemStorage};
use tpx_sequencer::witness::WitnessServer;
use tpx_sequencer::writer::LogSink;
use tpx_sequencer::{Clock, ManualClock};
use tpx_wire::enums::{CancelReason, LoginRejectReason, RejectReason, RequestKind};
use tpx_wire::framing::frame_len;
use tpx_wire::log_record::{encode_record, Input, LogRecord, MAX_RECORD_LEN};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::MAX_ORDER_ENTRY_FRAME;

use crate::clients::{Client, Conn, Req};
use crate::lag_log::LagLog;
use crate::net::{NetFaults, SimEndpoint, SimNet};
use crate::node::{Rep, SimNode};
use crate::replies::{compare_streams, expected_streams};
use crate::shards::{feed_books, FillKey, Replay, ShardPlan};
use tpx_node::shard::apply::{Shard, SHARD_ORDER_ID_SHIFT};
use tpx_node::shard::md::engine_book;
use tpx_wire::mold::decode_packet_header;

const WITNESS: u32 = 100;
const TIMEOUT_NS: u64 = 500_000;
const STEP_NS: u64 = 10_000;

/// What one run does.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Simulated steps (each `STEP_NS` of simulated time), faults on.
    pub steps: u64,
    /// Steps after `steps` with every fault off and no new request (clients still re-send
    /// what has no answer), before the final check of the surviving log.
    pub settle_steps: u64,
    /// Chance per step (millionths) that a client request is sent (spread over the clients).
    pub submit_ppm: u32,
    /// Order-entry clients (accounts 1..=clients), besides the admin client's deposits.
    pub clients: u32,
    /// Chance per step (millionths) per client that its connection resets (it logs in again
    /// and re-sends what has no answer: duplicates of what was sequenced).
    pub client_reset_ppm: u32,
    /// Percent of the logins after a failed connection that ask for no replay
    /// (`requested_next_seq` 0, "start at the current end": a client that keeps no seq); the
    /// client then relies on `DuplicateClientOrderId` answers for its re-sent requests, and
    /// its stream is checked from there on.
    pub fresh_login_pct: u32,
    /// Matching shards (instruments dealt round-robin); 0: 1..=3 drawn from the seed.
    pub shards: u32,
    /// The standby (node 2) runs another shard map than node 1 (a configuration mismatch):
    /// the configuration digests differ and the pair never connects.
    pub shard_map_mismatch: bool,
    /// Chance per step (millionths) that a running node crashes (when allowed, see below).
    pub crash_ppm: u32,
    /// A crashed node restarts after 20..this many steps (1..=this when 20 or less: a
    /// supervisor restarting it at once, before the other node takes over).
    pub max_restart_steps: u64,
    /// Chance per step (millionths) that both nodes lose power at once (only in the fsync
    /// modes, where what was acknowledged is on a disk; the crash guard does not apply).
    pub power_loss_ppm: u32,
    /// Chance per step (millionths) that a running node is paused (not polled, its clock and
    /// the network going on, its clients' requests queueing) for 0.5..=10 timeouts.
    pub pause_ppm: u32,
    /// The log commits every 1..=this many polls (1: at every poll, as `SyncLog`).
    pub max_lag_polls: u32,
    /// Chance per step (millionths) that a node's disk fails the next few writes (ENOSPC/EIO).
    pub disk_fault_ppm: u32,
    /// A node may crash only while the other holds every acknowledged record, compared by
    /// content. Off (the default): compared by seq only.
    pub content_crash_guard: bool,
    /// A node may also crash while it alone holds the acknowledged records on its disk.
    pub holder_may_crash: bool,
    /// Chance (percent) that a crash finds the log writer inside a commit: the staged records
    /// are written and the power cut inside one write (see `lag_log`).
    pub torn_pct: u32,
    /// Chance per step (millionths) that a node is partitioned from every peer for up to
    /// `3 * TIMEOUT_NS` (it keeps running).
    pub partition_ppm: u32,
    /// Chance per step (millionths) that the witness crashes (down for up to 400 steps).
    pub witness_crash_ppm: u32,
    /// Chance (percent) that a witness crash damages its state file (the operator restores
    /// nothing). The witness must then refuse to start; one that grants a term afterwards
    /// fails `witness-granted-without-state`.
    pub witness_loss_pct: u32,
    /// Which of what clients were told (shard answers, `Duplicate` answers) is checked
    /// against the surviving logs (`None`: only the `acknowledgeable_seq` checks).
    pub client_acks: AckCheck,
    pub net: NetFaults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            steps: 3000,
            settle_steps: 300,
            submit_ppm: 500_000,
            clients: 4,
            client_reset_ppm: 300,
            fresh_login_pct: 25,
            shards: 0,
            shard_map_mismatch: false,
            crash_ppm: 1_500,
            power_loss_ppm: 200,
            max_restart_steps: 320,
            pause_ppm: 300,
            max_lag_polls: 4,
            disk_fault_ppm: 500,
            content_crash_guard: false,
            holder_may_crash: false,
            torn_pct: 50,
            partition_ppm: 400,
            witness_crash_ppm: 300,
            witness_loss_pct: 10,
            client_acks: AckCheck::All,
            net: NetFaults {
                min_delay_ns: 1_000,
                max_delay_ns: 40_000,
                reset_ppm: 300,
                max_outage_ns: 2 * TIMEOUT_NS,
                stale_pct: 50,
            },
        }
    }
}

/// Which client acknowledgements are checked (see `SimConfig::client_acks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckCheck {
    All,
    /// Only answers of a shard applying the record.
    Replies,
    /// Only `DuplicateClientOrderId` answers to re-sent requests.
    Duplicates,
    None,
}

impl std::str::FromStr for AckCheck {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(AckCheck::All),
            "replies" => Ok(AckCheck::Replies),
            "duplicates" => Ok(AckCheck::Duplicates),
            "none" => Ok(AckCheck::None),
            _ => Err(format!("{s:?}: all | replies | duplicates | none")),
        }
    }
}

impl SimConfig {
    /// The model before the client view: no pauses, no power loss, no witness state loss, no
    /// torn writes, a log that commits at every poll, no client connection resets, and only
    /// the `acknowledgeable_seq` checks (the applier is the several-shard one either way).
    pub fn classic() -> SimConfig {
        SimConfig {
            torn_pct: 0,
            client_acks: AckCheck::None,
            power_loss_ppm: 0,
            pause_ppm: 0,
            max_lag_polls: 1,
            witness_loss_pct: 0,
            client_reset_ppm: 0,
            ..SimConfig::default()
        }
    }
}

/// A violated check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub step: u64,
    pub check: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step={} check={}: {}",
            self.step, self.check, self.detail
        )
    }
}

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    /// A hash of every event of the run: equal for equal seeds (determinism).
    pub trace_hash: u64,
    pub violation: Option<Violation>,
    pub steps: u64,
    /// Highest seq acknowledged by `acknowledgeable_seq`.
    pub acked: u64,
    pub submitted: u64,
    /// Requests clients were answered for by a shard applying them (`OrderAccepted`, fills,
    /// rejects of the engine), and re-sent requests answered `DuplicateClientOrderId`.
    pub client_acks: u64,
    pub duplicate_acks: u64,
    pub client_failovers: u64,
    /// Numbered replies clients received (each checked against its session's stream).
    pub session_replies: u64,
    /// Sessions whose whole reply stream was compared, at the end, with what the surviving
    /// log's replay owes them.
    pub sessions_checked: u64,
    /// Logins refused `SequenceAhead` by a deposed primary (one of an older term, cut off,
    /// that has not heard of the newer term): the client tried again later.
    pub deposed_logins: u64,
    /// Logins asking for no replay (see `SimConfig::fresh_login_pct`).
    pub fresh_logins: u64,
    /// Numbered replies a client read from a node that was not primary (each fails
    /// `session-reply-from-standby`: a deposed primary logs its sessions out with
    /// `Logout(Failover)` and sends no reply of what it applies as standby).
    pub standby_replies: u64,
    pub promotions: u64,
    pub crashes: u64,
    pub power_losses: u64,
    pub pauses: u64,
    pub disk_faults: u64,
    pub net_resets: u64,
    pub failed_restarts: u64,
    /// Restarts after a rewind (the node exits to replay its log: `REJOIN`).
    pub rejoins: u64,
    pub acked_truncations: u64,
    pub partitions: u64,
    pub witness_crashes: u64,
    pub witness_losses: u64,
    /// Witness starts refused (a damaged state file).
    pub witness_refusals: u64,
    /// Crashes inside a commit (torn writes).
    pub torn_tails: u64,
    pub stale_msgs: u64,
    pub fills: u64,
    /// Instruments whose feed book (from the market data of the surviving log) was compared
    /// with the engines' at the end.
    pub books_checked: u64,
    /// Fills clients were told of, and market-data packets primaries sent, that the final
    /// replay reproduced.
    pub fills_replayed: u64,
    pub md_replayed: u64,
    /// The surviving primary's engines were compared with the replay (they applied it all).
    pub state_replayed: bool,
    /// The final check ran (a primary was there at the end).
    pub final_checked: bool,
    pub shards: u32,
    pub durability: Durability,
}

struct Node {
    id: u32,
    disk: MemStorage,
    plan: ShardPlan,
    /// The running process: the node's stages (`None`: down).
    node: Option<SimNode>,
    /// By the gateway's connection id (the low 32 bits of a connection id): the client logged
    /// in on it and its session's slot in the node's `SessionTable`.
    sessions: HashMap<ConnId, (usize, Conn, u32)>,
    /// The `(role, term)` last seen (role changes are traced and promotions checked).
    seen_role: Option<(Role, u64)>,
    /// Steps until a crashed node restarts.
    down_for: u64,
    /// Steps a paused node stays frozen.
    paused_for: u64,
    /// Bumped at every crash and restart: connections of an older epoch are closed.
    epoch: u64,
    /// Frames received from clients (the client, its connection, its request number, the
    /// encoded request), not yet read by the gateway.
    gateway: VecDeque<(usize, Conn, u64, Vec<u8>)>,
    /// What this node, as primary, has acknowledged and the checker has read.
    acked_read: u64,
    /// A promotion whose log is checked once it is on the disk: `(term, last_seq)`.
    pending_check: Option<(u64, u64)>,
    /// The step of the last crash whose torn write destroyed bytes already on the disk.
    torn_durable_at: Option<u64>,
}

impl Node {
    fn rep(&self) -> Option<&Rep> {
        self.node.as_ref().map(|n| n.rep())
    }

    fn rep_mut(&mut self) -> Option<&mut Rep> {
        self.node.as_mut().map(|n| n.rep_mut())
    }

    fn applied(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.applied)
    }
}

fn replica_cfg(id: u32, durability: Durability, incarnation: u64) -> ReplicaConfig {
    ReplicaConfig {
        node_id: id,
        incarnation,
        peer_id: 3 - id,
        witness_id: WITNESS,
        durability,
        heartbeat_ns: 50_000,
        timeout_ns: TIMEOUT_NS,
        lease_margin_ns: 50_000,
        ..ReplicaConfig::default()
    }
}

fn log_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        write_buf_bytes: 16 << 10,
        zero_fill: false,
    }
}

fn encode(r: &LogRecord) -> Vec<u8> {
    let mut b = vec![0u8; MAX_RECORD_LEN];
    let n = encode_record(r, &mut b).unwrap_or(0);
    b.truncate(n);
    b
}

/// How a client was told a request is done.
#[derive(Clone, Copy, Debug)]
struct ClientAck {
    req: Req,
    /// `reply` (a shard applied it) or `duplicate` (`DuplicateClientOrderId` to a re-send).
    how: &'static str,
    node: u32,
    step: u64,
    /// `(seq, term)` of the record answered (0 for a duplicate).
    at: (u64, u64),
    /// The node's `acknowledgeable_seq` and role right after the poll that answered.
    commit: u64,
    role: Option<Role>,
}

/// The identity of a request without a de-duplication key in the log (cancels, deposits).
fn other_key(origin: u32, input: &Input) -> Option<(u32, u8, u64, u64)> {
    match input {
        Input::CancelOrder(m) => Some((origin, 1, m.cl_ord_id, 0)),
        Input::Deposit(m) => Some((
            origin,
            2,
            m.request_id,
            u64::from(m.account) << 32 | u64::from(m.asset),
        )),
        _ => None,
    }
}

struct Sim {
    cfg: SimConfig,
    rng: Xoshiro256PlusPlus,
    clock: ManualClock,
    net: SimNet,
    witness: Option<WitnessServer<SimEndpoint, ManualClock>>,
    /// Where the witness persists `(term, holder)` (a real file, as in production).
    witness_file: WitnessFile,
    witness_down_for: u64,
    /// The witness restarted after losing its state file: `(term, holder)` it started with.
    witness_amnesia: Option<(u64, u32)>,
    witness_lost_file: bool,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    /// The accounts file every node loads (clients and the admin).
    accounts: Arc<Accounts>,
    next_conn: u64,
    durability: Durability,
    step: u64,
    settling: bool,
    trace: u64,
    /// Every acknowledged seq and its record bytes (contiguous from 1).
    acked: BTreeMap<u64, Vec<u8>>,
    /// Which node acknowledged in a term.
    ack_owner: BTreeMap<u64, u32>,
    /// Which node was primary of a term.
    term_primary: BTreeMap<u64, u32>,
    /// Requests clients were told are done, by `(client, request number)`.
    client_acked: BTreeMap<(usize, u64), ClientAck>,
    /// Every fill a client was told of: `(fill, node, step)`.
    fills_seen: Vec<(FillKey, u32, u64)>,
    /// By `(node, shard, first seq)`: the market-data packets the node's publisher sent (as
    /// primary), messages only (heartbeats dropped).
    md_seen: BTreeMap<(u32, u32, u64), Vec<u8>>,
    out: Outcome,
    /// `TPX_SIM_TRACE=1`: print every traced event to stderr.
    verbose: bool,
}

type Check = Result<(), Violation>;

impl Sim {
    fn new(seed: u64, cfg: SimConfig) -> Sim {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let clock = ManualClock::new(1_000_000_000);
        let net_rng = Xoshiro256PlusPlus::seed_from_u64(rng.gen());
        let net = SimNet::new(clock.clone(), net_rng, cfg.net);
        let witness_file = WitnessFile::new(seed);
        let durability = [
            Durability::Replicated,
            Durability::Fsync,
            Durability::ReplicatedFsync,
        ][rng.gen_range(0..3)];
        let shards = if cfg.shards == 0 {
            rng.gen_range(1..=3)
        } else {
            cfg.shards
        };
        let plan = ShardPlan::round_robin(shards);
        let accounts: Vec<u32> = (1..=cfg.clients.max(1)).collect();
        let mut clients: Vec<Client> = accounts.iter().map(|&a| Client::new(a)).collect();
        clients.push(Client::admin(&plan, &accounts, 1 << 40));
        let accounts = Arc::new(crate::clients::accounts(&accounts));
        let mut s = Sim {
            cfg,
            rng,
            clock,
            net,
            witness: None,
            witness_file,
            witness_down_for: 0,
            witness_amnesia: None,
            witness_lost_file: false,
            nodes: Vec::new(),
            clients,
            accounts,
            next_conn: 1,
            durability,
            step: 0,
            settling: false,
            trace: 0xcbf2_9ce4_8422_2325,
            acked: BTreeMap::new(),
            ack_owner: BTreeMap::new(),
            term_primary: BTreeMap::new(),
            client_acked: BTreeMap::new(),
            fills_seen: Vec::new(),
            md_seen: BTreeMap::new(),
            verbose: std::env::var_os("TPX_SIM_TRACE").is_some(),
            out: Outcome {
                seed,
                trace_hash: 0,
                violation: None,
                steps: 0,
                acked: 0,
                submitted: 0,
                client_acks: 0,
                duplicate_acks: 0,
                client_failovers: 0,
                session_replies: 0,
                sessions_checked: 0,
                deposed_logins: 0,
                fresh_logins: 0,
                standby_replies: 0,
                promotions: 0,
                crashes: 0,
                power_losses: 0,
                pauses: 0,
                disk_faults: 0,
                net_resets: 0,
                failed_restarts: 0,
                rejoins: 0,
                acked_truncations: 0,
                partitions: 0,
                witness_crashes: 0,
                witness_losses: 0,
                witness_refusals: 0,
                torn_tails: 0,
                stale_msgs: 0,
                fills: 0,
                books_checked: 0,
                fills_replayed: 0,
                md_replayed: 0,
                state_replayed: false,
                final_checked: false,
                shards,
                durability,
            },
        };
        s.witness = s.start_witness();
        for id in [1, 2] {
            let disk = MemStorage::new();
            let plan = if id == 2 && cfg.shard_map_mismatch {
                // Another core plan: one shard more (or fewer), instruments dealt again.
                ShardPlan::round_robin(if shards > 1 { shards - 1 } else { 2 })
            } else {
                plan.clone()
            };
            // The configuration digest both nodes' handshakes carry (the core plan here).
            s.net.set_digest(id, plan.digest());
            s.nodes.push(Node {
                id,
                disk,
                plan,
                node: None,
                sessions: HashMap::new(),
                seen_role: None,
                down_for: 0,
                paused_for: 0,
                epoch: 0,
                gateway: VecDeque::new(),
                acked_read: 0,
                pending_check: None,
                torn_durable_at: None,
            });
        }
        s
    }

    /// Starts the witness from its state file as `tpx witness` does (`WitnessServer::open`):
    /// a missing file is a first start, a damaged one refuses to start (`None`: it stays
    /// down; the operator restores nothing in this model).
    fn start_witness(&mut self) -> Option<WitnessServer<SimEndpoint, ManualClock>> {
        match WitnessServer::open(
            TIMEOUT_NS,
            self.net.endpoint(WITNESS),
            self.clock.clone(),
            &self.witness_file.0,
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                if self.verbose {
                    eprintln!("step {} witness refuses to start: {e}", self.step);
                }
                self.out.witness_refusals += 1;
                self.net.set_down(WITNESS, true);
                // Down until the operator acts (not in this model; `settle` tries once more).
                self.witness_down_for = u64::MAX / 2;
                None
            }
        }
    }

    fn mix(&mut self, tag: u64, a: u64, b: u64) {
        if self.verbose && tag != 4 && tag != 6 && tag != 20 {
            let (r0, r1) = (self.desc(0), self.desc(1));
            eprintln!("step {} tag {tag} {a} {b} | n1 {r0} | n2 {r1}", self.step);
        }
        for v in [tag, a, b] {
            self.trace = (self.trace ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn desc(&self, i: usize) -> String {
        let n = &self.nodes[i];
        match n.rep() {
            Some(r) => format!(
                "{:?}{} t{} last{} dur{} ack{} app{}",
                r.role(),
                if n.paused_for > 0 { "(paused)" } else { "" },
                r.term(),
                r.last_seq(),
                r.durable_seq(),
                r.acknowledgeable_seq(),
                n.applied()
            ),
            None => "down".into(),
        }
    }

    fn fail(&self, check: &'static str, detail: String) -> Check {
        Err(self.violation(check, detail))
    }

    fn violation(&self, check: &'static str, detail: String) -> Violation {
        Violation {
            step: self.step,
            check,
            detail,
        }
    }

    fn running(&self, i: usize) -> bool {
        self.nodes[i].node.is_some()
    }

    /// (Re)starts a node from its disk: recover the log, replay it into fresh shards, join.
    fn start(&mut self, i: usize, want_primary: bool) -> Check {
        let id = self.nodes[i].id;
        let disk = self.nodes[i].disk.clone();
        let lag_rng = Xoshiro256PlusPlus::seed_from_u64(self.rng.gen());
        let log = match LagLog::open(disk.clone(), log_cfg(), self.cfg.max_lag_polls, lag_rng) {
            Ok((log, _)) => log,
            Err(LogError::Io(_)) => {
                // An injected write fault during recovery: the process fails to start; retry.
                self.nodes[i].down_for = 10;
                self.out.failed_restarts += 1;
                self.mix(11, id as u64, 0);
                return Ok(());
            }
            Err(e) => {
                return match self.nodes[i].torn_durable_at {
                    Some(at) => self.fail(
                        "torn-write-lost-durable",
                        format!(
                            "node {id}: a crash at step {at} cut a write that rewrote durable \
                             records in place; log open: {e}"
                        ),
                    ),
                    None => self.fail("recovery", format!("node {id}: log open: {e}")),
                }
            }
        };
        let last = log.last_seq();
        self.net.set_down(id, false);
        let ep = self.net.endpoint(id);
        // A process's incarnation is random in production; here it is drawn from the seed
        // (non-zero: 0 would make `Replica::new` pick a random one), so runs repeat.
        let incarnation = self.rng.gen::<u64>() | 1;
        let rep = match Replica::new(
            replica_cfg(id, self.durability, incarnation),
            log,
            ep,
            self.clock.clone(),
            last,
            want_primary,
        ) {
            Ok(r) => r,
            Err(e) => return self.fail("recovery", format!("node {id}: replica: {e}")),
        };
        // The node's stages around it; the sequencing stage replays the recovered log into
        // the fresh shards in its first cycles.
        let node = match SimNode::new(
            &self.nodes[i].plan,
            rep,
            disk,
            last,
            id,
            self.accounts.clone(),
        ) {
            Ok(n) => n,
            Err(e) => return self.fail("recovery", format!("node {id}: {e}")),
        };
        let n = &mut self.nodes[i];
        n.node = Some(node);
        n.acked_read = 0;
        n.paused_for = 0;
        n.epoch += 1;
        n.gateway.clear();
        n.sessions.clear();
        n.seen_role = None;
        n.pending_check = None;
        self.mix(1, id as u64, last);
        Ok(())
    }

    /// A process end: the connections close, what was not on the disk is gone (a crash may
    /// find the writer inside a commit: a torn write).
    fn stop(&mut self, i: usize, torn_ok: bool) {
        let torn = torn_ok && self.rng.gen_range(0..100u32) < self.cfg.torn_pct;
        let cut = self.rng.gen::<u64>();
        let n = &mut self.nodes[i];
        if let Some(mut node) = n.node.take() {
            if torn {
                if let Some(hit_durable) = node.rep_mut().log_mut().crash_mid_commit(cut) {
                    self.out.torn_tails += 1;
                    if hit_durable {
                        n.torn_durable_at = Some(self.step);
                    }
                }
            }
        }
        n.disk.crash();
        n.paused_for = 0;
        n.epoch += 1;
        n.gateway.clear();
        n.sessions.clear();
        n.seen_role = None;
        n.pending_check = None;
        let id = n.id;
        self.net.set_down(id, true);
    }

    fn crash(&mut self, i: usize) {
        self.stop(i, true);
        let max = self.cfg.max_restart_steps.max(1);
        self.nodes[i].down_for = if max > 20 {
            20 + self.rng.gen_range(0..max - 20)
        } else {
            self.rng.gen_range(1..=max)
        };
        self.out.crashes += 1;
        let id = self.nodes[i].id as u64;
        self.mix(2, id, self.step);
    }

    /// The node's shards applied records its log no longer holds: it exits (after the writer
    /// drained) and is restarted as standby, replaying its log (`REJOIN`).
    fn rejoin(&mut self, i: usize) {
        if let Some(rep) = self.nodes[i].rep_mut() {
            for _ in 0..4 {
                if !rep.log_mut().has_staged() {
                    break;
                }
                rep.log_mut().commit_now();
            }
        }
        self.stop(i, false);
        self.nodes[i].down_for = 1;
        self.out.rejoins += 1;
        let id = self.nodes[i].id as u64;
        self.mix(15, id, self.step);
    }

    fn acked_hi(&self) -> u64 {
        self.acked.keys().next_back().copied().unwrap_or(0)
    }

    /// Crashes are kept within what the design survives (one failure at a time): a node may
    /// crash only while the other runs, and only while the other holds every acknowledged
    /// record on its disk or (`holder_may_crash`) the crashing node does.
    fn may_crash(&mut self, i: usize) -> bool {
        if self.nodes[1 - i].node.is_none() {
            return false;
        }
        self.holds_acked(1 - i) || (self.cfg.holder_may_crash && self.holds_acked(i))
    }

    /// Whether node `k`'s disk holds every acknowledged record (by seq, or by content with
    /// `content_crash_guard`).
    fn holds_acked(&mut self, k: usize) -> bool {
        let hi = self.acked_hi();
        let guard = self.cfg.content_crash_guard;
        let want = self.acked.get(&hi).cloned();
        let Some(r) = self.nodes[k].rep_mut() else {
            return false;
        };
        if r.durable_seq() < hi {
            return false;
        }
        if !guard || hi == 0 {
            return true;
        }
        match Self::read_log(r, hi, hi) {
            Ok(v) if v.len() == 1 => Some(encode(&v[0])) == want,
            _ => false,
        }
    }

    fn faults(&mut self) -> Check {
        if self.witness.is_none() {
            self.witness_down_for = self.witness_down_for.saturating_sub(1);
            if self.witness_down_for == 0 {
                self.net.set_down(WITNESS, false);
                self.witness = self.start_witness();
                let w = self
                    .witness
                    .as_ref()
                    .map_or((0, 0), |w| (w.witness.term, w.witness.holder));
                if self.witness_lost_file && self.witness.is_some() {
                    self.witness_amnesia.get_or_insert(w);
                }
                self.mix(13, w.0, u64::from(w.1));
            }
        } else if self.rng.gen_range(0..1_000_000u32) < self.cfg.witness_crash_ppm {
            self.witness = None;
            self.net.set_down(WITNESS, true);
            self.witness_down_for = 1 + self.rng.gen_range(0..400);
            self.out.witness_crashes += 1;
            if self.rng.gen_range(0..100u32) < self.cfg.witness_loss_pct {
                // The disk holding the state file failed: the file reads back as zeros (both
                // slots damaged); the operator restores nothing. (A file removed outright
                // is a first start to `tpx witness`: OPERATIONS.md says to remove it only
                // with both nodes stopped.)
                let len = std::fs::metadata(&self.witness_file.0).map_or(4096, |m| m.len());
                let _ = std::fs::write(&self.witness_file.0, vec![0u8; len as usize]);
                self.witness_lost_file = true;
                self.out.witness_losses += 1;
                self.mix(16, self.step, 0);
            }
            self.mix(12, self.step, 0);
        }
        if self.rng.gen_range(0..1_000_000u32) < self.cfg.partition_ppm {
            let who = [1, 2, WITNESS][self.rng.gen_range(0..3)];
            let until = self.clock.now_ns() + self.rng.gen_range(0..=3 * TIMEOUT_NS);
            self.net.isolate(who, until);
            self.out.partitions += 1;
            self.mix(14, u64::from(who), until);
        }
        if self.durability != Durability::Replicated
            && self.running(0)
            && self.running(1)
            && self.rng.gen_range(0..1_000_000u32) < self.cfg.power_loss_ppm
        {
            // Both nodes lose power at once: each keeps what its disk had (maybe torn).
            self.crash(0);
            self.crash(1);
            self.out.power_losses += 1;
            self.mix(17, self.step, 0);
        }
        for i in 0..2 {
            if self.nodes[i].node.is_none() {
                self.nodes[i].down_for = self.nodes[i].down_for.saturating_sub(1);
                if self.nodes[i].down_for == 0 {
                    self.start(i, false)?;
                }
            } else if self.rng.gen_range(0..1_000_000u32) < self.cfg.crash_ppm && self.may_crash(i)
            {
                self.crash(i);
            } else if self.nodes[i].paused_for == 0
                && self.rng.gen_range(0..1_000_000u32) < self.cfg.pause_ppm
            {
                let ns = self.rng.gen_range(TIMEOUT_NS / 2..=10 * TIMEOUT_NS);
                self.nodes[i].paused_for = ns / STEP_NS;
                self.out.pauses += 1;
                let id = self.nodes[i].id as u64;
                self.mix(18, id, ns);
            }
            if self.rng.gen_range(0..1_000_000u32) < self.cfg.disk_fault_ppm {
                let f = if self.rng.gen_bool(0.5) {
                    Fault::NoSpace
                } else {
                    Fault::Io
                };
                let k = self.rng.gen_range(1..4);
                self.nodes[i].disk.inject(f, k);
                self.out.disk_faults += 1;
                self.mix(3, i as u64, k as u64);
            }
        }
        Ok(())
    }

    /// The clients: connection resets, failover (log in to the primary, resume the reply
    /// stream, re-send what has no answer), new requests to the node they are logged in to.
    fn clients(&mut self) -> Check {
        let n = self.clients.len();
        let per_client = self.cfg.submit_ppm / self.cfg.clients.max(1);
        for c in 0..n {
            if let Some(conn) = self.clients[c].conn {
                let node = &self.nodes[conn.node];
                let alive = node.node.is_some() && self.conn_epoch(conn) == node.epoch;
                if !alive
                    || (!self.settling
                        && self.rng.gen_range(0..1_000_000u32) < self.cfg.client_reset_ppm)
                {
                    self.drop_conn(c);
                    self.mix(19, c as u64, conn.id);
                }
            }
            let admin = self.clients[c].admin;
            let wants = !self.settling
                && !self.clients[c].idle()
                && (admin || self.rng.gen_range(0..1_000_000u32) < per_client);
            if self.clients[c].conn.is_none() && (wants || !self.clients[c].unanswered.is_empty()) {
                self.failover(c)?;
            }
            let Some(conn) = self.clients[c].conn else {
                continue;
            };
            if wants {
                let plan = self.nodes[0].plan.clone();
                if let Some(r) = self.clients[c].next_request(&plan, &mut self.rng) {
                    self.send(c, conn, &r);
                    self.mix(20, c as u64, r.no);
                }
            }
        }
        Ok(())
    }

    /// Client `c` sends request `r` on `conn`, encoded; the node's gateway reads it at its
    /// next cycle.
    fn send(&mut self, c: usize, conn: Conn, r: &Req) {
        let mut buf = [0u8; MAX_ORDER_ENTRY_FRAME];
        let n = r
            .message()
            .encode(&mut buf)
            .expect("the simulator's requests encode");
        self.nodes[conn.node]
            .gateway
            .push_back((c, conn, r.no, buf[..n].to_vec()));
    }

    /// Client `c` closes its connection (or it broke): the node's session, if that process
    /// still runs, is unbound (`SessionTable::disconnect`); unread bytes are gone.
    fn drop_conn(&mut self, c: usize) {
        let Some(conn) = self.clients[c].conn.take() else {
            return;
        };
        let epoch = self.conn_epoch(conn);
        let n = &mut self.nodes[conn.node];
        if let Some((_, _, slot)) = n.sessions.remove(&(conn.id as ConnId)) {
            if epoch == n.epoch {
                if let Some(node) = n.node.as_mut() {
                    node.disconnect(slot, conn.id as ConnId);
                }
            }
        }
    }

    /// Epochs live in the high bits of a connection id.
    fn conn_epoch(&self, conn: Conn) -> u64 {
        conn.id >> 32
    }

    /// Logs client `c` in to a primary (a paused process does not answer; a standby, or a
    /// primary whose replies are not complete, refuses: `NotPrimary`, tried again next step)
    /// and re-sends every request unanswered at login, in order.
    fn failover(&mut self, c: usize) -> Check {
        let cands: Vec<usize> = (0..2)
            .filter(|&i| {
                let n = &self.nodes[i];
                n.paused_for == 0 && n.rep().is_some_and(|r| r.role() == Role::Primary)
            })
            .collect();
        let Some(&i) = cands.choose(&mut self.rng) else {
            return Ok(());
        };
        let fresh = self.rng.gen_range(0..100u32) < self.cfg.fresh_login_pct;
        self.login_to(c, i, true, fresh).map(|_| ())
    }

    /// Client `c` logs in to node `i` with its session id and its last seq + 1 (`fresh`: 0, no
    /// replay), reads the answer (`LoginAccepted` and the replay of what it missed) and, with
    /// `resend`, re-sends every request unanswered at login, in order. Returns whether it is
    /// logged in.
    fn login_to(
        &mut self,
        c: usize,
        i: usize,
        resend: bool,
        fresh: bool,
    ) -> Result<bool, Violation> {
        let conn = Conn {
            node: i,
            id: self.nodes[i].epoch << 32 | self.next_conn,
        };
        self.next_conn += 1;
        let mut login = self.clients[c].login();
        if fresh {
            login.requested_next_seq = 0;
        }
        self.clients[c].asked_fresh = fresh;
        // Encoded and read back as the gateway reads it.
        let mut buf = [0u8; MAX_ORDER_ENTRY_FRAME];
        let decoded = ClientMessage::Login(login)
            .encode(&mut buf)
            .ok()
            .and_then(|n| ClientMessage::decode(&buf[..n]).ok());
        let Some(ClientMessage::Login(login)) = decoded else {
            return Err(self.violation(
                "session-login-refused",
                format!("{login:?} does not encode"),
            ));
        };
        let now = self.clock.now_ns();
        let mut answer = Vec::new();
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(false);
        };
        match node.login(&login, conn.id as ConnId, now, &mut answer) {
            Ok(slot) => {
                self.nodes[i]
                    .sessions
                    .insert(conn.id as ConnId, (c, conn, slot));
                let cl = &mut self.clients[c];
                cl.conn = Some(conn);
                cl.resent = cl.unanswered.keys().copied().collect();
                let again: Vec<Req> = cl.unanswered.values().copied().collect();
                self.out.client_failovers += 1;
                self.mix(21, c as u64, i as u64);
                self.receive(i, c, conn, &answer)?;
                // As `FailoverClient`: everything unanswered at login goes again (what the
                // replay answered meanwhile is then answered "already sequenced", or again).
                if resend && self.clients[c].conn == Some(conn) {
                    for r in &again {
                        self.send(c, conn, r);
                    }
                }
                Ok(self.clients[c].conn == Some(conn))
            }
            Err(LoginRejectReason::NotPrimary) => {
                self.mix(24, c as u64, i as u64);
                Ok(false)
            }
            Err(LoginRejectReason::SequenceAhead) if self.deposed(i) || !self.session_checks() => {
                // A primary of an older term that has not heard of the newer one yet (cut
                // off): it lacks the newer term's replies the client has. Not the primary:
                // the client tries again, as after `NotPrimary`.
                self.out.deposed_logins += 1;
                self.mix(25, c as u64, i as u64);
                Ok(false)
            }
            Err(
                reason
                @ (LoginRejectReason::SequenceAhead | LoginRejectReason::SequenceUnavailable),
            ) => Err(self.violation(
                "session-reply-missing",
                format!(
                    "node {} refused client {c}'s login (account {}, session {}) resuming \
                     after seq {}: {reason:?}",
                    self.nodes[i].id,
                    login.account,
                    login.session_id,
                    login.requested_next_seq - 1
                ),
            )),
            Err(reason) => Err(self.violation(
                "session-login-refused",
                format!(
                    "node {} refused client {c}'s login {login:?}: {reason:?}",
                    self.nodes[i].id
                ),
            )),
        }
    }

    /// Whether the session checks run: with the whole client view only (`--classic` checks
    /// `acknowledgeable_seq` alone, the planted bugs' profiles one kind of answer).
    fn session_checks(&self) -> bool {
        self.cfg.client_acks == AckCheck::All
    }

    /// Whether node `i` is a primary whose term is over (a later term had a primary).
    fn deposed(&self, i: usize) -> bool {
        let term = self.nodes[i].rep().map_or(0, |r| r.term());
        self.term_primary
            .keys()
            .next_back()
            .is_some_and(|&t| t > term)
    }

    /// After settling: every client logs in to the surviving primary `i` resuming after the
    /// last reply it received, and its whole stream must then be what the log's replay owes
    /// its session (`replay`'s reports through what `i`'s shards applied): every accept,
    /// reject, fill and cancel, once, in log order.
    fn check_sessions(&mut self, i: usize, replay: &Replay) -> Check {
        let id = self.nodes[i].id;
        let Some(node) = self.nodes[i].node.as_ref() else {
            return Ok(());
        };
        // Only once the gateway holds every reply of what the shards applied, and serves.
        let applied = node.applied;
        if !node.serving() || node.complete_seq < applied || self.nodes[i].paused_for > 0 {
            return Ok(());
        }
        let owed = expected_streams(replay.reports.iter().filter(|r| r.seq <= applied));
        for c in 0..self.clients.len() {
            self.drop_conn(c);
            if !self.login_to(c, i, false, false)? {
                return self.fail(
                    "session-login-refused",
                    format!("node {id}: client {c} could not log in at the end"),
                );
            }
            let cl = &self.clients[c];
            // From the client's last fresh login on (before it, it skipped replies).
            let from = cl.known_from;
            let got: Vec<ServerMessage> = cl.stream[from..]
                .iter()
                .filter_map(|f| ServerMessage::decode(f).ok())
                .collect();
            let key = (cl.account, cl.session_id);
            let want = owed.get(&key).map_or(&[][..], |v| v.as_slice());
            let want = want.get(from..).unwrap_or(&[]);
            if let Some((check, detail)) = compare_streams(&got, want) {
                return self.fail(
                    check,
                    format!(
                        "client {c} (account {}, session {}) at the end, logged in to node \
                         {id} (applied {applied}), its stream from seq {}: {detail}",
                        key.0,
                        key.1,
                        from + 1
                    ),
                );
            }
            self.out.sessions_checked += 1;
        }
        Ok(())
    }

    /// The bytes node `i` sent client `c` on `conn`: frames, each read in turn (until the
    /// client closes the connection).
    fn receive(&mut self, i: usize, c: usize, conn: Conn, bytes: &[u8]) -> Check {
        let mut at = 0;
        while at < bytes.len() && self.clients[c].conn == Some(conn) {
            let frame = match frame_len(&bytes[at..], MAX_ORDER_ENTRY_FRAME) {
                Ok(Some(n)) if at + n <= bytes.len() => &bytes[at..at + n],
                other => {
                    return self.fail(
                        "reply-undecodable",
                        format!(
                            "node {}: a frame to client {c}: {other:?}",
                            self.nodes[i].id
                        ),
                    )
                }
            };
            at += frame.len();
            let msg = match ServerMessage::decode(frame) {
                Ok(m) => m,
                Err(e) => {
                    return self.fail(
                        "reply-undecodable",
                        format!("node {}: a reply to client {c}: {e:?}", self.nodes[i].id),
                    )
                }
            };
            self.on_reply(i, c, conn, frame, msg)?;
        }
        Ok(())
    }

    /// One reply to client `c`. A numbered one must be the next of its session's stream
    /// (`session-reply-gap`, `session-reply-twice`), and a fill or cancel of one of the
    /// session's orders must follow the order's `OrderAccepted` (`session-reply-wrong-order`).
    /// Then, as the client reads it: an answer to a request (`OrderAccepted`, the engine's
    /// reject, a cancel's `OrderCancelled`, `AdminAccepted`: "done"; `DuplicateClientOrderId`:
    /// "already sequenced"; `Unavailable`, `Backpressure`, `Throttled`: not sequenced, fail
    /// over and re-send; the gateway's other rejects: given up), and the fills it saw.
    fn on_reply(
        &mut self,
        i: usize,
        c: usize,
        conn: Conn,
        frame: &[u8],
        msg: ServerMessage,
    ) -> Check {
        let id = self.nodes[i].id;
        let seq = match msg {
            ServerMessage::LoginAccepted(a) => {
                let cl = &mut self.clients[c];
                let want = cl.last_seq() + 1;
                if cl.fresh_login(a.next_seq) {
                    self.out.fresh_logins += 1;
                    return Ok(());
                }
                if cl.asked_fresh && a.next_seq < want {
                    // The node's end is before replies the client had: as `SequenceAhead`.
                    if self.deposed(i) || !self.session_checks() {
                        self.out.deposed_logins += 1;
                        self.drop_conn(c);
                        return Ok(());
                    }
                    let had = self.clients[c]
                        .stream
                        .last()
                        .and_then(|f| ServerMessage::decode(f).ok());
                    return Err(self.violation(
                        "session-reply-missing",
                        format!(
                            "node {id}: client {c} logged in asking for no replay after \
                             receiving seq {} ({had:?}), was told next_seq {}",
                            want - 1,
                            a.next_seq
                        ),
                    ));
                }
                if cl.asked_fresh {
                    return Ok(());
                }
                if a.next_seq != want && self.session_checks() {
                    return self.fail(
                        "session-reply-gap",
                        format!(
                            "node {id}: client {c} logged in asking for seq {want}, was told \
                             next_seq {}",
                            a.next_seq
                        ),
                    );
                }
                return Ok(());
            }
            ServerMessage::Logout(_) => {
                self.drop_conn(c);
                return Ok(());
            }
            ServerMessage::OrderAccepted(m) => m.seq,
            ServerMessage::OrderRejected(m) => m.seq,
            ServerMessage::OrderExecuted(m) => m.seq,
            ServerMessage::OrderCancelled(m) => m.seq,
            ServerMessage::OrderReplaced(m) => m.seq,
            ServerMessage::AdminAccepted(m) => m.seq,
            ServerMessage::MassCancelAck(m) => m.seq,
            _ => 0,
        };
        if seq > 0 {
            if let Some(role) = self.nodes[i]
                .rep()
                .map(|r| r.role())
                .filter(|&r| r != Role::Primary)
            {
                // A node that is not primary (a deposed primary applying the new primary's
                // records as standby) may hold replies of records the new term has not
                // acknowledged and may still cut: no client may read them from it.
                self.out.standby_replies += 1;
                return self.fail(
                    "session-reply-from-standby",
                    format!(
                        "node {id} ({role:?}, term {}) sent client {c} numbered reply {seq}: \
                         {msg:?}",
                        self.nodes[i].rep().map_or(0, |r| r.term())
                    ),
                );
            }
            if let Some((check, detail)) = self.clients[c].take_reply(seq, frame, &msg) {
                if self.session_checks() {
                    return self.fail(check, format!("node {id}: client {c}: {detail}"));
                }
                // The session checks are off: the stream goes on from here.
                self.clients[c].resync(seq, frame);
            }
            self.out.session_replies += 1;
        }
        let (commit, role, term) = self.nodes[i].rep().map_or((0, None, 0), |r| {
            (r.acknowledgeable_seq(), Some(r.role()), r.term())
        });
        let step = self.step;
        let ack = |req: Req, how: &'static str| ClientAck {
            req,
            how,
            node: id,
            step,
            at: (0, term),
            commit,
            role,
        };
        match msg {
            ServerMessage::OrderRejected(m) => {
                let Some(req) = self.request_of(c, m.request, m.cl_ord_id) else {
                    return Ok(());
                };
                match m.reason {
                    _ if m.seq > 0 => self.answer(c, conn, req, Some(ack(req, "reply"))),
                    RejectReason::DuplicateClientOrderId => {
                        self.answer(c, conn, req, Some(ack(req, "duplicate")))
                    }
                    RejectReason::Unavailable
                    | RejectReason::Backpressure
                    | RejectReason::Throttled => {
                        // Not sequenced (or not known to be): fail over, re-send.
                        self.mix(23, c as u64, req.no);
                        self.drop_conn(c);
                    }
                    _ => self.answer(c, conn, req, None),
                }
            }
            ServerMessage::OrderExecuted(m) => {
                let k: FillKey = (
                    self.clients[c].account,
                    m.trade_id,
                    m.order_id,
                    m.cl_ord_id,
                    m.qty,
                    m.price,
                    m.leaves_qty,
                    m.fee,
                );
                self.fills_seen.push((k, id, self.step));
            }
            ServerMessage::OrderCancelled(m) if m.reason == CancelReason::UserRequested => {
                if let Some(req) = self.request_of(c, RequestKind::CancelOrder, m.cl_ord_id) {
                    self.answer(c, conn, req, Some(ack(req, "reply")));
                }
            }
            ServerMessage::OrderAccepted(a) => {
                let Some(req) = self.request_of(c, RequestKind::EnterOrder, a.cl_ord_id) else {
                    return Ok(());
                };
                if let Input::EnterOrder(m) = req.input {
                    if (m.instrument, m.side, m.price, m.qty)
                        != (a.instrument, a.side, a.price, a.qty)
                    {
                        return self.fail(
                            "reply-for-another-record",
                            format!(
                                "node {id}: client {c}'s order {} ({m:?}) was answered \
                                 accepted as instrument {} {:?} {} @ {}",
                                a.cl_ord_id, a.instrument, a.side, a.qty, a.price
                            ),
                        );
                    }
                }
                self.answer(c, conn, req, Some(ack(req, "reply")));
            }
            ServerMessage::AdminAccepted(m) => {
                if let Some(req) = self.request_of(c, RequestKind::AdminDeposit, m.request_id) {
                    self.answer(c, conn, req, Some(ack(req, "reply")));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An answer to client `c`'s request `req` on connection `conn`: done (`ack`), or given
    /// up (a reject of the gateway: not sequenced).
    fn answer(&mut self, c: usize, conn: Conn, req: Req, ack: Option<ClientAck>) {
        let cl = &mut self.clients[c];
        if cl.conn != Some(conn) {
            return;
        }
        cl.unanswered.remove(&req.no);
        cl.resent.remove(&req.no);
        if let Some(a) = ack {
            if a.how == "duplicate" {
                self.out.duplicate_acks += 1;
            } else {
                self.out.client_acks += 1;
            }
            self.client_acked.entry((c, req.no)).or_insert(a);
        }
    }

    /// The gateway of node `i` reads its clients' frames in the order received, each through
    /// the node's session layer (checks, ownership, onto the ring to the stage or answered);
    /// the frames of a connection the client closed are gone. Answers into `out`.
    fn gateway(&mut self, i: usize, out: &mut Vec<(ConnId, Vec<u8>)>) -> Check {
        let now = self.clock.now_ns();
        while let Some((c, conn, no, frame)) = self.nodes[i].gateway.pop_front() {
            if self.clients[c].conn != Some(conn) {
                continue;
            }
            let Some(&(_, _, slot)) = self.nodes[i].sessions.get(&(conn.id as ConnId)) else {
                continue;
            };
            let id = self.nodes[i].id;
            let Some(node) = self.nodes[i].node.as_mut() else {
                return Ok(());
            };
            let msg = match ClientMessage::decode(&frame) {
                Ok(m) => m,
                Err(e) => {
                    return self.fail(
                        "reply-undecodable",
                        format!("node {id}: client {c}'s request {no}: {e:?}"),
                    )
                }
            };
            if node.on_frame(slot, &msg, now, now, out) {
                self.drop_conn(c);
            }
            self.out.submitted += 1;
            self.mix(4, c as u64, no);
        }
        Ok(())
    }

    /// The request of client `c` a reply answers: an order, cancel or deposit without an
    /// answer yet whose id is `id` (`cl_ord_id`, or a deposit's `request_id`).
    fn request_of(&self, c: usize, kind: RequestKind, id: u64) -> Option<Req> {
        self.clients[c]
            .unanswered
            .values()
            .find(|r| match (kind, r.input) {
                (RequestKind::EnterOrder, Input::EnterOrder(m)) => m.cl_ord_id == id,
                (RequestKind::CancelOrder, Input::CancelOrder(m)) => m.cl_ord_id == id,
                (RequestKind::AdminDeposit, Input::Deposit(m)) => m.request_id == id,
                _ => false,
            })
            .copied()
    }

    /// The gateway of node `i` delivers the replies of one cycle, to the clients logged in on
    /// their connections.
    fn deliver(&mut self, i: usize, out: &[(ConnId, Vec<u8>)]) -> Check {
        for (conn_id, bytes) in out {
            let Some(&(c, conn, _)) = self.nodes[i].sessions.get(conn_id) else {
                continue;
            };
            if self.clients[c].conn != Some(conn) {
                continue;
            }
            self.receive(i, c, conn, bytes)?;
        }
        Ok(())
    }

    /// Reads `from..=to` of a node's durable log.
    fn read_log(rep: &mut Rep, from: u64, to: u64) -> Result<Vec<LogRecord>, String> {
        let mut out = Vec::new();
        let mut next = from;
        let mut buf = Vec::new();
        while next <= to {
            buf.clear();
            rep.log_mut()
                .read(next, 4096, &mut buf)
                .map_err(|e| e.to_string())?;
            if buf.is_empty() {
                break;
            }
            for r in &buf {
                if r.meta.seq > to {
                    break;
                }
                out.push(*r);
                next = r.meta.seq + 1;
            }
        }
        Ok(out)
    }

    /// A primary's log (once on its disk, up to `last`) must hold every acknowledged record at
    /// its seq, byte for byte, run 1, 2, 3, ... with no gap or duplicate, and hold every
    /// request a client was told is done (see `check_client_log`).
    fn check_primary_log(&mut self, i: usize, last: u64, what: &'static str) -> Check {
        let hi = self.acked_hi();
        let id = self.nodes[i].id;
        let Some(rep) = self.nodes[i].rep_mut() else {
            return Ok(());
        };
        let recs = match Self::read_log(rep, 1, last) {
            Ok(r) => r,
            Err(e) => return self.fail("acked-in-later-primary", format!("node {id}: read: {e}")),
        };
        for (k, r) in recs.iter().enumerate() {
            if r.meta.seq != k as u64 + 1 {
                return self.fail(
                    "no-gap-no-duplicate",
                    format!("node {id}: log position {} holds seq {}", k + 1, r.meta.seq),
                );
            }
        }
        if (recs.len() as u64) < hi {
            return self.fail(
                "acked-in-later-primary",
                format!(
                    "node {id} ({what}) holds {} records (last_seq {last}); {hi} acknowledged",
                    recs.len()
                ),
            );
        }
        for r in &recs {
            if let Some(b) = self.acked.get(&r.meta.seq) {
                if *b != encode(r) {
                    return self.fail(
                        "acked-in-later-primary",
                        format!(
                            "node {id} ({what}): seq {} differs from the acknowledged record",
                            r.meta.seq
                        ),
                    );
                }
            }
        }
        self.check_client_log(id, &recs, what)
    }

    /// Every request a client was told is done is in `recs` (a primary's whole log), an order
    /// exactly once with the content the client sent; no order is in it twice.
    fn check_client_log(&self, id: u32, recs: &[LogRecord], what: &'static str) -> Check {
        if self.cfg.client_acks == AckCheck::None {
            return Ok(());
        }
        let mut orders: HashMap<(u32, u64), (u32, Input, u64)> = HashMap::new();
        let mut others: BTreeSet<(u32, u8, u64, u64)> = BTreeSet::new();
        for r in recs {
            if let Input::EnterOrder(m) = r.input {
                let e = orders
                    .entry((r.meta.origin, m.cl_ord_id))
                    .or_insert((0, r.input, r.meta.seq));
                e.0 += 1;
                if e.0 == 2 {
                    return self.fail(
                        "request-sequenced-twice",
                        format!(
                            "node {id} ({what}): order (origin {:#x}, cl_ord_id {}) at seqs {} \
                             and {}",
                            r.meta.origin, m.cl_ord_id, e.2, r.meta.seq
                        ),
                    );
                }
            } else if let Some(k) = other_key(r.meta.origin, &r.input) {
                others.insert(k);
            }
        }
        for (&(c, no), a) in &self.client_acked {
            let dup = a.how == "duplicate";
            match self.cfg.client_acks {
                AckCheck::Replies if dup => continue,
                AckCheck::Duplicates if !dup => continue,
                _ => {}
            }
            let found = match a.req.dedup_key() {
                Some(k) => orders.get(&k).is_some_and(|o| o.1 == a.req.input),
                None => other_key(a.req.origin, &a.req.input).is_none_or(|k| others.contains(&k)),
            };
            if !found {
                return self.fail(
                    if a.how == "duplicate" {
                        "duplicate-answer-lost"
                    } else {
                        "acked-request-lost"
                    },
                    format!(
                        "client {c} request {no} ({:?}, origin {:#x}) was answered as done \
                         ({} by node {} at step {}, seq {} term {}; that node then {:?} with \
                         acknowledgeable_seq {}) and is not in node {id}'s log ({what}, {} \
                         records)",
                        a.req.input,
                        a.req.origin,
                        a.how,
                        a.node,
                        a.step,
                        a.at.0,
                        a.at.1,
                        a.role,
                        a.commit,
                        recs.len()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Records what each primary acknowledged and checks it against what was acknowledged
    /// before.
    fn check_acks(&mut self) -> Check {
        for i in 0..2 {
            let id = self.nodes[i].id;
            let from = self.nodes[i].acked_read + 1;
            let Some(rep) = self.nodes[i].rep_mut() else {
                continue;
            };
            if rep.role() != Role::Primary {
                continue;
            }
            let c = rep.acknowledgeable_seq();
            if c < from {
                continue;
            }
            let term = rep.term();
            let recs = match Self::read_log(rep, from, c) {
                Ok(r) => r,
                Err(e) => return self.fail("acked-in-later-primary", format!("read: {e}")),
            };
            if *self.ack_owner.entry(term).or_insert(id) != id {
                return self.fail(
                    "one-primary-per-term",
                    format!(
                        "nodes {} and {id} both acknowledged in term {term}",
                        self.ack_owner[&term]
                    ),
                );
            }
            for r in recs {
                let s = r.meta.seq;
                let b = encode(&r);
                match self.acked.get(&s) {
                    Some(old) if *old != b => {
                        return self.fail(
                            "acked-in-later-primary",
                            format!("node {id} (term {term}) acknowledged a different seq {s}"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        if s != self.acked_hi() + 1 {
                            return self.fail(
                                "no-gap-no-duplicate",
                                format!("acknowledged seq {s} after {}", self.acked_hi()),
                            );
                        }
                        self.acked.insert(s, b);
                        self.mix(6, s, term);
                    }
                }
                self.nodes[i].acked_read = s;
            }
        }
        self.out.acked = self.acked_hi();
        Ok(())
    }

    /// Primary and standby engines hash equal at every acknowledged seq both sampled.
    fn check_hashes(&mut self) -> Check {
        let hi = self.acked_hi();
        if let (Some(a), Some(b)) = (&self.nodes[0].node, &self.nodes[1].node) {
            for (s, h) in a.hashes.range(..=hi) {
                if let Some(h2) = b.hashes.get(s) {
                    if h.0 == h2.0 && h.1 != h2.1 {
                        let (t, h, h2) = (h.0, h.1, h2.1);
                        return self.fail(
                            "state-hash",
                            format!(
                                "engine hashes differ at seq {s} (term {t}): {h:#x} vs {h2:#x}"
                            ),
                        );
                    }
                }
            }
        }
        for n in self.nodes.iter_mut().filter_map(|n| n.node.as_mut()) {
            let keep = n.hashes.split_off(&hi);
            n.hashes = keep;
        }
        Ok(())
    }

    /// Promotions whose log is now on the disk are checked.
    fn check_promotions(&mut self) -> Check {
        for i in 0..2 {
            let Some((term, last)) = self.nodes[i].pending_check else {
                continue;
            };
            let Some(rep) = self.nodes[i].rep() else {
                self.nodes[i].pending_check = None;
                continue;
            };
            if rep.role() != Role::Primary || rep.term() != term {
                self.nodes[i].pending_check = None;
                continue;
            }
            if self.term_primary.range(term + 1..).next().is_some() {
                // A later term has had its primary since: this node (paused, or cut off)
                // was deposed before its term's first record was on its disk, so it
                // acknowledged nothing in its term (what it acknowledged before is checked
                // by `check_acks`). Its log need not hold what the later primary
                // acknowledged meanwhile (`tpx-sim` seed 1003531).
                self.nodes[i].pending_check = None;
                continue;
            }
            if rep.durable_seq() >= last {
                self.nodes[i].pending_check = None;
                self.check_primary_log(i, last, "new primary")?;
            }
        }
        Ok(())
    }

    fn poll_all(&mut self) -> Check {
        if let Some(w) = self.witness.as_mut() {
            w.poll();
            if let Some(at) = self.witness_amnesia {
                let now = (w.witness.term, w.witness.holder);
                if now != at {
                    return self.fail(
                        "witness-granted-without-state",
                        format!(
                            "the witness lost its state file, started anyway with {at:?} and \
                             granted {now:?}"
                        ),
                    );
                }
            }
        }
        let mut order = [0usize, 1];
        order.shuffle(&mut self.rng);
        let now = self.clock.now_ns();
        let mut replies = Vec::new();
        for i in order {
            if self.nodes[i].node.is_none() {
                continue;
            }
            if self.nodes[i].paused_for > 0 {
                self.nodes[i].paused_for -= 1;
                continue;
            }
            // One duty cycle of the node, in its order: gateway in, sequencing, shards,
            // gateway out.
            replies.clear();
            self.gateway(i, &mut replies)?;
            let id = self.nodes[i].id;
            let Some(node) = self.nodes[i].node.as_mut() else {
                continue;
            };
            let before = node.rep().last_seq();
            node.cycle(now, &mut replies);
            let cut_to = node.rep().last_seq();
            if cut_to < before {
                // The new term's primary cut this log (`ReplicaEvent::Truncated`).
                self.mix(9, i as u64, cut_to);
                if cut_to < self.acked.keys().next_back().copied().unwrap_or(0) {
                    self.out.acked_truncations += 1;
                }
            }
            let Some(node) = self.nodes[i].node.as_mut() else {
                continue;
            };
            if let Some(e) = node.invariant_error.take() {
                return self.fail("engine-invariants", format!("node {id}: {e}"));
            }
            let exit = node.exit();
            for (s, list) in node.md.iter().enumerate() {
                let sent = std::mem::take(&mut *list.lock().unwrap_or_else(|e| e.into_inner()));
                for p in sent {
                    let Ok(h) = decode_packet_header(&p) else {
                        return self.fail("md-not-in-replay", format!("node {id}: bad packet"));
                    };
                    if h.message_count > 0 {
                        self.md_seen.insert((id, s as u32, h.first_seq), p);
                    }
                }
            }
            let Some(node) = self.nodes[i].node.as_ref() else {
                continue;
            };
            let seen = (node.rep().role(), node.rep().term());
            let last_seq = node.rep().last_seq();
            self.deliver(i, &replies)?;
            if self.nodes[i].seen_role != Some(seen) {
                self.nodes[i].seen_role = Some(seen);
                let (role, term) = seen;
                if role == Role::Primary {
                    // One primary per term: the witness grants each term once.
                    let first = *self.term_primary.entry(term).or_insert(id);
                    if first != id {
                        return self.fail(
                            "one-primary-per-term",
                            format!("nodes {first} and {id} were both primary of term {term}"),
                        );
                    }
                    self.out.promotions += 1;
                    self.mix(7, term, last_seq);
                    self.nodes[i].acked_read = 0;
                    self.nodes[i].pending_check = Some((term, last_seq));
                } else {
                    self.mix(8, term, id as u64);
                }
            }
            match exit {
                None => {}
                // The shards applied records the new term cut: the node exits to rejoin.
                Some(code) if code == u32::from(EXIT_REJOIN) => self.rejoin(i),
                Some(code) => {
                    return self.fail(
                        "recovery",
                        format!("node {id} stopped (exit status {code}): its log did not replay"),
                    )
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Check {
        self.step += 1;
        self.clock.advance(STEP_NS);
        if !self.settling {
            self.faults()?;
        }
        self.clients()?;
        self.poll_all()?;
        self.check_acks()?;
        self.check_hashes()?;
        self.check_promotions()
    }

    /// Every fault off: nodes restarted, the witness back (unless it refuses), paused nodes
    /// resumed, the network healed; clients only re-send.
    fn settle(&mut self) -> Check {
        self.settling = true;
        self.net.set_faults(NetFaults {
            reset_ppm: 0,
            ..self.cfg.net
        });
        for n in &mut self.nodes {
            n.paused_for = 0;
            n.down_for = n.down_for.min(1);
        }
        if self.witness.is_none() {
            self.witness_down_for = self.witness_down_for.min(1);
        }
        for _ in 0..self.cfg.settle_steps {
            if self.witness.is_none() {
                self.witness_down_for = self.witness_down_for.saturating_sub(1);
                if self.witness_down_for == 0 {
                    self.net.set_down(WITNESS, false);
                    self.witness = self.start_witness();
                }
            }
            for i in 0..2 {
                if self.nodes[i].node.is_none() {
                    self.nodes[i].down_for = self.nodes[i].down_for.saturating_sub(1);
                    if self.nodes[i].down_for == 0 {
                        self.start(i, false)?;
                    }
                }
            }
            self.tick()?;
        }
        // The surviving log: the primary's, once on its disk.
        for i in 0..2 {
            let Some(rep) = self.nodes[i].rep_mut() else {
                continue;
            };
            if rep.role() != Role::Primary {
                continue;
            }
            for _ in 0..8 {
                if !rep.log_mut().has_staged() {
                    break;
                }
                rep.log_mut().commit_now();
            }
            let last = rep.durable_seq();
            self.out.final_checked = true;
            self.check_primary_log(i, last, "surviving log at the end")?;
            return self.check_replay(i, last);
        }
        Ok(())
    }

    /// The surviving log replayed into fresh shards (`shards::Replay`) reproduces what
    /// clients and the feed saw: every fill a client was told of (`fill-not-in-replay`);
    /// every market-data packet a primary sent, byte for byte (`md-not-in-replay`); the
    /// surviving primary's engines, when they applied the whole log (`replay-state`); and the
    /// books a feed handler (`tpx_feed::FeedCore`) builds from the market data equal the
    /// engines' (`feed-book`).
    fn check_replay(&mut self, i: usize, last: u64) -> Check {
        let id = self.nodes[i].id;
        let plan = self.nodes[i].plan.clone();
        let Some(rep) = self.nodes[i].rep_mut() else {
            return Ok(());
        };
        let recs = match Self::read_log(rep, 1, last) {
            Ok(r) => r,
            Err(e) => return self.fail("replay-state", format!("node {id}: read: {e}")),
        };
        let replay = Replay::of(&plan, &recs);
        // What clients saw (fills, market data) is checked with the whole client view only
        // (the classic model checks `acknowledgeable_seq` alone, the planted bugs' profiles
        // one kind of answer).
        let client_view = self.cfg.client_acks == AckCheck::All;
        for (k, node, step) in self.fills_seen.iter().filter(|_| client_view) {
            if !replay.fills.contains(k) {
                return self.fail(
                    "fill-not-in-replay",
                    format!(
                        "a fill node {node} reported at step {step} (account {}, trade {:#x}, \
                         order {:#x}, qty {} @ {}) is not in node {id}'s log replayed \
                         ({} records)",
                        k.0,
                        k.1,
                        k.2,
                        k.4,
                        k.5,
                        recs.len()
                    ),
                );
            }
        }
        let mut replay_md: HashMap<(u32, u64), &[u8]> = HashMap::new();
        let packets: Vec<Vec<Vec<u8>>> = replay
            .packets
            .iter()
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        for (s, list) in packets.iter().enumerate() {
            for p in list {
                if let Ok(h) = decode_packet_header(p) {
                    if h.message_count > 0 {
                        replay_md.insert((s as u32, h.first_seq), p);
                    }
                }
            }
        }
        for (&(node, s, first), p) in self.md_seen.iter().filter(|_| client_view) {
            match replay_md.get(&(s, first)) {
                Some(q) if *q == p.as_slice() => {}
                _ => {
                    return self.fail(
                        "md-not-in-replay",
                        format!(
                            "node {node} sent shard {s}'s market-data packet at seq {first}, \
                             which node {id}'s log replayed does not give"
                        ),
                    )
                }
            }
        }
        if client_view {
            self.out.fills_replayed = self.fills_seen.len() as u64;
            self.out.md_replayed = self.md_seen.len() as u64;
        }
        if client_view {
            self.check_sessions(i, &replay)?;
        }
        let Some(node) = self.nodes[i].node.as_ref() else {
            return Ok(());
        };
        let whole = node.applied == replay.applied;
        self.out.state_replayed = whole;
        if whole && node.state_hash() != replay.state_hash() {
            return self.fail(
                "replay-state",
                format!(
                    "node {id}'s engines after seq {} differ from its log replayed",
                    node.applied
                ),
            );
        }
        for (s, list) in packets.iter().enumerate() {
            let shard = &replay.shards[s];
            let books = match feed_books(1 + s as u32, list, &shard.instruments) {
                Ok(b) => b,
                Err(e) => return self.fail("feed-book", format!("shard {s}'s feed books: {e}")),
            };
            let engines: Vec<&Shard> = if whole {
                vec![shard, node.shards().nth(s).expect("same plan")]
            } else {
                vec![shard]
            };
            for e in engines {
                let base = u64::from(e.id) << SHARD_ORDER_ID_SHIFT;
                for (&instrument, book) in &books {
                    let want: Vec<(u64, u8, i64, u64)> = engine_book(&e.engine, instrument, base)
                        .iter()
                        .map(|o| (o.order_id, o.side as u8, o.price, o.qty))
                        .collect();
                    let got: Vec<(u64, u8, i64, u64)> = book
                        .iter()
                        .map(|o| (o.order_id, o.side as u8, o.price, o.qty))
                        .collect();
                    if want != got {
                        return self.fail(
                            "feed-book",
                            format!(
                                "instrument {instrument}: the feed's book ({} orders) is not \
                                 the engine's ({} orders, node {id}'s shard {s}{})",
                                got.len(),
                                want.len(),
                                if std::ptr::eq(e, shard) {
                                    " replayed"
                                } else {
                                    ""
                                }
                            ),
                        );
                    }
                }
            }
            self.out.books_checked += books.len() as u64;
        }
        Ok(())
    }

    fn run(mut self) -> Outcome {
        let r = self.start(0, true).and_then(|_| self.start(1, false));
        let r = r.and_then(|_| {
            while self.step < self.cfg.steps {
                self.tick()?;
            }
            self.settle()
        });
        self.out.violation = r.err();
        self.out.steps = self.step;
        self.out.net_resets = self.net.counters().1;
        self.out.stale_msgs = self.net.stale_sent();
        self.out.fills = self
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref())
            .map(|n| {
                n.shared
                    .stats
                    .trades
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        self.out.trace_hash = self.trace;
        self.out
    }
}

/// The witness's state file, removed when the run ends.
struct WitnessFile(std::path::PathBuf);

impl WitnessFile {
    fn new(seed: u64) -> WitnessFile {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = base.join(format!("tpx-sim-witness-{}-{n}-{seed}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        WitnessFile(p)
    }
}

impl Drop for WitnessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("tmp"));
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: SimConfig) -> Outcome {
    Sim::new(seed, cfg).run()
}
