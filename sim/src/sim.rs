//! One simulated run: two replicas and a witness, from one seed.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_engine::EngineConfig;
use tpx_sequencer::apply::EngineApplier;
use tpx_sequencer::log::{LogConfig, LogError};
use tpx_sequencer::node::{demo_engine_config, Load};
use tpx_sequencer::replica::{Durability, Replica, ReplicaConfig, ReplicaEvent, Role, SubmitError};
use tpx_sequencer::storage::{Fault, MemStorage};
use tpx_sequencer::witness::WitnessServer;
use tpx_sequencer::writer::{LogSink, SyncLog};
use tpx_sequencer::{Applier, Clock, ManualClock};
use tpx_wire::log_record::{encode_record, LogRecord, MAX_RECORD_LEN};

use crate::net::{NetFaults, SimEndpoint, SimNet};

const WITNESS: u32 = 100;
const TIMEOUT_NS: u64 = 500_000;
const STEP_NS: u64 = 10_000;

type Rep = Replica<SyncLog<MemStorage>, SimEndpoint, ManualClock>;

/// What one run does.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Simulated steps (each `STEP_NS` of simulated time).
    pub steps: u64,
    /// Chance per step (millionths) that a client request is submitted.
    pub submit_ppm: u32,
    /// Chance per step (millionths) that a running node crashes (when allowed, see below).
    pub crash_ppm: u32,
    /// Chance per step (millionths) that a node's disk fails the next few writes (ENOSPC/EIO).
    pub disk_fault_ppm: u32,
    /// A node may crash only while the other holds every acknowledged record, compared by
    /// content. Off (the default): compared by seq only, which lets a node with a divergent
    /// unacknowledged tail of an older term stand in for the acknowledged records (the case
    /// the witness's `(last_term, last_seq)` rule is for: see the crate docs).
    pub content_crash_guard: bool,
    /// A node may also crash while it alone holds the acknowledged records on its disk (see
    /// `may_crash`).
    pub holder_may_crash: bool,
    /// Chance (percent) that a crash keeps a torn prefix of the node's unflushed writes (cut
    /// at any byte) instead of losing them all.
    pub torn_pct: u32,
    /// Chance per step (millionths) that a node is partitioned from every peer for up to
    /// `3 * TIMEOUT_NS` (it keeps running).
    pub partition_ppm: u32,
    /// Chance per step (millionths) that the witness crashes (down for up to 400 steps; it
    /// restarts from its persisted `(term, holder)` file).
    pub witness_crash_ppm: u32,
    pub net: NetFaults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            steps: 3000,
            submit_ppm: 500_000,
            crash_ppm: 1_500,
            // ENOSPC / EIO write faults are part of the default run (`--disk-fault-ppm 0`
            // turns them off).
            disk_fault_ppm: 500,
            content_crash_guard: false,
            holder_may_crash: false,
            torn_pct: 50,
            partition_ppm: 400,
            witness_crash_ppm: 300,
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
    pub acked: u64,
    pub submitted: u64,
    pub promotions: u64,
    pub crashes: u64,
    pub disk_faults: u64,
    pub net_resets: u64,
    /// Restarts that failed on an injected disk fault (retried).
    pub failed_restarts: u64,
    /// Times a standby cut acknowledged records from its log (see the crate docs: a stale
    /// `Welcome`); counted, not failed, as it heals when the primary re-sends.
    pub acked_truncations: u64,
    pub partitions: u64,
    pub witness_crashes: u64,
    /// Crashes that kept a torn prefix of unflushed writes.
    pub torn_tails: u64,
    /// Messages of old connections delivered late.
    pub stale_msgs: u64,
    pub durability: Durability,
}

/// The production [`EngineApplier`], rebuilding at once inside `rewind` from the node's disk
/// ([`EngineApplier::with_source`]), plus what the checker reads.
struct SimApplier {
    inner: EngineApplier,
    rebuild_error: Option<String>,
    /// `(seq, term)` of the last record applied through this applier.
    last: (u64, u64),
    /// `seq -> (term of the record at seq, engine state hash)`, sampled at every
    /// [`HASH_EVERY`]th seq as it is applied (the same seqs on both nodes, so every sample is
    /// compared once both have applied it).
    hashes: BTreeMap<u64, (u64, u64)>,
    /// The first engine invariant violated (checked at every sampled seq).
    invariant_error: Option<String>,
}

