//! What travels on the rings between cores. All `Copy`, fixed size, no pointers.

use tpx_engine::{
    AccountId, ClientOrderId, Command, InstrumentId, OrderId, PriceTicks, QtyLots, TradeId,
};
use tpx_wire::enums::{CancelReason, Liquidity, RejectReason, RequestKind, Side};

/// `Request::shard` for "every shard" (a mass cancel without an instrument).
pub const ALL_SHARDS: u16 = u16::MAX;

/// `Report::session` when the report is not a direct answer to a request of a known session:
/// the gateway finds the owning session from the order's `cl_ord_id`.
pub const NO_SESSION: u32 = u32::MAX;

/// Raw TSC stamps of one request's stages (`crate::stats::tsc`, 0 = not stamped), carried in
/// the request and copied into its reports; see `crate::trace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    /// The gateway read the request's bytes.
    pub rx: u64,
    /// The sequencing stage stamped it.
    pub seq: u64,
    /// The input log made it durable (0 while the log is in-process).
    pub durable: u64,
    /// Its shard emitted the first report.
    pub matched: u64,
}

/// Gateway → sequencer: one validated request, already routed to its shard(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The session's slot on its home gateway (answers to this request go back to it).
    pub session: u32,
    /// Target shard, or [`ALL_SHARDS`].
    pub shard: u16,
    /// The gateway's tag for requests answered by several shards (mass cancel), else 0.
    pub tag: u32,
    pub cmd: Command,
    pub stamps: Stamps,
}

/// Sequencer → shard: a request with its log position and timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequenced {
    pub seq: u64,
    pub ts_ns: u64,
    pub req: Request,
}

/// Shard → gateway: one execution report for one account, before the session layer gives it a
/// sequence number and encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub account: AccountId,
    /// The requesting session for answers to a request ([`NO_SESSION`] for reports about
    /// orders, which go to the session owning the order).
    pub session: u32,
    /// Sequencer timestamp of the input that caused it.
    pub ts_ns: u64,
    pub kind: ReportKind,
    /// The causing request's stamps, `matched` set.
    pub stamps: Stamps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Accepted {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        price: PriceTicks,
        qty: QtyLots,
    },
    Rejected {
        /// As on the wire: a replace's new id, 0 for a mass cancel.
        cl_ord_id: ClientOrderId,
        reason: RejectReason,
        request: RequestKind,
    },
    Executed {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        trade_id: TradeId,
        instrument: InstrumentId,
        side: Side,
        liquidity: Liquidity,
        price: PriceTicks,
        qty: QtyLots,
        leaves_qty: QtyLots,
    },
    Cancelled {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        cancelled_qty: QtyLots,
        leaves_qty: QtyLots,
        reason: CancelReason,
    },
    Replaced {
        orig_cl_ord_id: ClientOrderId,
        new_cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        price: PriceTicks,
        qty: QtyLots,
        priority_kept: bool,
    },
    /// One shard finished its part of a mass cancel (the gateway acks when all have).
    MassCancelDone {
        tag: u32,
        instrument: Option<InstrumentId>,
        cancelled: u32,
    },
}
