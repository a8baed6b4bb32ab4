//! Market-data packets (MoldUDP64-like) and retransmission.
//!
//! A packet is a 24-byte packet header followed by `message_count` market-data messages, each a
//! whole message whose header's length field is its block length. Message `i` (from 0) has
//! stream sequence number `first_seq + i`. A packet with no messages is a heartbeat: its
//! `first_seq` is the sequence number of the next message the stream will carry.
//!
//! Retransmission: a subscriber that sees a gap sends a [`RetransmitRequest`] (stream, first
//! sequence, count) to the stream's retransmit address; the answer is either the packets
//! themselves (ordinary packets, unicast) or one [`RetransmitRefused`] with a typed reason.

use crate::codec::{chunk, FieldDesc, Layout, WireField};
use crate::enums::RetransmitRefusal;
use crate::error::{DecodeError, EncodeError};
use crate::header::{schema::MARKET_DATA, template, Header, HEADER_LEN, SCHEMA_VERSION};
use crate::market_data::MdMessage;

/// Bytes of the packet header.
pub const PACKET_HEADER_LEN: usize = 24;
/// The largest packet a publisher should send on a 1500-byte MTU (UDP over IPv4).
pub const MAX_PACKET_LEN_MTU: usize = 1472;

const OFF_STREAM: usize = 8;
const OFF_COUNT: usize = 12;
const OFF_RESERVED: usize = 14;
const OFF_FIRST_SEQ: usize = 16;

/// The offset table of the packet header (the messages follow at 24).
pub const PACKET_LAYOUT: Layout = Layout {
    name: "Packet",
    template_id: template::PACKET,
    schema_id: MARKET_DATA,
    size: PACKET_HEADER_LEN,
    fields: &[
        FieldDesc {
            name: "stream_id",
            offset: OFF_STREAM,
            size: 4,
            ty: "u32",
            doc: " Stream (MoldUDP64 session): one per feed and trading day.",
            rule: "",
        },
        FieldDesc {
            name: "message_count",
            offset: OFF_COUNT,
            size: 2,
            ty: "u16",
            doc: " Messages in the packet; 0 = heartbeat.",
            rule: "",
        },
        FieldDesc {
            name: "first_seq",
            offset: OFF_FIRST_SEQ,
            size: 8,
            ty: "u64",
            doc: " Stream sequence number of the first message (of the next one, in a heartbeat).",
            rule: "nonzero",
        },
        FieldDesc {
            name: "messages",
            offset: PACKET_HEADER_LEN,
            size: 0,
            ty: "messages",
            doc: " message_count whole market-data messages, back to back.",
            rule: "",
        },
    ],
    reserved: &[(OFF_RESERVED, 2)],
};

/// A packet header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketHeader {
    pub stream_id: u32,
    pub first_seq: u64,
    pub message_count: u16,
}

/// A validated packet borrowed from the receive buffer: every message in it decoded cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: PacketHeader,
    messages: &'a [u8],
}

impl<'a> Packet<'a> {
    /// The messages with their stream sequence numbers.
    pub fn messages(&self) -> MessageIter<'a> {
        MessageIter {
            rest: self.messages,
            seq: self.header.first_seq,
            left: self.header.message_count,
        }
    }

    /// Whether this is a heartbeat (no messages).
    pub fn is_heartbeat(&self) -> bool {
        self.header.message_count == 0
    }

    /// The stream sequence number after the packet's last message.
    pub fn next_seq(&self) -> u64 {
        self.header
            .first_seq
            .saturating_add(u64::from(self.header.message_count))
    }
}

/// Iterates a [`Packet`]'s messages as `(seq, message)`.
#[derive(Clone, Debug)]
pub struct MessageIter<'a> {
    rest: &'a [u8],
    seq: u64,
    left: u16,
}

/// Splits the next message block off `rest`: its bytes and what follows.
#[inline]
fn split_block(rest: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let h = Header::peek(rest)?;
    let len = usize::from(h.length);
    if len < HEADER_LEN {
        return Err(DecodeError::BadLength {
            template_id: h.template_id,
            declared: len,
        });
    }
    rest.split_at_checked(len).ok_or(DecodeError::Truncated {
        needed: len,
        available: rest.len(),
    })
}

