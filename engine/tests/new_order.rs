//! Unit tests: new orders of every type, and every new-order reject reason.

mod common;

use common::book::*;
use tpx_engine::*;
use CancelReason as C;
use RejectReason as R;
use Side::{Buy, Sell};

#[test]
fn gtc_rests_then_a_crossing_gtc_sweeps_in_price_time_priority() {
    let mut h = H::new();
    assert_eq!(
        h.gtc(1, 1, Sell, 101, 5),
        vec![accepted(1, 1, 1, Sell, 101, 5), book_add(1, Sell, 101, 5)]
    );
    h.gtc(1, 2, Sell, 100, 3);
    h.gtc(1, 3, Sell, 100, 4);
    assert_eq!(h.e.best_ask(INST), Some((100, 7)));
    assert_eq!(
        h.gtc(2, 1, Buy, 101, 10),
        vec![
            accepted(2, 1, 4, Buy, 101, 10),
            fill(1, 100, 3, Buy, (1, 2, 2, 0), (2, 1, 4, 7)),
            fill(2, 100, 4, Buy, (1, 3, 3, 0), (2, 1, 4, 3)),
            fill(3, 101, 3, Buy, (1, 1, 1, 2), (2, 1, 4, 0)),
        ]
    );
    assert_eq!(h.book(), vec![(1, 1, 1, Sell, 101, 2)]);
    // A remainder rests with BookAdd after its fills.
    assert_eq!(
        h.gtc(2, 2, Buy, 101, 5),
        vec![
            accepted(2, 2, 5, Buy, 101, 5),
            fill(4, 101, 2, Buy, (1, 1, 1, 0), (2, 2, 5, 3)),
            book_add(5, Buy, 101, 3),
        ]
    );
    assert_eq!(h.book(), vec![(5, 2, 2, Buy, 101, 3)]);
    assert_eq!(h.e.best_bid(INST), Some((101, 3)));
    assert_eq!(h.e.best_ask(INST), None);
    assert_eq!(h.e.live_orders(), 1);
}

#[test]
fn a_sell_taker_hits_bids_best_first_and_stops_at_its_limit() {
    let mut h = H::new();
    h.gtc(1, 1, Buy, 99, 2);
    h.gtc(1, 2, Buy, 100, 2);
    h.gtc(1, 3, Buy, 98, 2);
    assert_eq!(
        h.gtc(2, 1, Sell, 99, 10),
        vec![
            accepted(2, 1, 4, Sell, 99, 10),
            fill(1, 100, 2, Sell, (1, 2, 2, 0), (2, 1, 4, 8)),
            fill(2, 99, 2, Sell, (1, 1, 1, 0), (2, 1, 4, 6)),
            book_add(4, Sell, 99, 6),
        ]
    );
    assert_eq!(
        h.book(),
        vec![(3, 1, 3, Buy, 98, 2), (4, 2, 1, Sell, 99, 6)]
    );
}

#[test]
fn ioc_remainder_is_cancelled() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 3);
    let mut o = limit(2, 9, Buy, 100, 5);
    o.tif = TimeInForce::Ioc;
    assert_eq!(
        h.new_order(o),
        vec![
            accepted(2, 9, 2, Buy, 100, 5),
            fill(1, 100, 3, Buy, (1, 1, 1, 0), (2, 9, 2, 2)),
            cancelled(2, 9, 2, 2, 0, C::ImmediateOrCancel),
        ]
    );
    // With nothing to match, all of it is cancelled.
    o.cl_ord_id = 10;
    assert_eq!(
        h.new_order(o),
        vec![
            accepted(2, 10, 3, Buy, 100, 5),
            cancelled(2, 10, 3, 5, 0, C::ImmediateOrCancel),
        ]
    );
    assert_eq!(h.e.live_orders(), 0);
}

#[test]
fn fok_fills_in_full_or_is_rejected_without_consuming_an_id() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 3);
    h.gtc(1, 2, Sell, 101, 3);
    let mut o = limit(2, 1, Buy, 101, 7);
    o.tif = TimeInForce::Fok;
    assert_eq!(h.new_order(o), vec![rejected(2, 1, R::FokNotFillable)]);
    o.price = 100;
    o.qty = 4;
    assert_eq!(h.new_order(o), vec![rejected(2, 1, R::FokNotFillable)]);
    o.price = 101;
    o.qty = 6;
    assert_eq!(
        h.new_order(o),
        vec![
            accepted(2, 1, 3, Buy, 101, 6),
            fill(1, 100, 3, Buy, (1, 1, 1, 0), (2, 1, 3, 3)),
            fill(2, 101, 3, Buy, (1, 2, 2, 0), (2, 1, 3, 0)),
        ]
    );
    assert_eq!(h.e.live_orders(), 0);
}

