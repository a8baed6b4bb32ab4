//! Unit tests: self-trade prevention in every mode, for new orders, FOK and crossing replaces.

mod common;

use common::book::*;
use tpx_engine::*;
use CancelReason as C;
use RejectReason as R;
use Side::{Buy, Sell};

const STP: CancelReason = C::SelfTradePrevention;

/// Asks: account 2 @100 x4 (order 1), account 1 @100 x3 (order 2), account 2 @101 x5 (order 3).
fn book_with_own_order_second() -> H {
    let mut h = H::new();
    h.gtc(2, 1, Sell, 100, 4);
    h.gtc(1, 2, Sell, 100, 3);
    h.gtc(2, 3, Sell, 101, 5);
    h
}

fn taker(qty: u64, stp: StpMode) -> NewOrder {
    NewOrder {
        stp,
        ..limit(1, 10, Buy, 101, qty)
    }
}

#[test]
fn expire_taker_cancels_the_incoming_remainder() {
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(taker(10, StpMode::ExpireTaker)),
        vec![
            accepted(1, 10, 4, Buy, 101, 10),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 6)),
            cancelled(1, 10, 4, 6, 0, STP),
        ]
    );
    assert_eq!(
        h.book(),
        vec![(2, 1, 2, Sell, 100, 3), (3, 2, 3, Sell, 101, 5)]
    );
}

#[test]
fn expire_maker_cancels_the_resting_order_and_goes_on() {
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(taker(10, StpMode::ExpireMaker)),
        vec![
            accepted(1, 10, 4, Buy, 101, 10),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 6)),
            cancelled(1, 2, 2, 3, 0, STP),
            book_delete(2),
            fill(2, 101, 5, Buy, (2, 3, 3, 0), (1, 10, 4, 1)),
            book_add(4, Buy, 101, 1),
        ]
    );
    assert_eq!(h.book(), vec![(4, 1, 10, Buy, 101, 1)]);
}

#[test]
fn expire_both_cancels_maker_then_taker() {
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(taker(10, StpMode::ExpireBoth)),
        vec![
            accepted(1, 10, 4, Buy, 101, 10),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 6)),
            cancelled(1, 2, 2, 3, 0, STP),
            book_delete(2),
            cancelled(1, 10, 4, 6, 0, STP),
        ]
    );
    assert_eq!(h.book(), vec![(3, 2, 3, Sell, 101, 5)]);
}

#[test]
fn decrement_and_cancel_with_the_larger_taker_goes_on() {
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(taker(10, StpMode::DecrementAndCancel)),
        vec![
            accepted(1, 10, 4, Buy, 101, 10),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 6)),
            cancelled(1, 2, 2, 3, 0, STP),
            book_delete(2),
            cancelled(1, 10, 4, 3, 3, STP),
            fill(2, 101, 3, Buy, (2, 3, 3, 2), (1, 10, 4, 0)),
        ]
    );
    assert_eq!(h.book(), vec![(3, 2, 3, Sell, 101, 2)]);
}

#[test]
fn decrement_and_cancel_with_the_larger_maker_reduces_it() {
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(taker(5, StpMode::DecrementAndCancel)),
        vec![
            accepted(1, 10, 4, Buy, 101, 5),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 1)),
            cancelled(1, 2, 2, 1, 2, STP),
            book_reduce(2, 1),
            cancelled(1, 10, 4, 1, 0, STP),
        ]
    );
    assert_eq!(
        h.book(),
        vec![(2, 1, 2, Sell, 100, 2), (3, 2, 3, Sell, 101, 5)]
    );
}

#[test]
fn decrement_and_cancel_with_equal_quantities_cancels_both() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 3);
    let t = NewOrder {
        stp: StpMode::DecrementAndCancel,
        ..limit(1, 2, Buy, 100, 3)
    };
    assert_eq!(
        h.new_order(t),
        vec![
            accepted(1, 2, 2, Buy, 100, 3),
            cancelled(1, 1, 1, 3, 0, STP),
            book_delete(1),
            cancelled(1, 2, 2, 3, 0, STP),
        ]
    );
    assert_eq!(h.e.live_orders(), 0);
}

#[test]
fn no_stp_lets_an_account_trade_with_itself_whatever_the_maker_mode() {
    let mut h = H::new();
    let maker = NewOrder {
        stp: StpMode::ExpireTaker,
        ..limit(1, 1, Sell, 100, 3)
    };
    h.new_order(maker);
    assert_eq!(
        h.gtc(1, 2, Buy, 100, 2),
        vec![
            accepted(1, 2, 2, Buy, 100, 2),
            fill(1, 100, 2, Buy, (1, 1, 1, 1), (1, 2, 2, 0)),
        ]
    );
}

#[test]
fn fok_walk_skips_own_orders_under_expire_maker_and_stops_otherwise() {
    let fok = |qty, stp| NewOrder {
        tif: TimeInForce::Fok,
        ..taker(qty, stp)
    };
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(fok(10, StpMode::ExpireMaker)),
        vec![rejected(1, 10, R::FokNotFillable)]
    );
    for stp in [
        StpMode::ExpireTaker,
        StpMode::ExpireBoth,
        StpMode::DecrementAndCancel,
    ] {
        assert_eq!(
            h.new_order(fok(5, stp)),
            vec![rejected(1, 10, R::FokNotFillable)]
        );
    }
    assert_eq!(
        h.new_order(fok(9, StpMode::ExpireMaker)),
        vec![
            accepted(1, 10, 4, Buy, 101, 9),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 5)),
            cancelled(1, 2, 2, 3, 0, STP),
            book_delete(2),
            fill(2, 101, 5, Buy, (2, 3, 3, 0), (1, 10, 4, 0)),
        ]
    );
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(fok(4, StpMode::ExpireTaker)),
        vec![
            accepted(1, 10, 4, Buy, 101, 4),
            fill(1, 100, 4, Buy, (2, 1, 1, 0), (1, 10, 4, 0)),
        ]
    );
    // Without STP the account's own order counts.
    let mut h = book_with_own_order_second();
    assert_eq!(
        h.new_order(fok(13, StpMode::None)),
        vec![rejected(1, 10, R::FokNotFillable)]
    );
    assert_eq!(h.new_order(fok(12, StpMode::None)).len(), 4);
    assert_eq!(h.e.live_orders(), 0);
}

#[test]
fn a_crossing_replace_uses_its_own_stp_mode() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 3); // 1
    let bid = NewOrder {
        stp: StpMode::ExpireMaker,
        ..limit(1, 2, Buy, 99, 5)
    };
    h.new_order(bid); // 2
    assert_eq!(
        h.replace(1, 2, 3, 100, 5),
        vec![
            replaced(1, 2, 3, 2, 100, 5, false),
            book_delete(2),
            cancelled(1, 1, 1, 3, 0, STP),
            book_delete(1),
            book_add(2, Buy, 100, 5),
        ]
    );
    // ExpireTaker on a replace removes the replaced order.
    let ask = NewOrder {
        stp: StpMode::ExpireTaker,
        ..limit(1, 4, Sell, 101, 1)
    };
    h.new_order(ask); // 3
    assert_eq!(
        h.replace(1, 4, 4, 100, 1),
        vec![
            replaced(1, 4, 4, 3, 100, 1, false),
            book_delete(3),
            cancelled(1, 4, 3, 1, 0, STP),
        ]
    );
    assert_eq!(h.book(), vec![(2, 1, 3, Buy, 100, 5)]);
    assert_eq!(h.cancel(1, 4, 0), vec![rejected(1, 4, R::UnknownOrder)]);
}
