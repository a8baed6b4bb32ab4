//! The matching loop: an incoming (taker) order against the opposite side of a book, with
//! self-trade prevention, and the fill-or-kill pre-check that mirrors it.

use crate::book::Book;
use crate::event::{CancelReason, Event, EventSink};
use crate::ext::{EXT_ICEBERG, EXT_OCO};
use crate::ladder::Ladder;
use crate::risk::orders::{FillInfo, Leg};
use crate::risk::state::Risk;
use crate::slab::{Order, NIL};
use crate::store::OrderStore;
use crate::types::*;

/// The incoming side of a match: a new order, or a replaced order that crosses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taker {
    pub order_id: OrderId,
    pub account: AccountId,
    pub cl_ord_id: ClientOrderId,
    pub side: Side,
    pub stp: StpMode,
    pub reduce_only: bool,
    /// Ladder index of the limit (or protection) price.
    pub limit: u32,
    /// Quantity still to match.
    pub remaining: QtyLots,
    /// What the taker holds per lot (risk on; 0 with risk off).
    pub per_lot: u64,
    /// The taker's slot, and its OCO leg's slot (`NIL`: none; cancelled at its first fill).
    pub slot: u32,
    pub oco: u32,
}

impl Taker {
    #[inline]
    pub(crate) fn leg(&self) -> Leg {
        Leg {
            account: self.account,
            side: self.side,
            reduce_only: self.reduce_only,
            per_lot: self.per_lot,
        }
    }
}

/// Is the opposite ladder's level `idx` at an acceptable price for a taker of `side` limited
/// at `limit`? (`idx == NIL` never is.)
#[inline]
fn acceptable(side: Side, idx: u32, limit: u32) -> bool {
    match side {
        Side::Buy => idx <= limit,
        Side::Sell => idx != NIL && idx >= limit,
    }
}

/// Matches `t` against the opposite side of `book` (engine book index `bi`) while it has
/// quantity left and the best opposite price is acceptable. On return `t.remaining` is what is
/// left to rest or cancel (0 if self-trade prevention cancelled the taker). With risk on, a
/// reduce-only maker is first trimmed to what its position lets it reduce, and each fill is
/// settled. Returns whether the trades may fire a last-price trigger (see `Book::note_trades`).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn match_taker<const RISK: bool, S: EventSink>(
    book: &mut Book,
    bi: usize,
    store: &mut OrderStore,
    risk: &mut Risk,
    next_trade_id: &mut TradeId,
    t: &mut Taker,
    sink: &mut S,
) -> bool {
    let instrument = book.id();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    while t.remaining > 0 {
        let opp = book.side_mut(t.side.opposite());
        let best = opp.best;
        if !acceptable(t.side, best, t.limit) {
            break;
        }
        let maker_slot = opp.levels[best as usize].head;
        let maker = store.slab.orders[maker_slot as usize];
        if RISK {
            // Settlement reads the maker's position and balances: start loading them now.
            risk.prefetch_fill(bi, maker.account);
        }
        if maker.account == t.account && t.stp != StpMode::None {
            if !prevent_self_trade::<RISK, S>(
                instrument, opp, store, risk, bi, best, maker_slot, &maker, t, sink,
            ) {
                break;
            }
            continue;
        }
        if RISK && maker.reduce_only {
            let cap = risk.ro_capacity(bi, maker.account, maker.side);
            if cap < maker.leaves {
                trim_head(
                    instrument,
                    opp,
                    store,
                    risk,
                    bi,
                    best,
                    maker_slot,
                    &maker,
                    maker.leaves - cap,
                    sink,
                );
                continue;
            }
        }
        let qty = maker.leaves.min(t.remaining);
        let maker_leaves = maker.leaves - qty;
        t.remaining -= qty;
        let trade_id = *next_trade_id;
        *next_trade_id += 1;
        lo = lo.min(maker.price);
        hi = hi.max(maker.price);
        sink.emit(Event::Fill {
            instrument,
            trade_id,
            price: maker.price,
            qty,
            taker_side: t.side,
            maker_account: maker.account,
            maker_cl_ord_id: maker.cl_ord_id,
            maker_order_id: maker.order_id,
            // An iceberg's whole remainder, hidden part included (a private field: market
            // data carries only `qty`).
            maker_leaves: if maker.ext & EXT_ICEBERG != 0 {
                maker_leaves + store.ext[maker_slot as usize].hidden
            } else {
                maker_leaves
            },
            taker_account: t.account,
            taker_cl_ord_id: t.cl_ord_id,
            taker_order_id: t.order_id,
            taker_leaves: t.remaining,
        });
        if RISK {
            let fill = FillInfo {
                instrument,
                trade_id,
                price: maker.price,
                qty,
                maker: risk.leg(&maker, maker_slot),
                taker: t.leg(),
            };
            risk.settle(bi, &fill, sink);
        }
        opp.reduce(best, qty);
        store.slab.orders[maker_slot as usize].leaves = maker_leaves;
        if maker.ext != 0 {
            maker_ext::<S>(book, bi, store, risk, best, maker_slot, maker_leaves, sink);
        } else if maker_leaves == 0 {
            opp.pop_filled_head(&mut store.slab.orders, best);
            store.release(maker_slot);
        }
        if t.oco != NIL {
            taker_oco::<S>(book, bi, store, risk, t, sink);
        }
    }
    // A buy taker walks the asks up (its last trade is the highest), a sell taker down.
    let last = if t.side == Side::Buy { hi } else { lo };
    hi != i64::MIN && book.note_trades(lo, hi, last)
}

