//! Queries (client → server) and their answers (server → client): order status, open orders,
//! balances, positions, answered from the shards' state without entering the input log.
//!
//! Every answer is unsequenced (`seq` 0: not part of the session's numbered stream, never
//! replayed) and carries the query's `request_id`; every query that is taken ends with exactly
//! one [`QueryDone`] after its data messages (none or more). A query that is refused (throttle,
//! back-pressure, not primary) gets an unsequenced `OrderRejected` whose `cl_ord_id` is the
//! `request_id` and whose `request` is the query's kind, and no `QueryDone`. The rules are in
//! `docs/PROTOCOL.md` ("Queries").

use crate::enums::{RequestKind, Side};
use crate::header::{schema::ORDER_ENTRY, template};

crate::wire_message! {
    /// The status of one order of the session's account, by `cl_ord_id`: an `OrderStatus` if it
    /// is live (resting on a book), then `QueryDone` (count 0: not live: filled, cancelled,
    /// never accepted, or a trigger order not yet fired).
    pub struct QueryOrder = template template::QUERY_ORDER, schema ORDER_ENTRY, size 24 {
        /// Echoed in every answer. Non-zero.
        8 => request_id: u64 [nonzero],
        /// The order's current client order id.
        16 => cl_ord_id: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// The live orders of the session's account (every session's), on one instrument or on
    /// all: one `OrderStatus` each, then `QueryDone`.
    pub struct QueryOpenOrders = template template::QUERY_OPEN_ORDERS, schema ORDER_ENTRY, size 24 {
        /// Echoed in every answer. Non-zero.
        8 => request_id: u64 [nonzero],
        /// Instrument id, or 0xFFFFFFFF for all instruments.
        16 => instrument: Option<u32>,
    }
    reserved [20..24]
}

crate::wire_message! {
    /// The account's balances (risk on): one `BalanceStatus` per shard and asset the shard's
    /// instruments use, then `QueryDone`.
    pub struct QueryBalances = template template::QUERY_BALANCES, schema ORDER_ENTRY, size 16 {
        /// Echoed in every answer. Non-zero.
        8 => request_id: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// The account's perpetual positions (risk on): one `PositionStatus` per perpetual with a
    /// non-zero position, then `QueryDone`.
    pub struct QueryPositions = template template::QUERY_POSITIONS, schema ORDER_ENTRY, size 16 {
        /// Echoed in every answer. Non-zero.
        8 => request_id: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// A live order (answer to `QueryOrder` or `QueryOpenOrders`); unsequenced.
    pub struct OrderStatus = template template::ORDER_STATUS, schema ORDER_ENTRY, size 64 {
        /// Always 0 (unsequenced).
        8 => seq: u64,
        /// The query's.
        16 => request_id: u64,
        /// The order's current client order id.
        24 => cl_ord_id: u64,
        /// Order id.
        32 => order_id: u64,
        /// Limit price in ticks.
        40 => price: i64,
        /// Lots still open.
        48 => leaves_qty: u64,
        /// Instrument id.
        56 => instrument: u32,
        /// Buy or sell.
        60 => side: Side,
    }
    reserved [61..64]
}

crate::wire_message! {
    /// One balance of the account on one shard (answer to `QueryBalances`); unsequenced.
    pub struct BalanceStatus = template template::BALANCE_STATUS, schema ORDER_ENTRY, size 48 {
        /// Always 0 (unsequenced).
        8 => seq: u64,
        /// The query's.
        16 => request_id: u64,
        /// Free to hold or withdraw, minor units.
        24 => available: i64,
        /// Held for open orders and position margin, minor units.
        32 => held: i64,
        /// Asset id.
        40 => asset: u32,
        /// The shard holding this balance (balances are per shard).
        44 => shard: u16,
        /// Below maintenance margin at the last check (settle assets).
        46 => margin_call: bool,
    }
    reserved [47..48]
}

crate::wire_message! {
    /// One perpetual position of the account (answer to `QueryPositions`); unsequenced.
    pub struct PositionStatus = template template::POSITION_STATUS, schema ORDER_ENTRY, size 56 {
        /// Always 0 (unsequenced).
        8 => seq: u64,
        /// The query's.
        16 => request_id: u64,
        /// Lots, positive long, negative short.
        24 => size: i64,
        /// Average entry price in ticks, rounded toward zero.
        32 => entry_price: i64,
        /// Cumulative variation margin credited (negative: paid), settle minor units.
        40 => realized_pnl: i64,
        /// The perpetual's instrument id.
        48 => instrument: u32,
    }
    reserved [52..56]
}

crate::wire_message! {
    /// The end of a query's answer; unsequenced.
    pub struct QueryDone = template template::QUERY_DONE, schema ORDER_ENTRY, size 40 {
        /// Always 0 (unsequenced).
        8 => seq: u64,
        /// The query's.
        16 => request_id: u64,
        /// The answer reflects every log record up to this seq (the lowest of the shards that
        /// answered), and possibly some after it.
        24 => as_of_seq: u64,
        /// Data messages sent before this one.
        32 => count: u32,
        /// Which query this ends.
        36 => request: RequestKind,
    }
    reserved [37..40]
}
