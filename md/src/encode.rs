//! Pure encoding: engine [`Event`]s to market-data messages, and messages into packets.
//!
//! Nothing here does IO or reads a clock: the same events give the same messages, the same
//! sequence numbers and the same packet bytes, which is what lets a standby reproduce the
//! primary's market-data stream by applying the same log.

use tpx_engine::Event;
use tpx_wire::enums::TradingState;
use tpx_wire::header::{schema::MARKET_DATA, template, Header, SCHEMA_VERSION};
use tpx_wire::market_data::{
    AddOrder, MdMessage, OrderDelete, OrderExecuted, OrderReduce, OrderReplace, ReferencePrice,
    Trade, TradingStatus,
};
use tpx_wire::mold::PACKET_HEADER_LEN;

/// The largest packet tpx puts in one Aeron message: Aeron's default MTU (1408 bytes) less its
/// 32-byte data-frame header, so that a packet is never fragmented. A UDP datagram carrying it
/// is 1408 + 28 bytes, below a 1500-byte Ethernet MTU.
pub const DEFAULT_MAX_PACKET_LEN: usize = 1376;

/// Calls `out` with the market-data messages of one engine event, in order: `BookAdd` →
/// `AddOrder`; `Fill` → `OrderExecuted` (the maker) then `Trade`; `BookReduce` →
/// `OrderReduce`; `BookDelete` → `OrderDelete`; `BookReplace` → `OrderReplace`;
/// `TradingStatus` and `ReferencePrice` → the same; execution reports (`Accepted`, `Rejected`,
/// `Cancelled`, `Replaced`) → nothing. `id_base` is OR-ed into order and trade ids (the node
/// puts the shard id in their top 16 bits so that they are unique across shards).
#[inline]
pub fn event_messages(ts_ns: u64, event: &Event, id_base: u64, mut out: impl FnMut(MdMessage)) {
    match *event {
        Event::BookAdd {
            instrument,
            order_id,
            side,
            price,
            qty,
        } => out(MdMessage::AddOrder(AddOrder {
            timestamp_ns: ts_ns,
            order_id: id_base | order_id,
            price,
            qty,
            instrument,
            side: side.into(),
        })),
        Event::Fill {
            instrument,
            trade_id,
            price,
            qty,
            taker_side,
            maker_order_id,
            ..
        } => {
            out(MdMessage::OrderExecuted(OrderExecuted {
                timestamp_ns: ts_ns,
                order_id: id_base | maker_order_id,
                qty,
                trade_id: id_base | trade_id,
                instrument,
            }));
            out(MdMessage::Trade(Trade {
                timestamp_ns: ts_ns,
                trade_id: id_base | trade_id,
                price,
                qty,
                instrument,
                aggressor_side: taker_side.into(),
            }));
        }
        Event::BookReduce {
            instrument,
            order_id,
            qty,
        } => out(MdMessage::OrderReduce(OrderReduce {
            timestamp_ns: ts_ns,
            order_id: id_base | order_id,
            qty,
            instrument,
        })),
        Event::BookDelete {
            instrument,
            order_id,
        } => out(MdMessage::OrderDelete(OrderDelete {
            timestamp_ns: ts_ns,
            order_id: id_base | order_id,
            instrument,
        })),
        Event::BookReplace {
            instrument,
            order_id,
            price,
            qty,
        } => out(MdMessage::OrderReplace(OrderReplace {
            timestamp_ns: ts_ns,
            order_id: id_base | order_id,
            price,
            qty,
            instrument,
        })),
        Event::TradingStatus { instrument, halted } => {
            out(MdMessage::TradingStatus(TradingStatus {
                timestamp_ns: ts_ns,
                instrument,
                state: if halted {
                    TradingState::Halted
                } else {
                    TradingState::Trading
                },
            }))
        }
        Event::ReferencePrice {
            instrument,
            price,
            band_bps,
        } => out(MdMessage::ReferencePrice(ReferencePrice {
            timestamp_ns: ts_ns,
            price,
            instrument,
            band_bps,
        })),
        // Private execution reports: a trigger firing, a post-only slide and an iceberg
        // refill are public only through the book events they cause (an iceberg shows its
        // slice, never its hidden rest).
        Event::Accepted { .. }
        | Event::Rejected { .. }
        | Event::Cancelled { .. }
        | Event::Replaced { .. }
        | Event::Triggered { .. }
        | Event::Slid { .. }
        | Event::Refilled { .. } => {}
    }
}

