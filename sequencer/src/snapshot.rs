//! Snapshots of the state at a log position, serialized with rkyv and validated on load.
//!
//! A snapshot file `{seq:020}.snap` is `"TPXSNAP2"`, the format version (u32 LE, outside the
//! archive so that an image of another version is refused by number before its bytes are
//! interpreted), the payload length (u32 LE), the payload's CRC32C (u32 LE), then the rkyv
//! bytes of a [`Snapshot`]; it is written to a temporary name, flushed and renamed, so a crash
//! leaves the previous snapshot. Loading checks the magic, the version
//! ([`SnapshotError::Format`]; files with the older `"TPXSNAP1"` header hold format 2 or
//! older), the length, the CRC and then the archive itself (`rkyv` with bytecheck) before using
//! any of it.
//!
//! [`EngineImage`] is `Engine::snapshot()` field for field (ids, per instrument its status,
//! reference price, band and resting orders in priority order, every order field, and with
//! risk on the whole risk state: [`RiskImage`]), so a restart restores the engine from the
//! image ([`Snapshot::restore_engine`], or [`Snapshot::restore_engine_with_risk`] for an
//! engine with risk on; both validate the image through `Engine::restore`, whose risk part
//! re-checks every risk invariant, and compare the restored engine's state hash with the one
//! recorded) and replays only the log after the snapshot's seq.

use rkyv::{Archive, Deserialize, Serialize};
use tpx_engine::risk::{
    AccountRiskSnapshot, BalanceSnapshot, PerpetualSnapshot, PositionSnapshot, RiskSnapshot,
};
use tpx_engine::{
    Engine, EngineConfig, EngineSnapshot, InstrumentSnapshot, OrderExtSnapshot, OrderKind,
    OrderSnapshot, RiskConfig, Side, StpMode, TimeInForce, Trigger, TriggerDirection,
    TriggerOrderSnapshot, TriggerSource, VenueLedger,
};

use crate::replica::Dedup;
use crate::storage::{read_all, Storage};

/// File name suffix of snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
const MAGIC: &[u8; 8] = b"TPXSNAP2";
/// The header of snapshot files up to format 2 (the version was inside the archive).
const MAGIC_V1: &[u8; 8] = b"TPXSNAP1";
/// Bytes before the payload: magic, format, length, CRC.
const HEADER_LEN: usize = 20;
/// The snapshot format version. 3: the risk state ([`RiskImage`]) replaced the `complete` flag,
/// and the version moved into the header. 4: each perpetual's last funding id. 5: the order
/// types (issue 19): each order's [`OrderExtImage`], each instrument's last and mark price and
/// pending triggers.
pub const SNAPSHOT_FORMAT: u32 = 5;

/// One resting order, in the book's priority order.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderImage {
    pub order_id: u64,
    pub account: u32,
    pub cl_ord_id: u64,
    /// 1 buy, 2 sell.
    pub side: u8,
    pub price: i64,
    pub leaves: u64,
    /// `StpMode` as its `u8` value.
    pub stp: u8,
    pub post_only: bool,
    pub reduce_only: bool,
    pub hold_per_lot: u64,
    /// The order types' state (`None`: a plain order).
    pub ext: Option<OrderExtImage>,
}

/// What an order of the order types keeps beyond a plain order's fields
/// (`tpx_engine::OrderExtSnapshot`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderExtImage {
    pub expire_ts_ns: u64,
    pub display_qty: u64,
    pub hidden_qty: u64,
    pub oco_order_id: u64,
}

/// A pending trigger order (`tpx_engine::TriggerOrderSnapshot`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerImage {
    pub order: OrderImage,
    pub trigger_price: i64,
    /// `TriggerSource`: 1 last, 2 mark.
    pub source: u8,
    /// `TriggerDirection`: 1 rises to, 2 falls to.
    pub direction: u8,
    /// `OrderKind`: 1 limit, 2 market.
    pub kind: u8,
    /// `TimeInForce` as its `u8` value.
    pub tif: u8,
    pub close_position: bool,
}