#[test]
fn post_only_rests_or_is_rejected_if_it_would_take() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 3);
    h.gtc(1, 2, Buy, 98, 3);
    let mut o = limit(2, 1, Buy, 100, 1);
    o.post_only = true;
    assert_eq!(h.new_order(o), vec![rejected(2, 1, R::PostOnlyWouldTake)]);
    o.price = 99;
    assert_eq!(
        h.new_order(o),
        vec![accepted(2, 1, 3, Buy, 99, 1), book_add(3, Buy, 99, 1)]
    );
    let mut s = limit(2, 2, Sell, 99, 1);
    s.post_only = true;
    assert_eq!(h.new_order(s), vec![rejected(2, 2, R::PostOnlyWouldTake)]);
    s.price = 100;
    assert_eq!(
        h.new_order(s),
        vec![accepted(2, 2, 4, Sell, 100, 1), book_add(4, Sell, 100, 1)]
    );
}

#[test]
fn market_order_trades_up_to_its_protection_price() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 2);
    h.gtc(1, 2, Sell, 102, 2);
    let mut m = limit(2, 1, Buy, 101, 5);
    m.kind = OrderKind::Market;
    m.tif = TimeInForce::Ioc;
    assert_eq!(
        h.new_order(m),
        vec![
            accepted(2, 1, 3, Buy, 101, 5),
            fill(1, 100, 2, Buy, (1, 1, 1, 0), (2, 1, 3, 3)),
            cancelled(2, 1, 3, 3, 0, C::MarketProtection),
        ]
    );
    // Market FOK is allowed; it fills in full.
    m.cl_ord_id = 2;
    m.tif = TimeInForce::Fok;
    m.price = 102;
    m.qty = 2;
    assert_eq!(
        h.new_order(m),
        vec![
            accepted(2, 2, 4, Buy, 102, 2),
            fill(2, 102, 2, Buy, (1, 2, 2, 0), (2, 2, 4, 0)),
        ]
    );
    // Market GTC and market post-only are invalid order types.
    m.tif = TimeInForce::Gtc;
    assert_eq!(h.new_order(m), vec![rejected(2, 2, R::InvalidOrderType)]);
    m.tif = TimeInForce::Ioc;
    m.post_only = true;
    assert_eq!(h.new_order(m), vec![rejected(2, 2, R::InvalidOrderType)]);
}

#[test]
fn every_new_order_reject_reason() {
    let mut cfg = config();
    cfg.instruments[0].min_qty = 2;
    cfg.instruments[0].max_qty = 50;
    cfg.instruments[0].min_notional = 1_000;
    cfg.max_orders = 2;
    let mut h = H::with(cfg);
    let ok = limit(1, 1, Buy, 100, 10);
    let cases: Vec<(NewOrder, RejectReason)> = vec![
        (NewOrder { account: 8, ..ok }, R::UnknownAccount),
        (
            NewOrder {
                instrument: 99,
                ..ok
            },
            R::UnknownInstrument,
        ),
        (
            NewOrder {
                kind: OrderKind::Market,
                ..ok
            },
            R::InvalidOrderType,
        ),
        (NewOrder { price: 0, ..ok }, R::InvalidPrice),
        (NewOrder { price: -5, ..ok }, R::InvalidPrice),
        (NewOrder { price: 1_001, ..ok }, R::InvalidPrice),
        (NewOrder { qty: 0, ..ok }, R::InvalidQuantity),
        (NewOrder { qty: 1, ..ok }, R::InvalidQuantity),
        (NewOrder { qty: 51, ..ok }, R::InvalidQuantity),
        (NewOrder { qty: 9, ..ok }, R::BelowMinNotional),
    ];
    for (o, reason) in cases {
        assert_eq!(
            h.new_order(o),
            vec![rejected(o.account, 1, reason)],
            "{o:?}"
        );
    }
    // Exactly the minimum notional is fine.
    assert_eq!(h.new_order(ok)[0], accepted(1, 1, 1, Buy, 100, 10));
    assert_eq!(
        h.new_order(ok),
        vec![rejected(1, 1, R::DuplicateClientOrderId)]
    );
    // The same cl_ord_id on another account is no duplicate.
    h.new_order(limit(2, 1, Sell, 200, 10));
    assert_eq!(h.e.live_orders(), 2);
    let third = limit(1, 3, Buy, 101, 10);
    assert_eq!(h.new_order(third), vec![rejected(1, 3, R::BookFull)]);
    // Even an order that would not rest needs a slot.
    let ioc = NewOrder {
        tif: TimeInForce::Ioc,
        ..third
    };
    assert_eq!(h.new_order(ioc), vec![rejected(1, 3, R::BookFull)]);
    h.cancel(2, 1, 0);
    assert_eq!(h.new_order(third)[0], accepted(1, 3, 3, Buy, 101, 10));
    // Halted comes after the instrument check and before everything else but the account.
    h.run(Command::Halt { instrument: INST });
    let bad = NewOrder {
        price: 0,
        qty: 0,
        ..limit(1, 1, Buy, 1, 1)
    };
    assert_eq!(h.new_order(bad), vec![rejected(1, 1, R::InstrumentHalted)]);
    let bad_account = NewOrder {
        account: 100,
        ..bad
    };
    assert_eq!(
        h.new_order(bad_account),
        vec![rejected(100, 1, R::UnknownAccount)]
    );
}

