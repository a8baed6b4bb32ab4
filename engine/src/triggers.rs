//! The crypto order types' machinery outside the matching loop: removing any live order
//! (pending trigger, iceberg, OCO leg), the trigger passes (last price after trades, mark price
//! after a mark), firing a trigger order, and GTD expiry. See "Engine semantics" in
//! `docs/ARCHITECTURE.md` for the rules.

use crate::book::Book;
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink};
use crate::ext::{self, trigger_list, EXT_FIRING, EXT_ICEBERG, EXT_OCO, EXT_PENDING};
use crate::matching::{match_taker, Taker};
use crate::risk::state::Risk;
use crate::slab::NIL;
use crate::store::OrderStore;
use crate::types::*;

/// Dissolves the OCO pair of `slot`; returns the other leg.
#[inline]
pub(crate) fn unpair(store: &mut OrderStore, slot: u32) -> u32 {
    store.unpair(slot)
}

/// Re-reads the first trigger price of the two last-price lists (the per-trade compare).
pub(crate) fn refresh_trigger_cache(book: &mut Book, store: &mut OrderStore) {
    let rise = ext::first::<true>(&mut store.ext, book.trg_root[0]);
    book.rise_at = if rise == NIL {
        i64::MAX
    } else {
        store.ext[rise as usize].trigger_price
    };
    let fall = ext::first::<true>(&mut store.ext, book.trg_root[1]);
    book.fall_at = if fall == NIL {
        i64::MIN
    } else {
        store.ext[fall as usize].trigger_price
    };
}

/// The whole quantity of a live order: shown plus hidden.
#[inline]
pub(crate) fn total_leaves(store: &OrderStore, slot: u32) -> QtyLots {
    let o = &store.slab.orders[slot as usize];
    if o.ext & EXT_ICEBERG != 0 {
        o.leaves + store.ext[slot as usize].hidden
    } else {
        o.leaves
    }
}

/// Removes the live order in `slot` (of book `bi`) whole for `reason`: `Cancelled` (its whole
/// quantity, hidden included), then `BookDelete` if it rested on the book. A pending trigger
/// order leaves its trigger list and holds nothing; a resting one releases its hold (risk on).
/// Its OCO pair, if any, is dissolved (callers that cancel the other leg unpair first).
pub(crate) fn remove_live<S: EventSink>(
    book: &mut Book,
    bi: usize,
    store: &mut OrderStore,
    risk: &mut Risk,
    slot: u32,
    reason: CancelReason,
    sink: &mut S,
) {
    let o = store.slab.orders[slot as usize];
    let total = total_leaves(store, slot);
    let instrument = book.id();
    sink.emit(Event::Cancelled {
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        order_id: o.order_id,
        instrument,
        cancelled_qty: total,
        leaves_qty: 0,
        reason,
    });
    if o.ext & EXT_PENDING != 0 {
        let e = store.ext[slot as usize];
        let list = trigger_list(e.source, e.direction);
        ext::remove::<true>(&mut store.ext, &mut book.trg_root[list], slot);
        if list < 2 {
            refresh_trigger_cache(book, store);
        }
    } else if o.ext & EXT_FIRING == 0 {
        if risk.on() {
            risk.release(bi, risk.leg(&o, slot), total);
        }
        sink.emit(Event::BookDelete {
            instrument,
            order_id: o.order_id,
        });
        let idx = book.index_of(o.price);
        book.side_mut(o.side)
            .unlink(&mut store.slab.orders, slot, idx);
    }
    store.release(slot);
}

impl Engine {
    /// [`remove_live`] on this engine's tables.
    pub(crate) fn remove_order<S: EventSink>(
        &mut self,
        slot: u32,
        reason: CancelReason,
        sink: &mut S,
    ) {
        let bi = self.store.order(slot).book as usize;
        remove_live(
            &mut self.books[bi],
            bi,
            &mut self.store,
            &mut self.risk,
            slot,
            reason,
            sink,
        );
    }

    /// Removes an OCO leg whole for `reason` and then its other leg (reason `Oco`).
    pub(crate) fn remove_with_oco<S: EventSink>(
        &mut self,
        slot: u32,
        reason: CancelReason,
        sink: &mut S,
    ) {
        let sib = if self.store.order(slot).ext & EXT_OCO != 0 {
            self.store.unpair(slot)
        } else {
            NIL
        };
        self.remove_order(slot, reason, sink);
        if sib != NIL {
            self.remove_order(sib, CancelReason::Oco, sink);
        }
    }

    /// GTD expiry: every order whose expiry is at or before `ts_ns` is cancelled (`Expired`),
    /// earliest expiry first (then by order id); an OCO leg's other leg follows it (`Oco`).
    #[cold]
    #[inline(never)]
    pub(crate) fn expire_due<S: EventSink>(&mut self, ts_ns: u64, sink: &mut S) {
        while self.store.next_expiry <= ts_ns {
            let slot = ext::first::<false>(&mut self.store.ext, self.store.exp_root);
            if slot == NIL {
                self.store.next_expiry = u64::MAX;
                break;
            }
            self.remove_with_oco(slot, CancelReason::Expired, sink);
        }
    }

