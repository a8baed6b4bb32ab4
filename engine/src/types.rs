//! Identifiers, units and small enums shared by commands and events.
//!
//! Prices are integer **ticks** and quantities integer **lots**; nothing in the engine is a float.

/// A trading account. Dense, small integers: the engine sizes per-account tables by the largest id.
pub type AccountId = u32;
/// An instrument (spot pair or linear perpetual). Dense, small integers.
pub type InstrumentId = u32;
/// Engine-assigned order id, unique for the life of the engine; carried on market data.
pub type OrderId = u64;
/// Client-assigned order id, unique among an account's live orders (the session layer further
/// requires it to be strictly increasing per session, which makes it unique forever).
pub type ClientOrderId = u64;
/// Engine-assigned trade (match) id, strictly increasing.
pub type TradeId = u64;
/// A price in ticks of its instrument.
pub type PriceTicks = i64;
/// A quantity in lots of its instrument.
pub type QtyLots = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    Buy = 1,
    Sell = 2,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: the remainder rests on the book.
    Gtc = 1,
    /// Immediate or cancel: the remainder is cancelled.
    Ioc = 2,
    /// Fill or kill: executes in full at once or not at all.
    Fok = 3,
    /// Good till date: like GTC, but cancelled with [`crate::CancelReason::Expired`] by the
    /// first command whose sequencer timestamp reaches `OrderExt::expire_ts_ns`.
    Gtd = 4,
}

/// Self-trade prevention: what happens when an order would match another order of its own account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StpMode {
    /// No prevention: the account may trade with itself.
    None = 0,
    /// The incoming (taker) order's remainder is cancelled; the resting order stays.
    ExpireTaker = 1,
    /// The resting (maker) order is cancelled and matching continues.
    ExpireMaker = 2,
    /// Both the resting order and the incoming order's remainder are cancelled.
    ExpireBoth = 3,
    /// The smaller of the two is cancelled and the larger is decremented by the same quantity,
    /// with no trade; if equal both are cancelled.
    DecrementAndCancel = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderKind {
    /// A limit order at `price`.
    Limit = 1,
    /// A market order: executes against the book up to the protection price carried in `price`,
    /// never rests (the remainder is cancelled with [`crate::CancelReason::MarketProtection`]).
    Market = 2,
}

/// Which price a trigger (stop / take-profit) order watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TriggerSource {
    /// The instrument's last trade price (every `Fill` moves it).
    Last = 1,
    /// The perpetual's mark price (set by `RiskCommand::SetMarkPrice`); perpetuals only.
    Mark = 2,
}

/// When a trigger fires: the watched price reaches the trigger price from below or above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TriggerDirection {
    /// Fires once the price is `>= trigger price` (a buy stop, a sell take-profit).
    RisesTo = 1,
    /// Fires once the price is `<= trigger price` (a sell stop, a buy take-profit).
    FallsTo = 2,
}

/// The condition of a stop / stop-limit / take-profit order. The order's `kind` says what enters
/// the book when it fires: `Market` (stop-market, take-profit-market) or `Limit` (stop-limit,
/// take-profit-limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trigger {
    pub price: PriceTicks,
    pub source: TriggerSource,
    pub direction: TriggerDirection,
}
