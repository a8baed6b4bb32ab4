//! The order slab: every order lives in one pre-allocated slot, addressed by a `u32` index.
//!
//! Free slots form a singly linked list through `next`. A slot is live iff its `leaves` is
//! non-zero (free slots are zeroed when released), which `check_invariants` relies on.

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
    pub orders: Table<Order>,
    pub free_head: u32,
    /// Slots in use.
    pub used: u32,
}

impl Slab {
    pub(crate) fn new(capacity: u32) -> Slab {
        let orders = Table::from_fn(capacity as usize, |i| Order {
            next: if i + 1 < capacity as usize {
                i as u32 + 1
            } else {
                NIL
            },
            ..Order::FREE
        });
        Slab {
            orders,
            free_head: if capacity > 0 { 0 } else { NIL },
            used: 0,
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u32 {
        self.orders.len() as u32
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.free_head == NIL
    }

    /// Takes a free slot and writes `order` into it.
    #[inline]
    pub(crate) fn alloc(&mut self, order: Order) -> Option<u32> {
        let slot = self.free_head;
        let o = self.orders.get_mut(slot as usize)?;
        self.free_head = o.next;
        *o = order;
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