/// After a fill of a maker with extension flags (its leaves already written): an OCO leg
/// cancels its other leg; an iceberg whose shown quantity is gone shows the next slice at the
/// back of its level (`Refilled`, `BookAdd`) or leaves; any other maker with no leaves leaves.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn maker_ext<S: EventSink>(
    book: &mut Book,
    bi: usize,
    store: &mut OrderStore,
    risk: &mut Risk,
    best: u32,
    maker_slot: u32,
    maker_leaves: QtyLots,
    sink: &mut S,
) {
    let flags = store.slab.orders[maker_slot as usize].ext;
    if flags & EXT_OCO != 0 {
        let sib = crate::triggers::unpair(store, maker_slot);
        crate::triggers::remove_live(book, bi, store, risk, sib, CancelReason::Oco, sink);
    }
    if maker_leaves > 0 {
        return;
    }
    let side = store.slab.orders[maker_slot as usize].side;
    let ladder = book.side_mut(side);
    ladder.pop_filled_head(&mut store.slab.orders, best);
    let e = &mut store.ext[maker_slot as usize];
    if flags & EXT_ICEBERG == 0 || e.hidden == 0 {
        store.release(maker_slot);
        return;
    }
    let show = e.display.min(e.hidden);
    e.hidden -= show;
    let hidden = e.hidden;
    let o = &mut store.slab.orders[maker_slot as usize];
    o.leaves = show;
    let (account, cl_ord_id, order_id, price) = (o.account, o.cl_ord_id, o.order_id, o.price);
    ladder.push_back(&mut store.slab.orders, maker_slot, best);
    let instrument = book.id();
    sink.emit(Event::Refilled {
        account,
        cl_ord_id,
        order_id,
        instrument,
        display_qty: show,
        hidden_qty: hidden,
    });
    sink.emit(Event::BookAdd {
        instrument,
        order_id,
        side,
        price,
        qty: show,
    });
}

/// The first fill of a taker that is an OCO leg: its other leg is cancelled.
#[cold]
#[inline(never)]
fn taker_oco<S: EventSink>(
    book: &mut Book,
    bi: usize,
    store: &mut OrderStore,
    risk: &mut Risk,
    t: &mut Taker,
    sink: &mut S,
) {
    t.oco = NIL;
    if store.slab.orders[t.slot as usize].ext & EXT_OCO == 0 {
        // The pair was dissolved during this match (the other leg left by self-trade
        // prevention or a reduce-only trim).
        return;
    }
    let sib = crate::triggers::unpair(store, t.slot);
    crate::triggers::remove_live(book, bi, store, risk, sib, CancelReason::Oco, sink);
}

