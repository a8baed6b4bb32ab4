//! `check_invariants`: the structural invariants of the engine's state, for tests and debug
//! builds. Costs O(max_orders + accounts + levels / 64) (plus O(levels) for ladders of at most
//! [`DENSE_CHECK_LEVELS`] levels, whose empty levels are checked one by one).

use crate::book::Book;
use crate::engine::Engine;
use crate::ladder::Ladder;
use crate::slab::NIL;

/// Ladders up to this many levels also have every empty level checked.
pub const DENSE_CHECK_LEVELS: usize = 1 << 16;

impl Engine {
    /// Checks that the book is never crossed, that every level's aggregates equal the sum of
    /// its orders and its bitmap bit says it is non-empty, that the cached best levels are the
    /// best, that every live order is on exactly its level and indexed by its client id and its
    /// account's list (ascending order id), and that free slots plus live orders make up the
    /// slab's capacity with the slots never used.
    pub fn check_invariants(&self) -> Result<(), String> {
        let capacity = self.store.slab.capacity() as usize;
        let mut visited = vec![false; capacity];
        let mut on_books = 0usize;
        for (bi, book) in self.books.iter().enumerate() {
            for ladder in [&book.bids, &book.asks] {
                on_books += self.check_ladder(bi, book, ladder, &mut visited)?;
            }
            if book.bids.best != NIL && book.asks.best != NIL && book.bids.best >= book.asks.best {
                return Err(format!("instrument {}: book crossed", book.id()));
            }
        }
        on_books += self.check_order_types(&mut visited)?;
        let used = self.store.slab.used as usize;
        if on_books != used {
            return Err(format!("{on_books} orders on books, {used} slots used"));
        }
        self.check_slab(&visited)?;
        self.check_index(&visited)?;
        self.check_accounts()?;
        if self.risk.on() {
            self.check_risk()?;
        }
        Ok(())
    }

    fn check_ladder(
        &self,
        bi: usize,
        book: &Book,
        ladder: &Ladder,
        visited: &mut [bool],
    ) -> Result<usize, String> {
        let id = book.id();
        let orders = &self.store.slab.orders;
        ladder.bitmap.check()?;
        if ladder.bitmap.bits() != ladder.levels.len() {
            return Err(format!(
                "instrument {id}: bitmap size disagrees with ladder"
            ));
        }
        let first = ladder.bitmap.next_at_or_after(0);
        let last = ladder
            .levels
            .len()
            .checked_sub(1)
            .and_then(|end| ladder.bitmap.prev_at_or_before(end as u32));
        let best = if ladder.is_bid { last } else { first }.unwrap_or(NIL);
        if ladder.best != best {
            return Err(format!(
                "instrument {id}: cached best {} but best is {best}",
                ladder.best
            ));
        }
        let mut total = 0usize;
        let mut idx = first;
        while let Some(i) = idx {
            let level = &ladder.levels[i as usize];
            let price = book.price_of(i);
            let (mut count, mut qty, mut prev, mut slot) = (0u32, 0u64, NIL, level.head);
            while slot != NIL {
                let o = orders
                    .get(slot as usize)
                    .ok_or_else(|| format!("instrument {id}: slot {slot} out of range"))?;
                if std::mem::replace(&mut visited[slot as usize], true) {
                    return Err(format!("instrument {id}: slot {slot} listed twice"));
                }
                if o.prev != prev || o.leaves == 0 || o.price != price || o.book != bi as u32 {
                    return Err(format!("instrument {id}: bad order {o:?} at price {price}"));
                }
                if (o.side == crate::types::Side::Buy) != ladder.is_bid {
                    return Err(format!(
                        "instrument {id}: order {} on the wrong side",
                        o.order_id
                    ));
                }
                if o.order_id == 0 || o.order_id >= self.next_order_id {
                    return Err(format!(
                        "instrument {id}: order id {} not issued",
                        o.order_id
                    ));
                }
                count += 1;
                qty = qty.wrapping_add(o.leaves);
                prev = slot;
                slot = o.next;
            }
            if count == 0 || qty != level.qty || level.tail != prev {
                return Err(format!(
                    "instrument {id}: level {price} aggregates {level:?}, orders sum {count}/{qty}"
                ));
            }
            total += count as usize;
            idx = ladder.bitmap.next_at_or_after(i + 1);
        }
        if ladder.levels.len() <= DENSE_CHECK_LEVELS {
            for (i, level) in ladder.levels.iter().enumerate() {
                let empty = level.head == NIL;
                if empty == ladder.bitmap.get(i as u32)
                    || (empty && (level.head != NIL || level.tail != NIL || level.qty != 0))
                {
                    return Err(format!("instrument {id}: level {i} is {level:?}"));
                }
            }
        }
        Ok(total)
    }

