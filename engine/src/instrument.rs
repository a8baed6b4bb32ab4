//! Instrument specifications.

use crate::types::*;

/// An asset (currency or coin) id, e.g. BTC, ETH, USDT.
pub type AssetId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A spot pair: trades `base` against `quote`.
    Spot { base: AssetId, quote: AssetId },
    /// A linear perpetual settled in `settle` (margin and PnL in that asset).
    LinearPerp { settle: AssetId },
}

/// Static parameters of an instrument. Prices are ticks and quantities lots; `tick_size` and
/// `lot_size` say what one tick and one lot are in the minor units of the quote and base asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentSpec {
    pub id: InstrumentId,
    pub kind: InstrumentKind,
    /// Quote-asset minor units per tick.
    pub tick_size: u64,
    /// Base-asset minor units per lot.
    pub lot_size: u64,
    /// Lowest and highest valid price in ticks. The book's price ladder spans this range, so it
    /// also sizes the ladder (see the engine's sizing rule).
    pub min_price: PriceTicks,
    pub max_price: PriceTicks,
    pub min_qty: QtyLots,
    pub max_qty: QtyLots,
    /// Minimum `price * qty` in tick-lots.
    pub min_notional: u128,
}
