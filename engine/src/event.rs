//! Events: everything the engine says, in the order it says it. Execution reports go to the
//! owning sessions; the `Book*` events and fills are the order-by-order market data.

use crate::types::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    UnknownInstrument = 1,
    InstrumentHalted = 2,
    /// Price not positive, or outside the instrument's `[min_price, max_price]`.
    InvalidPrice = 3,
    /// Price outside the band around the reference price.
    PriceOutsideBand = 4,
    /// Zero, below the minimum or above the maximum quantity.
    InvalidQuantity = 5,
    BelowMinNotional = 6,
    DuplicateClientOrderId = 7,
    UnknownOrder = 8,
    PostOnlyWouldTake = 9,
    /// A fill-or-kill order could not be filled in full.
    FokNotFillable = 10,
    /// The order pool is full (capacity, see `EngineConfig::max_orders`).
    BookFull = 11,
    /// A cancel-down to a quantity not below the current leaves quantity, or a replace that
    /// changes nothing it may change.
    InvalidModify = 12,
    /// An unknown account id (outside the configured account table).
    UnknownAccount = 13,
    /// A market order with a time in force other than IOC, or post-only; with risk on also a
    /// reduce-only order on a spot instrument.
    InvalidOrderType = 14,
    // Accounts and risk (risk on only; see `docs/ARCHITECTURE.md`, "Accounts and risk").
    /// Not enough available balance for the order's hold or the withdrawal.
    InsufficientBalance = 15,
    /// A reduce-only order (or replace) that could increase the position.
    ReduceOnlyWouldIncrease = 16,
    /// The position could pass the instrument's `max_position` if every open order filled.
    MaxPositionExceeded = 17,
    /// A deposit or withdrawal whose request id is not above the account's last one
    /// (idempotency: a replayed request is refused, not applied twice).
    DuplicateRequest = 18,
    /// An asset the risk configuration does not have.
    UnknownAsset = 19,
    /// A zero amount, a deposit that would overflow the asset's total, or a funding rate
    /// beyond 100%.
    InvalidAmount = 20,
    /// Funding or liquidation on a perpetual with no mark price yet.
    NoMarkPrice = 21,
    /// A risk command on an engine built with risk off.
    RiskDisabled = 22,
    /// Liquidation of an account with no position on the instrument.
    NoPosition = 23,
    /// A perpetual-only command (mark, funding, liquidation) on a spot instrument.
    NotPerpetual = 24,
    /// A fee tier at or above `RiskConfig::fee_tiers`.
    InvalidFeeTier = 25,
    /// Liquidation of a venue account (fee or liquidation account).
    NotLiquidatable = 26,
    /// A trigger order whose trigger price is invalid (outside the instrument's price range)
    /// or already reached by the watched price, or that combines the trigger with what a
    /// trigger order may not be (post-only, FOK, iceberg).
    InvalidTrigger = 27,
    /// A GTD order without an expiry above the command's timestamp, or an expiry on a non-GTD
    /// order.
    InvalidExpireTime = 28,
    /// An OCO link naming an order that is not live, is of another instrument or is already
    /// paired.
    InvalidOcoLink = 29,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CancelReason {
    /// Cancel or cancel-down requested by the client.
    UserRequested = 1,
    /// The unfilled remainder of an IOC order.
    ImmediateOrCancel = 2,
    /// The unfilled remainder of a market order at its protection price.
    MarketProtection = 3,
    /// Cancelled (or decremented) by self-trade prevention.
    SelfTradePrevention = 4,
    MassCancel = 5,
    /// Cancelled by a liquidation of its account.
    Liquidation = 6,
    /// A reduce-only order trimmed (or removed) because its position shrank.
    ReduceOnly = 7,
    /// A GTD order reached its expiry timestamp.
    Expired = 8,
    /// The other leg of its OCO pair was triggered, filled or left the engine.
    Oco = 9,
    /// A trigger order fired but could not enter: its price left the band, or (risk on) the
    /// risk check refused it.
    TriggerRejected = 10,
}

