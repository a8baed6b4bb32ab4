//! The common header every message, record and packet starts with, and the id tables.
//!
//! | offset | size | field | type |
//! |---:|---:|---|---|
//! | 0 | 2 | length | u16: total bytes of the message, header included |
//! | 2 | 2 | template_id | u16 |
//! | 4 | 2 | schema_id | u16 |
//! | 6 | 2 | version | u16 |
//!
//! The length comes first so that the header is also the TCP frame prefix (see
//! [`crate::framing`]) and the market-data message-block prefix (see [`crate::mold`]).

use crate::codec::chunk;
use crate::error::DecodeError;

/// Bytes in the common header.
pub const HEADER_LEN: usize = 8;

/// The schema version this crate speaks (the `version` field of every header).
pub const SCHEMA_VERSION: u16 = 1;

/// Schema ids: which channel a template belongs to.
pub mod schema {
    /// Order-entry sessions over TCP: session messages, requests, replies.
    pub const ORDER_ENTRY: u16 = 1;
    /// The input log: records and admin inputs.
    pub const INPUT_LOG: u16 = 2;
    /// Market data over UDP: packets, messages, retransmission.
    pub const MARKET_DATA: u16 = 3;
}

/// Template ids. Unique across all schemas; each belongs to exactly one schema.
pub mod template {
    // Session (schema ORDER_ENTRY), 1..=15.
    pub const LOGIN: u16 = 1;
    pub const LOGIN_ACCEPTED: u16 = 2;
    pub const LOGIN_REJECTED: u16 = 3;
    pub const CLIENT_HEARTBEAT: u16 = 4;
    pub const SERVER_HEARTBEAT: u16 = 5;
    pub const LOGOUT_REQUEST: u16 = 6;
    pub const LOGOUT: u16 = 7;
    pub const SESSION_REJECT: u16 = 8;
    /// `Login` with session options (cancel on disconnect, drop copy).
    pub const LOGIN_WITH_OPTIONS: u16 = 9;
    // Requests (schema ORDER_ENTRY), 16..=31; 31 reserved.
    pub const ENTER_ORDER: u16 = 16;
    pub const REPLACE_ORDER: u16 = 17;
    pub const CANCEL_ORDER: u16 = 18;
    pub const MASS_CANCEL: u16 = 19;
    // Admin requests (schema ORDER_ENTRY; accounts marked admin only), 20..=25.
    pub const ADMIN_DEPOSIT: u16 = 20;
    pub const ADMIN_WITHDRAW: u16 = 21;
    pub const ADMIN_SET_MARK_PRICE: u16 = 22;
    pub const ADMIN_APPLY_FUNDING: u16 = 23;
    pub const ADMIN_LIQUIDATE: u16 = 24;
    pub const ADMIN_SET_FEE_TIER: u16 = 25;
    /// `EnterOrder` with the order types' fields (triggers, GTD, iceberg, slide, OCO).
    pub const ENTER_ORDER_EXT: u16 = 26;
    // Queries (schema ORDER_ENTRY), answered from the shards' state, never logged.
    pub const QUERY_ORDER: u16 = 27;
    pub const QUERY_OPEN_ORDERS: u16 = 28;
    pub const QUERY_BALANCES: u16 = 29;
    pub const QUERY_POSITIONS: u16 = 30;
    // Replies (schema ORDER_ENTRY), 32..=63; 48..=63 reserved.
    pub const ORDER_ACCEPTED: u16 = 32;
    pub const ORDER_REJECTED: u16 = 33;
    pub const ORDER_REPLACED: u16 = 34;
    pub const ORDER_CANCELLED: u16 = 35;
    pub const ORDER_EXECUTED: u16 = 36;
    pub const MASS_CANCEL_ACK: u16 = 37;
    pub const ADMIN_ACCEPTED: u16 = 38;
    pub const BALANCE_UPDATE: u16 = 39;
    // The order types' execution reports.
    pub const ORDER_TRIGGERED: u16 = 40;
    pub const ORDER_SLID: u16 = 41;
    pub const ORDER_REFILLED: u16 = 42;
    // Query answers (unsequenced).
    pub const ORDER_STATUS: u16 = 43;
    pub const BALANCE_STATUS: u16 = 44;
    pub const POSITION_STATUS: u16 = 45;
    pub const QUERY_DONE: u16 = 46;
    /// Drop copy: another account's execution report (sequenced).
    pub const EXECUTION_COPY: u16 = 47;
    // Input log (schema INPUT_LOG), 64..=95.
    pub const LOG_RECORD: u16 = 64;
    pub const HALT: u16 = 80;
    pub const RESUME: u16 = 81;
    pub const SET_REFERENCE_PRICE: u16 = 82;
    // Risk inputs (the engine's `RiskCommand`s).
    pub const DEPOSIT: u16 = 83;
    pub const WITHDRAW: u16 = 84;
    pub const SET_MARK_PRICE: u16 = 85;
    pub const APPLY_FUNDING: u16 = 86;
    pub const LIQUIDATE: u16 = 87;
    pub const SET_FEE_TIER: u16 = 88;
    pub const TERM_START: u16 = 89;
    /// Sequencer: time passes (GTD expiry when nothing else arrives).
    pub const TICK: u16 = 90;
    /// Sequencer: a replica checkpoint (the primary's state hash of one shard, compared by
    /// every node that applies the log).
    pub const CHECKPOINT: u16 = 91;
    /// First and last of the further admin/risk inputs reserved after the named ones.
    pub const RESERVED_INPUT_FIRST: u16 = 92;
    pub const RESERVED_INPUT_LAST: u16 = 95;
    // Market data (schema MARKET_DATA), 96..=127.
    pub const PACKET: u16 = 96;
    pub const ADD_ORDER: u16 = 100;
    pub const ORDER_EXECUTED_MD: u16 = 101;
    pub const ORDER_REDUCE: u16 = 102;
    pub const ORDER_DELETE: u16 = 103;
    pub const ORDER_REPLACE: u16 = 104;
    pub const TRADE: u16 = 105;
    pub const INSTRUMENT_DIRECTORY: u16 = 106;
    pub const TRADING_STATUS: u16 = 107;
    pub const REFERENCE_PRICE: u16 = 108;
    pub const SNAPSHOT_BEGIN: u16 = 109;
    pub const SNAPSHOT_ORDER: u16 = 110;
    pub const SNAPSHOT_END: u16 = 111;
    pub const RETRANSMIT_REQUEST: u16 = 112;
    pub const RETRANSMIT_REFUSED: u16 = 113;

