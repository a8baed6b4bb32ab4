//! New orders: validation (steps 1–9 of the contract), acceptance, matching and the remainder.

use crate::command::NewOrder;
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::matching::{fok_fillable, match_taker, Taker};
use crate::risk::orders::Hold;
use crate::slab::{Order, NIL};
use crate::types::*;

impl Engine {
    /// Validates a new order (steps 1-9; with `RISK`, the FOK walk skips reduce-only makers,
    /// and step 10 checks risk); on success returns its book index, limit ladder index and
    /// what it must hold.
    #[inline(always)]
    fn validate_new<const RISK: bool>(
        &self,
        o: &NewOrder,
    ) -> Result<(usize, u32, Hold), RejectReason> {
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
        if o.kind == OrderKind::Market && (o.tif == TimeInForce::Gtc || o.post_only) {
            return Err(RejectReason::InvalidOrderType);
        }
        book.check_price(o.price)?;
        book.check_qty(o.price, o.qty)?;
        if self.store.contains(o.account, o.cl_ord_id) {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let limit = book.index_of(o.price);
        if o.post_only && book.crosses(o.side, limit) {
            return Err(RejectReason::PostOnlyWouldTake);
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
                o.price,
                o.qty,
                crossing_bid,
            )?;
        }
        Ok((bi, limit, hold))
    }

    #[inline]
    pub(crate) fn on_new_order<const RISK: bool, S: EventSink>(
        &mut self,
        o: &NewOrder,
        sink: &mut S,
    ) {
        let reject = |reason| Event::Rejected {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            reason,
        };
        let (bi, limit, hold) = match self.validate_new::<RISK>(o) {
            Ok(v) => v,
            Err(reason) => return sink.emit(reject(reason)),
        };
        let order_id = self.next_order_id;
        let Some(slot) = self.store.slab.alloc(Order {
            leaves: o.qty,
            price: o.price,
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
        }) else {
            // Unreachable: validation checked for a free slot.
            return sink.emit(Event::Rejected {
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                reason: RejectReason::BookFull,
            });
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
        };
        if RISK {
            self.risk.on_accept(bi, t.leg(), slot, o.qty, hold);
        }
        let book = &mut self.books[bi];
        match_taker::<RISK, S>(
            book,
            bi,
            &mut self.store,
            &mut self.risk,
            &mut self.next_trade_id,
            &mut t,
            sink,
        );
        if t.remaining == 0 {
            self.store.slab.free(slot);
            return;
        }
        let reason = if o.kind == OrderKind::Market {
            CancelReason::MarketProtection
        } else if o.tif != TimeInForce::Gtc {
            CancelReason::ImmediateOrCancel
        } else {
            self.store.order_mut(slot).leaves = t.remaining;
            book.side_mut(o.side)
                .push_back(&mut self.store.slab.orders, slot, limit);
            self.store.register(slot);
            return sink.emit(Event::BookAdd {
                instrument: o.instrument,
                order_id,
                side: o.side,
                price: o.price,
                qty: t.remaining,
            });
        };
        if RISK {
            self.risk.release(bi, t.leg(), t.remaining);
        }
        self.store.slab.free(slot);
        sink.emit(Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id,
            instrument: o.instrument,
            cancelled_qty: t.remaining,
            leaves_qty: 0,
            reason,
        });
    }
}
