//! `tpx-wire`: every byte that crosses a process boundary.
//!
//! Order-entry sessions and messages, input-log records and market data, as fixed-size
//! little-endian layouts with validated zero-copy decoding. `docs/PROTOCOL.md` is the spec.
//!
//! - [`header`]: the common 8-byte header, schema and template ids.
//! - [`session`]: login, heartbeats, logout, session reject (SoupBinTCP-like).
//! - [`order_entry`]: client requests and [`ClientMessage::decode`] (OUCH-like).
//! - [`replies`]: sequenced server replies and [`ServerMessage::decode`].
//! - [`query`]: queries and their unsequenced answers.
//! - [`log_record`]: the input-log record with CRC32C, [`encode_record`] / [`decode_record`].
//! - [`market_data`]: order-by-order market data (ITCH-like), [`MdMessage`].
//! - [`mold`]: market-data packets (MoldUDP64-like) and retransmission.
//! - [`framing`]: the allocation-free TCP frame accumulator.
//! - [`enums`], [`error`], [`codec`], [`catalog`]: value tables, typed errors, the
//!   reader/writer, the layout registry and canonical examples.
//!
//! Decoding reads every field in place from the caller's slice after one length check (no
//! intermediate buffer, no allocation), validates everything (lengths, ids, enums, booleans,
//! reserved bytes, ranges) and never panics. Encoding writes into a caller's buffer and returns
//! the bytes written; any message that decodes re-encodes to the same bytes.

#![forbid(unsafe_code)]

pub mod admin;
pub mod catalog;
pub mod codec;
pub mod dissector;
pub mod drop_copy;
#[cfg(feature = "engine")]
pub mod engine_enums;
pub mod enums;
pub mod error;
pub mod framing;
pub mod header;
pub mod log_record;
pub mod market_data;
pub mod mold;
pub mod order_entry;
pub mod python;
pub mod query;
pub mod replies;
pub mod session;

pub use codec::{Message, Symbol, Token, NO_INSTRUMENT};
pub use enums::*;
pub use error::{DecodeError, DecodeErrorCode, EncodeError};
pub use framing::{FrameBuffer, FrameError};
pub use header::{Header, HEADER_LEN, SCHEMA_VERSION};
pub use log_record::{decode_record, encode_record, Input, LogRecord, RecordError, RecordMeta};
pub use market_data::MdMessage;
pub use mold::{decode_packet, Packet, PacketHeader, PacketWriter};
pub use order_entry::{decode_client, ClientMessage};
pub use replies::{decode_server, ServerMessage};
