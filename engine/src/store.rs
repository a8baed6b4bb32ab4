//! Where live orders are found: the slab, the `(account, cl_ord_id) -> slot` index and the
//! per-account lists (intrusive, ascending order id) that mass cancel walks.

use crate::ext::{self, Ext, EXT_GTD, EXT_OCO};
use crate::index::ClientIndex;
use crate::memory::Table;
use crate::slab::{Order, Slab, NIL};
use crate::types::*;

#[derive(Clone, Debug)]
pub(crate) struct OrderStore {
    pub slab: Slab,
    pub by_client: ClientIndex,
    /// First and last live order of each account (`NIL` when none).
    pub acct_head: Vec<u32>,
    pub acct_tail: Vec<u32>,
    /// Per slot: the crypto order types' fields (see `ext.rs`). As long as the slab's
    /// used slots (`slab.orders.len()`), each `Ext::EMPTY` when its slot is first used.
    pub ext: Table<Ext>,
    /// Root of the expiry set (GTD orders) and its first expiry (`u64::MAX`: none), which
    /// every command compares its timestamp with.
    pub exp_root: u32,
    pub next_expiry: u64,
}

impl OrderStore {
    pub(crate) fn new(max_orders: u32, max_accounts: u32) -> OrderStore {
        OrderStore {
            slab: Slab::new(max_orders),
            by_client: ClientIndex::new(max_orders),
            acct_head: vec![NIL; max_accounts as usize],
            acct_tail: vec![NIL; max_accounts as usize],
            ext: Table::with_capacity(max_orders as usize),
            exp_root: NIL,
            next_expiry: u64::MAX,
        }
    }

    /// Takes a free slot of the slab for `order` (see [`Slab::alloc`]); a slot used for the
    /// first time gets its `Ext::EMPTY`.
    #[inline]
    pub(crate) fn alloc(&mut self, order: Order) -> Option<u32> {
        let slot = self.slab.alloc(order)?;
        if slot as usize == self.ext.len() {
            self.ext.push(Ext::EMPTY);
        }
        Some(slot)
    }

    #[inline]
    pub(crate) fn find(&self, account: AccountId, cl_ord_id: ClientOrderId) -> Option<u32> {
        self.by_client.find(&self.slab.orders, account, cl_ord_id)
    }

    /// The slot of the live order with this key and its bucket in the index (valid until the
    /// index next changes).
    #[inline]
    pub(crate) fn locate(
        &self,
        account: AccountId,
        cl_ord_id: ClientOrderId,
    ) -> Option<(u32, usize)> {
        let pos = self
            .by_client
            .position(&self.slab.orders, account, cl_ord_id)?;
        Some((self.by_client.slot_at(pos), pos))
    }

    #[inline]
    pub(crate) fn contains(&self, account: AccountId, cl_ord_id: ClientOrderId) -> bool {
        self.find(account, cl_ord_id).is_some()
    }

    #[inline]
    pub(crate) fn order(&self, slot: u32) -> &Order {
        &self.slab.orders[slot as usize]
    }

