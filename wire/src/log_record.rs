//! The input-log record: one sequenced input, checksummed.
//!
//! A record is a 48-byte record header followed by the input as a complete message (its own
//! common header included): an order-entry request (schema ORDER_ENTRY), an admin input or a
//! risk input (schema INPUT_LOG). A CRC32C over the whole record, its own field excepted, finds a torn or
//! corrupted tail on recovery; [`decode_record`] tells a record cut short ([`RecordError::Truncated`])
//! from one whose bytes are wrong ([`RecordError::Corrupt`]).

use crate::codec::{chunk, FieldDesc, Layout, WireField};
use crate::error::{DecodeError, EncodeError};
use crate::header::{schema, schema::INPUT_LOG, template, Header, HEADER_LEN, SCHEMA_VERSION};
use crate::order_entry::{CancelOrder, EnterOrder, EnterOrderExt, MassCancel, ReplaceOrder};

crate::wire_message! {
    /// Admin: halt trading on an instrument (new orders and replaces are rejected; cancels work).
    pub struct Halt = template template::HALT, schema INPUT_LOG, size 16 {
        /// Instrument id.
        8 => instrument: u32,
    }
    reserved [12..16]
}

crate::wire_message! {
    /// Admin: resume trading on an instrument.
    pub struct Resume = template template::RESUME, schema INPUT_LOG, size 16 {
        /// Instrument id.
        8 => instrument: u32,
    }
    reserved [12..16]
}

crate::wire_message! {
    /// Admin: set an instrument's reference price and price band.
    pub struct SetReferencePrice = template template::SET_REFERENCE_PRICE, schema INPUT_LOG, size 24 {
        /// Reference price in ticks (the engine rejects <= 0).
        8 => price: i64,
        /// Instrument id.
        16 => instrument: u32,
        /// Band either side of the reference price, basis points; 0 disables the band.
        20 => band_bps: u32,
    }
    reserved []
}

// Accounts and risk: the engine's `RiskCommand`s, operator inputs (the record's `origin` and
// `account` are 0; the account is in the body). Every value a field can hold decodes: the
// engine answers a bad one with a typed reject (`InvalidAmount`, `UnknownAsset`, ...), so that
// the log, not the decoder, decides.

crate::wire_message! {
    /// Risk: credit an account (`RiskCommand::Deposit`). `request_id` is the idempotency key:
    /// above every request id the account used before (deposits and withdrawals share it).
    pub struct Deposit = template template::DEPOSIT, schema INPUT_LOG, size 32 {
        /// Minor units of the asset (the engine rejects 0).
        8 => amount: u64,
        /// Idempotency key, strictly increasing per account.
        16 => request_id: u64,
        /// Account id.
        24 => account: u32,
        /// Asset id.
        28 => asset: u32,
    }
    reserved []
}

crate::wire_message! {
    /// Risk: debit an account if it has that much available (`RiskCommand::Withdraw`); same
    /// idempotency rule as `Deposit`.
    pub struct Withdraw = template template::WITHDRAW, schema INPUT_LOG, size 32 {
        /// Minor units of the asset (the engine rejects 0).
        8 => amount: u64,
        /// Idempotency key, strictly increasing per account.
        16 => request_id: u64,
        /// Account id.
        24 => account: u32,
        /// Asset id.
        28 => asset: u32,
    }
    reserved []
}

crate::wire_message! {
    /// Risk: a perpetual's mark price (`RiskCommand::SetMarkPrice`): variation margin and
    /// maintenance checks for every open position.
    pub struct SetMarkPrice = template template::SET_MARK_PRICE, schema INPUT_LOG, size 32 {
        /// Mark price in ticks (the engine rejects one outside the instrument's range).
        8 => price: i64,
        /// Instrument id (a perpetual).
        16 => instrument: u32,
        /// The admin request's `request_id`, named by its answer on every node (0: the operator's).
        24 => request_id: u64,
    }
    reserved [20..24]
}

crate::wire_message! {
    /// Risk: funding at the current mark (`RiskCommand::ApplyFunding`).
    pub struct ApplyFunding = template template::APPLY_FUNDING, schema INPUT_LOG, size 32 {
        /// Funding rate in parts per million, positive: longs pay shorts (|rate| <= 10^6).
        8 => rate_ppm: i64,
        /// Instrument id (a perpetual).
        16 => instrument: u32,
        /// Idempotency key, strictly increasing per perpetual (a re-sent funding is refused).
        24 => funding_id: u64,
    }
    reserved [20..24]
}

