//! Commands on live orders: cancel (whole or down), replace and mass cancel.

use crate::command::{Cancel, MassCancel, Replace};
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::ext::{EXT_ICEBERG, EXT_OCO, EXT_PENDING};
use crate::matching::{match_taker, Taker};
use crate::risk::orders::{Hold, Leg};
use crate::slab::NIL;
use crate::types::*;

/// The `cl_ord_id` a rejected replace reports: the one that named the order to replace.
#[inline]
fn replace_reject_id(r: &Replace) -> ClientOrderId {
    r.orig_cl_ord_id
}

impl Engine {
    pub(crate) fn on_cancel<const RISK: bool, S: EventSink>(&mut self, c: &Cancel, sink: &mut S) {
        let reject = |reason| Event::Rejected {
            account: c.account,
            cl_ord_id: c.cl_ord_id,
            reason,
        };
        if c.account >= self.max_accounts {
            return sink.emit(reject(RejectReason::UnknownAccount));
        }
        let Some((slot, pos)) = self.store.locate(c.account, c.cl_ord_id) else {
            return sink.emit(reject(RejectReason::UnknownOrder));
        };
        let o = *self.store.order(slot);
        if o.ext != 0 {
            return self.cancel_ext(c, slot, sink);
        }
        if c.remaining_qty >= o.leaves {
            return sink.emit(reject(RejectReason::InvalidModify));
        }
        if RISK {
            // The release reads the account's balance row and (perpetuals) position: start
            // loading them, and release after the book work so that the misses overlap it.
            self.risk.prefetch(o.book as usize, o.account);
        }
        let book = &mut self.books[o.book as usize];
        let instrument = book.id();
        let idx = book.index_of(o.price);
        let cancelled_qty = o.leaves - c.remaining_qty;
        sink.emit(Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id: o.order_id,
            instrument,
            cancelled_qty,
            leaves_qty: c.remaining_qty,
            reason: CancelReason::UserRequested,
        });
        let ladder = book.side_mut(o.side);
        if c.remaining_qty == 0 {
            sink.emit(Event::BookDelete {
                instrument,
                order_id: o.order_id,
            });
            ladder.unlink(&mut self.store.slab.orders, slot, idx);
            self.store.release_at(slot, pos);
        } else {
            sink.emit(Event::BookReduce {
                instrument,
                order_id: o.order_id,
                qty: cancelled_qty,
            });
            ladder.reduce(idx, cancelled_qty);
            self.store.order_mut(slot).leaves = c.remaining_qty;
        }
        if RISK {
            // Risk state only: nothing above reads it.
            self.risk
                .release(o.book as usize, self.risk.leg(&o, slot), cancelled_qty);
        }
    }

    /// Cancel of an order with order-type flags. Whole: the order leaves (an OCO leg's other
    /// leg is cancelled after it). Down: a pending trigger order's quantity falls; an iceberg's
    /// whole quantity (shown plus hidden) falls to `remaining_qty`, from the hidden part first,
    /// the shown part keeping its priority.
    #[cold]
    #[inline(never)]
    fn cancel_ext<S: EventSink>(&mut self, c: &Cancel, slot: u32, sink: &mut S) {
        let o = *self.store.order(slot);
        let total = crate::triggers::total_leaves(&self.store, slot);
        if c.remaining_qty >= total {
            return sink.emit(Event::Rejected {
                account: c.account,
                cl_ord_id: c.cl_ord_id,
                reason: RejectReason::InvalidModify,
            });
        }
        if c.remaining_qty == 0 {
            return self.remove_with_oco(slot, CancelReason::UserRequested, sink);
        }
        let bi = o.book as usize;
        let instrument = self.books[bi].id();
        let cancelled_qty = total - c.remaining_qty;
        sink.emit(Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id: o.order_id,
            instrument,
            cancelled_qty,
            leaves_qty: c.remaining_qty,
            reason: CancelReason::UserRequested,
        });
        if o.ext & EXT_PENDING != 0 {
            self.store.order_mut(slot).leaves = c.remaining_qty;
            return;
        }
        let mut shown_cut = 0;
        if o.ext & EXT_ICEBERG != 0 {
            let e = &mut self.store.ext[slot as usize];
            if c.remaining_qty >= o.leaves {
                e.hidden = c.remaining_qty - o.leaves;
            } else {
                e.hidden = 0;
                shown_cut = o.leaves - c.remaining_qty;
            }
        } else {
            shown_cut = cancelled_qty;
        }
        if shown_cut > 0 {
            sink.emit(Event::BookReduce {
                instrument,
                order_id: o.order_id,
                qty: shown_cut,
            });
            let book = &mut self.books[bi];
            let idx = book.index_of(o.price);
            book.side_mut(o.side).reduce(idx, shown_cut);
            self.store.order_mut(slot).leaves = o.leaves - shown_cut;
        }
        if self.risk.on() {
            self.risk
                .release(bi, self.risk.leg(&o, slot), cancelled_qty);
        }
    }

    /// Validates a replace; on success returns the order's slot and index bucket and (with
    /// `RISK`) what it holds from now on.
    #[inline(always)]
    fn validate_replace<const RISK: bool>(
        &self,
        r: &Replace,
    ) -> Result<(u32, usize, Hold), RejectReason> {
        if r.account >= self.max_accounts {
            return Err(RejectReason::UnknownAccount);
        }
        let (slot, pos) = self
            .store
            .locate(r.account, r.orig_cl_ord_id)
            .ok_or(RejectReason::UnknownOrder)?;
        let o = self.store.order(slot);
        let book = &self.books[o.book as usize];
        if book.halted {
            return Err(RejectReason::InstrumentHalted);
        }
        if o.ext & (EXT_PENDING | EXT_ICEBERG) != 0 {
            // Pending trigger orders and icebergs are cancelled (whole or down), not replaced.
            return Err(RejectReason::InvalidModify);
        }
        if r.new_cl_ord_id != r.orig_cl_ord_id && self.store.contains(r.account, r.new_cl_ord_id) {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        book.check_price(r.price)?;
        book.check_qty(r.price, r.qty)?;
        if r.price == o.price && r.qty == o.leaves && r.new_cl_ord_id == r.orig_cl_ord_id {
            return Err(RejectReason::InvalidModify);
        }
        let new_idx = book.index_of(r.price);
        if o.post_only && book.crosses(o.side, new_idx) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        let mut hold = Hold::default();
        if RISK {
            let crossing_bid = (o.side == Side::Sell && book.crosses(o.side, new_idx))
                .then(|| book.price_of(book.bids.best));
            hold =
                self.risk
                    .check_replace(o.book as usize, o, slot, r.price, r.qty, crossing_bid)?;
        }
        Ok((slot, pos, hold))
    }

    #[inline]
    pub(crate) fn on_replace<const RISK: bool, S: EventSink>(&mut self, r: &Replace, sink: &mut S) {
        let reject = |reason| Event::Rejected {
            account: r.account,
            cl_ord_id: replace_reject_id(r),
            reason,
        };
        let (slot, pos, hold) = match self.validate_replace::<RISK>(r) {
            Ok(v) => v,
            Err(reason) => return sink.emit(reject(reason)),
        };
        if r.new_cl_ord_id != r.orig_cl_ord_id {
            self.store.rekey(slot, pos, r.new_cl_ord_id);
        }
        // The fields read below, loaded once (not a copy of the whole order: the slot is
        // written before some of them are last read).
        let (price, leaves, side, order_id, account, stp, reduce_only, bi) = {
            let o = self.store.order(slot);
            (
                o.price,
                o.leaves,
                o.side,
                o.order_id,
                o.account,
                o.stp,
                o.reduce_only,
                o.book as usize,
            )
        };
        if RISK {
            let leg = Leg {
                account,
                side,
                reduce_only,
                per_lot: hold.u,
            };
            self.risk.on_replace(bi, leg, leaves, slot, r.qty, hold);
        }
        let book = &mut self.books[bi];
        let instrument = book.id();
        let old_idx = book.index_of(price);
        let new_idx = book.index_of(r.price);
        let keep = r.price == price && r.qty <= leaves;
        sink.emit(Event::Replaced {
            account: r.account,
            orig_cl_ord_id: r.orig_cl_ord_id,
            new_cl_ord_id: r.new_cl_ord_id,
            order_id,
            instrument,
            price: r.price,
            qty: r.qty,
            priority_kept: keep,
        });
        if keep {
            let reduced = leaves - r.qty;
            {
                let order = self.store.order_mut(slot);
                order.leaves = r.qty;
                if RISK {
                    order.hold_custom = hold.custom;
                }
            }
            if reduced > 0 {
                book.side_mut(side).reduce(old_idx, reduced);
                sink.emit(Event::BookReduce {
                    instrument,
                    order_id,
                    qty: reduced,
                });
            }
            return;
        }
        let crossing = book.crosses(side, new_idx);
        let orders = &mut self.store.slab.orders;
        book.side_mut(side).unlink(orders, slot, old_idx);
        {
            let order = &mut orders[slot as usize];
            order.price = r.price;
            order.leaves = r.qty;
            if RISK {
                order.hold_custom = hold.custom;
            }
        }
        if !crossing {
            book.side_mut(side).push_back(orders, slot, new_idx);
            return sink.emit(Event::BookReplace {
                instrument,
                order_id,
                price: r.price,
                qty: r.qty,
            });
        }
        sink.emit(Event::BookDelete {
            instrument,
            order_id,
        });
        let mut t = Taker {
            order_id,
            account,
            cl_ord_id: r.new_cl_ord_id,
            side,
            stp,
            reduce_only,
            limit: new_idx,
            remaining: r.qty,
            per_lot: hold.u,
            slot,
            oco: if self.store.slab.orders[slot as usize].ext & EXT_OCO != 0 {
                self.store.ext[slot as usize].oco
            } else {
                NIL
            },
        };
        let traded = match_taker::<RISK, S>(
            book,
            bi,
            &mut self.store,
            &mut self.risk,
            &mut self.next_trade_id,
            &mut t,
            sink,
        );
        if t.remaining == 0 {
            self.store.release(slot);
        } else {
            self.store.order_mut(slot).leaves = t.remaining;
            book.side_mut(side)
                .push_back(&mut self.store.slab.orders, slot, new_idx);
            sink.emit(Event::BookAdd {
                instrument,
                order_id,
                side,
                price: r.price,
                qty: t.remaining,
            });
        }
        if traded {
            // Its trades reached a trigger: the trigger passes (and their cascade).
            self.trig_book = bi as u32;
            self.run_triggers(sink);
        }
    }

    pub(crate) fn on_mass_cancel<const RISK: bool, S: EventSink>(
        &mut self,
        m: &MassCancel,
        sink: &mut S,
    ) {
        if m.account >= self.max_accounts {
            return sink.emit(Event::Rejected {
                account: m.account,
                cl_ord_id: 0,
                reason: RejectReason::UnknownAccount,
            });
        }
        // With an instrument filter, the book index it names (`NIL`: matches nothing).
        let only = m
            .instrument
            .map(|id| self.book_index(id).map_or(NIL, |i| i as u32));
        let mut slot = self.store.acct_head[m.account as usize];
        while slot != NIL {
            let o = *self.store.order(slot);
            let next = o.acct_next;
            if only.is_none_or(|b| b == o.book) && o.ext != 0 {
                // Both legs of an OCO pair match the same filter: the pair just dissolves.
                self.remove_order(slot, CancelReason::MassCancel, sink);
            } else if only.is_none_or(|b| b == o.book) {
                if RISK {
                    self.risk
                        .release(o.book as usize, self.risk.leg(&o, slot), o.leaves);
                }
                let book = &mut self.books[o.book as usize];
                let instrument = book.id();
                sink.emit(Event::Cancelled {
                    account: o.account,
                    cl_ord_id: o.cl_ord_id,
                    order_id: o.order_id,
                    instrument,
                    cancelled_qty: o.leaves,
                    leaves_qty: 0,
                    reason: CancelReason::MassCancel,
                });
                sink.emit(Event::BookDelete {
                    instrument,
                    order_id: o.order_id,
                });
                let idx = book.index_of(o.price);
                book.side_mut(o.side)
                    .unlink(&mut self.store.slab.orders, slot, idx);
                self.store.release(slot);
            }
            slot = next;
        }
    }
}