/// Which side of a fill provided liquidity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Liquidity {
    Maker = 1,
    Taker = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new order was accepted (it may trade and rest after this event).
    Accepted {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        price: PriceTicks,
        qty: QtyLots,
    },
    /// A command was rejected; nothing changed. `cl_ord_id` is the one the command named
    /// (0 for admin commands).
    Rejected {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        reason: RejectReason,
    },
    /// One match between a resting maker and an incoming taker: both execution reports and the
    /// market-data trade. `*_leaves` are the quantities left on each order after this fill.
    Fill {
        instrument: InstrumentId,
        trade_id: TradeId,
        price: PriceTicks,
        qty: QtyLots,
        taker_side: Side,
        maker_account: AccountId,
        maker_cl_ord_id: ClientOrderId,
        maker_order_id: OrderId,
        maker_leaves: QtyLots,
        taker_account: AccountId,
        taker_cl_ord_id: ClientOrderId,
        taker_order_id: OrderId,
        taker_leaves: QtyLots,
    },
    /// An order lost `cancelled_qty` lots and has `leaves_qty` left (0: it is gone).
    Cancelled {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        cancelled_qty: QtyLots,
        leaves_qty: QtyLots,
        reason: CancelReason,
    },
    /// An order was replaced; `priority_kept` says whether it kept its place in the queue.
    Replaced {
        account: AccountId,
        orig_cl_ord_id: ClientOrderId,
        new_cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        price: PriceTicks,
        qty: QtyLots,
        priority_kept: bool,
    },
    /// Market data: an order now rests on the book.
    BookAdd {
        instrument: InstrumentId,
        order_id: OrderId,
        side: Side,
        price: PriceTicks,
        qty: QtyLots,
    },
    /// Market data: a resting order's quantity fell by `qty` without a trade (cancel-down,
    /// decrement by STP, smaller replace), keeping its priority.
    BookReduce {
        instrument: InstrumentId,
        order_id: OrderId,
        qty: QtyLots,
    },
    /// Market data: a resting order left the book without a trade (executions say so by `Fill`).
    BookDelete {
        instrument: InstrumentId,
        order_id: OrderId,
    },
    /// Market data: a resting order moved to a new price and/or larger quantity and went to the
    /// back of its new level's queue (same order id).
    BookReplace {
        instrument: InstrumentId,
        order_id: OrderId,
        price: PriceTicks,
        qty: QtyLots,
    },
    /// Market data: trading status changed.
    TradingStatus {
        instrument: InstrumentId,
        halted: bool,
    },
    /// Admin: reference price and band set.
    ReferencePrice {
        instrument: InstrumentId,
        price: PriceTicks,
        band_bps: u32,
    },
    /// Execution report: a trigger order fired because the watched price reached
    /// `trigger_price` (`price` is the last or mark price that fired it). It now enters as a
    /// taker: its fills, `BookAdd` or `Cancelled` follow. Not market data.
    Triggered {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        trigger_price: PriceTicks,
        price: PriceTicks,
    },
    /// Execution report: a post-only-slide order that would have taken was re-priced to
    /// `price` (one tick behind the opposite best) from `requested_price`. Follows `Accepted`;
    /// its `BookAdd` (at `price`) follows. Not market data.
    Slid {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        requested_price: PriceTicks,
        price: PriceTicks,
    },
    /// Execution report: an iceberg's shown quantity was filled and `display_qty` more was shown
    /// from the hidden rest, which has `hidden_qty` left. The order went to the back of its
    /// level's queue; the market-data `BookAdd` (shown quantity only) follows. Never market
    /// data itself: `hidden_qty` is private.
    Refilled {
        account: AccountId,
        cl_ord_id: ClientOrderId,
        order_id: OrderId,
        instrument: InstrumentId,
        display_qty: QtyLots,
        hidden_qty: QtyLots,
    },
}

/// Where the engine writes its events. Generic so that the hot path is monomorphised and
/// allocation-free; `Vec<Event>` implements it for tests.
pub trait EventSink {
    fn emit(&mut self, event: Event);

    /// Events of the risk stage (balances, fees, positions, margin), in order with `emit`.
    /// Dropped unless a sink wants them; only an engine with risk on emits them.
    #[inline]
    fn emit_risk(&mut self, event: crate::risk::RiskEvent) {
        let _ = event;
    }
}

impl EventSink for Vec<Event> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}