crate::wire_message! {
    /// Risk: liquidate an account's position on a perpetual (`RiskCommand::Liquidate`); the
    /// liquidation account then sends IOC order `cl_ord_id` at limit `price`. `request_id` is
    /// the idempotency key of `Deposit` (the liquidated account's), so a re-sent liquidation is
    /// refused instead of applied twice.
    pub struct Liquidate = template template::LIQUIDATE, schema INPUT_LOG, size 40 {
        /// Client order id of the liquidation account's closing IOC order.
        8 => cl_ord_id: u64,
        /// Limit price of that order, ticks.
        16 => price: i64,
        /// Account id whose position is taken over.
        24 => account: u32,
        /// Instrument id (a perpetual).
        28 => instrument: u32,
        /// Idempotency key, strictly increasing per account (shared with deposits and withdrawals).
        32 => request_id: u64,
    }
    reserved []
}

crate::wire_message! {
    /// Risk: put an account into a fee tier (`RiskCommand::SetFeeTier`).
    pub struct SetFeeTier = template template::SET_FEE_TIER, schema INPUT_LOG, size 24 {
        /// Account id.
        8 => account: u32,
        /// Fee tier (the engine rejects one at or above its configured number of tiers).
        12 => tier: u8,
        /// The admin request's `request_id`, named by its answer on every node (0: the operator's).
        16 => request_id: u64,
    }
    reserved [13..16]
}

crate::wire_message! {
    /// Sequencer: the first record of a primary's term when its log is not empty (Raft's
    /// no-op, VSR's start-view). It carries no input; the term's first acknowledgement waits
    /// for it, so that everything the new primary inherited is acknowledged as part of its
    /// own term (see ARCHITECTURE.md, "The witness"). Appliers skip it.
    pub struct TermStart = template template::TERM_START, schema INPUT_LOG, size 16 {
        /// The node that became primary.
        8 => node: u32,
    }
    reserved [12..16]
}

crate::wire_message! {
    /// Sequencer: time passes. The engine's `Command::Tick`: it does nothing but let its
    /// timestamp (the record's) expire GTD orders. The primary's sequencing stage logs one when
    /// a GTD order is due and no other record has carried the log's time past its expiry (see
    /// ARCHITECTURE.md, "GTD expiry by the sequencer's clock"); replay expires the same orders
    /// at the same place. The record's `origin` names every shard (the node's `0xFF << 24`) and
    /// its `account` is 0.
    pub struct Tick = template template::TICK, schema INPUT_LOG, size 8 {
    }
    reserved []
}

crate::wire_message! {
    /// Sequencer: a replica checkpoint for one shard (the record's `origin` names it,
    /// `shard << 24`; `account` 0). The primary's sequencing stage logs one per shard every
    /// `[replication] checkpoint_every` records. It carries the state hash the primary's shard
    /// computed at its previous checkpoint of that shard: every node applying the record compares
    /// it with its own hash at `prev_seq`, then hashes its shard's state at this record's seq
    /// for the next one (see ARCHITECTURE.md, "Replicas checked while running"). No engine input.
    pub struct Checkpoint = template template::CHECKPOINT, schema INPUT_LOG, size 24 {
        /// Seq of the checkpoint record whose hash this is; 0: none yet (nothing to compare).
        8 => prev_seq: u64,
        /// The primary's shard's `state_hash()` after applying record `prev_seq`.
        16 => prev_hash: u64,
    }
    reserved []
}

/// Bytes of the record header (the body follows).
pub const RECORD_HEADER_LEN: usize = 48;
/// The longest record a decoder accepts (every input of this version is far shorter; the slack
/// is for inputs later versions add).
pub const MAX_RECORD_LEN: usize = 1024;

const OFF_CRC: usize = 8;
const OFF_ORIGIN: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_TERM: usize = 24;
const OFF_TS: usize = 32;
const OFF_ACCOUNT: usize = 40;
const OFF_SESSION: usize = 44;