/// Engine state hashes (and the engine's invariants) are taken at every this-many-th seq: a
/// full hash walks every resting order, and taking one after every poll on both nodes was
/// most of a seed's time. A divergence at any seq stays in the state (the engine is a pure
/// function of its input) and shows at the next sampled seq.
pub const HASH_EVERY: u64 = 8;

/// The engine's structural invariants (`Engine::check_invariants`: never crossed, level
/// aggregates equal to their orders, every live order on its level and indexed, free + live
/// slots = capacity) are checked at every this-many-th seq: the check walks the whole slab
/// and every level of the ladders.
pub const INVARIANTS_EVERY: u64 = 32;

impl Applier for SimApplier {
    fn apply(&mut self, rec: &LogRecord) {
        self.inner.apply(rec);
        let seq = rec.meta.seq;
        self.last = (seq, rec.meta.term);
        if seq % HASH_EVERY == 0 && self.inner.applied_seq == seq {
            self.hashes
                .insert(seq, (rec.meta.term, self.inner.state_hash()));
            if self.invariant_error.is_none() && seq % INVARIANTS_EVERY == 0 {
                if let Err(e) = self.inner.engine.check_invariants() {
                    self.invariant_error = Some(format!("seq {seq}: {e}"));
                }
            }
        }
    }
    fn rewind(&mut self, seq: u64) {
        self.hashes.split_off(&(seq + 1));
        self.inner.rewind(seq);
        if let Some(e) = self.inner.rebuild_error.take() {
            self.rebuild_error = Some(e);
        } else if let Some(to) = self.inner.rewound_to {
            self.rebuild_error = Some(format!("rewind to {to} not rebuilt"));
        }
    }
}

struct Node {
    id: u32,
    disk: MemStorage,
    rep: Option<Rep>,
    app: SimApplier,
    /// Steps until a crashed node restarts.
    down_for: u64,
    /// What this node, as primary, has acknowledged and the checker has read.
    acked_read: u64,
}

/// The engine of the simulated nodes: the demo instruments with the price range cut to
/// what the load sends (100,000 +- 25 ticks; a margin is kept so an out-of-band price
/// would still be a reject, not a panic) and room for 4,096 resting orders (the load keeps a
/// few hundred). The demo config's 200,000-tick ladders and 65,536-slot slab made creating an
/// engine (every restart and rewind) the other half of a seed's time.
fn sim_engine_config() -> EngineConfig {
    let mut c = demo_engine_config();
    for i in &mut c.instruments {
        i.min_price = 99_500;
        i.max_price = 100_500;
    }
    c.max_orders = 1 << 12;
    c
}

/// An engine that rebuilds from `disk` inside `rewind`.
fn applier(disk: &MemStorage) -> EngineApplier {
    let src = disk.clone();
    EngineApplier::new(sim_engine_config())
        .expect("sim engine config")
        .with_source(move || Ok(src.clone()))
}

fn sim_applier(inner: EngineApplier) -> SimApplier {
    SimApplier {
        inner,
        rebuild_error: None,
        last: (0, 0),
        hashes: BTreeMap::new(),
        invariant_error: None,
    }
}

