//! One side of a book: a dense ladder of price levels over `[min_price, max_price]`, each an
//! intrusive FIFO of slab slots, a bitmap of non-empty levels and the cached best level.
//!
//! Levels are addressed by index `price - min_price`. For bids the best level is the highest
//! non-empty index, for asks the lowest.

use crate::bitmap::LevelBitmap;
use crate::memory::Table;
use crate::slab::{Order, NIL};

/// One price level: FIFO head and tail and the total leaves quantity of its orders (kept with
/// wrapping arithmetic, so it is exact whenever the true total fits in a `u64`). 16 bytes,
/// aligned: four levels to a cache line and none straddling two. The level is empty iff `head`
/// is `NIL`; its order count, which only views and the state hash need, is counted from the
/// FIFO ([`Ladder::level_orders`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
pub(crate) struct LevelSlot {
    pub qty: u64,
    pub head: u32,
    pub tail: u32,
}

const _: () = assert!(std::mem::size_of::<LevelSlot>() == 16);

const EMPTY: LevelSlot = LevelSlot {
    qty: 0,
    head: NIL,
    tail: NIL,
};

#[derive(Clone, Debug)]
pub(crate) struct Ladder {
    pub levels: Table<LevelSlot>,
    pub bitmap: LevelBitmap,
    /// Index of the best non-empty level, or `NIL`.
    pub best: u32,
    pub is_bid: bool,
}

impl Ladder {
    pub(crate) fn new(levels: usize, is_bid: bool) -> Ladder {
        Ladder {
            levels: Table::new(levels, EMPTY),
            bitmap: LevelBitmap::new(levels),
            best: NIL,
            is_bid,
        }
    }

    /// Is level `a` better than level `b` on this side?
    #[inline]
    pub(crate) fn better(&self, a: u32, b: u32) -> bool {
        if self.is_bid {
            a > b
        } else {
            a < b
        }
    }

    /// The next non-empty level worse than `idx`, or `NIL`.
    #[inline]
    pub(crate) fn next_worse(&self, idx: u32) -> u32 {
        let found = if self.is_bid {
            match idx.checked_sub(1) {
                Some(i) => self.bitmap.prev_at_or_before(i),
                None => None,
            }
        } else {
            self.bitmap.next_at_or_after(idx + 1)
        };
        found.unwrap_or(NIL)
    }

    /// Appends `slot` (whose `leaves` is already set) at the back of level `idx`.
    #[inline]
    pub(crate) fn push_back(&mut self, orders: &mut [Order], slot: u32, idx: u32) {
        let level = &mut self.levels[idx as usize];
        let tail = level.tail;
        {
            let o = &mut orders[slot as usize];
            o.prev = tail;
            o.next = NIL;
            level.qty = level.qty.wrapping_add(o.leaves);
        }
        level.tail = slot;
        if tail == NIL {
            level.head = slot;
            self.bitmap.set(idx);
            if self.best == NIL || self.better(idx, self.best) {
                self.best = idx;
            }
        } else {
            orders[tail as usize].next = slot;
        }
    }

    /// Removes `slot` (resting on level `idx` with its current `leaves`) from the level.
    #[inline]
    pub(crate) fn unlink(&mut self, orders: &mut [Order], slot: u32, idx: u32) {
        let (prev, next, leaves) = {
            let o = &orders[slot as usize];
            (o.prev, o.next, o.leaves)
        };
        let level = &mut self.levels[idx as usize];
        level.qty = level.qty.wrapping_sub(leaves);
        if prev == NIL {
            level.head = next;
        } else {
            orders[prev as usize].next = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            orders[next as usize].prev = prev;
        }
        if prev == NIL && next == NIL {
            self.level_emptied(idx);
        }
    }

    /// Removes the head of level `idx`, which has already been reduced to 0 leaves by a fill.
    #[inline]
    pub(crate) fn pop_filled_head(&mut self, orders: &mut [Order], idx: u32) {
        let level = &mut self.levels[idx as usize];
        let slot = level.head;
        let next = orders[slot as usize].next;
        level.head = next;
        if next == NIL {
            level.tail = NIL;
            self.level_emptied(idx);
        } else {
            orders[next as usize].prev = NIL;
        }
    }

    #[inline]
    fn level_emptied(&mut self, idx: u32) {
        self.bitmap.clear(idx);
        if self.best == idx {
            self.best = if self.is_bid {
                self.bitmap.prev_at_or_before(idx)
            } else {
                self.bitmap.next_at_or_after(idx)
            }
            .unwrap_or(NIL);
        }
    }

    /// Lowers the aggregate of level `idx` by `qty` (an order on it was reduced in place).
    #[inline]
    pub(crate) fn reduce(&mut self, idx: u32, qty: u64) {
        let level = &mut self.levels[idx as usize];
        level.qty = level.qty.wrapping_sub(qty);
    }

    /// Non-empty level indexes, best first.
    pub(crate) fn iter_levels(&self) -> impl Iterator<Item = u32> + '_ {
        let mut idx = self.best;
        std::iter::from_fn(move || {
            if idx == NIL {
                return None;
            }
            let current = idx;
            idx = self.next_worse(idx);
            Some(current)
        })
    }

    /// Number of orders on level `idx` (a walk of its FIFO: for views and the state hash).
    pub(crate) fn level_orders(&self, orders: &[Order], idx: u32) -> u32 {
        self.iter_level_orders(orders, idx).count() as u32
    }

    /// Slots of level `idx` in time priority.
    pub(crate) fn iter_level_orders<'a>(
        &self,
        orders: &'a [Order],
        idx: u32,
    ) -> impl Iterator<Item = u32> + 'a {
        let mut slot = self.levels[idx as usize].head;
        std::iter::from_fn(move || {
            if slot == NIL {
                return None;
            }
            let current = slot;
            slot = orders[slot as usize].next;
            Some(current)
        })
    }
}