/// The offset table of the record header (the body, at 48, is a whole message).
pub const RECORD_LAYOUT: Layout = Layout {
    name: "LogRecord",
    template_id: template::LOG_RECORD,
    schema_id: INPUT_LOG,
    size: RECORD_HEADER_LEN,
    fields: &[
        FieldDesc {
            name: "crc32c",
            offset: OFF_CRC,
            size: 4,
            ty: "u32",
            doc: " CRC32C (Castagnoli) of bytes [0, 8) then [12, length).",
            rule: "",
        },
        FieldDesc {
            name: "origin",
            offset: OFF_ORIGIN,
            size: 4,
            ty: "u32",
            doc: " The de-duplication key; tpx node writes shard * 2^24 + account (shard 255: every shard), the operator 0.",
            rule: "",
        },
        FieldDesc {
            name: "seq",
            offset: OFF_SEQ,
            size: 8,
            ty: "u64",
            doc: " Log sequence number: 1, 2, 3, ... with no gap.",
            rule: "nonzero",
        },
        FieldDesc {
            name: "term",
            offset: OFF_TERM,
            size: 8,
            ty: "u64",
            doc: " Term (epoch) of the primary that sequenced it.",
            rule: "",
        },
        FieldDesc {
            name: "timestamp_ns",
            offset: OFF_TS,
            size: 8,
            ty: "u64",
            doc: " Sequencer timestamp, ns since the Unix epoch (the engine's ts_ns).",
            rule: "",
        },
        FieldDesc {
            name: "account",
            offset: OFF_ACCOUNT,
            size: 4,
            ty: "u32",
            doc: " The session's account for order-entry inputs; 0 for admin inputs.",
            rule: "",
        },
        FieldDesc {
            name: "session",
            offset: OFF_SESSION,
            size: 4,
            ty: "u32",
            doc: " The client's session_id that sent the input (order entry; with account, the session whose reply stream it is part of); 0 = none (operator inputs, logs written before it).",
            rule: "",
        },
        FieldDesc {
            name: "body",
            offset: RECORD_HEADER_LEN,
            size: 0,
            ty: "message",
            doc: " The input: a whole message, length - 48 bytes.",
            rule: "",
        },
    ],
    reserved: &[],
};

/// The sequencing metadata of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecordMeta {
    /// Log sequence number (>= 1).
    pub seq: u64,
    /// Term of the primary that sequenced the input.
    pub term: u64,
    /// Sequencer timestamp, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// The de-duplication key (`tpx node`: `shard << 24 | account`), 0 for the operator.
    pub origin: u32,
    /// The session's account (0 for admin inputs).
    pub account: u32,
    /// The client's `session_id` that sent the input (0: none, the operator's).
    pub session: u32,
}

/// Any input the log carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    EnterOrder(EnterOrder),
    EnterOrderExt(EnterOrderExt),
    ReplaceOrder(ReplaceOrder),
    CancelOrder(CancelOrder),
    MassCancel(MassCancel),
    Halt(Halt),
    Resume(Resume),
    SetReferencePrice(SetReferencePrice),
    Deposit(Deposit),
    Withdraw(Withdraw),
    SetMarkPrice(SetMarkPrice),
    ApplyFunding(ApplyFunding),
    Liquidate(Liquidate),
    SetFeeTier(SetFeeTier),
    TermStart(TermStart),
    Tick(Tick),
    Checkpoint(Checkpoint),
}

impl Input {
    /// A new order's fields in the extended form (`EnterOrder` as `EnterOrderExt::plain`), or
    /// `None` for any other input.
    #[inline]
    pub fn new_order(&self) -> Option<EnterOrderExt> {
        match self {
            Input::EnterOrder(m) => Some(EnterOrderExt::plain(m)),
            Input::EnterOrderExt(m) => Some(*m),
            _ => None,
        }
    }