/// One instrument's book and trading state.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InstrumentImage {
    pub id: u32,
    pub halted: bool,
    pub ref_price: i64,
    pub band_bps: u32,
    /// Bids best first (time priority within a level), then asks the same way.
    pub orders: Vec<OrderImage>,
    /// The last trade price and the mark price the triggers watch (0: none yet).
    pub last_price: i64,
    pub mark_price: i64,
    /// Pending triggers, each list first to fire first (as the engine's snapshot).
    pub triggers: Vec<TriggerImage>,
}

/// One account's fee tier and idempotency key.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountImage {
    pub account: u32,
    pub tier: u8,
    pub last_request_id: u64,
}

/// One account's balance of one asset.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceImage {
    pub account: u32,
    pub asset: u32,
    pub available: i64,
    pub held: i64,
    pub margin_call: bool,
}

/// One account's position on a perpetual (its open order quantities are not stored: restore
/// recomputes them from the orders).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionImage {
    pub account: u32,
    pub size: i64,
    pub cost: i128,
    pub margin: i64,
    pub realized_pnl: i64,
    pub fees: i64,
    pub funding: i64,
    pub listed: bool,
}

/// One perpetual's mark, the venue's ledger and the positions (listed ones first, in list
/// order: the order settlement and funding walk).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PerpetualImage {
    pub instrument: u32,
    pub mark: i64,
    pub venue_pnl: i64,
    pub venue_fees: i64,
    pub venue_funding: i64,
    pub last_funding_id: u64,
    pub positions: Vec<PositionImage>,
}

/// The risk state of an engine with risk on: `tpx_engine::RiskSnapshot` field for field.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RiskImage {
    pub accounts: Vec<AccountImage>,
    pub balances: Vec<BalanceImage>,
    pub perpetuals: Vec<PerpetualImage>,
    /// Per asset: deposits minus withdrawals.
    pub net_deposits: Vec<(u32, i128)>,
}

impl RiskImage {
    pub fn from_snapshot(r: &RiskSnapshot) -> RiskImage {
        RiskImage {
            accounts: r
                .accounts
                .iter()
                .map(|a| AccountImage {
                    account: a.account,
                    tier: a.tier,
                    last_request_id: a.last_request_id,
                })
                .collect(),
            balances: r
                .balances
                .iter()
                .map(|b| BalanceImage {
                    account: b.account,
                    asset: b.asset,
                    available: b.available,
                    held: b.held,
                    margin_call: b.margin_call,
                })
                .collect(),
            perpetuals: r
                .perpetuals
                .iter()
                .map(|p| PerpetualImage {
                    instrument: p.instrument,
                    mark: p.mark,
                    venue_pnl: p.venue.pnl,
                    venue_fees: p.venue.fees,
                    venue_funding: p.venue.funding,
                    last_funding_id: p.last_funding_id,
                    positions: p
                        .positions
                        .iter()
                        .map(|q| PositionImage {
                            account: q.account,
                            size: q.size,
                            cost: q.cost,
                            margin: q.margin,
                            realized_pnl: q.realized_pnl,
                            fees: q.fees,
                            funding: q.funding,
                            listed: q.listed,
                        })
                        .collect(),
                })
                .collect(),
            net_deposits: r.net_deposits.clone(),
        }
    }

    /// The engine's type (every field maps; the engine's restore validates the values).
    pub fn to_snapshot(&self) -> RiskSnapshot {
        RiskSnapshot {
            accounts: self
                .accounts
                .iter()
                .map(|a| AccountRiskSnapshot {
                    account: a.account,
                    tier: a.tier,
                    last_request_id: a.last_request_id,
                })
                .collect(),
            balances: self
                .balances
                .iter()
                .map(|b| BalanceSnapshot {
                    account: b.account,
                    asset: b.asset,
                    available: b.available,
                    held: b.held,
                    margin_call: b.margin_call,
                })
                .collect(),
            perpetuals: self
                .perpetuals
                .iter()
                .map(|p| PerpetualSnapshot {
                    instrument: p.instrument,
                    mark: p.mark,
                    venue: VenueLedger {
                        pnl: p.venue_pnl,
                        fees: p.venue_fees,
                        funding: p.venue_funding,
                    },
                    last_funding_id: p.last_funding_id,
                    positions: p
                        .positions
                        .iter()
                        .map(|q| PositionSnapshot {
                            account: q.account,
                            size: q.size,
                            cost: q.cost,
                            margin: q.margin,
                            realized_pnl: q.realized_pnl,
                            fees: q.fees,
                            funding: q.funding,
                            listed: q.listed,
                        })
                        .collect(),
                })
                .collect(),
            net_deposits: self.net_deposits.clone(),
        }
    }
}