fn replica_cfg(id: u32, durability: Durability) -> ReplicaConfig {
    ReplicaConfig {
        node_id: id,
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

struct Sim {
    cfg: SimConfig,
    rng: Xoshiro256PlusPlus,
    clock: ManualClock,
    net: SimNet,
    witness: Option<WitnessServer<SimEndpoint, ManualClock>>,
    /// Where the witness persists `(term, holder)` (a real file, as in production).
    witness_file: WitnessFile,
    witness_down_for: u64,
    nodes: Vec<Node>,
    durability: Durability,
    load: Load,
    step: u64,
    trace: u64,
    /// Every acknowledged seq and its record bytes (contiguous from 1).
    acked: BTreeMap<u64, Vec<u8>>,
    /// Which node acknowledged in a term.
    ack_owner: BTreeMap<u64, u32>,
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
        let witness = Some(WitnessServer::new(
            TIMEOUT_NS,
            net.endpoint(WITNESS),
            clock.clone(),
            Some(witness_file.0.clone()),
        ));
        let durability = [
            Durability::Replicated,
            Durability::Fsync,
            Durability::ReplicatedFsync,
        ][rng.gen_range(0..3)];
        let load = Load::new(7, rng.gen());
        let mut s = Sim {
            cfg,
            rng,
            clock,
            net,
            witness,
            witness_file,
            witness_down_for: 0,
            nodes: Vec::new(),
            durability,
            load,
            step: 0,
            trace: 0xcbf2_9ce4_8422_2325,
            acked: BTreeMap::new(),
            ack_owner: BTreeMap::new(),
            verbose: std::env::var_os("TPX_SIM_TRACE").is_some(),
            out: Outcome {
                seed,
                trace_hash: 0,
                violation: None,
                steps: 0,
                acked: 0,
                submitted: 0,
                promotions: 0,
                crashes: 0,
                disk_faults: 0,
                net_resets: 0,
                failed_restarts: 0,
                acked_truncations: 0,
                partitions: 0,
                witness_crashes: 0,
                torn_tails: 0,
                stale_msgs: 0,
                durability,
            },
        };
        for id in [1, 2] {
            let disk = MemStorage::new();
            s.nodes.push(Node {
                id,
                disk: disk.clone(),
                rep: None,
                app: sim_applier(applier(&disk)),
                down_for: 0,
                acked_read: 0,
            });
        }
        s
    }

    fn mix(&mut self, tag: u64, a: u64, b: u64) {
        if self.verbose && tag != 4 && tag != 6 {
            let (r0, r1) = (self.desc(0), self.desc(1));
            eprintln!("step {} tag {tag} {a} {b} | n1 {r0} | n2 {r1}", self.step);
        }
        for v in [tag, a, b] {
            self.trace = (self.trace ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn desc(&self, i: usize) -> String {
        match &self.nodes[i].rep {
            Some(r) => format!(
                "{:?} t{} last{} dur{} ack{} app{}",
                r.role(),
                r.term(),
                r.last_seq(),
                r.durable_seq(),
                r.acknowledgeable_seq(),
                self.nodes[i].app.inner.applied_seq
            ),
            None => "down".into(),
        }
    }

    fn fail(&self, check: &'static str, detail: String) -> Check {
        Err(Violation {
            step: self.step,
            check,
            detail,
        })
    }

    /// (Re)starts a node from its disk: recover the log, replay it into a fresh engine, join.
    fn start(&mut self, i: usize, want_primary: bool) -> Check {
        let id = self.nodes[i].id;
        let disk = self.nodes[i].disk.clone();
        let log = match SyncLog::open(disk.clone(), log_cfg()) {
            Ok((log, _)) => log,
            Err(LogError::Io(_)) => {
                // An injected write fault during recovery: the process fails to start; retry.
                self.nodes[i].down_for = 10;
                self.out.failed_restarts += 1;
                self.mix(11, id as u64, 0);
                return Ok(());
            }
            Err(e) => return self.fail("recovery", format!("node {id}: log open: {e}")),
        };
        let mut app = applier(&disk);
        if let Err(e) = app.rebuild(disk.clone(), u64::MAX) {
            return self.fail("recovery", format!("node {id}: replay: {e}"));
        }
        self.net.set_down(id, false);
        let ep = self.net.endpoint(id);
        let rep = match Replica::new(
            replica_cfg(id, self.durability),
            log,
            ep,
            self.clock.clone(),
            app.applied_seq,
            want_primary,
        ) {
            Ok(r) => r,
            Err(e) => return self.fail("recovery", format!("node {id}: replica: {e}")),
        };
        let n = &mut self.nodes[i];
        n.app = sim_applier(app);
        n.rep = Some(rep);
        n.acked_read = 0;
        self.mix(1, id as u64, self.nodes[i].app.inner.applied_seq);
        Ok(())
    }

    fn crash(&mut self, i: usize) {
        let torn = self.rng.gen_range(0..100u32) < self.cfg.torn_pct;
        let cut = self.rng.gen::<u64>();
        let n = &mut self.nodes[i];
        n.rep = None;
        let before = disk_files(&n.disk);
        n.disk.crash();
        if torn && tear(&n.disk, &before, cut) {
            self.out.torn_tails += 1;
        }
        n.app.hashes.clear();
        n.down_for = 20 + self.rng.gen_range(0..300);
        let id = n.id;
        self.net.set_down(id, true);
        self.out.crashes += 1;
        self.mix(2, id as u64, self.step);
    }

    fn acked_hi(&self) -> u64 {
        self.acked.keys().next_back().copied().unwrap_or(0)
    }

    /// Crashes are kept within what the design survives (one failure at a time): a node may
    /// crash only while the other runs, and only while the other holds every acknowledged
    /// record on its disk or (`holder_may_crash`) the crashing node does (a crash keeps what
    /// was flushed: the records come back with it, and until then no one may take over).
    fn may_crash(&mut self, i: usize) -> bool {
        if self.nodes[1 - i].rep.is_none() {
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
        let Some(r) = self.nodes[k].rep.as_mut() else {
            return false;
        };
        if r.durable_seq() < hi {
            return false;
        }
        if !guard || hi == 0 {
            return true;
        }
        // Same record at the last acknowledged seq: the same records up to it.
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
                self.witness = Some(WitnessServer::new(
                    TIMEOUT_NS,
                    self.net.endpoint(WITNESS),
                    self.clock.clone(),
                    Some(self.witness_file.0.clone()),
                ));
                let w = self
                    .witness
                    .as_ref()
                    .map_or((0, 0), |w| (w.witness.term, u64::from(w.witness.holder)));
                self.mix(13, w.0, w.1);
            }
        } else if self.rng.gen_range(0..1_000_000u32) < self.cfg.witness_crash_ppm {
            self.witness = None;
            self.net.set_down(WITNESS, true);
            self.witness_down_for = 1 + self.rng.gen_range(0..400);
            self.out.witness_crashes += 1;
            self.mix(12, self.step, 0);
        }
        if self.rng.gen_range(0..1_000_000u32) < self.cfg.partition_ppm {
            let who = [1, 2, WITNESS][self.rng.gen_range(0..3)];
            let until = self.clock.now_ns() + self.rng.gen_range(0..=3 * TIMEOUT_NS);
            self.net.isolate(who, until);
            self.out.partitions += 1;
            self.mix(14, u64::from(who), until);
        }
        for i in 0..2 {
            if self.nodes[i].rep.is_none() {
                self.nodes[i].down_for = self.nodes[i].down_for.saturating_sub(1);
                if self.nodes[i].down_for == 0 {
                    self.start(i, false)?;
                }
            } else if self.rng.gen_range(0..1_000_000u32) < self.cfg.crash_ppm && self.may_crash(i)
            {
                self.crash(i);
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

    fn client(&mut self) -> Check {
        if self.rng.gen_range(0..1_000_000u32) >= self.cfg.submit_ppm {
            return Ok(());
        }
        let prim: Vec<usize> = (0..2)
            .filter(|&i| {
                self.nodes[i]
                    .rep
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Primary)
            })
            .collect();
        let Some(&i) = prim.choose(&mut self.rng) else {
            return Ok(());
        };
        let id = self.load.next_cl_ord_id;
        let req = self.load.request(id);
        let session = self.load.session;
        let Some(rep) = self.nodes[i].rep.as_mut() else {
            return Ok(());
        };
        let before = rep.last_seq();
        let term = rep.term();
        match rep.submit(session, session, &req) {
            Ok(seq) => {
                self.load.next_cl_ord_id += 1;
                self.out.submitted += 1;
                self.mix(4, seq, term);
                if seq != before + 1 {
                    let nid = self.nodes[i].id;
                    return self.fail(
                        "no-gap-no-duplicate",
                        format!("node {nid} sequenced {seq} after {before}"),
                    );
                }
            }
            Err(SubmitError::Duplicate { .. }) => self.load.next_cl_ord_id += 1,
            Err(e) => self.mix(5, i as u64, matches!(e, SubmitError::LogFailed(_)) as u64),
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

    /// A new primary must hold every acknowledged record, at its seq, byte for byte, and its
    /// log must run 1, 2, 3, ... with no gap or duplicate.
    fn check_new_primary(&mut self, i: usize) -> Check {
        let hi = self.acked_hi();
        let id = self.nodes[i].id;
        let Some(rep) = self.nodes[i].rep.as_mut() else {
            return Ok(());
        };
        let last = rep.last_seq();
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
                    "node {id} became primary with {} durable records (last_seq {last}); \
                     {hi} acknowledged",
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
                            "node {id}: seq {} differs from the acknowledged record",
                            r.meta.seq
                        ),
                    );
                }
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
            let Some(rep) = self.nodes[i].rep.as_mut() else {
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
        let (a, b) = (&self.nodes[0].app.hashes, &self.nodes[1].app.hashes);
        for (s, h) in a.range(..=hi) {
            if let Some(h2) = b.get(s) {
                if h.0 == h2.0 && h.1 != h2.1 {
                    let (t, h, h2) = (h.0, h.1, h2.1);
                    return self.fail(
                        "state-hash",
                        format!("engine hashes differ at seq {s} (term {t}): {h:#x} vs {h2:#x}"),
                    );
                }
            }
        }
        // Compared entries are not needed again.
        for n in &mut self.nodes {
            let keep = n.app.hashes.split_off(&hi);
            n.app.hashes = keep;
        }
        Ok(())
    }

    fn poll_all(&mut self) -> Check {
        if let Some(w) = self.witness.as_mut() {
            w.poll();
        }
        let mut order = [0usize, 1];
        order.shuffle(&mut self.rng);
        for i in order {
            let mut events = Vec::new();
            {
                let n = &mut self.nodes[i];
                let Some(rep) = n.rep.as_mut() else { continue };
                let before = n.app.inner.applied_seq;
                rep.poll(&mut n.app);
                if let Some(e) = n.app.rebuild_error.take() {
                    let id = n.id;
                    return self.fail("recovery", format!("node {id}: rewind replay: {e}"));
                }
                if let Some(e) = n.app.invariant_error.take() {
                    let id = n.id;
                    return self.fail("engine-invariants", format!("node {id}: {e}"));
                }
                let now = n.app.inner.applied_seq;
                if now < before {
                    n.app.hashes.split_off(&(now + 1));
                }
                while let Some(e) = rep.take_event() {
                    events.push(e);
                }
            }
            for e in events {
                match e {
                    ReplicaEvent::BecamePrimary { term, last_seq } => {
                        self.out.promotions += 1;
                        self.mix(7, term, last_seq);
                        self.nodes[i].acked_read = 0;
                        self.check_new_primary(i)?;
                    }
                    ReplicaEvent::BecameStandby { term, primary } => {
                        self.mix(8, term, primary as u64)
                    }
                    ReplicaEvent::Truncated { to_seq } => {
                        self.mix(9, i as u64, to_seq);
                        if to_seq < self.acked_hi() {
                            self.out.acked_truncations += 1;
                        }
                    }
                    ReplicaEvent::LogError(e) => {
                        if self.verbose {
                            eprintln!("step {} node {} log error: {e}", self.step, i + 1);
                        }
                        self.mix(10, i as u64, 0)
                    }
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Check {
        self.step += 1;
        self.clock.advance(STEP_NS);
        self.faults()?;
        self.client()?;
        self.poll_all()?;
        self.check_acks()?;
        self.check_hashes()
    }

    fn run(mut self) -> Outcome {
        let r = self.start(0, true).and_then(|_| self.start(1, false));
        let r = r.and_then(|_| {
            while self.step < self.cfg.steps {
                self.tick()?;
            }
            Ok(())
        });
        self.out.violation = r.err();
        self.out.steps = self.step;
        self.out.net_resets = self.net.counters().1;
        self.out.stale_msgs = self.net.stale_sent();
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

/// Every file of a disk and its live bytes.
fn disk_files(disk: &MemStorage) -> Vec<(String, Vec<u8>)> {
    use tpx_sequencer::storage::Storage;
    let mut st = disk.clone();
    let mut names = st.list().unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| disk.contents(&n).map(|b| (n, b)))
        .collect()
}

/// After `MemStorage::crash` (every file back to its flushed bytes): keeps a prefix of the
/// unflushed bytes, as a disk that persisted the writes in order and stopped at any byte (a
/// torn last record). The first file (in name order, the log's segment order) whose bytes
/// changed keeps `cut % changed span` of its unflushed bytes; the later files lose theirs.
/// Returns whether anything was kept.
fn tear(disk: &MemStorage, before: &[(String, Vec<u8>)], cut: u64) -> bool {
    for (name, live) in before {
        let Some(durable) = disk.contents(name) else {
            continue;
        };
        if *live == durable {
            continue;
        }
        let first = live
            .iter()
            .zip(durable.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(durable.len().min(live.len()));
        let last = live.len();
        if last <= first {
            return false;
        }
        let keep = (cut % (last - first) as u64) as usize;
        if keep == 0 {
            return false;
        }
        let mut torn = durable.clone();
        if torn.len() < first + keep {
            torn.resize(first + keep, 0);
        }
        torn[first..first + keep].copy_from_slice(&live[first..first + keep]);
        disk.set_contents(name, torn);
        return true;
    }
    false
}

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: SimConfig) -> Outcome {
    Sim::new(seed, cfg).run()
}
