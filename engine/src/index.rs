//! The client-id index: `(account, cl_ord_id) -> slot` for every live order.
//!
//! An open-addressing hash table with linear probing and backward-shift deletion (so no
//! tombstones). Each bucket is one `u64`: the order's slab slot in the low half and the high 32
//! bits of its key's hash in the upper half. Keys are not stored: a candidate whose hash bits
//! match is confirmed against the order in the slab, which a hit reads next anyway.
//!
//! Memory for the worst case, `next_power_of_two(2 * max_orders)` buckets (and a scratch table
//! of `max_orders` words for rehashing), is allocated and faulted in at construction, but only
//! a power-of-two prefix of it is in use (and written: the rest keeps the kernel's zeros until a
//! doubling takes it): it starts at [`INITIAL_BUCKETS`] and doubles (a rehash
//! within the pre-allocated memory, no allocation) whenever the live orders would pass half of
//! it. So the load never passes 1/2, and the buckets in use track the high-water mark of live
//! orders rather than `max_orders`: a small live set stays in a few cache lines and pages even
//! with a large `max_orders`. A doubling rehashes every entry once (O(live orders)); it happens
//! only when the live count reaches a new power of two, never in a steady state.
//!
//! Why not a general-purpose map: an `FxHashMap<(u32, u64), u32>` pre-sized for `max_orders`
//! (so that it never allocates) spreads even a few live keys over a table of 25 bytes a bucket
//! sized for the worst case; with `max_orders = 2^20` and ~1,000 live orders a replace took
//! about three times as long. The index is probed, never iterated for output, so its layout
//! cannot reach events or the state hash.

use crate::memory::Table;
use crate::slab::{Order, NIL};
use crate::types::*;

const EMPTY: u64 = NIL as u64;

/// Buckets in use at first (32 KiB).
pub(crate) const INITIAL_BUCKETS: usize = 4_096;

#[derive(Clone, Debug)]
pub(crate) struct ClientIndex {
    /// All the memory the index may use; `buckets[..=mask]` is the table in use, the rest is
    /// never written (0) until a doubling takes it in and fills it with `EMPTY`.
    buckets: Table<u64>,
    /// Holds the entries during a doubling (`max_orders` words, faulted in at construction
    /// like the buckets, so that the order that triggers a doubling faults in no page).
    scratch: Table<u64>,
    /// Buckets in use minus 1 (a power of two minus 1).
    mask: usize,
    /// `64 - k` for `2^k` buckets in use: the bucket of a hash is its top `k` bits.
    shift: u32,
    len: usize,
}

/// A 64-bit hash of a client key (multiply-xorshift; deterministic, no seed).
#[inline]
fn hash(account: AccountId, cl_ord_id: ClientOrderId) -> u64 {
    let mut h = cl_ord_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(account);
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 29)
}

#[inline]
fn slot_of(bucket: u64) -> u32 {
    bucket as u32
}

impl ClientIndex {
    /// An empty index for up to `max_orders` keys.
    pub(crate) fn new(max_orders: u32) -> ClientIndex {
        let buckets = (2 * max_orders as usize).next_power_of_two().max(2);
        let in_use = buckets.min(INITIAL_BUCKETS);
        let mut table = Table::zeroed(buckets);
        table[..in_use].fill(EMPTY);
        ClientIndex {
            buckets: table,
            scratch: Table::zeroed((max_orders as usize).max(1)),
            mask: in_use - 1,
            shift: 64 - in_use.trailing_zeros(),
            len: 0,
        }
    }