    /// The order-type structures: each trigger list holds exactly the pending orders of its
    /// book, source and direction in key order (their trigger price valid), the cached first
    /// trigger prices are right, the expiry set holds exactly the GTD orders in key order with
    /// the cached first expiry, icebergs have a shown slice no larger than their display
    /// quantity, and OCO legs point at each other. Returns the number of pending orders.
    fn check_order_types(&self, visited: &mut [bool]) -> Result<usize, String> {
        use crate::ext::*;
        let st = &self.store;
        let mut pending = 0usize;
        for (bi, book) in self.books.iter().enumerate() {
            for list in 0..4 {
                let slots = in_order::<true>(&st.ext, book.trg_root[list]);
                let mut prev: Option<(u64, u64)> = None;
                for &s in &slots {
                    let o = &st.slab.orders[s as usize];
                    let e = &st.ext[s as usize];
                    if o.leaves == 0 || o.ext & EXT_PENDING == 0 || o.book as usize != bi {
                        return Err(format!("trigger list {list} of book {bi}: slot {s} {o:?}"));
                    }
                    if trigger_list(e.source, e.direction) != list
                        || e.trg_key != trigger_key(e.direction, e.trigger_price)
                        || e.order_id != o.order_id
                    {
                        return Err(format!("trigger list {list}: bad entry {e:?}"));
                    }
                    let key = (e.trg_key, e.order_id);
                    if prev.is_some_and(|p| p >= key) {
                        return Err(format!("trigger list {list} out of order"));
                    }
                    prev = Some(key);
                    if std::mem::replace(&mut visited[s as usize], true) {
                        return Err(format!("slot {s} pending and elsewhere"));
                    }
                    pending += 1;
                }
                if list < 2 {
                    let cached = if list == 0 {
                        book.rise_at
                    } else {
                        book.fall_at
                    };
                    let want = slots
                        .first()
                        .map_or(if list == 0 { i64::MAX } else { i64::MIN }, |&s| {
                            st.ext[s as usize].trigger_price
                        });
                    if cached != want {
                        return Err(format!("book {bi}: cached trigger {cached}, first {want}"));
                    }
                }
            }
            if book.lo <= book.hi {
                return Err(format!("book {bi}: trade range left unevaluated"));
            }
        }
        let exp = in_order::<false>(&st.ext, st.exp_root);
        let mut prev: Option<(u64, u64)> = None;
        for &s in &exp {
            let o = &st.slab.orders[s as usize];
            let e = &st.ext[s as usize];
            if o.leaves == 0 || o.ext & EXT_GTD == 0 || e.order_id != o.order_id {
                return Err(format!("expiry set: slot {s} {o:?}"));
            }
            let key = (e.exp_key, e.order_id);
            if prev.is_some_and(|p| p >= key) {
                return Err("expiry set out of order".into());
            }
            prev = Some(key);
        }
        let want = exp
            .first()
            .map_or(u64::MAX, |&s| st.ext[s as usize].exp_key);
        if st.next_expiry != want {
            return Err(format!("next expiry {}, first {want}", st.next_expiry));
        }
        let mut gtd = 0;
        for (i, o) in st.slab.orders.iter().enumerate() {
            if o.leaves == 0 {
                continue;
            }
            let e = &st.ext[i];
            if o.ext & EXT_GTD != 0 {
                gtd += 1;
            }
            if o.ext & EXT_FIRING != 0 {
                return Err(format!("slot {i} left firing"));
            }
            if o.ext & EXT_ICEBERG != 0 && (o.leaves > e.display || o.ext & EXT_PENDING != 0) {
                return Err(format!(
                    "iceberg slot {i}: shows {} of display {}",
                    o.leaves, e.display
                ));
            }
            if o.ext & EXT_OCO != 0 {
                let sib = e.oco as usize;
                let other = st.slab.orders.get(sib).ok_or("oco out of range")?;
                if other.leaves == 0
                    || other.ext & EXT_OCO == 0
                    || st.ext[sib].oco as usize != i
                    || other.book != o.book
                    || other.account != o.account
                {
                    return Err(format!("oco slot {i}: bad pair"));
                }
            }
        }
        if gtd != exp.len() {
            return Err(format!("{gtd} GTD orders, {} in the expiry set", exp.len()));
        }
        Ok(pending)
    }

