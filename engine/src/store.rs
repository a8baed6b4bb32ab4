//! Where live orders are found: the slab, the `(account, cl_ord_id) -> slot` index and the
//! per-account lists (intrusive, ascending order id) that mass cancel walks.

use crate::index::ClientIndex;
use crate::slab::{Order, Slab, NIL};
use crate::types::*;

#[derive(Clone, Debug)]
pub(crate) struct OrderStore {
    pub slab: Slab,
    pub by_client: ClientIndex,
    /// First and last live order of each account (`NIL` when none).
    pub acct_head: Vec<u32>,
    pub acct_tail: Vec<u32>,
}

impl OrderStore {
    pub(crate) fn new(max_orders: u32, max_accounts: u32) -> OrderStore {
        OrderStore {
            slab: Slab::new(max_orders),
            by_client: ClientIndex::new(max_orders),
            acct_head: vec![NIL; max_accounts as usize],
            acct_tail: vec![NIL; max_accounts as usize],
        }
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

    /// Takes a slot off its account's list and frees it.
    #[inline]
    fn unlink_account(&mut self, slot: u32) {
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
