//! The per-slot side table of the crypto order types, and the two intrusive ordered sets that
//! thread through it: the expiry set (GTD orders, by `(expire_ts_ns, order_id)`) and each
//! instrument's trigger sets (pending trigger orders, by trigger price then order id).
//!
//! A plain order never touches this table: its [`crate::slab::Order::ext`] flags are 0 and the
//! hot path tests nothing else. The sets are treaps whose nodes live in the table (no
//! allocation after construction); a node's priority is a fixed hash of its order id, so their
//! shape, like everything else, follows from the command log alone.

use crate::slab::NIL;
use crate::types::*;

/// [`crate::slab::Order::ext`] flag: a pending trigger order (in a trigger set, not on a ladder).
pub(crate) const EXT_PENDING: u8 = 1;
/// A GTD order (in the expiry set).
pub(crate) const EXT_GTD: u8 = 2;
/// An iceberg: `leaves` is the shown quantity, [`Ext::hidden`] the rest.
pub(crate) const EXT_ICEBERG: u8 = 4;
/// One leg of an OCO pair ([`Ext::oco`] is the other leg's slot).
pub(crate) const EXT_OCO: u8 = 8;
/// A trigger order taken out of its trigger list and waiting in the fire queue.
pub(crate) const EXT_FIRING: u8 = 16;

/// What a slot's order adds to a plain order. Meaningful only where its flags say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ext {
    /// Expiry set node: key, children.
    pub exp_key: u64,
    pub exp_l: u32,
    pub exp_r: u32,
    /// Trigger set node: key (order-preserving encoding, see [`trigger_key`]), children.
    pub trg_key: u64,
    pub trg_l: u32,
    pub trg_r: u32,
    /// The order id (tie-break and node priority).
    pub order_id: OrderId,
    pub trigger_price: PriceTicks,
    /// Iceberg: the quantity not shown, and the slice shown at each refill.
    pub hidden: QtyLots,
    pub display: QtyLots,
    /// The other OCO leg's slot (`NIL`: none).
    pub oco: u32,
    /// What a pending trigger order enters as.
    pub kind: OrderKind,
    pub tif: TimeInForce,
    pub source: TriggerSource,
    pub direction: TriggerDirection,
    pub close_position: bool,
}

impl Ext {
    pub(crate) const EMPTY: Ext = Ext {
        exp_key: 0,
        exp_l: NIL,
        exp_r: NIL,
        trg_key: 0,
        trg_l: NIL,
        trg_r: NIL,
        order_id: 0,
        trigger_price: 0,
        hidden: 0,
        display: 0,
        oco: NIL,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        source: TriggerSource::Last,
        direction: TriggerDirection::RisesTo,
        close_position: false,
    };
}

/// The trigger list of a source and direction: `[last rises, last falls, mark rises, mark falls]`.
#[inline]
pub(crate) fn trigger_list(source: TriggerSource, direction: TriggerDirection) -> usize {
    (source as usize - 1) * 2 + (direction as usize - 1)
}

/// The key that orders a trigger list so that its first order is the next to fire: rising
/// triggers by ascending trigger price, falling ones by descending (then, both, by order id).
#[inline]
pub(crate) fn trigger_key(direction: TriggerDirection, price: PriceTicks) -> u64 {
    let signed = match direction {
        TriggerDirection::RisesTo => price,
        TriggerDirection::FallsTo => price.wrapping_neg(),
    };
    (signed as u64) ^ (1 << 63)
}

/// splitmix64 of the order id: the node priority.
#[inline]
fn prio(order_id: OrderId) -> u64 {
    let mut z = order_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One of the two node sets of [`Ext`] (`TRG`: the trigger set, else the expiry set).
struct Set<'a, const TRG: bool>(&'a mut [Ext]);