/// Writes a packet header (24 bytes) at the front of `buf`; `len` is the whole packet's length.
/// The layout is `tpx_wire::mold`'s (`docs/PROTOCOL.md`, Packet (96)); tests check it against
/// `decode_packet`.
#[inline]
pub fn write_packet_header(buf: &mut [u8], len: usize, stream_id: u32, first_seq: u64, count: u16) {
    if let Some(h) = buf.first_chunk_mut::<PACKET_HEADER_LEN>() {
        let mut out = [0u8; PACKET_HEADER_LEN];
        let word = Header {
            length: len as u16,
            template_id: template::PACKET,
            schema_id: MARKET_DATA,
            version: SCHEMA_VERSION,
        }
        .to_word();
        out[0..8].copy_from_slice(&word.to_le_bytes());
        out[8..12].copy_from_slice(&stream_id.to_le_bytes());
        out[12..14].copy_from_slice(&count.to_le_bytes());
        // 14..16 reserved, zero.
        out[16..24].copy_from_slice(&first_seq.to_le_bytes());
        *h = out;
    }
}

/// Builds one packet at a time in a buffer allocated once: `start`, `push` until it refuses,
/// `finish`. Sequence numbers are the caller's business (`first_seq` + index).
#[derive(Debug)]
pub struct PacketBuilder {
    buf: Box<[u8]>,
    len: usize,
    count: u16,
    first_seq: u64,
    stream_id: u32,
}

impl PacketBuilder {
    /// A builder whose packets are at most `max_len` bytes (at least one header and the
    /// largest message, 120 bytes; at most 65535).
    pub fn new(stream_id: u32, max_len: usize) -> PacketBuilder {
        let max_len = max_len.clamp(PACKET_HEADER_LEN + 120, usize::from(u16::MAX));
        PacketBuilder {
            buf: vec![0u8; max_len].into_boxed_slice(),
            len: PACKET_HEADER_LEN,
            count: 0,
            first_seq: 0,
            stream_id,
        }
    }

    /// Starts a packet whose first message will have sequence number `first_seq`.
    #[inline]
    pub fn start(&mut self, first_seq: u64) {
        self.len = PACKET_HEADER_LEN;
        self.count = 0;
        self.first_seq = first_seq;
    }

    /// Appends a message; returns its bytes in the packet, or `None` if it does not fit (or
    /// could not be encoded: a value the decoder would reject).
    #[inline]
    pub fn push(&mut self, msg: &MdMessage) -> Option<&[u8]> {
        if self.count == u16::MAX {
            return None;
        }
        let start = self.len;
        let dst = self.buf.get_mut(start..)?;
        let n = msg.encode(dst).ok()?;
        self.len += n;
        self.count += 1;
        self.buf.get(start..start + n)
    }