/// The engine's state.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EngineImage {
    pub next_order_id: u64,
    pub next_trade_id: u64,
    pub instruments: Vec<InstrumentImage>,
    /// The risk state; `None` for an engine with risk off.
    pub risk: Option<RiskImage>,
}

fn side_of(v: u8) -> Option<Side> {
    match v {
        1 => Some(Side::Buy),
        2 => Some(Side::Sell),
        _ => None,
    }
}

fn stp_of(v: u8) -> Option<StpMode> {
    Some(match v {
        0 => StpMode::None,
        1 => StpMode::ExpireTaker,
        2 => StpMode::ExpireMaker,
        3 => StpMode::ExpireBoth,
        4 => StpMode::DecrementAndCancel,
        _ => return None,
    })
}

impl OrderImage {
    fn of(o: &OrderSnapshot) -> OrderImage {
        OrderImage {
            order_id: o.order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            side: o.side as u8,
            price: o.price,
            leaves: o.leaves,
            stp: o.stp as u8,
            post_only: o.post_only,
            reduce_only: o.reduce_only,
            hold_per_lot: o.hold_per_lot,
            ext: o.ext.map(|e| OrderExtImage {
                expire_ts_ns: e.expire_ts_ns,
                display_qty: e.display_qty,
                hidden_qty: e.hidden_qty,
                oco_order_id: e.oco_order_id,
            }),
        }
    }

    /// The engine's form (`None`: a side / STP value out of range).
    fn to_snapshot(self) -> Option<OrderSnapshot> {
        Some(OrderSnapshot {
            order_id: self.order_id,
            account: self.account,
            cl_ord_id: self.cl_ord_id,
            side: side_of(self.side)?,
            price: self.price,
            leaves: self.leaves,
            stp: stp_of(self.stp)?,
            post_only: self.post_only,
            reduce_only: self.reduce_only,
            hold_per_lot: self.hold_per_lot,
            ext: self.ext.map(|e| OrderExtSnapshot {
                expire_ts_ns: e.expire_ts_ns,
                display_qty: e.display_qty,
                hidden_qty: e.hidden_qty,
                oco_order_id: e.oco_order_id,
            }),
        })
    }
}

impl EngineImage {
    /// The image of `engine` (its [`Engine::snapshot`]).
    pub fn of(engine: &Engine) -> EngineImage {
        EngineImage::from_snapshot(&engine.snapshot())
    }

