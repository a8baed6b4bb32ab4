//! What travels on the rings between cores. All `Copy`, fixed size, no pointers.

use tpx_engine::{AccountId, ClientOrderId, InstrumentId, OrderId, PriceTicks, QtyLots, TradeId};
use tpx_wire::enums::{BalanceReason, CancelReason, Liquidity, RejectReason, RequestKind, Side};
use tpx_wire::log_record::Input;
use tpx_wire::replies::{OrderRefilled, OrderSlid, OrderTriggered, ServerMessage};

/// `Request::shard` for "every shard" (a mass cancel without an instrument).
pub const ALL_SHARDS: u16 = u16::MAX;

/// `Request::session` / `Report::session` for "no session": a report that is not a direct
/// answer to a request (the gateway finds the owning session from the order's `cl_ord_id`), a
/// record no client session sent (the operator's; the log's `session` 0).
pub const NO_SESSION: u32 = u32::MAX;

/// `Report::seq` of an answer that is not made from a log record (the sequencing stage's
/// `Unavailable`, "already sequenced" `DuplicateClientOrderId`): unsequenced, session-local,
/// sent with wire `seq` 0 and never journaled.
pub const UNSEQUENCED: u64 = 0;

/// The home gateway number of an account: where its session lives and its reports go.
#[inline]
pub fn home_gateway(account: u32, gateways: usize) -> usize {
    account as usize % gateways.max(1)
}

/// Raw TSC stamps of one request's stages (`crate::runtime::clock::tsc`, 0 = not stamped), carried in
/// the request and copied into its reports; see `crate::observe::trace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    /// The gateway read the request's bytes.
    pub rx: u64,
    /// The sequencing stage stamped it.
    pub seq: u64,
    /// The input log made it durable (as the durability mode requires; with the in-memory
    /// log of `log = "in-process"`, when the replica acknowledged it).
    pub durable: u64,
    /// Its shard emitted the first report.
    pub matched: u64,
}

/// Gateway → sequencer (and, sequenced, on to the shards): one validated request, already
/// routed to its shard(s), in the log's own form: `input` is what the client sent (the order
/// entry message as it came, an admin message as its log input), and `account` the record's
/// account. Nothing converts it on the way to the log; the shard converts it to the engine's
/// form once, where it applies the record (`tpx_sequencer::apply::engine_input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The client's `session_id` (the log record's `session`): answers to this request belong
    /// to `(account, session)`'s reply stream on every node; [`NO_SESSION`] for none.
    pub session: u32,
    /// Target shard, or [`ALL_SHARDS`].
    pub shard: u16,
    /// The gateway's tag for requests answered by several shards (mass cancel), else 0.
    pub tag: u32,
    /// The requesting account: the session's for order entry, the admin's for an admin input
    /// (whose body names the account it acts on); 0 for a venue input.
    pub account: AccountId,
    /// The log input.
    pub input: Input,
    pub stamps: Stamps,
}

impl Request {
    /// A request of `account` from client session `session` to `shard` (no tag, not
    /// stamped).
    pub fn new(session: u32, shard: u16, account: AccountId, input: Input) -> Request {
        Request {
            session,
            shard,
            tag: 0,
            account,
            input,
            stamps: Stamps::default(),
        }
    }

    /// The request kind and the `cl_ord_id` a reject of this request names on the wire (a
    /// replace's new id, 0 for a mass cancel, an admin request's `request_id`; `None`: a venue
    /// input without a requester, never answered).
    pub fn reject_subject(&self) -> Option<(RequestKind, u64)> {
        Some(match &self.input {
            Input::EnterOrder(o) => (RequestKind::EnterOrder, o.cl_ord_id),
            Input::EnterOrderExt(o) => (RequestKind::EnterOrderExt, o.cl_ord_id),
            Input::ReplaceOrder(r) => (RequestKind::ReplaceOrder, r.new_cl_ord_id),
            Input::CancelOrder(c) => (RequestKind::CancelOrder, c.cl_ord_id),
            Input::MassCancel(_) => (RequestKind::MassCancel, 0),
            Input::Halt(_)
            | Input::Resume(_)
            | Input::SetReferencePrice(_)
            | Input::Tick(_)
            | Input::Checkpoint(_)
            | Input::TermStart(_) => return None,
            admin => (admin_kind(admin)?, self.admin_request_id()),
        })
    }

    /// The request id an answer to this admin request names: the one the log record carries
    /// (a funding's as its `funding_id`), so that every node answers alike, the node that took
    /// the request, a standby and a replay; 0 for any other input.
    pub fn admin_request_id(&self) -> u64 {
        match &self.input {
            Input::Deposit(d) => d.request_id,
            Input::Withdraw(w) => w.request_id,
            Input::SetMarkPrice(m) => m.request_id,
            Input::ApplyFunding(f) => f.funding_id,
            Input::Liquidate(l) => l.request_id,
            Input::SetFeeTier(f) => f.request_id,
            _ => 0,
        }
    }
}

impl ReportKind {
    /// The wire reply of an order-type report (`Triggered`, `Slid`, `Refilled`) as reply `seq`
    /// of its session; `None` for any other report.
    pub fn order_type_reply(&self, seq: u64, timestamp_ns: u64) -> Option<ServerMessage> {
        Some(match *self {
            ReportKind::Triggered {
                cl_ord_id,
                order_id,
                instrument,
                side,
                trigger_price,
                price,
            } => ServerMessage::OrderTriggered(OrderTriggered {
                seq,
                timestamp_ns,
                cl_ord_id,
                order_id,
                trigger_price,
                price,
                instrument,
                side,
            }),
            ReportKind::Slid {
                cl_ord_id,
                order_id,
                instrument,
                requested_price,
                price,
            } => ServerMessage::OrderSlid(OrderSlid {
                seq,
                timestamp_ns,
                cl_ord_id,
                order_id,
                requested_price,
                price,
                instrument,
            }),
            ReportKind::Refilled {
                cl_ord_id,
                order_id,
                instrument,
                display_qty,
                hidden_qty,
            } => ServerMessage::OrderRefilled(OrderRefilled {
                seq,
                timestamp_ns,
                cl_ord_id,
                order_id,
                display_qty,
                hidden_qty,
                instrument,
            }),
            _ => return None,
        })
    }
}

