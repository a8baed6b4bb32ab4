//! The risk stage's commands, events and read views.

use crate::command::Command;
use crate::event::{Event, EventSink};
use crate::instrument::AssetId;
use crate::types::*;

/// Sequenced inputs of the risk stage, applied by [`crate::Engine::process_risk`]. Every one is
/// rejected with [`crate::RejectReason::RiskDisabled`] by an engine built with risk off.
/// Rejections are `Event::Rejected` naming the account (0 for venue inputs) and, in
/// `cl_ord_id`, the request id (a deposit's, withdrawal's or liquidation's `request_id`, a
/// funding's `funding_id`; 0 for marks and fee tiers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskCommand {
    /// Credit `amount` minor units of `asset`. `request_id` is the idempotency key: it must be
    /// above every request id the account used before (deposits and withdrawals share the
    /// sequence), else `DuplicateRequest`.
    Deposit {
        account: AccountId,
        asset: AssetId,
        amount: u64,
        request_id: u64,
    },
    /// Debit `amount` minor units of `asset` if the account has that much available (minus any
    /// unsettled losses on perpetuals settled in it), else `InsufficientBalance`. Same
    /// idempotency rule as `Deposit`.
    Withdraw {
        account: AccountId,
        asset: AssetId,
        amount: u64,
        request_id: u64,
    },
    /// Put an account into a fee tier (`tier < RiskConfig::fee_tiers`).
    SetFeeTier { account: AccountId, tier: u8 },
    /// A perpetual's mark price: every open position is settled to it (variation margin) and
    /// every account holding one is checked against maintenance margin.
    SetMarkPrice {
        instrument: InstrumentId,
        price: PriceTicks,
    },
    /// Funding at the current mark: each position pays `size * mark * rate_ppm / 10^6` (in
    /// value units; positive rate: longs pay shorts). `|rate_ppm| <= 10^6`. `funding_id` is
    /// the idempotency key: above every funding id applied to the perpetual before (e.g. the
    /// funding interval's start in seconds), else `DuplicateRequest`, so a funding re-sent
    /// after a failover is never paid twice.
    ApplyFunding {
        instrument: InstrumentId,
        rate_ppm: i64,
        funding_id: u64,
    },
    /// Liquidate an account's position on a perpetual: cancel all its orders, settle the
    /// instrument at its mark, move the position to the liquidation account at the mark, cover
    /// a deficit it leaves from the fee (insurance) account, and have the liquidation account
    /// send an IOC order `cl_ord_id` at limit `price` to close what it took over. When to
    /// liquidate is decided outside the engine. `request_id` is the account's idempotency key
    /// of `Deposit` (one sequence for deposits, withdrawals and liquidations): a liquidation
    /// re-sent after a failover is refused `DuplicateRequest` instead of taking over a position
    /// the account opened since; a refused liquidation does not use up its id.
    Liquidate {
        account: AccountId,
        instrument: InstrumentId,
        cl_ord_id: ClientOrderId,
        price: PriceTicks,
        request_id: u64,
    },
}

/// Why a balance changed other than by a trade (trades are described by `Fill` plus
/// [`RiskEvent::Fees`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BalanceReason {
    Deposit = 1,
    Withdrawal = 2,
    /// Mark-to-market settlement of a perpetual position.
    VariationMargin = 3,
    Funding = 4,
    /// A bankrupt account's deficit, paid by the fee (insurance) account.
    InsuranceCover = 5,
    /// Rounding remainders of settlement and funding, credited to the fee account.
    Remainder = 6,
}

/// Events of the risk stage, delivered through [`EventSink::emit_risk`] in order with the
/// matching events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskEvent {
    /// A balance changed by `delta` for `reason`; `available` and `held` are the new values.
    Balance {
        account: AccountId,
        asset: AssetId,
        reason: BalanceReason,
        delta: i64,
        available: i64,
        held: i64,
    },
    /// The fees of the `Fill` just emitted, in `asset` (spot: quote; perpetual: settle);
    /// negative: a rebate. The fee account received `maker_fee + taker_fee` plus any rounding
    /// remainder of the notional.
    Fees {
        instrument: InstrumentId,
        trade_id: TradeId,
        asset: AssetId,
        maker_fee: i64,
        taker_fee: i64,
    },
    FeeTier {
        account: AccountId,
        tier: u8,
    },
    MarkPrice {
        instrument: InstrumentId,
        price: PriceTicks,
    },
    Funding {
        instrument: InstrumentId,
        rate_ppm: i64,
        mark: PriceTicks,
    },
    /// The account's equity in `asset` fell below its maintenance margin (emitted when it
    /// becomes flagged).
    MarginCall {
        account: AccountId,
        asset: AssetId,
        equity: i64,
        maintenance: i64,
    },
    /// A flagged account is back at or above maintenance margin.
    MarginRestored {
        account: AccountId,
        asset: AssetId,
    },
    /// `size` lots of the account's position moved to the liquidation account at `price`.
    Liquidated {
        account: AccountId,
        instrument: InstrumentId,
        size: i64,
        price: PriceTicks,
    },
}

/// One account's balance of one asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BalanceView {
    /// Free to hold for orders or withdraw; negative only for a perpetual's settle asset after
    /// losses or funding beyond it.
    pub available: i64,
    /// Held for open orders and, for settle assets, locked as position margin.
    pub held: i64,
    /// Below maintenance margin at the last check (settle assets).
    pub margin_call: bool,
}

/// One account's position on a perpetual.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PositionView {
    /// Lots, positive long.
    pub size: i64,
    /// Signed value of the position at its entry prices since the last settlement, in
    /// tick-lots (`size * mark` right after a mark-to-market).
    pub cost: i128,
    /// `cost / size` rounded toward zero (0 when flat).
    pub entry_price: PriceTicks,
    /// Initial margin locked for the position (part of the settle asset's `held`).
    pub margin: i64,
    /// Cumulative variation margin credited (negative: paid), settle minor units.
    pub realized_pnl: i64,
    /// Cumulative fees, negative when paid.
    pub fees: i64,
    /// Cumulative funding, negative when paid.
    pub funding: i64,
    /// Leaves of live plain orders on each side, counted only on perpetuals with a position
    /// limit (the rule that reads them; 0 elsewhere).
    pub open_buy: u64,
    pub open_sell: u64,
    /// Leaves of live reduce-only orders on each side.
    pub reduce_only_buy: u64,
    pub reduce_only_sell: u64,
}

/// The venue's side of one perpetual's flows: what the fee account received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VenueLedger {
    /// Rounding remainders of variation margin.
    pub pnl: i64,
    pub fees: i64,
    /// Rounding remainders of funding.
    pub funding: i64,
}

/// Either kind of input, for streams that mix them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineInput {
    Command(Command),
    Risk(RiskCommand),
}

/// Either kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineOutput {
    Event(Event),
    Risk(RiskEvent),
}

/// A sink that collects both kinds of event, in order. (A newtype, not a second `EventSink`
/// impl on `Vec`, so that `Vec::new()` sinks still infer `Vec<Event>`.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs(pub Vec<EngineOutput>);

impl EventSink for Outputs {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.0.push(EngineOutput::Event(event));
    }

    #[inline]
    fn emit_risk(&mut self, event: RiskEvent) {
        self.0.push(EngineOutput::Risk(event));
    }
}
