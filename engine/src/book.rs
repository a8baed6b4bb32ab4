//! One instrument's book: its spec, trading status, reference price and band, and two ladders.
//! Also the price and quantity checks shared by new orders and replaces.

use crate::config::ladder_levels;
use crate::event::RejectReason;
use crate::instrument::InstrumentSpec;
use crate::ladder::Ladder;
use crate::slab::NIL;
use crate::types::*;

#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub spec: InstrumentSpec,
    pub halted: bool,
    pub ref_price: PriceTicks,
    pub band_bps: u32,
    pub bids: Ladder,
    pub asks: Ladder,
    /// The last trade price and the mark price the triggers watch (0: none yet).
    pub last: PriceTicks,
    pub mark: PriceTicks,
    /// Roots of the trigger lists (`ext::trigger_list`: last rises, last falls, mark rises,
    /// mark falls).
    pub trg_root: [u32; 4],
    /// The trigger price of the first last-price trigger of each direction (`i64::MAX` /
    /// `i64::MIN`: none): a trade at `>= rise_at` or `<= fall_at` fires something. These two
    /// compares are all a trade costs when no trigger is near.
    pub rise_at: PriceTicks,
    pub fall_at: PriceTicks,
    /// The range of trade prices not yet evaluated against the triggers (`lo > hi`: none).
    pub lo: PriceTicks,
    pub hi: PriceTicks,
}

impl Book {
    /// A book for a validated spec (its ladder size is within the configured limits).
    pub(crate) fn new(spec: InstrumentSpec) -> Book {
        let levels = ladder_levels(&spec) as usize;
        Book {
            spec,
            halted: false,
            ref_price: 0,
            band_bps: 0,
            bids: Ladder::new(levels, true),
            asks: Ladder::new(levels, false),
            last: 0,
            mark: 0,
            trg_root: [NIL; 4],
            rise_at: i64::MAX,
            fall_at: i64::MIN,
            lo: i64::MAX,
            hi: i64::MIN,
        }
    }

    /// Records the trades of one match (prices `lo..=hi`, the last at `last`); returns whether
    /// a last-price trigger may fire (the range is then kept for the trigger pass).
    #[inline]
    pub(crate) fn note_trades(&mut self, lo: PriceTicks, hi: PriceTicks, last: PriceTicks) -> bool {
        self.last = last;
        if hi >= self.rise_at || lo <= self.fall_at {
            self.lo = self.lo.min(lo);
            self.hi = self.hi.max(hi);
            return true;
        }
        false
    }

    #[inline]
    pub(crate) fn id(&self) -> InstrumentId {
        self.spec.id
    }

    /// Ladder index of a price already checked to be within `[min_price, max_price]`.
    #[inline]
    pub(crate) fn index_of(&self, price: PriceTicks) -> u32 {
        price.wrapping_sub(self.spec.min_price) as u32
    }

    /// Price of a ladder index.
    #[inline]
    pub(crate) fn price_of(&self, idx: u32) -> PriceTicks {
        self.spec.min_price.wrapping_add(i64::from(idx))
    }

    #[inline]
    pub(crate) fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub(crate) fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Would an order of `side` at ladder index `idx` meet a resting order of the other side?
    #[inline]
    pub(crate) fn crosses(&self, side: Side, idx: u32) -> bool {
        match side {
            Side::Buy => self.asks.best != NIL && self.asks.best <= idx,
            Side::Sell => self.bids.best != NIL && self.bids.best >= idx,
        }
    }

    /// Step 4 of new-order validation: range, then band.
    #[inline]
    pub(crate) fn check_price(&self, price: PriceTicks) -> Result<(), RejectReason> {
        if price <= 0 || price < self.spec.min_price || price > self.spec.max_price {
            return Err(RejectReason::InvalidPrice);
        }
        if self.band_bps > 0 {
            let reference = i128::from(self.ref_price);
            let width = reference * i128::from(self.band_bps) / 10_000;
            let p = i128::from(price);
            if p < reference - width || p > reference + width {
                return Err(RejectReason::PriceOutsideBand);
            }
        }
        Ok(())
    }

    /// Step 5 of new-order validation: quantity range, then notional (price already positive).
    #[inline]
    pub(crate) fn check_qty(&self, price: PriceTicks, qty: QtyLots) -> Result<(), RejectReason> {
        if qty == 0 || qty < self.spec.min_qty || qty > self.spec.max_qty {
            return Err(RejectReason::InvalidQuantity);
        }
        if (price as u128) * u128::from(qty) < self.spec.min_notional {
            return Err(RejectReason::BelowMinNotional);
        }
        Ok(())
    }
}