/// The admin request kind of an admin input (`None`: not one).
pub fn admin_kind(input: &Input) -> Option<RequestKind> {
    Some(match input {
        Input::Deposit(_) => RequestKind::AdminDeposit,
        Input::Withdraw(_) => RequestKind::AdminWithdraw,
        Input::SetMarkPrice(_) => RequestKind::AdminSetMarkPrice,
        Input::ApplyFunding(_) => RequestKind::AdminApplyFunding,
        Input::Liquidate(_) => RequestKind::AdminLiquidate,
        Input::SetFeeTier(_) => RequestKind::AdminSetFeeTier,
        _ => return None,
    })
}

/// What a session asks a shard about (see [`Query`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// The live order of the account with this `cl_ord_id`.
    Order { cl_ord_id: ClientOrderId },
    /// The account's live orders, on one instrument or on all of the shard's.
    OpenOrders { instrument: Option<InstrumentId> },
    /// The account's balances on the shard.
    Balances,
    /// The account's positions on the shard's perpetuals.
    Positions,
}

/// Gateway → shard, beside the log: a query answered from the shard's state as it is when the
/// shard takes it (never logged, never replicated). Its answers are unsequenced reports
/// ([`ReportKind::QueryOrder`] .. [`ReportKind::QueryDone`]) carrying `tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub account: AccountId,
    /// The asking client session (`session_id`).
    pub session: u32,
    /// The gateway's tag of the query (it sends one `QueryDone` once every shard asked has
    /// answered).
    pub tag: u32,
    pub kind: QueryKind,
}

/// One shard's queries waiting, from every gateway: a mutex-guarded queue and a flag the shard
/// reads each cycle (queries are off the order path: the order path pays one load).
#[derive(Debug, Default)]
pub struct QueryInbox {
    pending: std::sync::atomic::AtomicBool,
    queue: std::sync::Mutex<Vec<Query>>,
}

impl QueryInbox {
    /// Queries one shard holds at most; a gateway refuses more (`Backpressure`).
    pub const CAPACITY: usize = 4096;

    /// Leaves `q` for the shard; false if the inbox is full.
    pub fn push(&self, q: Query) -> bool {
        let mut g = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= Self::CAPACITY {
            return false;
        }
        g.push(q);
        self.pending
            .store(true, std::sync::atomic::Ordering::Release);
        true
    }

    /// Moves the waiting queries into `out` (nothing to do: one load).
    #[inline]
    pub fn take_into(&self, out: &mut Vec<Query>) {
        if !self.pending.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut g = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.pending
            .store(false, std::sync::atomic::Ordering::Relaxed);
        out.append(&mut g);
    }
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
    /// The requesting client session (`session_id`) for answers to a request ([`NO_SESSION`]
    /// for reports about orders, which go to the session owning the order).
    pub session: u32,
    /// The log seq of the record that caused it: the gateway numbers a session's replies in
    /// log order (`seq`, then the shard, then the order a shard emitted them);
    /// [`UNSEQUENCED`] for the sequencing stage's own answers.
    pub seq: u64,
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
        /// This side's fee in the quote (settle) asset, negative: a rebate (0 with risk off).
        fee: i64,
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
    /// A trigger order fired (`price`: the last or mark price that fired it).
    Triggered {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        trigger_price: PriceTicks,
        price: PriceTicks,
    },
    /// A post-only-slide order was re-priced from `requested_price` to `price`.
    Slid {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        requested_price: PriceTicks,
        price: PriceTicks,
    },
    /// An iceberg showed `display_qty` more from its hidden rest (`hidden_qty` left).
    Refilled {
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        display_qty: QtyLots,
        hidden_qty: QtyLots,
    },
    /// One shard finished its part of a mass cancel (the gateway acks when all have).
    MassCancelDone {
        tag: u32,
        instrument: Option<InstrumentId>,
        cancelled: u32,
    },
    /// An admin request was applied by this shard (to the requesting admin session).
    AdminAccepted {
        request_id: u64,
        /// Deposit and withdrawal: the target account's balance after it; else 0.
        available: i64,
        held: i64,
        /// The account the request named (0 for mark price and funding).
        target: AccountId,
        shard: u16,
        request: RequestKind,
    },
    /// A live order answering query `tag` (unsequenced, like every query answer).
    QueryOrder {
        tag: u32,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        price: PriceTicks,
        leaves_qty: QtyLots,
    },
    /// A balance answering query `tag`.
    QueryBalance {
        tag: u32,
        asset: u32,
        available: i64,
        held: i64,
        shard: u16,
        margin_call: bool,
    },
    /// A perpetual position answering query `tag`.
    QueryPosition {
        tag: u32,
        instrument: InstrumentId,
        size: i64,
        entry_price: PriceTicks,
        realized_pnl: i64,
    },
    /// One shard finished answering query `tag` with `count` data reports, from its state
    /// after record `as_of_seq`.
    QueryDone {
        tag: u32,
        count: u32,
        as_of_seq: u64,
    },
    /// A balance of `account` changed other than by a trade (to its connected session, if any).
    BalanceUpdate {
        delta: i64,
        available: i64,
        held: i64,
        asset: u32,
        shard: u16,
        reason: BalanceReason,
    },
}
