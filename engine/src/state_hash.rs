//! The canonical state hash of `docs/ARCHITECTURE.md` ("State hash").

use crate::engine::Engine;
use crate::hash::StateHasher;
use crate::ladder::Ladder;
use crate::slab::Order;

impl Engine {
    /// FNV-1a 64 over `next_order_id`, `next_trade_id`, then per instrument in id order: id,
    /// halted, reference price, band, its bids and its asks (each list preceded by its length,
    /// best price first, time priority within a level; each order as `order_id, account,
    /// cl_ord_id, side, price, leaves, stp, post_only`). Every value is one little-endian u64.
    /// With risk on, the risk state follows (see `docs/ARCHITECTURE.md`, "Accounts and risk").
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.word(self.next_order_id);
        h.word(self.next_trade_id);
        let orders = &self.store.slab.orders;
        for book in &self.books {
            h.word(u64::from(book.id()));
            h.word(u64::from(book.halted));
            h.signed(book.ref_price);
            h.word(u64::from(book.band_bps));
            hash_side(&mut h, &book.bids, orders);
            hash_side(&mut h, &book.asks, orders);
        }
        if self.risk.on() {
            self.hash_risk(&mut h);
        }
        h.finish()
    }
}

fn hash_side(h: &mut StateHasher, ladder: &Ladder, orders: &[Order]) {
    let len: u64 = ladder
        .iter_levels()
        .map(|idx| u64::from(ladder.levels[idx as usize].count))
        .sum();
    h.word(len);
    for idx in ladder.iter_levels() {
        for slot in ladder.iter_level_orders(orders, idx) {
            let o = &orders[slot as usize];
            h.word(o.order_id);
            h.word(u64::from(o.account));
            h.word(o.cl_ord_id);
            h.word(o.side as u64);
            h.signed(o.price);
            h.word(o.leaves);
            h.word(o.stp as u64);
            h.word(u64::from(o.post_only));
        }
    }
}
