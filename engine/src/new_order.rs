//! New orders: validation (steps 1–10 of the contract, and the order-type checks), acceptance,
//! matching and the remainder.

use crate::command::NewOrder;
use crate::engine::Engine;
use crate::event::{Event, EventSink, RejectReason};
use crate::ext::{self, trigger_key, trigger_list, Ext, EXT_ICEBERG, EXT_OCO, EXT_PENDING};
use crate::instrument::InstrumentKind;
use crate::matching::{fok_fillable, Taker};
use crate::risk::orders::Hold;
use crate::slab::{Order, NIL};
use crate::types::*;

/// What validation found: book index, the price the order will have (a slid post-only order's
/// differs from the requested one), its ladder index, its hold and its OCO leg's slot.
pub(crate) struct Valid {
    bi: usize,
    price: PriceTicks,
    limit: u32,
    hold: Hold,
    oco: u32,
    /// No order type is used (the fast path).
    plain: bool,
}

impl Engine {
    /// Validates a new order (steps 1-9; with `RISK`, the FOK walk skips reduce-only makers,
    /// and step 10 checks risk). Orders using [`crate::OrderExt`] also pass `check_ext`.
    #[inline(always)]
    fn validate_new<const RISK: bool>(
        &self,
        ts_ns: u64,
        o: &NewOrder,
    ) -> Result<Valid, RejectReason> {
        if o.account >= self.max_accounts {
            return Err(RejectReason::UnknownAccount);
        }
        let bi = self
            .book_index(o.instrument)
            .ok_or(RejectReason::UnknownInstrument)?;
        if RISK {
            self.risk.prefetch(bi, o.account);
        }
        let book = &self.books[bi];
        if book.halted {
            return Err(RejectReason::InstrumentHalted);
        }
        if o.kind == OrderKind::Market
            && (matches!(o.tif, TimeInForce::Gtc | TimeInForce::Gtd) || o.post_only)
        {
            return Err(RejectReason::InvalidOrderType);
        }
        book.check_price(o.price)?;
        book.check_qty(o.price, o.qty)?;
        if self.store.contains(o.account, o.cl_ord_id) {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let mut price = o.price;
        let mut limit = book.index_of(o.price);
        let mut oco = NIL;
        let plain = o.ext.is_plain() && o.tif != TimeInForce::Gtd;
        if !plain {
            oco = self.check_ext::<RISK>(ts_ns, bi, o)?;
            if o.ext.trigger.is_some() {
                // A trigger order holds nothing and meets no book until it fires.
                if self.store.slab.is_full() {
                    return Err(RejectReason::BookFull);
                }
                return Ok(Valid {
                    bi,
                    price,
                    limit,
                    hold: Hold::default(),
                    oco,
                    plain,
                });
            }
        }
        if o.post_only && book.crosses(o.side, limit) {
            if !o.ext.post_only_slide {
                return Err(RejectReason::PostOnlyWouldTake);
            }
            // Slide: one tick behind the opposite best; that price must pass steps 4 and 5.
            price = match o.side {
                Side::Buy => book.price_of(book.asks.best) - 1,
                Side::Sell => book.price_of(book.bids.best) + 1,
            };
            book.check_price(price)
                .map_err(|_| RejectReason::PostOnlyWouldTake)?;
            book.check_qty(price, o.qty)?;
            limit = book.index_of(price);
        }
        if self.store.slab.is_full() {
            return Err(RejectReason::BookFull);
        }
        if o.tif == TimeInForce::Fok
            && !fok_fillable(
                book,
                &self.store.slab.orders,
                o.side,
                limit,
                o.account,
                o.stp,
                o.qty,
                RISK,
            )
        {
            return Err(RejectReason::FokNotFillable);
        }
        let mut hold = Hold::default();
        if RISK {
            // Step 10: what the order must hold, or why it may not.
            let crossing_bid = (o.side == Side::Sell && book.crosses(o.side, limit))
                .then(|| book.price_of(book.bids.best));
            hold = self.risk.check_new(
                bi,
                o.account,
                o.side,
                o.reduce_only,
                price,
                o.qty,
                crossing_bid,
            )?;
        }
        Ok(Valid {
            bi,
            price,
            limit,
            hold,
            oco,
            plain,
        })
    }

    /// The order-type checks (after the duplicate id check): GTD expiry, iceberg, post-only
    /// slide, trigger, close-position, OCO link. Returns the OCO leg's slot (`NIL`: none).
    #[cold]
    #[inline(never)]
    fn check_ext<const RISK: bool>(
        &self,
        ts_ns: u64,
        bi: usize,
        o: &NewOrder,
    ) -> Result<u32, RejectReason> {
        let book = &self.books[bi];
        let x = &o.ext;
        if (o.tif == TimeInForce::Gtd) != (x.expire_ts_ns != 0)
            || (x.expire_ts_ns != 0 && x.expire_ts_ns <= ts_ns)
        {
            return Err(RejectReason::InvalidExpireTime);
        }
        if x.display_qty != 0 {
            if o.kind != OrderKind::Limit
                || !matches!(o.tif, TimeInForce::Gtc | TimeInForce::Gtd)
                || o.reduce_only
                || x.trigger.is_some()
            {
                return Err(RejectReason::InvalidOrderType);
            }
            if x.display_qty >= o.qty || x.display_qty < book.spec.min_qty {
                return Err(RejectReason::InvalidQuantity);
            }
        }
        if x.post_only_slide && !o.post_only {
            return Err(RejectReason::InvalidOrderType);
        }
        let perp = matches!(book.spec.kind, InstrumentKind::LinearPerp { .. });
        if let Some(tr) = x.trigger {
            if o.post_only || o.tif == TimeInForce::Fok {
                return Err(RejectReason::InvalidTrigger);
            }
            if tr.price <= 0 || tr.price < book.spec.min_price || tr.price > book.spec.max_price {
                return Err(RejectReason::InvalidTrigger);
            }
            if tr.source == TriggerSource::Mark && !perp {
                return Err(RejectReason::NotPerpetual);
            }
            let watched = match tr.source {
                TriggerSource::Last => book.last,
                TriggerSource::Mark => book.mark,
            };
            let reached = watched > 0
                && match tr.direction {
                    TriggerDirection::RisesTo => watched >= tr.price,
                    TriggerDirection::FallsTo => watched <= tr.price,
                };
            if reached {
                return Err(RejectReason::InvalidTrigger);
            }
            if RISK && o.reduce_only && !perp {
                return Err(RejectReason::InvalidOrderType);
            }
        }
        if x.close_position && (x.trigger.is_none() || !RISK || !perp) {
            return Err(RejectReason::InvalidOrderType);
        }
        if x.oco_cl_ord_id == 0 {
            return Ok(NIL);
        }
        let slot = self
            .store
            .find(o.account, x.oco_cl_ord_id)
            .ok_or(RejectReason::InvalidOcoLink)?;
        let leg = self.store.order(slot);
        if leg.book != bi as u32 || leg.ext & EXT_OCO != 0 || leg.side != o.side {
            return Err(RejectReason::InvalidOcoLink);
        }
        Ok(slot)
    }

    #[inline]
    pub(crate) fn on_new_order<const RISK: bool, S: EventSink>(
        &mut self,
        ts_ns: u64,
        o: &NewOrder,
        sink: &mut S,
    ) {
        let reject = |reason| Event::Rejected {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            reason,
        };
        let Valid {
            bi,
            price,
            limit,
            hold,
            oco,
            plain,
        } = match self.validate_new::<RISK>(ts_ns, o) {
            Ok(v) => v,
            Err(reason) => return sink.emit(reject(reason)),
        };
        let order_id = self.next_order_id;
        let Some(slot) = self.store.alloc(Order {
            leaves: o.qty,
            price,
            order_id,
            cl_ord_id: o.cl_ord_id,
            prev: NIL,
            next: NIL,
            acct_prev: NIL,
            acct_next: NIL,
            account: o.account,
            book: bi as u32,
            side: o.side,
            stp: o.stp,
            post_only: o.post_only,
            reduce_only: o.reduce_only,
            hold_custom: hold.custom,
            ext: 0,
        }) else {
            // Unreachable: validation checked for a free slot.
            return sink.emit(reject(RejectReason::BookFull));
        };
        self.next_order_id += 1;
        sink.emit(Event::Accepted {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id,
            instrument: o.instrument,
            side: o.side,
            price: o.price,
            qty: o.qty,
        });
        let mut t = Taker {
            order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            side: o.side,
            stp: o.stp,
            reduce_only: o.reduce_only,
            limit,
            remaining: o.qty,
            per_lot: hold.u,
            slot,
            oco: NIL,
        };
        if !plain && self.accept_ext(bi, slot, o, price, oco, sink) {
            // A trigger order: pending, nothing more until it fires.
            return;
        }
        t.oco = oco;
        if RISK {
            self.risk.on_accept(bi, t.leg(), slot, o.qty, hold);
        }
        if self.enter::<RISK, S>(bi, slot, &mut t, o.kind, o.tif, false, sink) {
            // Its trades reached a trigger: the trigger passes (and their cascade).
            self.trig_book = bi as u32;
            self.run_triggers(sink);
        }
    }

    /// The order-type part of an accepted order: its `ext` entry and flags, the OCO pair,
    /// `Slid`. A trigger order is registered and put in its trigger list (returns true).
    #[cold]
    #[inline(never)]
    fn accept_ext<S: EventSink>(
        &mut self,
        bi: usize,
        slot: u32,
        o: &NewOrder,
        price: PriceTicks,
        oco: u32,
        sink: &mut S,
    ) -> bool {
        let order_id = self.next_order_id - 1;
        let x = &o.ext;
        let mut e = Ext::EMPTY;
        e.order_id = order_id;
        e.kind = o.kind;
        e.tif = o.tif;
        e.exp_key = x.expire_ts_ns;
        e.display = x.display_qty;
        e.close_position = x.close_position;
        let mut flags = 0;
        if x.display_qty != 0 {
            flags |= EXT_ICEBERG;
        }
        if let Some(tr) = x.trigger {
            e.trigger_price = tr.price;
            e.source = tr.source;
            e.direction = tr.direction;
            e.trg_key = trigger_key(tr.direction, tr.price);
        }
        self.store.ext[slot as usize] = e;
        if oco != NIL {
            if self.store.order(oco).ext == 0 {
                // A plain order's entry was never written: start it clean.
                let mut pe = Ext::EMPTY;
                pe.order_id = self.store.order(oco).order_id;
                self.store.ext[oco as usize] = pe;
            }
            self.store.ext[slot as usize].oco = oco;
            self.store.ext[oco as usize].oco = slot;
            self.store.order_mut(oco).ext |= EXT_OCO;
            flags |= EXT_OCO;
        }
        self.store.order_mut(slot).ext = flags;
        if let Some(tr) = x.trigger {
            if self.risk.on() {
                // Holds nothing until it fires.
                self.risk.set_hold(slot, 0, true);
                self.store.order_mut(slot).hold_custom = true;
            }
            self.store.order_mut(slot).ext |= EXT_PENDING;
            self.store.register(slot);
            if o.tif == TimeInForce::Gtd {
                self.store.add_expiry(slot, x.expire_ts_ns);
            }
            let book = &mut self.books[bi];
            let list = trigger_list(tr.source, tr.direction);
            ext::insert::<true>(&mut self.store.ext, &mut book.trg_root[list], slot);
            if list < 2 {
                crate::triggers::refresh_trigger_cache(book, &mut self.store);
            }
            return true;
        }
        if price != o.price {
            sink.emit(Event::Slid {
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                order_id,
                instrument: o.instrument,
                requested_price: o.price,
                price,
            });
        }
        false
    }
}
