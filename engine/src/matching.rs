//! The matching loop: an incoming (taker) order against the opposite side of a book, with
//! self-trade prevention, and the fill-or-kill pre-check that mirrors it.

use crate::book::Book;
use crate::event::{CancelReason, Event, EventSink};
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
/// settled.
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
) {
    let instrument = book.id();
    let opp = book.side_mut(t.side.opposite());
    while t.remaining > 0 {
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
        sink.emit(Event::Fill {
            instrument,
            trade_id,
            price: maker.price,
            qty,
            taker_side: t.side,
            maker_account: maker.account,
            maker_cl_ord_id: maker.cl_ord_id,
            maker_order_id: maker.order_id,
            maker_leaves,
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
        if maker_leaves == 0 {
            opp.pop_filled_head(&mut store.slab.orders, best);
            store.release(maker_slot);
        }
    }
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
    sink.emit(Event::Cancelled {
        account: maker.account,
        cl_ord_id: maker.cl_ord_id,
        order_id: maker.order_id,
        instrument,
        cancelled_qty: reduce_maker,
        leaves_qty: maker_left,
        reason: CancelReason::SelfTradePrevention,
    });
    if RISK {
        risk.release(bi, risk.leg(maker, maker_slot), reduce_maker);
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