    /// Appends one already-encoded message (its own header's length is its size); `false` if
    /// it does not fit.
    #[inline]
    pub fn push_raw(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        if self.count == u16::MAX || end > self.buf.len() {
            return false;
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        self.count += 1;
        true
    }

    /// Messages in the packet being built.
    #[inline]
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Whether no message was pushed since `start`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sequence number of the packet's first message.
    #[inline]
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Bytes left for messages.
    #[inline]
    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Writes the header and returns the whole packet.
    #[inline]
    pub fn finish(&mut self) -> &[u8] {
        let len = self.len;
        write_packet_header(
            &mut self.buf,
            len,
            self.stream_id,
            self.first_seq,
            self.count,
        );
        &self.buf[..len]
    }

    /// A heartbeat packet (no messages) announcing `next_seq`, in the builder's buffer.
    pub fn heartbeat(&mut self, next_seq: u64) -> &[u8] {
        self.start(next_seq);
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_engine::Side as ESide;
    use tpx_wire::enums::Side;
    use tpx_wire::mold::decode_packet;

    #[test]
    fn packets_decode_with_the_wire_decoder() {
        let mut b = PacketBuilder::new(7, DEFAULT_MAX_PACKET_LEN);
        b.start(41);
        let mut n = 0;
        let ev = Event::BookAdd {
            instrument: 3,
            order_id: 9,
            side: ESide::Sell,
            price: 100,
            qty: 5,
        };
        while {
            let mut fits = true;
            event_messages(123, &ev, 1 << 48, |m| fits &= b.push(&m).is_some());
            fits
        } {
            n += 1;
        }
        assert_eq!(n, (DEFAULT_MAX_PACKET_LEN - 24) / 48);
        let bytes = b.finish().to_vec();
        let p = decode_packet(&bytes).unwrap();
        assert_eq!(p.header.stream_id, 7);
        assert_eq!(p.header.first_seq, 41);
        assert_eq!(usize::from(p.header.message_count), n);
        let (seq, m) = p.messages().next().unwrap();
        assert_eq!(seq, 41);
        match m {
            MdMessage::AddOrder(a) => {
                assert_eq!(a.order_id, (1 << 48) | 9);
                assert_eq!(a.side, Side::Sell);
                assert_eq!(a.timestamp_ns, 123);
            }
            other => panic!("{other:?}"),
        }
        let hb = b.heartbeat(99).to_vec();
        let p = decode_packet(&hb).unwrap();
        assert!(p.is_heartbeat());
        assert_eq!(p.header.first_seq, 99);
    }

    #[test]
    fn a_fill_is_executed_then_trade() {
        let ev = Event::Fill {
            instrument: 1,
            trade_id: 5,
            price: 10,
            qty: 2,
            taker_side: ESide::Buy,
            maker_account: 1,
            maker_cl_ord_id: 1,
            maker_order_id: 3,
            maker_leaves: 0,
            taker_account: 2,
            taker_cl_ord_id: 1,
            taker_order_id: 4,
            taker_leaves: 0,
        };
        let mut v = Vec::new();
        event_messages(1, &ev, 0, |m| v.push(m));
        assert!(matches!(v[0], MdMessage::OrderExecuted(e) if e.order_id == 3 && e.trade_id == 5));
        assert!(matches!(v[1], MdMessage::Trade(t) if t.aggressor_side == Side::Buy && t.qty == 2));
        assert_eq!(v.len(), 2);
    }

    /// What a public feed shows of the order types, from a real engine: a pending stop shows
    /// nothing, an iceberg shows its slice and each refill as a new `AddOrder` of the same id
    /// after the execution that emptied the slice, never its hidden quantity; a fired stop shows
    /// only as trades.
    #[test]
    fn order_types_show_only_public_book_events() {
        use tpx_engine::*;
        let spec = InstrumentSpec {
            id: 1,
            kind: InstrumentKind::Spot { base: 1, quote: 2 },
            tick_size: 1,
            lot_size: 1,
            min_price: 1,
            max_price: 1_000,
            min_qty: 1,
            max_qty: 1_000,
            min_notional: 0,
        };
        let mut e = Engine::new(EngineConfig {
            instruments: vec![spec],
            max_orders: 16,
            max_accounts: 4,
        })
        .unwrap();
        let order = |account, cl_ord_id, side, kind, tif, price, qty, ext| {
            Command::NewOrder(NewOrder {
                account,
                cl_ord_id,
                instrument: 1,
                side,
                kind,
                price,
                qty,
                tif,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
                ext,
            })
        };
        let md = |e: &mut Engine, ts: u64, c: Command| {
            let mut events = Vec::new();
            e.process(ts, &c, &mut events);
            let mut v = Vec::new();
            for ev in &events {
                event_messages(ts, ev, 0, |m| v.push(m));
            }
            v
        };
        let ice = OrderExt {
            display_qty: 3,
            ..OrderExt::NONE
        };
        let v = md(
            &mut e,
            1,
            order(
                1,
                1,
                ESide::Sell,
                OrderKind::Limit,
                TimeInForce::Gtc,
                100,
                10,
                ice,
            ),
        );
        assert!(matches!(v[..], [MdMessage::AddOrder(a)] if a.order_id == 1 && a.qty == 3));
        let stop = OrderExt {
            trigger: Some(Trigger {
                price: 100,
                source: TriggerSource::Last,
                direction: TriggerDirection::RisesTo,
            }),
            ..OrderExt::NONE
        };
        let v = md(
            &mut e,
            2,
            order(
                2,
                1,
                ESide::Buy,
                OrderKind::Market,
                TimeInForce::Ioc,
                110,
                1,
                stop,
            ),
        );
        assert!(v.is_empty(), "a pending stop is invisible: {v:?}");
        // A buy of 4 empties the slice (3), the iceberg refills 3 at the back and the 4th lot
        // trades with it; the trade at 100 fires the stop, which takes 1 more.
        let v = md(
            &mut e,
            3,
            order(
                3,
                1,
                ESide::Buy,
                OrderKind::Limit,
                TimeInForce::Ioc,
                100,
                4,
                OrderExt::NONE,
            ),
        );
        let kinds: Vec<(u16, u64, u64)> = v
            .iter()
            .map(|m| match m {
                MdMessage::AddOrder(a) => (100, a.order_id, a.qty),
                MdMessage::OrderExecuted(x) => (101, x.order_id, x.qty),
                MdMessage::Trade(t) => (105, 0, t.qty),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (101, 1, 3),
                (105, 0, 3),
                (100, 1, 3),
                (101, 1, 1),
                (105, 0, 1),
                (101, 1, 1),
                (105, 0, 1),
            ]
        );
    }
}