    fn check_slab(&self, visited: &[bool]) -> Result<(), String> {
        let slab = &self.store.slab;
        let capacity = slab.capacity() as usize;
        let mut free = 0usize;
        let mut slot = slab.free_head;
        while slot != NIL {
            let o = slab
                .orders
                .get(slot as usize)
                .ok_or_else(|| format!("free slot {slot} out of range"))?;
            if visited[slot as usize] || o.leaves != 0 {
                return Err(format!("free slot {slot} is live"));
            }
            free += 1;
            if free > capacity {
                return Err("free list has a cycle".into());
            }
            slot = o.next;
        }
        let never_used = capacity - slab.orders.len();
        if free + slab.used as usize + never_used != capacity {
            return Err(format!(
                "{free} free + {} used + {never_used} never used != capacity {capacity}",
                slab.used
            ));
        }
        if self.store.ext.len() != slab.orders.len() {
            return Err(format!(
                "{} order-type entries for {} slots used",
                self.store.ext.len(),
                slab.orders.len()
            ));
        }
        for (i, o) in slab.orders.iter().enumerate() {
            if (o.leaves != 0) != visited[i] {
                return Err(format!("slot {i} live but on no level, or the reverse"));
            }
        }
        Ok(())
    }

    fn check_index(&self, visited: &[bool]) -> Result<(), String> {
        let used = self.store.slab.used as usize;
        if self.store.by_client.len() != used {
            return Err(format!(
                "{} client ids indexed, {used} live orders",
                self.store.by_client.len()
            ));
        }
        self.store.by_client.check(&self.store.slab.orders, visited)
    }

    fn check_accounts(&self) -> Result<(), String> {
        let orders = &self.store.slab.orders;
        let mut total = 0usize;
        for (account, &head) in self.store.acct_head.iter().enumerate() {
            let (mut prev, mut slot, mut last_id) = (NIL, head, 0u64);
            while slot != NIL {
                let o = orders
                    .get(slot as usize)
                    .ok_or_else(|| format!("account {account}: slot {slot} out of range"))?;
                if o.account as usize != account
                    || o.acct_prev != prev
                    || o.leaves == 0
                    || o.order_id <= last_id
                {
                    return Err(format!("account {account}: bad list entry {o:?}"));
                }
                total += 1;
                if total > orders.len() {
                    return Err(format!("account {account}: list has a cycle"));
                }
                last_id = o.order_id;
                prev = slot;
                slot = o.acct_next;
            }
            if self.store.acct_tail[account] != prev {
                return Err(format!("account {account}: wrong tail"));
            }
        }
        if total != self.store.slab.used as usize {
            return Err(format!(
                "{total} orders in account lists, {} live",
                self.store.slab.used
            ));
        }
        Ok(())
    }
}
