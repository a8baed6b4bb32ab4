//! Order-entry replies (OUCH 5.0-like), server → client, and the server-channel decoder.
//!
//! Every reply carries the session's sequence number `seq` (1, 2, 3, ... per session, a function
//! of the input log; 0 on an unsequenced answer: a reject of a request that did not enter the
//! log, or a `BalanceUpdate`, never replayed) and `timestamp_ns`, the sequencer's timestamp of
//! the input that produced it (so a replay is byte-identical).

use crate::admin::AdminAccepted;
use crate::drop_copy::ExecutionCopy;
use crate::enums::{BalanceReason, CancelReason, Liquidity, RejectReason, RequestKind, Side};
use crate::error::{DecodeError, EncodeError};
use crate::header::{schema::ORDER_ENTRY, template, Header};
use crate::query::{BalanceStatus, OrderStatus, PositionStatus, QueryDone};
use crate::session::{LoginAccepted, LoginRejected, Logout, ServerHeartbeat, SessionReject};

crate::wire_message! {
    /// A new order was accepted (it may trade and rest after this).
    pub struct OrderAccepted = template template::ORDER_ACCEPTED, schema ORDER_ENTRY, size 64 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id (the id on market data).
        32 => order_id: u64,
        /// Price in ticks.
        40 => price: i64,
        /// Quantity in lots.
        48 => qty: u64,
        /// Instrument id.
        56 => instrument: u32,
        /// Buy or sell.
        60 => side: Side,
    }
    reserved [61..64]
}

crate::wire_message! {
    /// A request was rejected; nothing changed.
    pub struct OrderRejected = template template::ORDER_REJECTED, schema ORDER_ENTRY, size 40 {
        /// Session sequence number; 0: unsequenced (the request did not enter the log: gateway and sequencer rejects, `NotLoggedIn`), never replayed.
        8 => seq: u64,
        /// Sequencer timestamp (gateway clock for gateway rejects), ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The cl_ord_id the request named (a replace's new_cl_ord_id; 0 for a mass cancel).
        24 => cl_ord_id: u64,
        /// Why.
        32 => reason: RejectReason,
        /// Which request this answers.
        33 => request: RequestKind,
    }
    reserved [34..40]
}

crate::wire_message! {
    /// An order was replaced.
    pub struct OrderReplaced = template template::ORDER_REPLACED, schema ORDER_ENTRY, size 72 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// cl_ord_id before.
        24 => orig_cl_ord_id: u64,
        /// cl_ord_id from now on.
        32 => new_cl_ord_id: u64,
        /// Engine order id (unchanged).
        40 => order_id: u64,
        /// New price in ticks.
        48 => price: i64,
        /// New leaves quantity in lots.
        56 => qty: u64,
        /// Instrument id.
        64 => instrument: u32,
        /// Whether the order kept its time priority.
        68 => priority_kept: bool,
    }
    reserved [69..72]
}

crate::wire_message! {
    /// An order lost `cancelled_qty` lots without a trade and has `leaves_qty` left (0: gone).
    pub struct OrderCancelled = template template::ORDER_CANCELLED, schema ORDER_ENTRY, size 64 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id.
        32 => order_id: u64,
        /// Lots cancelled by this event.
        40 => cancelled_qty: u64,
        /// Lots left on the order (0: it is gone).
        48 => leaves_qty: u64,
        /// Instrument id.
        56 => instrument: u32,
        /// Why.
        60 => reason: CancelReason,
    }
    reserved [61..64]
}

crate::wire_message! {
    /// One fill of one of the session's orders.
    pub struct OrderExecuted = template template::ORDER_EXECUTED, schema ORDER_ENTRY, size 88 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id.
        32 => order_id: u64,
        /// Trade (match) id; both sides of a match carry the same.
        40 => trade_id: u64,
        /// Execution price in ticks (the maker's price).
        48 => price: i64,
        /// Executed quantity in lots.
        56 => qty: u64 [nonzero],
        /// Lots left on the order after this fill (0: filled).
        64 => leaves_qty: u64,
        /// Fee in minor units of the quote asset; negative is a rebate.
        72 => fee: i64,
        /// Instrument id.
        80 => instrument: u32,
        /// The order's side.
        84 => side: Side,
        /// Maker or taker.
        85 => liquidity: Liquidity,
    }
    reserved [86..88]
}

