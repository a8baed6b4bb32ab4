//! The cluster's shard plan (instruments, shards, risk) and the node's own shards built from
//! it (`tpx_node::shard`: the engine with risk on, the report mapping, market-data numbering
//! into memory), and [`Replay`]: a log replayed into fresh shards, the oracle the final checks
//! compare what clients and the feed saw against.

use std::collections::{BTreeMap, HashSet};

use tpx_engine::{
    EngineConfig, FeeRate, InstrumentKind, InstrumentRisk, InstrumentSpec, RiskConfig,
};
use tpx_md::{MdInstrument, PublisherConfig};
use tpx_node::msg::{Report, ReportKind};
use tpx_node::shard::apply::{Shard, SHARD_ORDER_ID_SHIFT};
use tpx_node::shard::md::{MemoryPackets, ShardMd};
use tpx_wire::codec::Symbol;
use tpx_wire::log_record::LogRecord;

/// Engine state hashes are sampled at every this-many-th seq as it is applied (the same seqs on
/// both nodes). A divergence at any seq stays in the state and shows at the next sample.
pub const HASH_EVERY: u64 = 8;
/// `Engine::check_invariants` of every shard at every this-many-th seq.
pub const INVARIANTS_EVERY: u64 = 32;

/// The `origin` of a request of `account` to `shard` (the node's `origin_of`).
pub fn origin_of(shard: u32, account: u32) -> u32 {
    tpx_node::sequencing::feed::origin_of(shard as u16, account)
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

    /// The node's shard `shard`: its instruments, risk on (the node's `[risk]`: fees in two
    /// tiers, venue fee and liquidation accounts), room for 4,096 resting orders, and its
    /// market-data publisher numbering into memory (`ShardMd::in_memory`; it sends feed A's
    /// packets to the returned list while the node's role says so).
    pub fn build(&self, shard: u32) -> (Shard, MemoryPackets) {
        let ids: Vec<u32> = (1..=INSTRUMENTS)
            .filter(|&i| self.shard(i) == shard)
            .collect();
        let cfg = EngineConfig {
            instruments: ids.iter().map(|&i| Self::spec(i)).collect(),
            max_orders: 1 << 12,
            max_accounts: 64,
        };
        let risk = (!ids.is_empty()).then(|| {
            let mut assets = vec![QUOTE_ASSET];
            assets.extend(ids.iter().map(|&i| i + 1));
            RiskConfig {
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
            }
        });
        let pcfg = PublisherConfig {
            stream_id: 1 + shard,
            snapshot_stream_id: 1001 + shard,
            id_base: u64::from(shard) << SHARD_ORDER_ID_SHIFT,
            ring_capacity: 1 << 6,
            instruments: ids
                .iter()
                .map(|&i| MdInstrument {
                    spec: Self::spec(i),
                    symbol: Symbol::new(&symbol(i)),
                })
                .collect(),
            active: false,
            ..PublisherConfig::default()
        };
        let (md, packets) = ShardMd::in_memory(pcfg).expect("sim md config");
        let s = Shard::new(shard as u16, cfg, risk)
            .expect("sim shard config")
            .with_md(Some(md));
        (s, packets)
    }

    /// `(id, symbol)` of every instrument (the node's `NodeState::instruments`).
    pub fn instruments(&self) -> Vec<(u32, String)> {
        (1..=INSTRUMENTS).map(|i| (i, symbol(i))).collect()
    }
}

fn symbol(instrument: u32) -> String {
    format!("SIM{instrument}")
}

/// A fill as a client saw it: `(account, trade id, order id, cl_ord_id, qty, price, leaves,
/// fee)`.
pub type FillKey = (u32, u64, u64, u64, u64, i64, u64, i64);

/// The fill an `Executed` report tells its account, if it is one.
pub fn fill_key(r: &Report) -> Option<FillKey> {
    match r.kind {
        ReportKind::Executed {
            cl_ord_id,
            order_id,
            trade_id,
            qty,
            price,
            leaves_qty,
            fee,
            ..
        } => Some((
            r.account, trade_id, order_id, cl_ord_id, qty, price, leaves_qty, fee,
        )),
        _ => None,
    }
}

/// A log replayed into fresh shards of the plan, their market data sent (active): what every
/// node's shards and feed must agree with.
#[derive(Debug)]
pub struct Replay {
    pub shards: Vec<Shard>,
    /// By shard: every packet its publisher sent, in order.
    pub packets: Vec<MemoryPackets>,
    /// Every fill reported.
    pub fills: HashSet<FillKey>,
    /// Every report, in log order (the oracle of the sessions' reply streams).
    pub reports: Vec<Report>,
    pub applied: u64,
}

impl Replay {
    pub fn of(plan: &ShardPlan, recs: &[LogRecord]) -> Replay {
        let (mut shards, packets): (Vec<Shard>, Vec<MemoryPackets>) =
            (0..plan.shards).map(|s| plan.build(s)).unzip();
        for s in &mut shards {
            s.md_set_active(true);
        }
        let mut fills = HashSet::new();
        let mut reports = Vec::new();
        // The node's own replay: records reach the shards as the stage's feed sends them.
        let mut replay = tpx_node::shard::replay::Replay::over(shards);
        for r in recs {
            replay.apply(r, |_, rep| {
                if let Some(k) = fill_key(&rep) {
                    fills.insert(k);
                }
                reports.push(rep);
            });
        }
        Replay {
            shards: replay.shards,
            packets,
            fills,
            reports,
            applied: replay.last_seq,
        }
    }

    /// The combined state of every shard (as [`crate::node::SimNode::state_hash`]).
    pub fn state_hash(&self) -> u64 {
        combined_hash(self.shards.iter().map(|s| s.engine.state_hash()))
    }
}

/// The hash of several shards' state hashes, in shard order.
pub fn combined_hash(hashes: impl Iterator<Item = u64>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in hashes {
        h = (h ^ x).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// By instrument: the packets `p` applied to a fresh feed handler core (`tpx_feed::FeedCore`,
/// one feed, no retransmission, no snapshots) give this book, in queue order.
pub fn feed_books(
    stream_id: u32,
    packets: &[Vec<u8>],
    instruments: &[u32],
) -> Result<BTreeMap<u32, Vec<tpx_feed::L3Entry>>, String> {
    let mut core = tpx_feed::FeedCore::new(tpx_feed::FeedConfig {
        stream_id,
        feeds: 1,
        retransmit: false,
        snapshot: false,
        buffer_bytes: 1 << 16,
        expected_orders: 1 << 12,
        ..tpx_feed::FeedConfig::default()
    });
    for p in packets {
        core.on_packet(tpx_feed::Source::A, p, 0, &mut ());
    }
    core.books().check()?;
    Ok(instruments
        .iter()
        .map(|&i| (i, core.books().l3(i)))
        .collect())
}
