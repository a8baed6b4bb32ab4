//! The applier the node uses, as the simulator drives it: several matching shards with risk on,
//! each record routed by the shard its `origin` names, and the node's session bookkeeping
//! (`ShardFeed` / `entry_of` in `node/src/replication.rs`): a record this node sequenced in
//! this process lifetime carries the submitting session, and the shard answers that session
//! when it applies the record (`OrderAccepted`, `OrderRejected`, fills). That answer is what a
//! client takes as "done", so the simulator counts it as an acknowledgement (see
//! [`ShardApplier::replies`]).

use std::collections::{BTreeMap, VecDeque};

use tpx_engine::{
    Engine, EngineConfig, FeeRate, InstrumentKind, InstrumentRisk, InstrumentSpec, RiskConfig,
};
use tpx_sequencer::apply::{command_of, risk_command_of, CountingSink};
use tpx_sequencer::log::LogReader;
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::Applier;
use tpx_wire::log_record::{Input, LogRecord};

/// Engine state hashes are sampled at every this-many-th seq as it is applied (the same seqs on
/// both nodes). A divergence at any seq stays in the state and shows at the next sample.
pub const HASH_EVERY: u64 = 8;
/// `Engine::check_invariants` of every shard at every this-many-th seq.
pub const INVARIANTS_EVERY: u64 = 32;

/// The shard an `origin` names (the node's `origin_of`: shard in the top 8 bits, 0xFF all).
pub const ALL_SHARDS: u32 = 0xFF;
pub fn origin_of(shard: u32, account: u32) -> u32 {
    (shard.min(0xFF)) << 24 | (account & 0x00FF_FFFF)
}

/// Venue accounts of the risk configuration.
pub const FEE_ACCOUNT: u32 = 60;
pub const LIQUIDATION_ACCOUNT: u32 = 61;
/// Assets: 1 the quote (USDT-like), 2.. the bases of the spot instruments.
pub const QUOTE_ASSET: u32 = 1;

/// The instruments: `INSTRUMENTS` spot pairs, ids 1..; instrument `i` trades asset `i + 1`
/// against [`QUOTE_ASSET`], prices 99,500..=100,500 ticks (the workload sends 100,000 +- 25).
pub const INSTRUMENTS: u32 = 3;

/// The cluster's shard plan: how many shards and which shard each instrument is on (the
/// node deals instruments round-robin in id order unless configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPlan {
    pub shards: u32,
    /// `shard_of[i - 1]`: the shard of instrument `i`.
    pub shard_of: Vec<u32>,
}

impl ShardPlan {
    pub fn round_robin(shards: u32) -> ShardPlan {
        ShardPlan {
            shards: shards.max(1),
            shard_of: (0..INSTRUMENTS).map(|k| k % shards.max(1)).collect(),
        }
    }