    #[inline]
    pub(crate) fn order_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.slab.orders[slot as usize]
    }

    /// Makes a freshly allocated slot live: indexed by its client id and appended to its
    /// account's list (its order id is the largest yet, so the list stays sorted).
    #[inline]
    pub(crate) fn register(&mut self, slot: u32) {
        let (account, cl_ord_id) = {
            let o = &self.slab.orders[slot as usize];
            (o.account, o.cl_ord_id)
        };
        self.by_client.insert(account, cl_ord_id, slot);
        let tail = self.acct_tail[account as usize];
        {
            let o = &mut self.slab.orders[slot as usize];
            o.acct_prev = tail;
            o.acct_next = NIL;
        }
        if tail == NIL {
            self.acct_head[account as usize] = slot;
        } else {
            self.slab.orders[tail as usize].acct_next = slot;
        }
        self.acct_tail[account as usize] = slot;
    }

    /// Renames a live order's client id.
    #[inline]
    /// `pos` is the order's bucket from [`OrderStore::locate`], with no change to the index since.
    pub(crate) fn rekey(&mut self, slot: u32, pos: usize, new_cl_ord_id: ClientOrderId) {
        self.by_client.remove_at(pos);
        let o = &mut self.slab.orders[slot as usize];
        o.cl_ord_id = new_cl_ord_id;
        let account = o.account;
        self.by_client.insert(account, new_cl_ord_id, slot);
    }

    /// Forgets a registered order (already off its level) and frees its slot.
    #[inline]
    pub(crate) fn release(&mut self, slot: u32) {
        let (account, cl_ord_id) = {
            let o = &self.slab.orders[slot as usize];
            (o.account, o.cl_ord_id)
        };
        self.by_client.remove(&self.slab.orders, account, cl_ord_id);
        self.unlink_account(slot);
    }

    /// [`OrderStore::release`] for an order whose index bucket is known (from
    /// [`OrderStore::locate`], with no change to the index since).
    #[inline]
    pub(crate) fn release_at(&mut self, slot: u32, pos: usize) {
        self.by_client.remove_at(pos);
        self.unlink_account(slot);
    }

    /// Dissolves the OCO pair of `slot` (flagged `EXT_OCO`); returns the other leg's slot.
    #[cold]
    pub(crate) fn unpair(&mut self, slot: u32) -> u32 {
        let sib = self.ext[slot as usize].oco;
        self.ext[slot as usize].oco = NIL;
        self.slab.orders[slot as usize].ext &= !EXT_OCO;
        self.ext[sib as usize].oco = NIL;
        self.slab.orders[sib as usize].ext &= !EXT_OCO;
        sib
    }

    /// An order with order-type flags leaves: out of the expiry set; an OCO pair left by any
    /// path the OCO rule does not cover dissolves.
    #[cold]
    #[inline(never)]
    fn leave_ext(&mut self, slot: u32) {
        let flags = self.slab.orders[slot as usize].ext;
        if flags & EXT_GTD != 0 {
            self.remove_expiry(slot);
        }
        if flags & EXT_OCO != 0 {
            self.unpair(slot);
        }
    }

    /// Adds a live GTD order to the expiry set.
    pub(crate) fn add_expiry(&mut self, slot: u32, expire_ts_ns: u64) {
        let e = &mut self.ext[slot as usize];
        e.exp_key = expire_ts_ns;
        e.order_id = self.slab.orders[slot as usize].order_id;
        ext::insert::<false>(&mut self.ext, &mut self.exp_root, slot);
        self.slab.orders[slot as usize].ext |= EXT_GTD;
        self.next_expiry = self.next_expiry.min(expire_ts_ns);
    }

    /// Takes a GTD order out of the expiry set.
    #[cold]
    pub(crate) fn remove_expiry(&mut self, slot: u32) {
        ext::remove::<false>(&mut self.ext, &mut self.exp_root, slot);
        self.slab.orders[slot as usize].ext &= !EXT_GTD;
        let first = ext::first::<false>(&mut self.ext, self.exp_root);
        self.next_expiry = if first == NIL {
            u64::MAX
        } else {
            self.ext[first as usize].exp_key
        };
    }

    /// Takes a slot off its account's list and frees it (out of the expiry set first).
    #[inline]
    fn unlink_account(&mut self, slot: u32) {
        if self.slab.orders[slot as usize].ext != 0 {
            self.leave_ext(slot);
        }
        let (account, prev, next) = {
            let o = &self.slab.orders[slot as usize];
            (o.account, o.acct_prev, o.acct_next)
        };
        if prev == NIL {
            self.acct_head[account as usize] = next;
        } else {
            self.slab.orders[prev as usize].acct_next = next;
        }
        if next == NIL {
            self.acct_tail[account as usize] = prev;
        } else {
            self.slab.orders[next as usize].acct_prev = prev;
        }
        self.slab.free(slot);
    }
}