    /// Decodes one input message that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<Input, DecodeError> {
        let h = Header::peek(buf)?;
        let expected = match h.template_id {
            template::LOG_RECORD..=template::RESERVED_INPUT_LAST => INPUT_LOG,
            _ => schema::ORDER_ENTRY,
        };
        h.check_channel(expected)?;
        match h.template_id {
            template::ENTER_ORDER => EnterOrder::decode(buf).map(Input::EnterOrder),
            template::ENTER_ORDER_EXT => EnterOrderExt::decode(buf).map(Input::EnterOrderExt),
            template::REPLACE_ORDER => ReplaceOrder::decode(buf).map(Input::ReplaceOrder),
            template::CANCEL_ORDER => CancelOrder::decode(buf).map(Input::CancelOrder),
            template::MASS_CANCEL => MassCancel::decode(buf).map(Input::MassCancel),
            template::HALT => Halt::decode(buf).map(Input::Halt),
            template::RESUME => Resume::decode(buf).map(Input::Resume),
            template::SET_REFERENCE_PRICE => {
                SetReferencePrice::decode(buf).map(Input::SetReferencePrice)
            }
            template::DEPOSIT => Deposit::decode(buf).map(Input::Deposit),
            template::WITHDRAW => Withdraw::decode(buf).map(Input::Withdraw),
            template::SET_MARK_PRICE => SetMarkPrice::decode(buf).map(Input::SetMarkPrice),
            template::APPLY_FUNDING => ApplyFunding::decode(buf).map(Input::ApplyFunding),
            template::LIQUIDATE => Liquidate::decode(buf).map(Input::Liquidate),
            template::SET_FEE_TIER => SetFeeTier::decode(buf).map(Input::SetFeeTier),
            template::TERM_START => TermStart::decode(buf).map(Input::TermStart),
            template::TICK => Tick::decode(buf).map(Input::Tick),
            template::CHECKPOINT => Checkpoint::decode(buf).map(Input::Checkpoint),
            t => Err(crate::header::misplaced(t)),
        }
    }

    /// Encodes into the front of `buf`; returns the bytes written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Input::EnterOrder(m) => m.encode(buf),
            Input::EnterOrderExt(m) => m.encode(buf),
            Input::ReplaceOrder(m) => m.encode(buf),
            Input::CancelOrder(m) => m.encode(buf),
            Input::MassCancel(m) => m.encode(buf),
            Input::Halt(m) => m.encode(buf),
            Input::Resume(m) => m.encode(buf),
            Input::SetReferencePrice(m) => m.encode(buf),
            Input::Deposit(m) => m.encode(buf),
            Input::Withdraw(m) => m.encode(buf),
            Input::SetMarkPrice(m) => m.encode(buf),
            Input::ApplyFunding(m) => m.encode(buf),
            Input::Liquidate(m) => m.encode(buf),
            Input::SetFeeTier(m) => m.encode(buf),
            Input::TermStart(m) => m.encode(buf),
            Input::Tick(m) => m.encode(buf),
            Input::Checkpoint(m) => m.encode(buf),
        }
    }
}

/// One input-log record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub meta: RecordMeta,
    pub input: Input,
}

/// Why [`decode_record`] found no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end before the record does: at the tail of a log, a torn write (or, while
    /// streaming, wait for more). `needed` is the record's length so far as known.
    Truncated { needed: usize, available: usize },
    /// The bytes are not a valid record: a bad header, an impossible length, a CRC mismatch
    /// ([`DecodeError::ChecksumMismatch`]) or an invalid body.
    Corrupt(DecodeError),
}

impl RecordError {
    pub fn is_truncated(&self) -> bool {
        matches!(self, RecordError::Truncated { .. })
    }
    pub fn is_corrupt(&self) -> bool {
        matches!(self, RecordError::Corrupt(_))
    }
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Truncated { needed, available } => {
                write!(f, "truncated record: need {needed} bytes, have {available}")
            }
            RecordError::Corrupt(e) => write!(f, "corrupt record: {e}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// The CRC32C of a record: bytes `[0, 8)` then `[12, len)`.
fn record_crc(rec: &[u8]) -> u32 {
    let head = rec.get(..OFF_CRC).unwrap_or(&[]);
    let tail = rec.get(OFF_ORIGIN..).unwrap_or(&[]);
    crc32c::crc32c_append(crc32c::crc32c(head), tail)
}

/// Encodes `record` into the front of `buf`, CRC included; returns the bytes written.
pub fn encode_record(record: &LogRecord, buf: &mut [u8]) -> Result<usize, EncodeError> {
    if record.meta.seq == 0 {
        return Err(EncodeError::InvalidField {
            template_id: template::LOG_RECORD,
            offset: 16,
        });
    }
    let available = buf.len();
    let body = buf.get_mut(RECORD_HEADER_LEN..).unwrap_or(&mut []);
    let body_len = match record.input.encode(body) {
        Ok(n) => n,
        Err(EncodeError::BufferTooSmall { needed, .. }) => {
            return Err(EncodeError::BufferTooSmall {
                needed: RECORD_HEADER_LEN + needed,
                available,
            })
        }
        Err(e) => return Err(e),
    };
    let len = RECORD_HEADER_LEN + body_len;
    let Some(rec) = buf.get_mut(..len) else {
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            available,
        });
    };
    let m = &record.meta;
    Header {
        length: len as u16,
        template_id: template::LOG_RECORD,
        schema_id: INPUT_LOG,
        version: SCHEMA_VERSION,
    }
    .write(rec);
    m.origin.write(rec, OFF_ORIGIN);
    m.seq.write(rec, OFF_SEQ);
    m.term.write(rec, OFF_TERM);
    m.timestamp_ns.write(rec, OFF_TS);
    m.account.write(rec, OFF_ACCOUNT);
    m.session.write(rec, OFF_SESSION);
    let crc = record_crc(rec);
    crc.write(rec, OFF_CRC);
    Ok(len)
}