    /// A digest of the plan (the node's configuration digest covers its core plan): two
    /// different plans give different digests; never 0 (0 means "not checked").
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for v in std::iter::once(self.shards).chain(self.shard_of.iter().copied()) {
            h = (h ^ u64::from(v)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h | 1
    }

    pub fn shard(&self, instrument: u32) -> u32 {
        self.shard_of
            .get(instrument.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(0)
    }

    fn spec(id: u32) -> InstrumentSpec {
        InstrumentSpec {
            id,
            kind: InstrumentKind::Spot {
                base: id + 1,
                quote: QUOTE_ASSET,
            },
            tick_size: 1,
            lot_size: 1,
            min_price: 99_500,
            max_price: 100_500,
            min_qty: 1,
            max_qty: 1_000_000,
            min_notional: 0,
        }
    }

    /// The engine of one shard: its instruments, risk on (the node's `[risk]`: fees in two
    /// tiers, venue fee and liquidation accounts), room for 4,096 resting orders.
    pub fn engine(&self, shard: u32) -> Engine {
        let ids: Vec<u32> = (1..=INSTRUMENTS)
            .filter(|&i| self.shard(i) == shard)
            .collect();
        let cfg = EngineConfig {
            instruments: ids.iter().map(|&i| Self::spec(i)).collect(),
            max_orders: 1 << 12,
            max_accounts: 64,
        };
        if ids.is_empty() {
            return Engine::new(cfg).expect("sim engine config");
        }
        let mut assets = vec![QUOTE_ASSET];
        assets.extend(ids.iter().map(|&i| i + 1));
        let risk = RiskConfig {
            assets,
            instruments: ids
                .iter()
                .map(|&i| {
                    let mut r = InstrumentRisk::new(i);
                    r.fees = vec![
                        FeeRate {
                            maker_ppm: 200,
                            taker_ppm: 500,
                        },
                        FeeRate {
                            maker_ppm: -100,
                            taker_ppm: 400,
                        },
                    ];
                    r
                })
                .collect(),
            fee_tiers: 2,
            fee_account: FEE_ACCOUNT,
            liquidation_account: LIQUIDATION_ACCOUNT,
        };
        Engine::with_risk(cfg, risk).expect("sim risk config")
    }
}

/// A request this node sequenced in this process lifetime, waiting to be applied (the node's
/// `LocalMeta`): who to answer.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub seq: u64,
    /// The term the record was sequenced in.
    pub term: u64,
    pub client: usize,
    /// The client's connection it came on (answers go to that connection only).
    pub conn: u64,
    /// The client's request number.
    pub req: u64,
    pub origin: u32,
    pub input: Input,
}

/// An answer the node sends a client when it applies a record it sequenced.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub client: usize,
    pub conn: u64,
    pub req: u64,
    pub seq: u64,
    pub term: u64,
}

impl std::fmt::Debug for ShardApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardApplier")
            .field("plan", &self.plan)
            .field("applied_seq", &self.applied_seq)
            .field("meta", &self.meta.len())
            .finish()
    }
}

/// Several shards with risk, fed by the replica; rebuilds from the node's disk inside
/// `rewind` (the node itself exits and replays on restart: the same state).
pub struct ShardApplier {
    plan: ShardPlan,
    engines: Vec<Engine>,
    sink: CountingSink,
    disk: MemStorage,
    pub applied_seq: u64,
    /// `(seq, term)` of the last record applied.
    pub last: (u64, u64),
    /// `seq -> (term, combined state hash of every shard)`, sampled every [`HASH_EVERY`].
    pub hashes: BTreeMap<u64, (u64, u64)>,
    pub invariant_error: Option<String>,
    pub rebuild_error: Option<String>,
    /// What this node sequenced and has not applied yet, in seq order.
    pub meta: VecDeque<Meta>,
    /// Answers sent since the owner last took them.
    pub replies: Vec<Reply>,
    /// Requests this node sequenced and stepped down from before they were acknowledgeable
    /// (`Applier::discard`): the owner answers them "unavailable".
    pub unsequenced: Vec<Meta>,
    /// A record applied at the `(seq, term)` of a request this node sequenced is not that
    /// request: the node would send the session an answer about another record.
    pub wrong_reply: Option<String>,
    /// A rewind happened (the node exits and restarts: its sessions close).
    pub rewound: bool,
}

impl ShardApplier {
    pub fn new(plan: ShardPlan, disk: MemStorage) -> ShardApplier {
        let engines = (0..plan.shards).map(|s| plan.engine(s)).collect();
        ShardApplier {
            plan,
            engines,
            sink: CountingSink::default(),
            disk,
            applied_seq: 0,
            last: (0, 0),
            hashes: BTreeMap::new(),
            invariant_error: None,
            rebuild_error: None,
            meta: VecDeque::new(),
            replies: Vec::new(),
            unsequenced: Vec::new(),
            wrong_reply: None,
            rewound: false,
        }
    }

    pub fn fills(&self) -> u64 {
        self.sink.fills
    }