crate::wire_message! {
    /// A mass cancel was applied; the `OrderCancelled(MassCancel)` replies precede it.
    pub struct MassCancelAck = template template::MASS_CANCEL_ACK, schema ORDER_ENTRY, size 32 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// Instrument id as requested, or 0xFFFFFFFF for all.
        24 => instrument: Option<u32>,
        /// Number of orders cancelled.
        28 => cancelled_count: u32,
    }
    reserved []
}

crate::wire_message! {
    /// A balance of the session's account changed other than by a trade (deposit, withdrawal,
    /// variation margin at a new mark, funding, ...). Balances are per shard.
    pub struct BalanceUpdate = template template::BALANCE_UPDATE, schema ORDER_ENTRY, size 56 {
        /// 0: unsequenced (a balance change is not a reply to a record of the session), never replayed.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// Change in minor units of the asset (negative: debited).
        24 => delta: i64,
        /// Available balance after it (negative only for a perpetual's settle asset after losses).
        32 => available: i64,
        /// Held balance after it (open orders and position margin).
        40 => held: i64,
        /// Asset id.
        48 => asset: u32,
        /// The shard whose balance changed.
        52 => shard: u16,
        /// Why.
        54 => reason: BalanceReason,
    }
    reserved [55..56]
}

crate::wire_message! {
    /// A trigger order fired: the watched price reached its trigger price. It now enters as a
    /// taker; its executions, its cancel or nothing (it rests) follow.
    pub struct OrderTriggered = template template::ORDER_TRIGGERED, schema ORDER_ENTRY, size 64 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id.
        32 => order_id: u64,
        /// The order's trigger price in ticks.
        40 => trigger_price: i64,
        /// The last or mark price that fired it, in ticks.
        48 => price: i64,
        /// Instrument id.
        56 => instrument: u32,
        /// Buy or sell.
        60 => side: Side,
    }
    reserved [61..64]
}

crate::wire_message! {
    /// A post-only-slide order that would have taken was re-priced one tick behind the
    /// opposite best; follows its `OrderAccepted` (which has the requested price).
    pub struct OrderSlid = template template::ORDER_SLID, schema ORDER_ENTRY, size 64 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id.
        32 => order_id: u64,
        /// The price the order asked for, in ticks.
        40 => requested_price: i64,
        /// The price it rests at, in ticks.
        48 => price: i64,
        /// Instrument id.
        56 => instrument: u32,
    }
    reserved [60..64]
}

crate::wire_message! {
    /// An iceberg's shown slice was filled and `display_qty` more is shown from the hidden rest
    /// (new time priority, back of its level); follows the execution that emptied the slice.
    pub struct OrderRefilled = template template::ORDER_REFILLED, schema ORDER_ENTRY, size 64 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The order's cl_ord_id.
        24 => cl_ord_id: u64,
        /// Engine order id (unchanged; market data re-adds it).
        32 => order_id: u64,
        /// Lots now shown.
        40 => display_qty: u64,
        /// Lots still hidden after this refill (private: never on market data).
        48 => hidden_qty: u64,
        /// Instrument id.
        56 => instrument: u32,
    }
    reserved [60..64]
}

/// Any message a server sends on an order-entry connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    LoginAccepted(LoginAccepted),
    LoginRejected(LoginRejected),
    Heartbeat(ServerHeartbeat),
    Logout(Logout),
    SessionReject(SessionReject),
    OrderAccepted(OrderAccepted),
    OrderRejected(OrderRejected),
    OrderReplaced(OrderReplaced),
    OrderCancelled(OrderCancelled),
    OrderExecuted(OrderExecuted),
    MassCancelAck(MassCancelAck),
    AdminAccepted(AdminAccepted),
    BalanceUpdate(BalanceUpdate),
    OrderTriggered(OrderTriggered),
    OrderSlid(OrderSlid),
    OrderRefilled(OrderRefilled),
    OrderStatus(OrderStatus),
    BalanceStatus(BalanceStatus),
    PositionStatus(PositionStatus),
    QueryDone(QueryDone),
    ExecutionCopy(ExecutionCopy),
}