impl Iterator for MessageIter<'_> {
    type Item = (u64, MdMessage);

    #[inline]
    fn next(&mut self) -> Option<(u64, MdMessage)> {
        if self.left == 0 {
            return None;
        }
        // The packet was validated when decoded, so this cannot fail; stop if it ever did.
        let (block, rest) = split_block(self.rest).ok()?;
        let msg = MdMessage::decode(block).ok()?;
        let seq = self.seq;
        self.rest = rest;
        self.seq = seq.saturating_add(1);
        self.left -= 1;
        Some((seq, msg))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

/// Reads and checks a packet header (not the messages): at least 24 bytes, header of this
/// schema and version, template `PACKET`, length equal to the buffer's, reserved zero,
/// `first_seq >= 1` and `first_seq + message_count` not overflowing.
pub fn decode_packet_header(buf: &[u8]) -> Result<PacketHeader, DecodeError> {
    let h = Header::peek(buf)?;
    h.check_channel(MARKET_DATA)?;
    if h.template_id != template::PACKET {
        return Err(crate::header::misplaced(h.template_id));
    }
    let len = usize::from(h.length);
    if len < PACKET_HEADER_LEN {
        return Err(DecodeError::BadLength {
            template_id: template::PACKET,
            declared: len,
        });
    }
    if buf.len() < len {
        return Err(DecodeError::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    if buf.len() > len {
        return Err(DecodeError::TrailingBytes {
            extra: buf.len() - len,
        });
    }
    if u16::from_le_bytes(chunk::<2>(buf, OFF_RESERVED)) != 0 {
        return Err(DecodeError::NonZeroReserved {
            template_id: template::PACKET,
            offset: crate::codec::first_nonzero(buf, OFF_RESERVED, OFF_RESERVED + 2),
        });
    }
    let header = PacketHeader {
        stream_id: u32::from_le_bytes(chunk::<4>(buf, OFF_STREAM)),
        message_count: u16::from_le_bytes(chunk::<2>(buf, OFF_COUNT)),
        first_seq: u64::from_le_bytes(chunk::<8>(buf, OFF_FIRST_SEQ)),
    };
    if header.first_seq == 0
        || header
            .first_seq
            .checked_add(u64::from(header.message_count))
            .is_none()
    {
        return Err(DecodeError::OutOfRange {
            template_id: template::PACKET,
            offset: OFF_FIRST_SEQ as u16,
        });
    }
    Ok(header)
}

/// Decodes and validates a whole packet (one UDP datagram): its header and every message.
/// Errors: those of [`decode_packet_header`]; `Truncated` if the messages end early;
/// `TrailingBytes` if bytes follow the last message; any message's own decode error.
pub fn decode_packet(buf: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let header = decode_packet_header(buf)?;
    let messages = buf.get(PACKET_HEADER_LEN..).unwrap_or(&[]);
    let mut rest = messages;
    for _ in 0..header.message_count {
        let (block, tail) = split_block(rest)?;
        MdMessage::decode(block)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: rest.len() });
    }
    Ok(Packet { header, messages })
}

/// Builds a packet in a caller's buffer, without allocating: `new`, `push` messages until one
/// does not fit (`BufferTooSmall`: send what you have and start a new packet), `finish`.
#[derive(Debug)]
pub struct PacketWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    header: PacketHeader,
}