    pub fn from_snapshot(s: &EngineSnapshot) -> EngineImage {
        EngineImage {
            next_order_id: s.next_order_id,
            next_trade_id: s.next_trade_id,
            risk: s.risk.as_ref().map(RiskImage::from_snapshot),
            instruments: s
                .instruments
                .iter()
                .map(|i| InstrumentImage {
                    id: i.id,
                    halted: i.halted,
                    ref_price: i.ref_price,
                    band_bps: i.band_bps,
                    orders: i.orders.iter().map(OrderImage::of).collect(),
                    last_price: i.last_price,
                    mark_price: i.mark_price,
                    triggers: i
                        .triggers
                        .iter()
                        .map(|t| TriggerImage {
                            order: OrderImage::of(&t.order),
                            trigger_price: t.trigger.price,
                            source: t.trigger.source as u8,
                            direction: t.trigger.direction as u8,
                            kind: t.kind as u8,
                            tif: t.tif as u8,
                            close_position: t.close_position,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The engine's snapshot type (`None`: a side / STP value out of range).
    pub fn to_snapshot(&self) -> Option<EngineSnapshot> {
        let mut instruments = Vec::with_capacity(self.instruments.len());
        for i in &self.instruments {
            let mut orders = Vec::with_capacity(i.orders.len());
            for o in &i.orders {
                orders.push(o.to_snapshot()?);
            }
            let mut triggers = Vec::with_capacity(i.triggers.len());
            for t in &i.triggers {
                triggers.push(TriggerOrderSnapshot {
                    order: t.order.to_snapshot()?,
                    trigger: Trigger {
                        price: t.trigger_price,
                        source: match t.source {
                            1 => TriggerSource::Last,
                            2 => TriggerSource::Mark,
                            _ => return None,
                        },
                        direction: match t.direction {
                            1 => TriggerDirection::RisesTo,
                            2 => TriggerDirection::FallsTo,
                            _ => return None,
                        },
                    },
                    kind: match t.kind {
                        1 => OrderKind::Limit,
                        2 => OrderKind::Market,
                        _ => return None,
                    },
                    tif: match t.tif {
                        1 => TimeInForce::Gtc,
                        2 => TimeInForce::Ioc,
                        3 => TimeInForce::Fok,
                        4 => TimeInForce::Gtd,
                        _ => return None,
                    },
                    close_position: t.close_position,
                });
            }
            instruments.push(InstrumentSnapshot {
                id: i.id,
                halted: i.halted,
                ref_price: i.ref_price,
                band_bps: i.band_bps,
                orders,
                last_price: i.last_price,
                mark_price: i.mark_price,
                triggers,
            });
        }
        Some(EngineSnapshot {
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            instruments,
            risk: self.risk.as_ref().map(RiskImage::to_snapshot),
        })
    }
}

/// The state at one log position.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub format: u32,
    /// The last record applied.
    pub seq: u64,
    pub term: u64,
    pub timestamp_ns: u64,
    /// `Engine::state_hash()` after `seq`.
    pub state_hash: u64,
    /// The de-duplication table: `(session, highest cl_ord_id)`.
    pub dedup: Vec<(u32, u64)>,
    pub engine: EngineImage,
}

impl Snapshot {
    /// The snapshot of `engine` after record `seq`.
    pub fn of(seq: u64, term: u64, timestamp_ns: u64, engine: &Engine, dedup: &Dedup) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            seq,
            term,
            timestamp_ns,
            state_hash: engine.state_hash(),
            dedup: dedup.entries(),
            engine: EngineImage::of(engine),
        }
    }

    /// The engine this snapshot holds, built from `cfg` (the configuration the snapshot was
    /// taken with) and checked: the restored engine's state hash must equal the recorded one.
    /// An image with risk state is refused ([`SnapshotError::RiskMismatch`]): it needs
    /// [`Snapshot::restore_engine_with_risk`].
    pub fn restore_engine(&self, cfg: EngineConfig) -> Result<Engine, SnapshotError> {
        self.restore_engine_from(cfg, None)
    }

    /// [`Snapshot::restore_engine`] for an engine with risk on ([`Engine::with_risk`]): the
    /// image must hold a risk state, which the engine validates (known accounts, assets and
    /// perpetuals, no duplicates, and every risk invariant of the restored state: holds and
    /// locked margin add up to `held`, balances to deposits minus withdrawals, sizes, costs
    /// and flows to zero, exact lists of open positions).
    pub fn restore_engine_with_risk(
        &self,
        cfg: EngineConfig,
        risk: RiskConfig,
    ) -> Result<Engine, SnapshotError> {
        self.restore_engine_from(cfg, Some(risk))
    }

    /// Restores with risk on (`Some`) or off (`None`).
    pub fn restore_engine_from(
        &self,
        cfg: EngineConfig,
        risk: Option<RiskConfig>,
    ) -> Result<Engine, SnapshotError> {
        self.engine.restore(cfg, risk, self.state_hash)
    }
}

impl EngineImage {
    /// The engine this image holds, built from `cfg` with risk on (`Some`) or off, validated by
    /// `Engine::restore` and checked: its state hash must equal `state_hash`.
    pub fn restore(
        &self,
        cfg: EngineConfig,
        risk: Option<RiskConfig>,
        state_hash: u64,
    ) -> Result<Engine, SnapshotError> {
        if self.risk.is_some() != risk.is_some() {
            return Err(SnapshotError::RiskMismatch {
                image_has_risk: self.risk.is_some(),
            });
        }
        let snap = self.to_snapshot().ok_or_else(|| {
            SnapshotError::Invalid("an order's side or STP mode is out of range".into())
        })?;
        let e = match risk {
            None => Engine::restore(cfg, &snap),
            Some(rc) => Engine::restore_with_risk(cfg, rc, &snap),
        }
        .map_err(|e| SnapshotError::Invalid(format!("restore: {e}")))?;
        if e.state_hash() != state_hash {
            return Err(SnapshotError::Invalid(format!(
                "restored state hash {} != recorded {}",
                e.state_hash(),
                state_hash
            )));
        }
        Ok(e)
    }

    /// [`EngineImage::restore`] into `engine`, built ahead from the same configuration (risk on
    /// when it was built with risk).
    pub fn restore_over(
        &self,
        engine: tpx_engine::FreshEngine,
        state_hash: u64,
    ) -> Result<Engine, SnapshotError> {
        let snap = self.to_snapshot().ok_or_else(|| {
            SnapshotError::Invalid("an order's side or STP mode is out of range".into())
        })?;
        let e = engine
            .restore(&snap)
            .map_err(|e| SnapshotError::Invalid(format!("restore: {e}")))?;
        if e.state_hash() != state_hash {
            return Err(SnapshotError::Invalid(format!(
                "restored state hash {} != recorded {}",
                e.state_hash(),
                state_hash
            )));
        }
        Ok(e)
    }
}

/// Why a snapshot did not load.
#[derive(Debug)]
pub enum SnapshotError {
    Io(std::io::Error),
    /// Not a snapshot file, cut short, CRC mismatch or an archive that does not validate.
    Invalid(String),
    /// A snapshot of another format version (`found`; 2 stands for "2 or older": those files
    /// carry the older header, whose version lay inside the archive).
    Format {
        found: u32,
        expected: u32,
    },
    /// The image has risk state and the engine to restore has risk off, or the other way round.
    RiskMismatch {
        image_has_risk: bool,
    },
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "snapshot io: {e}"),
            SnapshotError::Invalid(s) => write!(f, "invalid snapshot: {s}"),
            SnapshotError::Format { found, expected } => {
                write!(f, "snapshot format {found}, this build reads {expected}")
            }
            SnapshotError::RiskMismatch {
                image_has_risk: true,
            } => {
                write!(
                    f,
                    "the snapshot holds risk state and the engine has risk off"
                )
            }
            SnapshotError::RiskMismatch {
                image_has_risk: false,
            } => write!(
                f,
                "the snapshot has no risk state and the engine has risk on"
            ),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl From<std::io::Error> for SnapshotError {
    fn from(e: std::io::Error) -> Self {
        SnapshotError::Io(e)
    }
}

pub fn snapshot_name(seq: u64) -> String {
    format!("{seq:020}{SNAPSHOT_SUFFIX}")
}

/// Serializes a snapshot into its file bytes.
pub fn encode_snapshot(s: &Snapshot) -> Result<Vec<u8>, SnapshotError> {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(s)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&s.format.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c_of(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn crc32c_of(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// Validates and deserializes snapshot file bytes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let bad = |s: &str| SnapshotError::Invalid(s.to_string());
    if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
        return Err(SnapshotError::Format {
            found: 2,
            expected: SNAPSHOT_FORMAT,
        });
    }
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("no snapshot header"));
    }
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("header"))
    };
    let format = word(8)?;
    if format != SNAPSHOT_FORMAT {
        return Err(SnapshotError::Format {
            found: format,
            expected: SNAPSHOT_FORMAT,
        });
    }
    let len = word(12)? as usize;
    let crc = word(16)?;
    let payload = bytes
        .get(HEADER_LEN..HEADER_LEN.saturating_add(len))
        .ok_or_else(|| bad("cut short"))?;
    if crc32c_of(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let s = rkyv::from_bytes::<Snapshot, rkyv::rancor::Error>(&aligned)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    if s.format != format {
        return Err(bad("the archive's format differs from the header's"));
    }
    Ok(s)
}

/// Writes a snapshot durably (temporary file, flush, rename).
pub fn write_snapshot<S: Storage>(st: &mut S, s: &Snapshot) -> Result<String, SnapshotError> {
    let bytes = encode_snapshot(s)?;
    let name = snapshot_name(s.seq);
    let tmp = format!("{name}.tmp");
    let f = st.open(&tmp, true)?;
    st.truncate(f, 0)?;
    st.write_at(f, 0, &bytes)?;
    st.flush(f)?;
    st.close(f);
    st.rename(&tmp, &name)?;
    Ok(name)
}

/// The newest snapshot that validates (older ones are tried when a newer one is damaged).
pub fn load_latest<S: Storage>(st: &mut S) -> Result<Option<Snapshot>, SnapshotError> {
    let mut names: Vec<String> = st
        .list()?
        .into_iter()
        .filter(|n| n.ends_with(SNAPSHOT_SUFFIX))
        .collect();
    names.sort();
    for name in names.iter().rev() {
        let f = st.open(name, false)?;
        let bytes = read_all(st, f)?;
        st.close(f);
        if let Ok(s) = decode_snapshot(&bytes) {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// File name suffix of node snapshots (`tpx node`, see [`NodeSnapshot`]).
pub const NODE_SNAPSHOT_SUFFIX: &str = ".nsnap";
const NODE_MAGIC: &[u8; 8] = b"TPXNODE1";
/// The node snapshot format version written (1: the first; 2: each shard's market-data
/// numbering, [`MdImage`]). Format 1 images are still read (as `md: None`: the restarted
/// node's market-data numbering starts again, as before format 2); any other is refused
/// ([`SnapshotError::Format`]).
pub const NODE_SNAPSHOT_FORMAT: u32 = 2;
/// The first node snapshot format, still read.
const NODE_SNAPSHOT_FORMAT_1: u32 = 1;

/// A shard's market-data publisher at the image's seq (`tpx_md::MdState`): the sequence number
/// of its next message, a function of the log, so that a restart from the image goes on with
/// the numbering subscribers have; and what the snapshot loop says of each instrument.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MdImage {
    pub next_seq: u64,
    pub instruments: Vec<MdInstrumentImage>,
}

/// One instrument's market-data state (`tpx_md::InstrumentState`).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdInstrumentImage {
    pub id: u32,
    pub halted: bool,
    /// 0: never set.
    pub ref_price: i64,
    pub band_bps: u32,
}

/// One shard of a node snapshot.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ShardImage {
    pub shard: u16,
    /// `Engine::state_hash()` of the shard after the snapshot's seq.
    pub state_hash: u64,
    /// The shard's last checkpoint record at or before the snapshot's seq with no record
    /// applied to the shard since (0: none), and the shard's hash there (= `state_hash`): the
    /// log's next checkpoint names it, and a restart compares.
    pub check_seq: u64,
    pub engine: EngineImage,
    /// The shard's market-data numbering (`None`: the node publishes none).
    pub md: Option<MdImage>,
}

/// The state of a whole `tpx node` at one log position: every shard's engine (risk included),
/// the replica's de-duplication table and every gateway's session table (opaque bytes, the
/// node's `SessionTable` image), so that a restart replays only the log after `seq`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeSnapshot {
    pub format: u32,
    /// The last record applied.
    pub seq: u64,
    /// The term of record `seq` (a restart checks the log still holds that record).
    pub term: u64,
    pub timestamp_ns: u64,
    /// The node's shard-map digest (`[replication] config_digest`): images of another
    /// instrument layout are refused.
    pub config_digest: u64,
    pub shards: Vec<ShardImage>,
    /// The de-duplication table: `(origin, highest cl_ord_id)`.
    pub dedup: Vec<(u32, u64)>,
    /// By gateway number: that gateway's session table image.
    pub sessions: Vec<Vec<u8>>,
}