impl ServerMessage {
    /// Decodes one complete frame from a server.
    pub fn decode(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
        use ServerMessage as S;
        let h = Header::peek(frame)?;
        h.check_channel(ORDER_ENTRY)?;
        match h.template_id {
            template::ORDER_ACCEPTED => OrderAccepted::decode(frame).map(S::OrderAccepted),
            template::ORDER_REJECTED => OrderRejected::decode(frame).map(S::OrderRejected),
            template::ORDER_REPLACED => OrderReplaced::decode(frame).map(S::OrderReplaced),
            template::ORDER_CANCELLED => OrderCancelled::decode(frame).map(S::OrderCancelled),
            template::ORDER_EXECUTED => OrderExecuted::decode(frame).map(S::OrderExecuted),
            template::MASS_CANCEL_ACK => MassCancelAck::decode(frame).map(S::MassCancelAck),
            template::ADMIN_ACCEPTED => AdminAccepted::decode(frame).map(S::AdminAccepted),
            template::BALANCE_UPDATE => BalanceUpdate::decode(frame).map(S::BalanceUpdate),
            template::ORDER_TRIGGERED => OrderTriggered::decode(frame).map(S::OrderTriggered),
            template::ORDER_SLID => OrderSlid::decode(frame).map(S::OrderSlid),
            template::ORDER_REFILLED => OrderRefilled::decode(frame).map(S::OrderRefilled),
            template::ORDER_STATUS => OrderStatus::decode(frame).map(S::OrderStatus),
            template::BALANCE_STATUS => BalanceStatus::decode(frame).map(S::BalanceStatus),
            template::POSITION_STATUS => PositionStatus::decode(frame).map(S::PositionStatus),
            template::QUERY_DONE => QueryDone::decode(frame).map(S::QueryDone),
            template::EXECUTION_COPY => ExecutionCopy::decode(frame).map(S::ExecutionCopy),
            template::LOGIN_ACCEPTED => LoginAccepted::decode(frame).map(S::LoginAccepted),
            template::LOGIN_REJECTED => LoginRejected::decode(frame).map(S::LoginRejected),
            template::SERVER_HEARTBEAT => ServerHeartbeat::decode(frame).map(S::Heartbeat),
            template::LOGOUT => Logout::decode(frame).map(S::Logout),
            template::SESSION_REJECT => SessionReject::decode(frame).map(S::SessionReject),
            t => Err(crate::header::misplaced(t)),
        }
    }

    /// Encodes into the front of `buf`; returns the bytes written.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        use ServerMessage as S;
        match self {
            S::LoginAccepted(m) => m.encode(buf),
            S::LoginRejected(m) => m.encode(buf),
            S::Heartbeat(m) => m.encode(buf),
            S::Logout(m) => m.encode(buf),
            S::SessionReject(m) => m.encode(buf),
            S::OrderAccepted(m) => m.encode(buf),
            S::OrderRejected(m) => m.encode(buf),
            S::OrderReplaced(m) => m.encode(buf),
            S::OrderCancelled(m) => m.encode(buf),
            S::OrderExecuted(m) => m.encode(buf),
            S::MassCancelAck(m) => m.encode(buf),
            S::AdminAccepted(m) => m.encode(buf),
            S::BalanceUpdate(m) => m.encode(buf),
            S::OrderTriggered(m) => m.encode(buf),
            S::OrderSlid(m) => m.encode(buf),
            S::OrderRefilled(m) => m.encode(buf),
            S::OrderStatus(m) => m.encode(buf),
            S::BalanceStatus(m) => m.encode(buf),
            S::PositionStatus(m) => m.encode(buf),
            S::QueryDone(m) => m.encode(buf),
            S::ExecutionCopy(m) => m.encode(buf),
        }
    }

    /// The session sequence number of a sequenced reply; `None` for session messages (and for
    /// an unsequenced `OrderRejected` with seq 0).
    pub fn seq(&self) -> Option<u64> {
        use ServerMessage as S;
        let seq = match self {
            S::OrderAccepted(m) => m.seq,
            S::OrderRejected(m) => m.seq,
            S::OrderReplaced(m) => m.seq,
            S::OrderCancelled(m) => m.seq,
            S::OrderExecuted(m) => m.seq,
            S::MassCancelAck(m) => m.seq,
            S::AdminAccepted(m) => m.seq,
            S::BalanceUpdate(m) => m.seq,
            S::OrderTriggered(m) => m.seq,
            S::OrderSlid(m) => m.seq,
            S::OrderRefilled(m) => m.seq,
            S::OrderStatus(m) => m.seq,
            S::BalanceStatus(m) => m.seq,
            S::PositionStatus(m) => m.seq,
            S::QueryDone(m) => m.seq,
            S::ExecutionCopy(m) => m.seq,
            _ => 0,
        };
        (seq != 0).then_some(seq)
    }
}

/// Decodes one complete frame from a server (same as [`ServerMessage::decode`]).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    ServerMessage::decode(frame)
}