    /// The combined state of every shard.
    pub fn state_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in &self.engines {
            h = (h ^ e.state_hash()).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    fn apply_engines(&mut self, rec: &LogRecord) {
        let shard = rec.meta.origin >> 24;
        let cmd = command_of(rec);
        let risk = if cmd.is_none() {
            risk_command_of(rec)
        } else {
            None
        };
        for (s, e) in self.engines.iter_mut().enumerate() {
            if shard != ALL_SHARDS && s as u32 != shard {
                continue;
            }
            if let Some(c) = &cmd {
                e.process(rec.meta.timestamp_ns, c, &mut self.sink);
            } else if let Some(r) = &risk {
                e.process_risk(rec.meta.timestamp_ns, r, &mut self.sink);
            }
        }
        self.applied_seq = rec.meta.seq;
        self.last = (rec.meta.seq, rec.meta.term);
    }

    /// Replays the node's disk from seq 1 up to `upto` into fresh engines.
    pub fn rebuild(&mut self, upto: u64) -> Result<(), String> {
        self.engines = (0..self.plan.shards).map(|s| self.plan.engine(s)).collect();
        self.applied_seq = 0;
        self.last = (0, 0);
        let mut rd = LogReader::new(self.disk.clone()).map_err(|e| e.to_string())?;
        while self.applied_seq < upto {
            match rd.next() {
                Ok(Some(r)) => {
                    if r.meta.seq != self.applied_seq + 1 {
                        return Err(format!(
                            "replay found seq {} after {}",
                            r.meta.seq, self.applied_seq
                        ));
                    }
                    self.apply_engines(&r);
                }
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

impl Applier for ShardApplier {
    fn apply(&mut self, rec: &LogRecord) {
        self.apply_engines(rec);
        let seq = rec.meta.seq;
        // The node's `entry_of`: the session of the request this node sequenced at `seq`,
        // matched by seq alone (a stepped-down primary's unacknowledged entries were taken
        // out by `discard`, so a record the new term puts at their seq finds none).
        while self.meta.front().is_some_and(|m| m.seq < seq) {
            self.meta.pop_front();
        }
        if let Some(m) = self.meta.front().copied() {
            if m.seq == seq {
                self.meta.pop_front();
                if m.origin != rec.meta.origin || m.input != rec.input || m.term != rec.meta.term {
                    self.wrong_reply.get_or_insert_with(|| {
                        format!(
                            "seq {seq} (term {}) applied with the session of another request \
                             (sequenced here in term {})",
                            rec.meta.term, m.term
                        )
                    });
                } else {
                    self.replies.push(Reply {
                        client: m.client,
                        conn: m.conn,
                        req: m.req,
                        seq,
                        term: rec.meta.term,
                    });
                }
            }
        }
        if seq % HASH_EVERY == 0 {
            self.hashes.insert(seq, (rec.meta.term, self.state_hash()));
            if self.invariant_error.is_none() && seq % INVARIANTS_EVERY == 0 {
                for (s, e) in self.engines.iter().enumerate() {
                    if let Err(e) = e.check_invariants() {
                        self.invariant_error = Some(format!("seq {seq} shard {s}: {e}"));
                        break;
                    }
                }
            }
        }
    }

    fn rewind(&mut self, seq: u64) {
        self.hashes.split_off(&(seq + 1));
        // The node's shards cannot go back: it exits and is restarted (its sessions close,
        // what it had sequenced is answered by no one).
        self.rewound = true;
        self.meta.clear();
        if seq >= self.applied_seq {
            return;
        }
        if let Err(e) = self.rebuild(seq) {
            self.rebuild_error = Some(e);
        } else if self.applied_seq != seq {
            self.rebuild_error = Some(format!(
                "rewind to {seq} replayed only to {}",
                self.applied_seq
            ));
        }
    }

    /// The node's `ShardFeed::discard`: the sessions of requests sequenced as
    /// `from_seq..=to_seq` and never acknowledged are answered "unavailable" (by the owner,
    /// from [`ShardApplier::unsequenced`]); a record the new term puts at one of these seqs
    /// reaches the shards without a session.
    fn discard(&mut self, from_seq: u64, to_seq: u64) {
        while self.meta.front().is_some_and(|m| m.seq < from_seq) {
            self.meta.pop_front();
        }
        while let Some(m) = self.meta.front().copied() {
            if m.seq > to_seq {
                break;
            }
            self.meta.pop_front();
            self.unsequenced.push(m);
        }
    }
}