    /// A mark price for book `bi`: the mark-price triggers it reaches fire, then any
    /// last-price triggers their trades reach (the cascade).
    pub(crate) fn on_mark<S: EventSink>(&mut self, bi: usize, price: PriceTicks, sink: &mut S) {
        self.books[bi].mark = price;
        if self.books[bi].halted {
            return;
        }
        if self.books[bi].trg_root[2] == NIL && self.books[bi].trg_root[3] == NIL {
            return;
        }
        self.collect(bi, 2, price);
        self.collect(bi, 3, price);
        self.fire_queued(sink);
        self.run_triggers(sink);
    }

    /// Moves the orders of trigger list `list` of book `bi` that `price` reaches (rising
    /// lists: trigger price `<= price`; falling: `>= price`), first to fire first, to the
    /// fire queue.
    fn collect(&mut self, bi: usize, list: usize, price: PriceTicks) {
        let book = &mut self.books[bi];
        loop {
            let s = ext::first::<true>(&mut self.store.ext, book.trg_root[list]);
            if s == NIL {
                break;
            }
            let tp = self.store.ext[s as usize].trigger_price;
            let reached = if list % 2 == 0 {
                tp <= price
            } else {
                tp >= price
            };
            if !reached {
                break;
            }
            ext::remove::<true>(&mut self.store.ext, &mut book.trg_root[list], s);
            let o = &mut self.store.slab.orders[s as usize];
            o.ext = (o.ext & !EXT_PENDING) | EXT_FIRING;
            self.fire_q.push((s, o.order_id, price));
        }
        if list < 2 {
            refresh_trigger_cache(book, &mut self.store);
        }
    }

    /// The last-price trigger passes of the book whose trades may have reached a trigger
    /// (`trig_book`): each pass takes the range of trade prices since the previous one, moves
    /// the rising triggers it reaches and then the falling ones to the fire queue, and fires
    /// them in that order; their trades make the next pass. Every pass removes at least one
    /// order from the trigger book and nothing enters it meanwhile, so a command fires each
    /// trigger order at most once and the cascade ends.
    #[cold]
    #[inline(never)]
    pub(crate) fn run_triggers<S: EventSink>(&mut self, sink: &mut S) {
        while self.trig_book != NIL {
            let bi = self.trig_book as usize;
            self.trig_book = NIL;
            let book = &mut self.books[bi];
            let (lo, hi) = (book.lo, book.hi);
            book.lo = i64::MAX;
            book.hi = i64::MIN;
            if lo > hi || book.halted {
                continue;
            }
            self.collect(bi, 0, hi);
            self.collect(bi, 1, lo);
            self.fire_queued(sink);
        }
    }

    fn fire_queued<S: EventSink>(&mut self, sink: &mut S) {
        // Indexing, not iterating: firing never adds to the queue (it is cleared after).
        let mut k = 0;
        while k < self.fire_q.len() {
            let (slot, order_id, price) = self.fire_q[k];
            k += 1;
            let o = self.store.order(slot);
            // An earlier firing may have cancelled it (its OCO pair).
            if o.leaves != 0 && o.order_id == order_id && o.ext & EXT_FIRING != 0 {
                if self.risk.on() {
                    self.fire::<true, S>(slot, price, sink);
                } else {
                    self.fire::<false, S>(slot, price, sink);
                }
            }
        }
        self.fire_q.clear();
    }