/// Decodes the record at the front of `buf` (which may hold more after it); returns it and
/// its length. Checks, in order: a whole header is there, the header is a record header of
/// this version, the length is possible, the whole record is there (else `Truncated`), the
/// CRC, the record header fields, the body.
pub fn decode_record(buf: &[u8]) -> Result<(LogRecord, usize), RecordError> {
    let corrupt = RecordError::Corrupt;
    let h = Header::peek(buf).map_err(|_| RecordError::Truncated {
        needed: HEADER_LEN,
        available: buf.len(),
    })?;
    h.check_channel(INPUT_LOG).map_err(corrupt)?;
    if h.template_id != template::LOG_RECORD {
        return Err(corrupt(crate::header::misplaced(h.template_id)));
    }
    let len = usize::from(h.length);
    if !(RECORD_HEADER_LEN + HEADER_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(corrupt(DecodeError::BadLength {
            template_id: template::LOG_RECORD,
            declared: len,
        }));
    }
    let Some(rec) = buf.get(..len) else {
        return Err(RecordError::Truncated {
            needed: len,
            available: buf.len(),
        });
    };
    let stored = u32::from_le_bytes(chunk::<4>(rec, OFF_CRC));
    let computed = record_crc(rec);
    if stored != computed {
        return Err(corrupt(DecodeError::ChecksumMismatch { stored, computed }));
    }
    let meta = RecordMeta {
        seq: u64::from_le_bytes(chunk::<8>(rec, OFF_SEQ)),
        term: u64::from_le_bytes(chunk::<8>(rec, OFF_TERM)),
        timestamp_ns: u64::from_le_bytes(chunk::<8>(rec, OFF_TS)),
        origin: u32::from_le_bytes(chunk::<4>(rec, OFF_ORIGIN)),
        account: u32::from_le_bytes(chunk::<4>(rec, OFF_ACCOUNT)),
        session: u32::from_le_bytes(chunk::<4>(rec, OFF_SESSION)),
    };
    if meta.seq == 0 {
        return Err(corrupt(DecodeError::OutOfRange {
            template_id: template::LOG_RECORD,
            offset: OFF_SEQ as u16,
        }));
    }
    let input = Input::decode(rec.get(RECORD_HEADER_LEN..).unwrap_or(&[])).map_err(corrupt)?;
    Ok((LogRecord { meta, input }, len))
}

/// Walks the records of a log segment: yields `(offset, record)` until the bytes end or a
/// record fails to decode; then yields that `(offset, error)` once and stops. A segment that
/// ends cleanly ends with `None` straight after its last record.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> RecordIter<'a> {
    pub fn new(buf: &'a [u8]) -> RecordIter<'a> {
        RecordIter {
            buf,
            offset: 0,
            done: false,
        }
    }

    /// Bytes consumed by the records yielded so far (where a torn tail would be cut).
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<(usize, LogRecord), (usize, RecordError)>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.offset..).unwrap_or(&[]);
        if self.done || rest.is_empty() {
            return None;
        }
        match decode_record(rest) {
            Ok((rec, len)) => {
                let at = self.offset;
                self.offset += len;
                Some(Ok((at, rec)))
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.offset, e)))
            }
        }
    }
}