impl<const TRG: bool> Set<'_, TRG> {
    #[inline]
    fn key(&self, s: u32) -> (u64, u64) {
        let e = &self.0[s as usize];
        (if TRG { e.trg_key } else { e.exp_key }, e.order_id)
    }
    #[inline]
    fn l(&self, s: u32) -> u32 {
        let e = &self.0[s as usize];
        if TRG {
            e.trg_l
        } else {
            e.exp_l
        }
    }
    #[inline]
    fn r(&self, s: u32) -> u32 {
        let e = &self.0[s as usize];
        if TRG {
            e.trg_r
        } else {
            e.exp_r
        }
    }
    #[inline]
    fn set_l(&mut self, s: u32, v: u32) {
        let e = &mut self.0[s as usize];
        if TRG {
            e.trg_l = v
        } else {
            e.exp_l = v
        }
    }
    #[inline]
    fn set_r(&mut self, s: u32, v: u32) {
        let e = &mut self.0[s as usize];
        if TRG {
            e.trg_r = v
        } else {
            e.exp_r = v
        }
    }

    /// Splits `t` into the nodes with keys below `k` and the others.
    fn split(&mut self, t: u32, k: (u64, u64)) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.key(t) < k {
            let (a, b) = self.split(self.r(t), k);
            self.set_r(t, a);
            (t, b)
        } else {
            let (a, b) = self.split(self.l(t), k);
            self.set_l(t, b);
            (a, t)
        }
    }

    /// Joins two treaps, every key of `a` below every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if prio(self.0[a as usize].order_id) > prio(self.0[b as usize].order_id) {
            let r = self.merge(self.r(a), b);
            self.set_r(a, r);
            a
        } else {
            let l = self.merge(a, self.l(b));
            self.set_l(b, l);
            b
        }
    }

    fn insert(&mut self, root: u32, s: u32) -> u32 {
        self.set_l(s, NIL);
        self.set_r(s, NIL);
        let (a, b) = self.split(root, self.key(s));
        let left = self.merge(a, s);
        self.merge(left, b)
    }

    fn remove(&mut self, t: u32, s: u32) -> u32 {
        if t == NIL {
            return NIL;
        }
        if t == s {
            let (l, r) = (self.l(t), self.r(t));
            self.set_l(s, NIL);
            self.set_r(s, NIL);
            return self.merge(l, r);
        }
        if self.key(s) < self.key(t) {
            let l = self.remove(self.l(t), s);
            self.set_l(t, l);
        } else {
            let r = self.remove(self.r(t), s);
            self.set_r(t, r);
        }
        t
    }

    fn first(&self, mut t: u32) -> u32 {
        if t == NIL {
            return NIL;
        }
        while self.l(t) != NIL {
            t = self.l(t);
        }
        t
    }
}

/// Adds slot `s` (its key and order id already set) to the set rooted at `*root`.
pub(crate) fn insert<const TRG: bool>(ext: &mut [Ext], root: &mut u32, s: u32) {
    *root = Set::<TRG>(ext).insert(*root, s);
}

/// Takes slot `s` (a member) out of the set rooted at `*root`.
pub(crate) fn remove<const TRG: bool>(ext: &mut [Ext], root: &mut u32, s: u32) {
    *root = Set::<TRG>(ext).remove(*root, s);
}

/// The set's first slot (smallest key), or `NIL`.
pub(crate) fn first<const TRG: bool>(ext: &mut [Ext], root: u32) -> u32 {
    Set::<TRG>(ext).first(root)
}

/// The set's slots in order (allocates: for snapshots, views and checks).
pub(crate) fn in_order<const TRG: bool>(ext: &[Ext], root: u32) -> Vec<u32> {
    fn walk<const TRG: bool>(ext: &[Ext], t: u32, out: &mut Vec<u32>) {
        if t == NIL {
            return;
        }
        let e = &ext[t as usize];
        let (l, r) = if TRG {
            (e.trg_l, e.trg_r)
        } else {
            (e.exp_l, e.exp_r)
        };
        walk::<TRG>(ext, l, out);
        out.push(t);
        walk::<TRG>(ext, r, out);
    }
    let mut out = Vec::new();
    walk::<TRG>(ext, root, &mut out);
    out
}

// The sizing rule in `config.rs` counts 80 bytes a slot.
const _: () = assert!(std::mem::size_of::<Ext>() == 80);