/// Format 1's shard image (no market-data numbering), read and converted.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct ShardImageV1 {
    shard: u16,
    state_hash: u64,
    check_seq: u64,
    engine: EngineImage,
}

/// Format 1's node snapshot, read and converted.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct NodeSnapshotV1 {
    format: u32,
    seq: u64,
    term: u64,
    timestamp_ns: u64,
    config_digest: u64,
    shards: Vec<ShardImageV1>,
    dedup: Vec<(u32, u64)>,
    sessions: Vec<Vec<u8>>,
}

impl From<NodeSnapshotV1> for NodeSnapshot {
    fn from(v: NodeSnapshotV1) -> NodeSnapshot {
        NodeSnapshot {
            format: v.format,
            seq: v.seq,
            term: v.term,
            timestamp_ns: v.timestamp_ns,
            config_digest: v.config_digest,
            shards: v
                .shards
                .into_iter()
                .map(|s| ShardImage {
                    shard: s.shard,
                    state_hash: s.state_hash,
                    check_seq: s.check_seq,
                    engine: s.engine,
                    md: None,
                })
                .collect(),
            dedup: v.dedup,
            sessions: v.sessions,
        }
    }
}

/// The file name of a node snapshot after record `seq` (sorts by seq).
pub fn node_snapshot_name(seq: u64) -> String {
    format!("{seq:020}{NODE_SNAPSHOT_SUFFIX}")
}

