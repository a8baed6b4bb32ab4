//! Snapshots of the state at a log position, serialized with rkyv and validated on load.
//!
//! A snapshot file `{seq:020}.snap` is `"TPXSNAP1"`, the payload length (u32 LE), the payload's
//! CRC32C (u32 LE), then the rkyv bytes of a [`Snapshot`]; it is written to a temporary name,
//! flushed and renamed, so a crash leaves the previous snapshot. Loading checks the magic, the
//! length, the CRC and then the archive itself (`rkyv` with bytecheck) before using any of it.
//!
//! [`EngineImage`] is `Engine::snapshot()` field for field (ids, per instrument its status,
//! reference price, band and resting orders in priority order, every order field), so a
//! restart restores the engine from the image ([`Snapshot::restore_engine`], which also checks
//! the restored engine's state hash against the one recorded) and replays only the log after
//! the snapshot's seq. An engine with risk on is not mapped yet: its image is marked
//! incomplete and restart replays the log from the start.

use rkyv::{Archive, Deserialize, Serialize};
use tpx_engine::{
    Engine, EngineConfig, EngineSnapshot, InstrumentSnapshot, OrderSnapshot, Side, StpMode,
};

use crate::replica::Dedup;
use crate::storage::{read_all, Storage};

/// File name suffix of snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
const MAGIC: &[u8; 8] = b"TPXSNAP1";
/// The snapshot format version.
pub const SNAPSHOT_FORMAT: u32 = 2;

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
}

/// The engine's state.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EngineImage {
    pub next_order_id: u64,
    pub next_trade_id: u64,
    pub instruments: Vec<InstrumentImage>,
    /// Whether the image holds the whole state (false: the engine runs with risk on, whose
    /// state is not mapped here; restart replays from the start).
    pub complete: bool,
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

impl EngineImage {
    /// The image of `engine` (its [`Engine::snapshot`]).
    pub fn of(engine: &Engine) -> EngineImage {
        EngineImage::from_snapshot(&engine.snapshot())
    }

    pub fn from_snapshot(s: &EngineSnapshot) -> EngineImage {
        EngineImage {
            next_order_id: s.next_order_id,
            next_trade_id: s.next_trade_id,
            complete: s.risk.is_none(),
            instruments: s
                .instruments
                .iter()
                .map(|i| InstrumentImage {
                    id: i.id,
                    halted: i.halted,
                    ref_price: i.ref_price,
                    band_bps: i.band_bps,
                    orders: i
                        .orders
                        .iter()
                        .map(|o| OrderImage {
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
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The engine's snapshot type (`None`: incomplete, or a side / STP value out of range).
    pub fn to_snapshot(&self) -> Option<EngineSnapshot> {
        if !self.complete {
            return None;
        }
        let mut instruments = Vec::with_capacity(self.instruments.len());
        for i in &self.instruments {
            let mut orders = Vec::with_capacity(i.orders.len());
            for o in &i.orders {
                orders.push(OrderSnapshot {
                    order_id: o.order_id,
                    account: o.account,
                    cl_ord_id: o.cl_ord_id,
                    side: side_of(o.side)?,
                    price: o.price,
                    leaves: o.leaves,
                    stp: stp_of(o.stp)?,
                    post_only: o.post_only,
                    reduce_only: o.reduce_only,
                    hold_per_lot: o.hold_per_lot,
                });
            }
            instruments.push(InstrumentSnapshot {
                id: i.id,
                halted: i.halted,
                ref_price: i.ref_price,
                band_bps: i.band_bps,
                orders,
            });
        }
        Some(EngineSnapshot {
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            instruments,
            risk: None,
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
    pub fn restore_engine(&self, cfg: EngineConfig) -> Result<Engine, SnapshotError> {
        let snap = self.engine.to_snapshot().ok_or_else(|| {
            SnapshotError::Invalid("the engine image is incomplete (risk state)".into())
        })?;
        let e = Engine::restore(cfg, &snap)
            .map_err(|e| SnapshotError::Invalid(format!("restore: {e}")))?;
        if e.state_hash() != self.state_hash {
            return Err(SnapshotError::Invalid(format!(
                "restored state hash {} != recorded {}",
                e.state_hash(),
                self.state_hash
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
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "snapshot io: {e}"),
            SnapshotError::Invalid(s) => write!(f, "invalid snapshot: {s}"),
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
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(MAGIC);
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
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad("no snapshot header"));
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| bad("header"))?) as usize;
    let crc = u32::from_le_bytes(bytes[12..16].try_into().map_err(|_| bad("header"))?);
    let payload = bytes.get(16..16 + len).ok_or_else(|| bad("cut short"))?;
    if crc32c_of(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let s = rkyv::from_bytes::<Snapshot, rkyv::rancor::Error>(&aligned)
        .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
    if s.format != SNAPSHOT_FORMAT {
        return Err(bad("unknown format"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_castagnoli() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c_of(&[0u8; 32]), 0x8A91_36AA);
    }
}
