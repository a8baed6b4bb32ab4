//! Market-data messages (ITCH 5.0-like), order by order. They travel inside packets
//! ([`crate::mold`]); every one carries `timestamp_ns`, the sequencer timestamp of the input
//! that caused it.

use crate::codec::Symbol;
use crate::enums::{InstrumentKind, Side, TradingState};
use crate::error::{DecodeError, EncodeError};
use crate::header::{schema::MARKET_DATA, template, Header};

crate::wire_message! {
    /// An order now rests on the book (at the back of its price level).
    pub struct AddOrder = template template::ADD_ORDER, schema MARKET_DATA, size 48 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Engine order id.
        16 => order_id: u64,
        /// Price in ticks.
        24 => price: i64,
        /// Resting quantity in lots.
        32 => qty: u64 [nonzero],
        /// Instrument id.
        40 => instrument: u32,
        /// Buy (bid) or sell (ask).
        44 => side: Side,
    }
    reserved [45..48]
}

crate::wire_message! {
    /// A resting order traded `qty` lots at its price (it leaves the book when nothing is left).
    pub struct OrderExecuted = template template::ORDER_EXECUTED_MD, schema MARKET_DATA, size 48 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Engine order id of the resting (maker) order.
        16 => order_id: u64,
        /// Executed quantity in lots.
        24 => qty: u64 [nonzero],
        /// Trade (match) id.
        32 => trade_id: u64,
        /// Instrument id.
        40 => instrument: u32,
    }
    reserved [44..48]
}

crate::wire_message! {
    /// A resting order lost `qty` lots without a trade and keeps its priority (cancel-down).
    pub struct OrderReduce = template template::ORDER_REDUCE, schema MARKET_DATA, size 40 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Engine order id.
        16 => order_id: u64,
        /// Lots removed.
        24 => qty: u64 [nonzero],
        /// Instrument id.
        32 => instrument: u32,
    }
    reserved [36..40]
}

crate::wire_message! {
    /// A resting order left the book without a trade.
    pub struct OrderDelete = template template::ORDER_DELETE, schema MARKET_DATA, size 32 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Engine order id.
        16 => order_id: u64,
        /// Instrument id.
        24 => instrument: u32,
    }
    reserved [28..32]
}

crate::wire_message! {
    /// A resting order moved to a new price and/or a larger quantity and lost its priority
    /// (same order id; it goes to the back of its new level).
    pub struct OrderReplace = template template::ORDER_REPLACE, schema MARKET_DATA, size 48 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Engine order id (unchanged).
        16 => order_id: u64,
        /// New price in ticks.
        24 => price: i64,
        /// New resting quantity in lots.
        32 => qty: u64 [nonzero],
        /// Instrument id.
        40 => instrument: u32,
    }
    reserved [44..48]
}

crate::wire_message! {
    /// The tape: one match, following the maker's `OrderExecuted` with the same trade id.
    pub struct Trade = template template::TRADE, schema MARKET_DATA, size 48 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Trade (match) id.
        16 => trade_id: u64,
        /// Price in ticks.
        24 => price: i64,
        /// Quantity in lots.
        32 => qty: u64 [nonzero],
        /// Instrument id.
        40 => instrument: u32,
        /// Side of the incoming (taker) order.
        44 => aggressor_side: Side,
    }
    reserved [45..48]
}