impl<'a> PacketWriter<'a> {
    /// A packet for `stream_id` whose first message will have sequence number `first_seq`.
    /// The packet may use all of `buf` up to 65535 bytes (pass a shorter slice, e.g.
    /// [`MAX_PACKET_LEN_MTU`] bytes, to cap it).
    pub fn new(
        buf: &'a mut [u8],
        stream_id: u32,
        first_seq: u64,
    ) -> Result<PacketWriter<'a>, EncodeError> {
        if first_seq == 0 {
            return Err(EncodeError::InvalidField {
                template_id: template::PACKET,
                offset: OFF_FIRST_SEQ as u16,
            });
        }
        if buf.len() < PACKET_HEADER_LEN {
            return Err(EncodeError::BufferTooSmall {
                needed: PACKET_HEADER_LEN,
                available: buf.len(),
            });
        }
        let cap = buf.len().min(usize::from(u16::MAX));
        let buf = buf.get_mut(..cap).unwrap_or(&mut []);
        Ok(PacketWriter {
            buf,
            len: PACKET_HEADER_LEN,
            header: PacketHeader {
                stream_id,
                first_seq,
                message_count: 0,
            },
        })
    }

    /// Appends a message; on error the packet is unchanged.
    pub fn push(&mut self, msg: &MdMessage) -> Result<(), EncodeError> {
        if self.header.message_count == u16::MAX
            || self
                .header
                .first_seq
                .checked_add(u64::from(self.header.message_count) + 1)
                .is_none()
        {
            return Err(EncodeError::PacketFull);
        }
        let dst = self.buf.get_mut(self.len..).unwrap_or(&mut []);
        let n = msg.encode(dst)?;
        self.len += n;
        self.header.message_count += 1;
        Ok(())
    }

    /// Messages so far.
    pub fn message_count(&self) -> u16 {
        self.header.message_count
    }

    /// Bytes so far, header included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message was pushed.
    pub fn is_empty(&self) -> bool {
        self.header.message_count == 0
    }

    /// Writes the packet header; returns the packet's length in bytes.
    pub fn finish(self) -> usize {
        let b = &mut *self.buf;
        Header {
            length: self.len as u16,
            template_id: template::PACKET,
            schema_id: MARKET_DATA,
            version: SCHEMA_VERSION,
        }
        .write(b);
        self.header.stream_id.write(b, OFF_STREAM);
        self.header.message_count.write(b, OFF_COUNT);
        0u16.write(b, OFF_RESERVED);
        self.header.first_seq.write(b, OFF_FIRST_SEQ);
        self.len
    }
}

/// Encodes a whole packet from a slice of messages; returns its length.
pub fn encode_packet(
    stream_id: u32,
    first_seq: u64,
    messages: &[MdMessage],
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut w = PacketWriter::new(buf, stream_id, first_seq)?;
    for m in messages {
        w.push(m)?;
    }
    Ok(w.finish())
}

crate::wire_message! {
    /// Subscriber → retransmit server: resend messages `first_seq .. first_seq + count` of a stream.
    pub struct RetransmitRequest = template template::RETRANSMIT_REQUEST, schema MARKET_DATA, size 24 {
        /// Stream id.
        8 => stream_id: u32,
        /// Number of messages.
        12 => count: u16 [nonzero],
        /// First sequence number wanted.
        16 => first_seq: u64 [nonzero],
    }
    reserved [14..16]
}

crate::wire_message! {
    /// Retransmit server → subscriber: the request is refused.
    pub struct RetransmitRefused = template template::RETRANSMIT_REFUSED, schema MARKET_DATA, size 32 {
        /// Stream id as requested.
        8 => stream_id: u32,
        /// Count as requested.
        12 => count: u16,
        /// Why.
        14 => reason: RetransmitRefusal,
        /// First sequence number as requested.
        16 => first_seq: u64,
        /// Oldest sequence number the server can still resend (0: none).
        24 => available_from: u64,
    }
    reserved [15..16]
}

/// What a retransmit server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetransmitResponse<'a> {
    /// Some of the requested messages (more packets may follow).
    Packet(Packet<'a>),
    Refused(RetransmitRefused),
}

/// Decodes one datagram from a retransmit server.
pub fn decode_retransmit_response(buf: &[u8]) -> Result<RetransmitResponse<'_>, DecodeError> {
    let h = Header::peek(buf)?;
    h.check_channel(MARKET_DATA)?;
    match h.template_id {
        template::PACKET => decode_packet(buf).map(RetransmitResponse::Packet),
        template::RETRANSMIT_REFUSED => {
            RetransmitRefused::decode(buf).map(RetransmitResponse::Refused)
        }
        t => Err(crate::header::misplaced(t)),
    }
}
