//! Read accessors: best prices, price-level depth and the order-by-order (L3) book. Not on the
//! hot path; they may allocate.

use crate::book::Book;
use crate::engine::Engine;
use crate::ladder::Ladder;
use crate::slab::NIL;
use crate::types::*;

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Level {
    pub price: PriceTicks,
    /// Total leaves quantity of the level's orders.
    pub qty: QtyLots,
    /// Number of orders on the level.
    pub orders: u32,
}

/// One resting order, as listed by [`Engine::l3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct L3Order {
    pub order_id: OrderId,
    pub account: AccountId,
    pub cl_ord_id: ClientOrderId,
    pub side: Side,
    pub price: PriceTicks,
    pub leaves: QtyLots,
}

fn best_of(book: &Book, ladder: &Ladder) -> Option<(PriceTicks, QtyLots)> {
    (ladder.best != NIL).then(|| {
        (
            book.price_of(ladder.best),
            ladder.levels[ladder.best as usize].qty,
        )
    })
}

impl Engine {
    /// Best bid price and its total quantity; `None` for an empty side or unknown instrument.
    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        let book = self.book(instrument)?;
        best_of(book, &book.bids)
    }

    /// Best ask price and its total quantity; `None` for an empty side or unknown instrument.
    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        let book = self.book(instrument)?;
        best_of(book, &book.asks)
    }

    /// Up to `levels` non-empty price levels of one side, best first (empty for an unknown
    /// instrument).
    pub fn depth(&self, instrument: InstrumentId, side: Side, levels: usize) -> Vec<Level> {
        let Some(book) = self.book(instrument) else {
            return Vec::new();
        };
        let ladder = book.side(side);
        ladder
            .iter_levels()
            .take(levels)
            .map(|idx| {
                let l = &ladder.levels[idx as usize];
                Level {
                    price: book.price_of(idx),
                    qty: l.qty,
                    orders: ladder.level_orders(&self.store.slab.orders, idx),
                }
            })
            .collect()
    }

    /// Every resting order of an instrument: bids best price first, in time priority within a
    /// level, then asks the same way (empty for an unknown instrument).
    pub fn l3(&self, instrument: InstrumentId) -> Vec<L3Order> {
        let Some(book) = self.book(instrument) else {
            return Vec::new();
        };
        let orders = &self.store.slab.orders;
        let mut out = Vec::new();
        for ladder in [&book.bids, &book.asks] {
            for idx in ladder.iter_levels() {
                for slot in ladder.iter_level_orders(orders, idx) {
                    let o = &orders[slot as usize];
                    out.push(L3Order {
                        order_id: o.order_id,
                        account: o.account,
                        cl_ord_id: o.cl_ord_id,
                        side: o.side,
                        price: o.price,
                        leaves: o.leaves,
                    });
                }
            }
        }
        out
    }

    /// Number of live orders across all instruments: resting ones and pending trigger orders.
    pub fn live_orders(&self) -> usize {
        self.store.slab.used as usize
    }

    /// The earliest expiry of a live GTD order (`None`: none): the first command whose
    /// timestamp reaches it expires that order. The node's sequencer logs a `Tick` at it when
    /// nothing else arrives.
    #[inline]
    pub fn next_expiry_ns(&self) -> Option<u64> {
        (self.store.next_expiry != u64::MAX).then_some(self.store.next_expiry)
    }

    /// Trigger orders waiting for their trigger (live, not on any book).
    pub fn pending_triggers(&self) -> usize {
        self.books
            .iter()
            .flat_map(|b| b.trg_root)
            .map(|root| crate::ext::in_order::<true>(&self.store.ext, root).len())
            .sum()
    }
}