/// The seq of a node snapshot file name.
pub fn parse_node_snapshot_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(NODE_SNAPSHOT_SUFFIX)?;
    (stem.len() == 20).then(|| stem.parse().ok())?
}

/// Serializes a node snapshot into its file bytes: `"TPXNODE1"`, format (u32 LE), payload
/// length (u32 LE), payload CRC32C (u32 LE), the rkyv payload.
pub fn encode_node_snapshot(s: &NodeSnapshot) -> Result<Vec<u8>, SnapshotError> {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(s)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| SnapshotError::Invalid("image larger than 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(NODE_MAGIC);
    out.extend_from_slice(&s.format.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c_of(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Validates (magic, format, length, CRC, archive) and deserializes node snapshot bytes.
pub fn decode_node_snapshot(bytes: &[u8]) -> Result<NodeSnapshot, SnapshotError> {
    let bad = |s: &str| SnapshotError::Invalid(s.to_string());
    if bytes.len() < HEADER_LEN || &bytes[..8] != NODE_MAGIC {
        return Err(bad("no node snapshot header"));
    }
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("header"))
    };
    let format = word(8)?;
    if format != NODE_SNAPSHOT_FORMAT && format != NODE_SNAPSHOT_FORMAT_1 {
        return Err(SnapshotError::Format {
            found: format,
            expected: NODE_SNAPSHOT_FORMAT,
        });
    }
    let len = word(12)? as usize;
    let crc = word(16)?;
    let payload = bytes
        .get(HEADER_LEN..HEADER_LEN.saturating_add(len))
        .ok_or_else(|| bad("cut short"))?;
    if crc32c_of(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    // The archive is read in place where the payload is aligned for it (as
    // `read_node_snapshot` lays it out), else from an aligned copy.
    fn archive<T>(payload: &[u8]) -> Result<T, SnapshotError>
    where
        T: rkyv::Archive,
        T::Archived: for<'a> rkyv::bytecheck::CheckBytes<
                rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>,
            > + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
    {
        if payload.as_ptr() as usize % ARCHIVE_ALIGN == 0 {
            rkyv::from_bytes::<T, rkyv::rancor::Error>(payload)
        } else {
            let mut aligned = rkyv::util::AlignedVec::<ARCHIVE_ALIGN>::with_capacity(payload.len());
            aligned.extend_from_slice(payload);
            rkyv::from_bytes::<T, rkyv::rancor::Error>(&aligned)
        }
        .map_err(|e| SnapshotError::Invalid(e.to_string()))
    }
    let s = if format == NODE_SNAPSHOT_FORMAT_1 {
        archive::<NodeSnapshotV1>(payload)?.into()
    } else {
        archive::<NodeSnapshot>(payload)?
    };
    if s.format != format {
        return Err(bad("the archive's format differs from the header's"));
    }
    Ok(s)
}

/// The alignment the archive's bytes are read at.
const ARCHIVE_ALIGN: usize = 16;

/// Reads the node snapshot file at `path` and decodes it ([`decode_node_snapshot`]): the file
/// is read once, into memory laid out so that its payload is aligned for the archive (no copy
/// of the payload to align it, and one buffer of the image's size faulted in instead of two).
pub fn read_node_snapshot(path: &std::path::Path) -> Result<NodeSnapshot, SnapshotError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let size = usize::try_from(f.metadata()?.len())
        .map_err(|_| SnapshotError::Invalid("too large".into()))?;
    // Zeros before the file's bytes put the payload, `HEADER_LEN` bytes in, on an
    // `ARCHIVE_ALIGN` boundary of the aligned buffer.
    let pad = HEADER_LEN.next_multiple_of(ARCHIVE_ALIGN) - HEADER_LEN;
    let mut buf = rkyv::util::AlignedVec::<ARCHIVE_ALIGN>::with_capacity(pad + size);
    buf.resize(pad + size, 0);
    f.read_exact(&mut buf[pad..])?;
    decode_node_snapshot(&buf[pad..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_castagnoli() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c_of(&[0u8; 32]), 0x8A91_36AA);
    }
}

#[cfg(test)]
mod node_tests {
    use super::*;

    #[test]
    fn a_node_snapshot_round_trips_and_a_flipped_bit_is_refused() {
        let s = NodeSnapshot {
            format: NODE_SNAPSHOT_FORMAT,
            seq: 42,
            term: 3,
            timestamp_ns: 7,
            config_digest: 9,
            shards: Vec::new(),
            dedup: vec![(1, 5)],
            sessions: vec![vec![1, 2, 3]],
        };
        let bytes = encode_node_snapshot(&s).unwrap();
        assert_eq!(decode_node_snapshot(&bytes).unwrap(), s);
        assert_eq!(parse_node_snapshot_name(&node_snapshot_name(42)), Some(42));
        let mut bad = bytes.clone();
        let k = bad.len() - 2;
        bad[k] ^= 1;
        assert!(matches!(
            decode_node_snapshot(&bad),
            Err(SnapshotError::Invalid(_))
        ));
        assert!(decode_node_snapshot(&bytes[..bytes.len() - 1]).is_err());
        // From a file: the payload read in place, aligned; and from bytes at every offset
        // (aligned or not), the same snapshot.
        let dir = std::env::temp_dir().join(format!("tpx-nsnap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("image.nsnap");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_node_snapshot(&path).unwrap(), s);
        let mut shifted = rkyv::util::AlignedVec::<16>::new();
        for skew in 0..16 {
            shifted.clear();
            shifted.extend_from_slice(&[0u8; 16][..skew]);
            shifted.extend_from_slice(&bytes);
            assert_eq!(
                decode_node_snapshot(&shifted[skew..]).unwrap(),
                s,
                "skew {skew}"
            );
        }
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 3);
        std::fs::write(&path, &cut).unwrap();
        assert!(read_node_snapshot(&path).is_err(), "cut short");
        assert!(matches!(
            read_node_snapshot(&dir.join("absent.nsnap")),
            Err(SnapshotError::Io(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        // A format this build does not know is refused, typed.
        let mut future = bytes.clone();
        future[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            decode_node_snapshot(&future),
            Err(SnapshotError::Format {
                found: 3,
                expected: NODE_SNAPSHOT_FORMAT
            })
        ));
    }

    /// An image written by a node before format 2 (no market-data numbering) still restores:
    /// every shard reads as `md: None`.
    #[test]
    fn a_format_1_node_snapshot_is_read_without_market_data_numbering() {
        let engine = tpx_engine::Engine::new(crate::testing::demo_engine_config()).unwrap();
        let v1 = NodeSnapshotV1 {
            format: 1,
            seq: 42,
            term: 3,
            timestamp_ns: 7,
            config_digest: 9,
            shards: vec![ShardImageV1 {
                shard: 0,
                state_hash: engine.state_hash(),
                check_seq: 40,
                engine: EngineImage::of(&engine),
            }],
            dedup: vec![(1, 5)],
            sessions: vec![vec![1, 2, 3]],
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(NODE_MAGIC);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c_of(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let s = decode_node_snapshot(&bytes).unwrap();
        assert_eq!(s, NodeSnapshot::from(v1));
        assert_eq!((s.format, s.seq, s.shards.len()), (1, 42, 1));
        assert_eq!(s.shards[0].md, None);
        assert_eq!(s.shards[0].check_seq, 40);
    }
}
