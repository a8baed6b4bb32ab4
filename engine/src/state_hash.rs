//! The canonical state hash of `docs/ARCHITECTURE.md` ("State hash").

use crate::engine::Engine;
use crate::ext::{in_order, Ext, EXT_OCO};
use crate::hash::StateHasher;
use crate::ladder::Ladder;
use crate::slab::Order;

impl Engine {
    /// FNV-1a 64 over `next_order_id`, `next_trade_id`, then per instrument in id order: id,
    /// halted, reference price, band, its bids and its asks (each list preceded by its length,
    /// best price first, time priority within a level; each order as `order_id, account,
    /// cl_ord_id, side, price, leaves, stp, post_only`). Every value is one little-endian u64.
    /// An order with order-type flags adds `flags, hidden, display, expiry, OCO leg's order id`.
    /// After the asks: the last and mark prices, then the pending trigger orders (count, then
    /// each list in `ext::trigger_list` order, first to fire first: the order's words as above,
    /// then `trigger_price, source, direction, kind, tif, reduce_only, close_position`).
    /// With risk on, the risk state follows (see `docs/ARCHITECTURE.md`, "Accounts and risk").
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.word(self.next_order_id);
        h.word(self.next_trade_id);
        let orders = &self.store.slab.orders;
        let ext = &self.store.ext;
        for book in &self.books {
            h.word(u64::from(book.id()));
            h.word(u64::from(book.halted));
            h.signed(book.ref_price);
            h.word(u64::from(book.band_bps));
            hash_side(&mut h, &book.bids, orders, ext);
            hash_side(&mut h, &book.asks, orders, ext);
            h.signed(book.last);
            h.signed(book.mark);
            let pending: Vec<u32> = book
                .trg_root
                .iter()
                .flat_map(|&root| in_order::<true>(ext, root))
                .collect();
            h.word(pending.len() as u64);
            for slot in pending {
                let o = &orders[slot as usize];
                let e = &ext[slot as usize];
                hash_order(&mut h, o, slot, orders, ext);
                h.signed(e.trigger_price);
                h.word(e.source as u64);
                h.word(e.direction as u64);
                h.word(e.kind as u64);
                h.word(e.tif as u64);
                h.word(u64::from(o.reduce_only));
                h.word(u64::from(e.close_position));
            }
        }
        if self.risk.on() {
            self.hash_risk(&mut h);
        }
        h.finish()
    }
}

fn hash_order(h: &mut StateHasher, o: &Order, slot: u32, orders: &[Order], ext: &[Ext]) {
    h.word(o.order_id);
    h.word(u64::from(o.account));
    h.word(o.cl_ord_id);
    h.word(o.side as u64);
    h.signed(o.price);
    h.word(o.leaves);
    h.word(o.stp as u64);
    h.word(u64::from(o.post_only));
    if o.ext != 0 {
        let e = &ext[slot as usize];
        h.word(u64::from(o.ext));
        h.word(e.hidden);
        h.word(e.display);
        h.word(e.exp_key);
        h.word(if o.ext & EXT_OCO != 0 {
            orders[e.oco as usize].order_id
        } else {
            0
        });
    }
}

fn hash_side(h: &mut StateHasher, ladder: &Ladder, orders: &[Order], ext: &[Ext]) {
    let len: u64 = ladder
        .iter_levels()
        .map(|idx| u64::from(ladder.level_orders(orders, idx)))
        .sum();
    h.word(len);
    for idx in ladder.iter_levels() {
        for slot in ladder.iter_level_orders(orders, idx) {
            hash_order(h, &orders[slot as usize], slot, orders, ext);
        }
    }
}