crate::wire_message! {
    /// An instrument's static parameters (published at start of day and on the snapshot stream).
    pub struct InstrumentDirectory = template template::INSTRUMENT_DIRECTORY, schema MARKET_DATA, size 120 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Instrument id.
        16 => instrument: u32,
        /// Spot or linear perpetual.
        20 => kind: InstrumentKind,
        /// Base asset id (spot; informational for perpetuals).
        24 => base_asset: u32,
        /// Quote asset id.
        28 => quote_asset: u32,
        /// Settlement asset id (perpetuals; 0 for spot).
        32 => settle_asset: u32,
        /// Quote-asset minor units per tick.
        40 => tick_size: u64 [nonzero],
        /// Base-asset minor units per lot.
        48 => lot_size: u64 [nonzero],
        /// Lowest valid price, ticks.
        56 => min_price: i64,
        /// Highest valid price, ticks.
        64 => max_price: i64,
        /// Smallest order quantity, lots.
        72 => min_qty: u64,
        /// Largest order quantity, lots.
        80 => max_qty: u64,
        /// Minimum price x quantity, tick-lots.
        88 => min_notional: u128,
        /// Symbol: 1..16 printable ASCII bytes (0x21..0x7E), zero-padded.
        104 => symbol: Symbol,
    }
    reserved [21..24, 36..40]
}

crate::wire_message! {
    /// Trading status changed (halt / resume).
    pub struct TradingStatus = template template::TRADING_STATUS, schema MARKET_DATA, size 24 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Instrument id.
        16 => instrument: u32,
        /// Trading or halted.
        20 => state: TradingState,
    }
    reserved [21..24]
}

crate::wire_message! {
    /// Reference price and band set.
    pub struct ReferencePrice = template template::REFERENCE_PRICE, schema MARKET_DATA, size 32 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Reference price in ticks.
        16 => price: i64,
        /// Instrument id.
        24 => instrument: u32,
        /// Band either side, basis points; 0 = no band.
        28 => band_bps: u32,
    }
    reserved []
}

crate::wire_message! {
    /// Start of a book snapshot (snapshot stream): the book as of `last_seq` of the incremental stream.
    pub struct SnapshotBegin = template template::SNAPSHOT_BEGIN, schema MARKET_DATA, size 32 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// Last incremental-stream sequence number applied to the snapshot (0: none yet).
        16 => last_seq: u64,
        /// Instrument id, or 0xFFFFFFFF for every instrument.
        24 => instrument: Option<u32>,
        /// Number of `SnapshotOrder` messages that follow.
        28 => order_count: u32,
    }
    reserved []
}

crate::wire_message! {
    /// One resting order of a snapshot, in book priority order (per side, best price first,
    /// time priority within a level).
    pub struct SnapshotOrder = template template::SNAPSHOT_ORDER, schema MARKET_DATA, size 48 {
        /// Sequencer timestamp, ns since the Unix epoch (of the snapshot).
        8 => timestamp_ns: u64,
        /// Engine order id.
        16 => order_id: u64,
        /// Price in ticks.
        24 => price: i64,
        /// Resting quantity in lots.
        32 => qty: u64 [nonzero],
        /// Instrument id.
        40 => instrument: u32,
        /// Buy (bid) or sell (ask).
        44 => side: Side,
    }
    reserved [45..48]
}

crate::wire_message! {
    /// End of a book snapshot; repeats `last_seq` and the count so a receiver can check it has all.
    pub struct SnapshotEnd = template template::SNAPSHOT_END, schema MARKET_DATA, size 32 {
        /// Sequencer timestamp, ns since the Unix epoch.
        8 => timestamp_ns: u64,
        /// As in the `SnapshotBegin`.
        16 => last_seq: u64,
        /// As in the `SnapshotBegin`.
        24 => instrument: Option<u32>,
        /// As in the `SnapshotBegin`.
        28 => order_count: u32,
    }
    reserved []
}

/// Any message a market-data packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdMessage {
    AddOrder(AddOrder),
    OrderExecuted(OrderExecuted),
    OrderReduce(OrderReduce),
    OrderDelete(OrderDelete),
    OrderReplace(OrderReplace),
    Trade(Trade),
    InstrumentDirectory(InstrumentDirectory),
    TradingStatus(TradingStatus),
    ReferencePrice(ReferencePrice),
    SnapshotBegin(SnapshotBegin),
    SnapshotOrder(SnapshotOrder),
    SnapshotEnd(SnapshotEnd),
}

