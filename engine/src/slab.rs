//! The order slab: every order lives in one pre-allocated slot, addressed by a `u32` index.
//!
//! Slots are taken from the free list first (released slots, a singly linked list through
//! `next`, last released first), then from the never-used slots above the high-water mark
//! (`orders.len()`), lowest first: the same slot a list of every slot in ascending order would
//! give, without writing every slot when the slab is built (its memory is only faulted in,
//! by the kernel: see `memory.rs`). A slot below the mark is live iff its `leaves` is non-zero
//! (free slots are zeroed when released), which `check_invariants` relies on; a slot above it
//! was never used.

use crate::memory::Table;
use crate::types::*;

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One order: 64 bytes, one cache line (aligned to it, so an order never straddles two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub(crate) struct Order {
    /// Quantity still open; 0 for a free slot.
    pub leaves: QtyLots,
    pub price: PriceTicks,
    pub order_id: OrderId,
    pub cl_ord_id: ClientOrderId,
    /// Previous and next order in the price level's FIFO (`next` links the free list too).
    pub prev: u32,
    pub next: u32,
    /// Previous and next live order of the same account, in ascending order id.
    pub acct_prev: u32,
    pub acct_next: u32,
    pub account: AccountId,
    /// Index of the order's book in the engine (not the instrument id).
    pub book: u32,
    pub side: Side,
    pub stp: StpMode,
    pub post_only: bool,
    /// May only reduce a perpetual position (enforced with risk on; kept either way).
    pub reduce_only: bool,
    /// Risk on: the order's hold per lot is not what a plain order at its price holds, so it
    /// is kept in the risk stage's per-slot table (reduce-only orders, the liquidation
    /// account's, a perpetual sell that crossed a higher bid on arrival). False for nearly
    /// every order, whose hold is recomputed from the per-price table instead of stored: see
    /// `Risk::hold_of`.
    pub hold_custom: bool,
    /// The crypto order types' flags (`crate::ext::EXT_*`; 0 for a plain order, which is
    /// all the hot path tests): the rest lives in the store's per-slot `ext` table.
    pub ext: u8,
}

const _: () = assert!(std::mem::size_of::<Order>() == 64);

impl Order {
    const FREE: Order = Order {
        leaves: 0,
        price: 0,
        order_id: 0,
        cl_ord_id: 0,
        prev: NIL,
        next: NIL,
        acct_prev: NIL,
        acct_next: NIL,
        account: 0,
        book: 0,
        side: Side::Buy,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
        hold_custom: false,
        ext: 0,
    };
}

#[derive(Clone, Debug)]
pub(crate) struct Slab {
    /// The slots used so far (`orders.len()`, the high-water mark), live or released; room for
    /// `capacity` in all.
    pub orders: Table<Order>,
    /// The last released slot (`NIL`: none free below the high-water mark).
    pub free_head: u32,
    /// Slots in use.
    pub used: u32,
}

impl Slab {
    pub(crate) fn new(capacity: u32) -> Slab {
        Slab {
            orders: Table::with_capacity(capacity as usize),
            free_head: NIL,
            used: 0,
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u32 {
        self.orders.capacity() as u32
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.free_head == NIL && self.orders.len() == self.orders.capacity()
    }

    /// Takes a free slot (the last released, else the lowest never used) and writes `order`
    /// into it.
    #[inline]
    pub(crate) fn alloc(&mut self, order: Order) -> Option<u32> {
        let slot = self.free_head;
        if let Some(o) = self.orders.get_mut(slot as usize) {
            self.free_head = o.next;
            *o = order;
            self.used += 1;
            return Some(slot);
        }
        let slot = self.orders.len() as u32;
        if !self.orders.push(order) {
            return None;
        }
        self.used += 1;
        Some(slot)
    }

    /// Returns a slot to the free list.
    #[inline]
    pub(crate) fn free(&mut self, slot: u32) {
        let o = &mut self.orders[slot as usize];
        *o = Order::FREE;
        o.next = self.free_head;
        self.free_head = slot;
        self.used -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: u64) -> Order {
        Order {
            leaves: 1,
            order_id: id,
            ..Order::FREE
        }
    }

    /// Slots come as from a free list of every slot in ascending order (the slab before the
    /// high-water mark): released ones first, last released first, then the lowest never
    /// used; full at the capacity, and again after a release.
    #[test]
    fn slots_come_from_the_free_list_then_the_high_water_mark() {
        let mut s = Slab::new(5);
        assert_eq!((s.capacity(), s.orders.len()), (5, 0));
        let got: Vec<u32> = (0..3).filter_map(|i| s.alloc(order(i))).collect();
        assert_eq!(got, [0, 1, 2]);
        s.free(0);
        s.free(2);
        assert_eq!(s.alloc(order(10)), Some(2));
        assert_eq!(s.alloc(order(11)), Some(0));
        assert_eq!(s.alloc(order(12)), Some(3));
        assert_eq!(s.alloc(order(13)), Some(4));
        assert!(s.is_full());
        assert_eq!(s.alloc(order(14)), None);
        assert_eq!(s.used, 5);
        s.free(1);
        assert!(!s.is_full());
        assert_eq!(
            s.orders[1],
            Order {
                next: NIL,
                ..Order::FREE
            }
        );
        assert_eq!(s.alloc(order(15)), Some(1));
        assert_eq!(s.orders[1].order_id, 15);
        assert_eq!(Slab::new(0).alloc(order(1)), None);
    }
}