#[test]
fn the_first_failing_check_wins() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 5);
    let base = limit(1, 1, Buy, 100, 5);
    // Invalid order type before invalid price and quantity.
    let o = NewOrder {
        kind: OrderKind::Market,
        price: 0,
        qty: 0,
        ..base
    };
    assert_eq!(h.new_order(o), vec![rejected(1, 1, R::InvalidOrderType)]);
    // Invalid price before invalid quantity and duplicate.
    let o = NewOrder {
        price: 2_000,
        qty: 0,
        ..base
    };
    assert_eq!(h.new_order(o), vec![rejected(1, 1, R::InvalidPrice)]);
    // Invalid quantity before duplicate.
    let o = NewOrder { qty: 0, ..base };
    assert_eq!(h.new_order(o), vec![rejected(1, 1, R::InvalidQuantity)]);
    // Duplicate before post-only.
    let o = NewOrder {
        post_only: true,
        ..base
    };
    assert_eq!(
        h.new_order(o),
        vec![rejected(1, 1, R::DuplicateClientOrderId)]
    );
    // Post-only before FOK.
    let o = NewOrder {
        cl_ord_id: 2,
        post_only: true,
        tif: TimeInForce::Fok,
        qty: 50,
        ..base
    };
    assert_eq!(h.new_order(o), vec![rejected(1, 2, R::PostOnlyWouldTake)]);
    // A post-only IOC that does not cross is accepted and cancelled at once.
    let o = NewOrder {
        cl_ord_id: 3,
        post_only: true,
        tif: TimeInForce::Ioc,
        price: 99,
        ..base
    };
    assert_eq!(
        h.new_order(o),
        vec![
            accepted(1, 3, 2, Buy, 99, 5),
            cancelled(1, 3, 2, 5, 0, C::ImmediateOrCancel)
        ]
    );
}

#[test]
fn rejected_orders_consume_no_order_id_and_trades_number_from_one() {
    let mut h = H::new();
    h.new_order(NewOrder {
        qty: 0,
        ..limit(1, 1, Buy, 100, 1)
    });
    h.new_order(NewOrder {
        account: 99,
        ..limit(1, 1, Buy, 100, 1)
    });
    assert_eq!(h.gtc(1, 1, Buy, 100, 1)[0], accepted(1, 1, 1, Buy, 100, 1));
    assert_eq!(
        h.gtc(2, 1, Sell, 100, 1)[1],
        fill(1, 100, 1, Sell, (1, 1, 1, 0), (2, 1, 2, 0))
    );
}

#[test]
fn orders_on_two_instruments_do_not_meet() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 1);
    let o = NewOrder {
        instrument: OTHER,
        ..limit(2, 1, Buy, 100, 1)
    };
    assert_eq!(
        h.new_order(o),
        vec![
            Event::Accepted {
                account: 2,
                cl_ord_id: 1,
                order_id: 2,
                instrument: OTHER,
                side: Buy,
                price: 100,
                qty: 1
            },
            Event::BookAdd {
                instrument: OTHER,
                order_id: 2,
                side: Buy,
                price: 100,
                qty: 1
            },
        ]
    );
    assert_eq!(h.e.best_bid(OTHER), Some((100, 1)));
    assert_eq!(h.e.best_ask(INST), Some((100, 1)));
    assert_eq!(h.e.best_bid(INST), None);
    assert_eq!(h.e.best_bid(99), None);
}

#[test]
fn depth_and_l3_views() {
    let mut h = H::new();
    h.gtc(1, 1, Buy, 99, 2);
    h.gtc(2, 2, Buy, 99, 3);
    h.gtc(1, 3, Buy, 97, 1);
    h.gtc(1, 4, Sell, 101, 4);
    h.gtc(1, 5, Sell, 1_000, 4);
    assert_eq!(
        h.e.depth(INST, Buy, 10),
        vec![
            Level {
                price: 99,
                qty: 5,
                orders: 2
            },
            Level {
                price: 97,
                qty: 1,
                orders: 1
            }
        ]
    );
    assert_eq!(
        h.e.depth(INST, Buy, 1),
        vec![Level {
            price: 99,
            qty: 5,
            orders: 2
        }]
    );
    assert_eq!(h.e.depth(INST, Sell, 0), vec![]);
    assert_eq!(h.e.depth(99, Sell, 5), vec![]);
    assert_eq!(
        h.e.l3(INST),
        vec![
            L3Order {
                order_id: 1,
                account: 1,
                cl_ord_id: 1,
                side: Buy,
                price: 99,
                leaves: 2
            },
            L3Order {
                order_id: 2,
                account: 2,
                cl_ord_id: 2,
                side: Buy,
                price: 99,
                leaves: 3
            },
            L3Order {
                order_id: 3,
                account: 1,
                cl_ord_id: 3,
                side: Buy,
                price: 97,
                leaves: 1
            },
            L3Order {
                order_id: 4,
                account: 1,
                cl_ord_id: 4,
                side: Sell,
                price: 101,
                leaves: 4
            },
            L3Order {
                order_id: 5,
                account: 1,
                cl_ord_id: 5,
                side: Sell,
                price: 1_000,
                leaves: 4
            },
        ]
    );
    assert_eq!(h.e.l3(99), vec![]);
}