impl MdMessage {
    /// Decodes one message that fills `buf` exactly.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<MdMessage, DecodeError> {
        use MdMessage as M;
        let h = Header::peek(buf)?;
        h.check_channel(MARKET_DATA)?;
        match h.template_id {
            template::ADD_ORDER => AddOrder::decode(buf).map(M::AddOrder),
            template::ORDER_EXECUTED_MD => OrderExecuted::decode(buf).map(M::OrderExecuted),
            template::ORDER_REDUCE => OrderReduce::decode(buf).map(M::OrderReduce),
            template::ORDER_DELETE => OrderDelete::decode(buf).map(M::OrderDelete),
            template::ORDER_REPLACE => OrderReplace::decode(buf).map(M::OrderReplace),
            template::TRADE => Trade::decode(buf).map(M::Trade),
            template::INSTRUMENT_DIRECTORY => {
                InstrumentDirectory::decode(buf).map(M::InstrumentDirectory)
            }
            template::TRADING_STATUS => TradingStatus::decode(buf).map(M::TradingStatus),
            template::REFERENCE_PRICE => ReferencePrice::decode(buf).map(M::ReferencePrice),
            template::SNAPSHOT_BEGIN => SnapshotBegin::decode(buf).map(M::SnapshotBegin),
            template::SNAPSHOT_ORDER => SnapshotOrder::decode(buf).map(M::SnapshotOrder),
            template::SNAPSHOT_END => SnapshotEnd::decode(buf).map(M::SnapshotEnd),
            t => Err(crate::header::misplaced(t)),
        }
    }

    /// Encodes into the front of `buf`; returns the bytes written.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        use MdMessage as M;
        match self {
            M::AddOrder(m) => m.encode(buf),
            M::OrderExecuted(m) => m.encode(buf),
            M::OrderReduce(m) => m.encode(buf),
            M::OrderDelete(m) => m.encode(buf),
            M::OrderReplace(m) => m.encode(buf),
            M::Trade(m) => m.encode(buf),
            M::InstrumentDirectory(m) => m.encode(buf),
            M::TradingStatus(m) => m.encode(buf),
            M::ReferencePrice(m) => m.encode(buf),
            M::SnapshotBegin(m) => m.encode(buf),
            M::SnapshotOrder(m) => m.encode(buf),
            M::SnapshotEnd(m) => m.encode(buf),
        }
    }

    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        use MdMessage as M;
        match self {
            M::AddOrder(_) => AddOrder::SIZE,
            M::OrderExecuted(_) => OrderExecuted::SIZE,
            M::OrderReduce(_) => OrderReduce::SIZE,
            M::OrderDelete(_) => OrderDelete::SIZE,
            M::OrderReplace(_) => OrderReplace::SIZE,
            M::Trade(_) => Trade::SIZE,
            M::InstrumentDirectory(_) => InstrumentDirectory::SIZE,
            M::TradingStatus(_) => TradingStatus::SIZE,
            M::ReferencePrice(_) => ReferencePrice::SIZE,
            M::SnapshotBegin(_) => SnapshotBegin::SIZE,
            M::SnapshotOrder(_) => SnapshotOrder::SIZE,
            M::SnapshotEnd(_) => SnapshotEnd::SIZE,
        }
    }

    /// The message's timestamp.
    pub fn timestamp_ns(&self) -> u64 {
        use MdMessage as M;
        match self {
            M::AddOrder(m) => m.timestamp_ns,
            M::OrderExecuted(m) => m.timestamp_ns,
            M::OrderReduce(m) => m.timestamp_ns,
            M::OrderDelete(m) => m.timestamp_ns,
            M::OrderReplace(m) => m.timestamp_ns,
            M::Trade(m) => m.timestamp_ns,
            M::InstrumentDirectory(m) => m.timestamp_ns,
            M::TradingStatus(m) => m.timestamp_ns,
            M::ReferencePrice(m) => m.timestamp_ns,
            M::SnapshotBegin(m) => m.timestamp_ns,
            M::SnapshotOrder(m) => m.timestamp_ns,
            M::SnapshotEnd(m) => m.timestamp_ns,
        }
    }
}
