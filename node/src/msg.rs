//! What travels on the rings between cores. All `Copy`, fixed size, no pointers.

use tpx_engine::{
    AccountId, ClientOrderId, Command, EngineInput, InstrumentId, OrderId, PriceTicks, QtyLots,
    RiskCommand, TradeId,
};
use tpx_wire::enums::{BalanceReason, CancelReason, Liquidity, RejectReason, RequestKind, Side};

/// `Request::shard` for "every shard" (a mass cancel without an instrument).
pub const ALL_SHARDS: u16 = u16::MAX;

/// `Report::session` when the report is not a direct answer to a request of a known session:
/// the gateway finds the owning session from the order's `cl_ord_id`.
pub const NO_SESSION: u32 = u32::MAX;

/// The home gateway number of an account: where its session lives and its reports go.
#[inline]
pub fn home_gateway(account: u32, gateways: usize) -> usize {
    account as usize % gateways.max(1)
}

/// The engine's side of a wire side.
pub fn side_from_wire(s: Side) -> tpx_engine::Side {
    match s {
        Side::Buy => tpx_engine::Side::Buy,
        Side::Sell => tpx_engine::Side::Sell,
    }
}

/// Raw TSC stamps of one request's stages (`crate::runtime::clock::tsc`, 0 = not stamped), carried in
/// the request and copied into its reports; see `crate::observe::trace`.
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
    /// The requesting account: the command's own for order entry, the admin account for a risk
    /// input (whose body names the account it acts on).
    pub account: AccountId,
    /// An admin request's `request_id` (echoed in its answer), else 0.
    pub request_id: u64,
    /// An order-entry command or an admin's risk command.
    pub input: EngineInput,
    pub stamps: Stamps,
}

impl Request {
    /// An order-entry request (`account` is the command's).
    pub fn order(session: u32, shard: u16, tag: u32, cmd: Command) -> Request {
        Request {
            session,
            shard,
            tag,
            account: command_account(&cmd),
            request_id: 0,
            input: EngineInput::Command(cmd),
            stamps: Stamps::default(),
        }
    }

    /// The order-entry command, if this is one.
    #[inline]
    pub fn command(&self) -> Option<&Command> {
        match &self.input {
            EngineInput::Command(c) => Some(c),
            EngineInput::Risk(_) => None,
        }
    }

    /// The request kind and the `cl_ord_id` a reject of this request names on the wire
    /// (`None`: a venue command without a requester, never answered).
    pub fn reject_subject(&self) -> Option<(RequestKind, u64)> {
        Some(match &self.input {
            EngineInput::Command(Command::NewOrder(o)) => (RequestKind::EnterOrder, o.cl_ord_id),
            EngineInput::Command(Command::Replace(r)) => {
                (RequestKind::ReplaceOrder, r.new_cl_ord_id)
            }
            EngineInput::Command(Command::Cancel(c)) => (RequestKind::CancelOrder, c.cl_ord_id),
            EngineInput::Command(Command::MassCancel(_)) => (RequestKind::MassCancel, 0),
            EngineInput::Command(_) => return None,
            EngineInput::Risk(r) => (admin_kind(r), self.request_id),
        })
    }
}

/// The account an order-entry command acts for (0 for venue commands).
pub fn command_account(cmd: &Command) -> AccountId {
    match cmd {
        Command::NewOrder(o) => o.account,
        Command::Replace(r) => r.account,
        Command::Cancel(c) => c.account,
        Command::MassCancel(m) => m.account,
        _ => 0,
    }
}

/// The admin request kind of a risk command.
pub fn admin_kind(r: &RiskCommand) -> RequestKind {
    match r {
        RiskCommand::Deposit { .. } => RequestKind::AdminDeposit,
        RiskCommand::Withdraw { .. } => RequestKind::AdminWithdraw,
        RiskCommand::SetMarkPrice { .. } => RequestKind::AdminSetMarkPrice,
        RiskCommand::ApplyFunding { .. } => RequestKind::AdminApplyFunding,
        RiskCommand::Liquidate { .. } => RequestKind::AdminLiquidate,
        RiskCommand::SetFeeTier { .. } => RequestKind::AdminSetFeeTier,
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