    /// Fires one trigger order: `Triggered`, its OCO leg cancelled, the entry checks that can
    /// have changed since it was accepted (band; risk on: reduce-only trim, close-position
    /// size, the risk check), then it enters as a taker like a new order.
    fn fire<const RISK: bool, S: EventSink>(&mut self, slot: u32, price: PriceTicks, sink: &mut S) {
        let o = *self.store.order(slot);
        let e = self.store.ext[slot as usize];
        let bi = o.book as usize;
        let instrument = self.books[bi].id();
        self.store.order_mut(slot).ext &= !EXT_FIRING;
        sink.emit(Event::Triggered {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id: o.order_id,
            instrument,
            side: o.side,
            trigger_price: e.trigger_price,
            price,
        });
        if o.ext & EXT_OCO != 0 {
            let sib = self.store.unpair(slot);
            self.remove_order(sib, CancelReason::Oco, sink);
        }
        let cancel = |qty: QtyLots, left: QtyLots, reason| Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id: o.order_id,
            instrument,
            cancelled_qty: qty,
            leaves_qty: left,
            reason,
        };
        if self.books[bi].check_price(o.price).is_err() {
            sink.emit(cancel(o.leaves, 0, CancelReason::TriggerRejected));
            self.store.release(slot);
            return;
        }
        let mut qty = o.leaves;
        let mut hold = crate::risk::orders::Hold::default();
        if RISK {
            if e.close_position || o.reduce_only {
                let free = self.risk.ro_free(bi, o.account, o.side).unwrap_or(0);
                let want = if e.close_position {
                    free.min(self.books[bi].spec.max_qty)
                } else {
                    qty.min(free)
                };
                if want == 0 {
                    sink.emit(cancel(qty, 0, CancelReason::ReduceOnly));
                    self.store.release(slot);
                    return;
                }
                if want < qty {
                    sink.emit(cancel(qty - want, want, CancelReason::ReduceOnly));
                }
                qty = want;
            }
            let book = &self.books[bi];
            let limit = book.index_of(o.price);
            let crossing_bid = (o.side == Side::Sell && book.crosses(o.side, limit))
                .then(|| book.price_of(book.bids.best));
            let reduce_only = o.reduce_only || e.close_position;
            match self.risk.check_new(
                bi,
                o.account,
                o.side,
                reduce_only,
                o.price,
                qty,
                crossing_bid,
            ) {
                Ok(h) => hold = h,
                Err(_) => {
                    sink.emit(cancel(qty, 0, CancelReason::TriggerRejected));
                    self.store.release(slot);
                    return;
                }
            }
            let ord = self.store.order_mut(slot);
            ord.reduce_only = reduce_only;
            ord.hold_custom = hold.custom;
        }
        self.store.order_mut(slot).leaves = qty;
        let limit = self.books[bi].index_of(o.price);
        let mut t = Taker {
            order_id: o.order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            side: o.side,
            stp: o.stp,
            reduce_only: self.store.order(slot).reduce_only,
            limit,
            remaining: qty,
            per_lot: hold.u,
            slot,
            oco: NIL,
        };
        if RISK {
            self.risk.on_accept(bi, t.leg(), slot, qty, hold);
        }
        if self.enter::<RISK, S>(bi, slot, &mut t, e.kind, e.tif, true, sink) {
            // The pass loop (`run_triggers`) picks its trades up.
            self.trig_book = bi as u32;
        }
    }

    /// The entry of an accepted order as a taker (a new order, or a trigger order that fired):
    /// matching, then the remainder rests (GTC, GTD) or is cancelled (market: `MarketProtection`,
    /// IOC and FOK: `ImmediateOrCancel`). `registered`: the slot is already in the client index
    /// and its account's list (a fired trigger order). Returns whether its trades may fire a
    /// trigger (the caller runs or continues the trigger passes).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn enter<const RISK: bool, S: EventSink>(
        &mut self,
        bi: usize,
        slot: u32,
        t: &mut Taker,
        kind: OrderKind,
        tif: TimeInForce,
        registered: bool,
        sink: &mut S,
    ) -> bool {
        let book = &mut self.books[bi];
        let traded = match_taker::<RISK, S>(
            book,
            bi,
            &mut self.store,
            &mut self.risk,
            &mut self.next_trade_id,
            t,
            sink,
        );
        let instrument = book.id();
        if t.remaining == 0 {
            self.drop_taker(slot, registered);
            return traded;
        }
        let reason = if kind == OrderKind::Market {
            CancelReason::MarketProtection
        } else if matches!(tif, TimeInForce::Ioc | TimeInForce::Fok) {
            CancelReason::ImmediateOrCancel
        } else {
            let (price, order_id) = {
                let o = self.store.order(slot);
                (o.price, o.order_id)
            };
            let mut shown = t.remaining;
            if self.store.order(slot).ext & EXT_ICEBERG != 0 {
                let e = &mut self.store.ext[slot as usize];
                shown = e.display.min(t.remaining);
                e.hidden = t.remaining - shown;
            }
            self.store.order_mut(slot).leaves = shown;
            book.side_mut(t.side)
                .push_back(&mut self.store.slab.orders, slot, t.limit);
            if !registered {
                self.store.register(slot);
                if tif == TimeInForce::Gtd {
                    let expire_ts_ns = self.store.ext[slot as usize].exp_key;
                    self.store.add_expiry(slot, expire_ts_ns);
                }
            }
            sink.emit(Event::BookAdd {
                instrument,
                order_id,
                side: t.side,
                price,
                qty: shown,
            });
            return traded;
        };
        if RISK {
            self.risk.release(bi, t.leg(), t.remaining);
        }
        let (account, cl_ord_id, order_id) = (t.account, t.cl_ord_id, t.order_id);
        let left = t.remaining;
        self.drop_taker(slot, registered);
        sink.emit(Event::Cancelled {
            account,
            cl_ord_id,
            order_id,
            instrument,
            cancelled_qty: left,
            leaves_qty: 0,
            reason,
        });
        traded
    }

    /// Frees a taker's slot that does not rest.
    #[inline]
    fn drop_taker(&mut self, slot: u32, registered: bool) {
        if registered {
            self.store.release(slot);
        } else {
            if self.store.order(slot).ext & EXT_OCO != 0 {
                self.store.unpair(slot);
            }
            self.store.slab.free(slot);
        }
    }
}