    /// The schema a defined template belongs to (`None`: not defined in this version).
    pub const fn schema_of(template_id: u16) -> Option<u16> {
        use super::schema::*;
        match template_id {
            1..=9 | 16..=30 | 32..=47 => Some(ORDER_ENTRY),
            64 | 80..=91 => Some(INPUT_LOG),
            96 | 100..=113 => Some(MARKET_DATA),
            _ => None,
        }
    }
}

/// The common header, unvalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub length: u16,
    pub template_id: u16,
    pub schema_id: u16,
    pub version: u16,
}

impl Header {
    /// The header of a fixed-size message of this crate's version.
    pub const fn fixed(template_id: u16, schema_id: u16, size: usize) -> Header {
        Header {
            length: size as u16,
            template_id,
            schema_id,
            version: SCHEMA_VERSION,
        }
    }

    /// The header as one little-endian word (bytes 0..8).
    pub const fn to_word(self) -> u64 {
        (self.length as u64)
            | (self.template_id as u64) << 16
            | (self.schema_id as u64) << 32
            | (self.version as u64) << 48
    }

    /// Reads the header at the front of `buf` without validating it.
    #[inline]
    pub fn peek(buf: &[u8]) -> Result<Header, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        Ok(Header {
            length: u16::from_le_bytes(chunk::<2>(buf, 0)),
            template_id: u16::from_le_bytes(chunk::<2>(buf, 2)),
            schema_id: u16::from_le_bytes(chunk::<2>(buf, 4)),
            version: u16::from_le_bytes(chunk::<2>(buf, 6)),
        })
    }

    /// Writes the header at the front of `buf` (no-op on a buffer shorter than a header).
    #[inline]
    pub fn write(&self, buf: &mut [u8]) {
        crate::codec::put::<8>(buf, 0, self.to_word().to_le_bytes());
    }

    /// Checks schema id and version against a channel's (the first checks every decoder makes).
    #[inline]
    pub fn check_channel(&self, schema_id: u16) -> Result<(), DecodeError> {
        if self.schema_id != schema_id {
            return Err(DecodeError::WrongSchema {
                template_id: self.template_id,
                schema_id: self.schema_id,
            });
        }
        if self.version != SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                version: self.version,
            });
        }
        Ok(())
    }
}

/// The precise error for a buffer that is not exactly one fixed-size message of `template_id`
/// (the slow path of every fixed-size `decode`). Checks, in order: at least a header; schema;
/// version; template; length field; buffer length.
#[cold]
pub fn fixed_header_error(
    buf: &[u8],
    template_id: u16,
    schema_id: u16,
    size: usize,
) -> DecodeError {
    let h = match Header::peek(buf) {
        Ok(h) => h,
        Err(e) => return e,
    };
    if let Err(e) = h.check_channel(schema_id) {
        return e;
    }
    if h.template_id != template_id {
        return misplaced(h.template_id);
    }
    if usize::from(h.length) != size {
        return DecodeError::BadLength {
            template_id,
            declared: usize::from(h.length),
        };
    }
    if buf.len() < size {
        return DecodeError::Truncated {
            needed: size,
            available: buf.len(),
        };
    }
    DecodeError::TrailingBytes {
        extra: buf.len().saturating_sub(size),
    }
}

/// The error for a template a decoder does not take: `UnexpectedTemplate` if this version
/// defines it (it belongs elsewhere), `UnknownTemplate` if not.
#[cold]
pub fn misplaced(template_id: u16) -> DecodeError {
    match template::schema_of(template_id) {
        Some(_) => DecodeError::UnexpectedTemplate { template_id },
        None => DecodeError::UnknownTemplate { template_id },
    }
}