/// Applies the taker's STP mode to the maker at the head of level `best`. Returns whether
/// matching goes on.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn prevent_self_trade<const RISK: bool, S: EventSink>(
    instrument: InstrumentId,
    opp: &mut Ladder,
    store: &mut OrderStore,
    risk: &mut Risk,
    bi: usize,
    best: u32,
    maker_slot: u32,
    maker: &Order,
    t: &mut Taker,
    sink: &mut S,
) -> bool {
    let reduce_maker = match t.stp {
        StpMode::None => return true,
        StpMode::ExpireTaker => {
            cancel_taker::<RISK, S>(instrument, risk, bi, t, t.remaining, sink);
            return false;
        }
        StpMode::ExpireMaker | StpMode::ExpireBoth => maker.leaves,
        StpMode::DecrementAndCancel => maker.leaves.min(t.remaining),
    };
    let maker_left = maker.leaves - reduce_maker;
    // An iceberg whose shown part is gone leaves whole: its hidden part is cancelled too.
    let hidden = if maker.ext & EXT_ICEBERG != 0 {
        store.ext[maker_slot as usize].hidden
    } else {
        0
    };
    let (cancelled, left_total) = if maker_left == 0 {
        (reduce_maker + hidden, 0)
    } else {
        (reduce_maker, maker_left + hidden)
    };
    sink.emit(Event::Cancelled {
        account: maker.account,
        cl_ord_id: maker.cl_ord_id,
        order_id: maker.order_id,
        instrument,
        cancelled_qty: cancelled,
        leaves_qty: left_total,
        reason: CancelReason::SelfTradePrevention,
    });
    if RISK {
        risk.release(bi, risk.leg(maker, maker_slot), cancelled);
    }
    opp.reduce(best, reduce_maker);
    store.slab.orders[maker_slot as usize].leaves = maker_left;
    if maker_left == 0 {
        sink.emit(Event::BookDelete {
            instrument,
            order_id: maker.order_id,
        });
        opp.pop_filled_head(&mut store.slab.orders, best);
        store.release(maker_slot);
    } else {
        sink.emit(Event::BookReduce {
            instrument,
            order_id: maker.order_id,
            qty: reduce_maker,
        });
    }
    match t.stp {
        StpMode::ExpireBoth => {
            cancel_taker::<RISK, S>(instrument, risk, bi, t, t.remaining, sink);
            false
        }
        StpMode::DecrementAndCancel => {
            cancel_taker::<RISK, S>(instrument, risk, bi, t, reduce_maker, sink);
            t.remaining > 0
        }
        _ => true,
    }
}

/// Cancels `qty` of the taker's remaining quantity by self-trade prevention.
#[inline]
fn cancel_taker<const RISK: bool, S: EventSink>(
    instrument: InstrumentId,
    risk: &mut Risk,
    bi: usize,
    t: &mut Taker,
    qty: QtyLots,
    sink: &mut S,
) {
    t.remaining -= qty;
    if RISK {
        risk.release(bi, t.leg(), qty);
    }
    sink.emit(Event::Cancelled {
        account: t.account,
        cl_ord_id: t.cl_ord_id,
        order_id: t.order_id,
        instrument,
        cancelled_qty: qty,
        leaves_qty: t.remaining,
        reason: CancelReason::SelfTradePrevention,
    });
}

/// Cuts `cut` lots off the reduce-only maker at the head of level `best` (risk on: its
/// position no longer lets it reduce that much): `Cancelled(ReduceOnly)`, then `BookDelete` if
/// nothing is left, else `BookReduce`.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn trim_head<S: EventSink>(
    instrument: InstrumentId,
    opp: &mut Ladder,
    store: &mut OrderStore,
    risk: &mut Risk,
    bi: usize,
    best: u32,
    maker_slot: u32,
    maker: &Order,
    cut: QtyLots,
    sink: &mut S,
) {
    let left = maker.leaves - cut;
    sink.emit(Event::Cancelled {
        account: maker.account,
        cl_ord_id: maker.cl_ord_id,
        order_id: maker.order_id,
        instrument,
        cancelled_qty: cut,
        leaves_qty: left,
        reason: CancelReason::ReduceOnly,
    });
    risk.release(bi, risk.leg(maker, maker_slot), cut);
    opp.reduce(best, cut);
    store.slab.orders[maker_slot as usize].leaves = left;
    if left == 0 {
        sink.emit(Event::BookDelete {
            instrument,
            order_id: maker.order_id,
        });
        opp.pop_filled_head(&mut store.slab.orders, best);
        store.release(maker_slot);
    } else {
        sink.emit(Event::BookReduce {
            instrument,
            order_id: maker.order_id,
            qty: cut,
        });
    }
}

/// Step 9 of new-order validation: can a fill-or-kill order of `qty` be filled in full? Walks
/// the opposite side in priority order at acceptable prices; orders of the same account are
/// skipped under `ExpireMaker` and end the walk under any other mode but `None`. With
/// `skip_reduce_only` (risk on) reduce-only makers count for nothing: matching may trim them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fok_fillable(
    book: &Book,
    orders: &[Order],
    side: Side,
    limit: u32,
    account: AccountId,
    stp: StpMode,
    qty: QtyLots,
    skip_reduce_only: bool,
) -> bool {
    let opp = book.side(side.opposite());
    let mut need = qty;
    let mut idx = opp.best;
    while acceptable(side, idx, limit) {
        for slot in opp.iter_level_orders(orders, idx) {
            let m = &orders[slot as usize];
            if m.account == account && stp != StpMode::None {
                if stp == StpMode::ExpireMaker {
                    continue;
                }
                return false;
            }
            if skip_reduce_only && m.reduce_only {
                continue;
            }
            if m.leaves >= need {
                return true;
            }
            need -= m.leaves;
        }
        idx = opp.next_worse(idx);
    }
    false
}