    /// Doubles the buckets in use, within the pre-allocated memory, and rehashes.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let in_use = self.mask + 1;
        let doubled = 2 * in_use;
        if doubled > self.buckets.len() {
            return;
        }
        let mut n = 0;
        for &b in &self.buckets[..in_use] {
            if b != EMPTY && n < self.scratch.len() {
                self.scratch[n] = b;
                n += 1;
            }
        }
        self.buckets[..doubled].fill(EMPTY);
        self.mask = doubled - 1;
        self.shift -= 1;
        for k in 0..n {
            let b = self.scratch[k];
            self.place(b);
        }
    }

    /// Puts an entry into the first free bucket from its home.
    #[inline]
    fn place(&mut self, b: u64) {
        let mut i = self.home(b);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = b;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, h: u64) -> usize {
        (h >> self.shift) as usize
    }

    /// The bucket holding the key, if present (valid until the index next changes).
    #[inline]
    pub(crate) fn position(
        &self,
        orders: &[Order],
        account: AccountId,
        cl_ord_id: ClientOrderId,
    ) -> Option<usize> {
        let h = hash(account, cl_ord_id);
        let tag = h & !EMPTY;
        let mut i = self.home(h);
        loop {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if b & !EMPTY == tag {
                let o = &orders[slot_of(b) as usize];
                if o.cl_ord_id == cl_ord_id && o.account == account {
                    return Some(i);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The home bucket of a key, for a prefetch (a hint: the table may grow before it is used).
    #[inline]
    pub(crate) fn home_bucket(&self, account: AccountId, cl_ord_id: ClientOrderId) -> &u64 {
        &self.buckets[self.home(hash(account, cl_ord_id))]
    }

    /// The slot of the first bucket from the key's home whose hash bits match (`NIL`: none),
    /// not confirmed against the slab: a guess for a prefetch, which may name another order.
    #[inline]
    pub(crate) fn guess(&self, account: AccountId, cl_ord_id: ClientOrderId) -> u32 {
        let h = hash(account, cl_ord_id);
        let tag = h & !EMPTY;
        let mut i = self.home(h);
        loop {
            let b = self.buckets[i];
            if b == EMPTY {
                return NIL;
            }
            if b & !EMPTY == tag {
                return slot_of(b);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The slot in a bucket `position` returned.
    #[inline]
    pub(crate) fn slot_at(&self, pos: usize) -> u32 {
        slot_of(self.buckets[pos])
    }

    /// The slot of the live order with this key.
    #[inline]
    pub(crate) fn find(
        &self,
        orders: &[Order],
        account: AccountId,
        cl_ord_id: ClientOrderId,
    ) -> Option<u32> {
        self.position(orders, account, cl_ord_id)
            .map(|i| self.slot_at(i))
    }

    /// Adds a key that is not present. At most `max_orders` keys are ever present, so a free
    /// bucket always exists.
    #[inline]
    pub(crate) fn insert(&mut self, account: AccountId, cl_ord_id: ClientOrderId, slot: u32) {
        if 2 * (self.len + 1) > self.mask + 1 {
            self.grow();
        }
        let h = hash(account, cl_ord_id);
        self.place((h & !EMPTY) | u64::from(slot));
        self.len += 1;
    }

    /// Removes the entry in bucket `pos` (from `position`, with no change since), shifting
    /// back the entries after it that may move.
    #[inline]
    pub(crate) fn remove_at(&mut self, pos: usize) {
        self.len -= 1;
        self.buckets[pos] = EMPTY;
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b == EMPTY {
                return;
            }
            // The entry at `j` may move back into the hole unless its home lies after the hole.
            let home = self.home(b);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.buckets[hole] = b;
                self.buckets[j] = EMPTY;
                hole = j;
            }
        }
    }

    /// Removes a key if present (the order it names must still be in the slab under it).
    #[inline]
    pub(crate) fn remove(
        &mut self,
        orders: &[Order],
        account: AccountId,
        cl_ord_id: ClientOrderId,
    ) {
        if let Some(pos) = self.position(orders, account, cl_ord_id) {
            self.remove_at(pos);
        }
    }

    /// Checks that every entry names a live order whose key hashes to it, is reachable from its
    /// home bucket, and that each live order is found. `live` says which slots are live.
    pub(crate) fn check(&self, orders: &[Order], live: &[bool]) -> Result<(), String> {
        if self.buckets[self.mask + 1..].iter().any(|&b| b != 0) {
            return Err("client index has buckets written past the ones in use".into());
        }
        if 2 * self.len > self.mask + 1 {
            return Err(format!(
                "client index over half full: {} of {}",
                self.len,
                self.mask + 1
            ));
        }
        let mut count = 0;
        for (i, &b) in self.buckets[..=self.mask].iter().enumerate() {
            if b == EMPTY {
                continue;
            }
            count += 1;
            let slot = slot_of(b);
            if !live.get(slot as usize).copied().unwrap_or(false) {
                return Err(format!("client index bucket {i} names dead slot {slot}"));
            }
            let o = &orders[slot as usize];
            let h = hash(o.account, o.cl_ord_id);
            if h & !EMPTY != b & !EMPTY {
                return Err(format!(
                    "client index bucket {i}: hash of slot {slot} disagrees"
                ));
            }
            let mut k = self.home(h);
            while k != i {
                if self.buckets[k] == EMPTY {
                    return Err(format!("client index bucket {i} unreachable from its home"));
                }
                k = (k + 1) & self.mask;
            }
        }
        if count != self.len {
            return Err(format!(
                "client index holds {count} entries, len {}",
                self.len
            ));
        }
        for (slot, o) in orders.iter().enumerate() {
            if live[slot] && self.find(orders, o.account, o.cl_ord_id) != Some(slot as u32) {
                return Err(format!("live slot {slot} not found in the client index"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Minor page faults of this thread so far.
    fn minor_faults() -> i64 {
        // SAFETY: `getrusage` writes the struct it is given.
        unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut u);
            u.ru_minflt
        }
    }

    /// The deep-book rule for the index: the inserts that double it (up to its largest size)
    /// fault in no page; its buckets and its rehash scratch were faulted in when it was built.
    /// (The scratch was a `Vec` with capacity only: the first doubling of each size faulted in
    /// its pages inside an order.)
    #[test]
    fn doubling_faults_in_no_page() {
        let max_orders = 1u32 << 18;
        let mut index = ClientIndex::new(max_orders);
        let before = minor_faults();
        for k in 0..u64::from(max_orders) {
            index.insert(1, k, k as u32);
        }
        let faults = minor_faults() - before;
        assert_eq!(index.len(), max_orders as usize);
        assert_eq!(
            index.mask + 1,
            2 * max_orders as usize,
            "doubled to its largest size"
        );
        assert!(
            faults < 8,
            "{faults} page faults while {max_orders} inserts doubled the index"
        );
    }

    /// Random inserts, renames and removes on a small, crowded table against a std map.
    #[test]
    fn agrees_with_a_std_map() {
        for capacity in [1u32, 2, 3, 8, 100, 6_000] {
            let mut orders = vec![
                Order {
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
                capacity as usize
            ];
            let mut index = ClientIndex::new(capacity);
            let mut reference: HashMap<(u32, u64), u32> = HashMap::new();
            let mut free: Vec<u32> = (0..capacity).rev().collect();
            let mut x: u64 = 0x1234_5678_9abc_def1 ^ u64::from(capacity);
            let keys = u64::from(capacity) * 2 / 3 + 40;
            for _ in 0..60_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = ((x >> 8) as u32 % 3, (x >> 16) % keys);
                let found = index.find(&orders, key.0, key.1);
                assert_eq!(found, reference.get(&key).copied(), "{key:?}");
                match found {
                    Some(slot) if x & 1 == 0 => {
                        index.remove(&orders, key.0, key.1);
                        reference.remove(&key);
                        free.push(slot);
                    }
                    Some(_) => {}
                    None => {
                        if let Some(slot) = free.pop() {
                            orders[slot as usize].account = key.0;
                            orders[slot as usize].cl_ord_id = key.1;
                            index.insert(key.0, key.1, slot);
                            reference.insert(key, slot);
                        }
                    }
                }
                assert_eq!(index.len(), reference.len());
            }
            if capacity == 6_000 {
                assert!(index.mask + 1 > INITIAL_BUCKETS, "the table grew");
            }
            let mut live = vec![false; capacity as usize];
            for &slot in reference.values() {
                live[slot as usize] = true;
            }
            index.check(&orders, &live).unwrap();
        }
    }
}
