//! Unit tests: cancel, cancel-down, replace and mass cancel.

mod common;

use common::book::*;
use tpx_engine::*;
use CancelReason as C;
use RejectReason as R;
use Side::{Buy, Sell};

#[test]
fn cancel_down_keeps_priority_then_cancel_whole() {
    let mut h = H::new();
    h.gtc(1, 1, Buy, 100, 10);
    h.gtc(2, 1, Buy, 100, 5);
    assert_eq!(
        h.cancel(1, 1, 4),
        vec![
            cancelled(1, 1, 1, 6, 4, C::UserRequested),
            book_reduce(1, 6)
        ]
    );
    assert_eq!(
        h.book(),
        vec![(1, 1, 1, Buy, 100, 4), (2, 2, 1, Buy, 100, 5)]
    );
    assert_eq!(h.e.best_bid(INST), Some((100, 9)));
    assert_eq!(h.cancel(1, 1, 4), vec![rejected(1, 1, R::InvalidModify)]);
    assert_eq!(h.cancel(1, 1, 5), vec![rejected(1, 1, R::InvalidModify)]);
    assert_eq!(
        h.cancel(1, 1, 0),
        vec![cancelled(1, 1, 1, 4, 0, C::UserRequested), book_delete(1)]
    );
    assert_eq!(h.cancel(1, 1, 0), vec![rejected(1, 1, R::UnknownOrder)]);
    assert_eq!(h.cancel(3, 1, 0), vec![rejected(3, 1, R::UnknownOrder)]);
    assert_eq!(h.cancel(8, 1, 0), vec![rejected(8, 1, R::UnknownAccount)]);
    assert_eq!(h.book(), vec![(2, 2, 1, Buy, 100, 5)]);
    // A cancelled cl_ord_id may be used again.
    assert_eq!(
        h.gtc(1, 1, Sell, 101, 1)[0],
        accepted(1, 1, 3, Sell, 101, 1)
    );
}

#[test]
fn cancels_work_while_halted() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 10);
    h.run(Command::Halt { instrument: INST });
    assert_eq!(
        h.cancel(1, 1, 3),
        vec![
            cancelled(1, 1, 1, 7, 3, C::UserRequested),
            book_reduce(1, 7)
        ]
    );
    assert_eq!(
        h.cancel(1, 1, 0),
        vec![cancelled(1, 1, 1, 3, 0, C::UserRequested), book_delete(1)]
    );
}

#[test]
fn replace_priority_rules() {
    let mut h = H::new();
    h.gtc(1, 1, Buy, 100, 5); // 1
    h.gtc(2, 1, Buy, 100, 5); // 2
    h.gtc(2, 2, Buy, 99, 5); // 3
    h.gtc(3, 1, Buy, 100, 5); // 4
                              // A new price: back of the new level.
    assert_eq!(
        h.replace(1, 1, 11, 99, 5),
        vec![
            replaced(1, 1, 11, 1, 99, 5, false),
            Event::BookReplace {
                instrument: INST,
                order_id: 1,
                price: 99,
                qty: 5
            },
        ]
    );
    assert_eq!(
        h.book(),
        vec![
            (2, 2, 1, Buy, 100, 5),
            (4, 3, 1, Buy, 100, 5),
            (3, 2, 2, Buy, 99, 5),
            (1, 1, 11, Buy, 99, 5)
        ]
    );
    // A larger quantity at the same price: back of the same level.
    assert_eq!(
        h.replace(2, 1, 1, 100, 6),
        vec![
            replaced(2, 1, 1, 2, 100, 6, false),
            Event::BookReplace {
                instrument: INST,
                order_id: 2,
                price: 100,
                qty: 6
            },
        ]
    );
    assert_eq!(
        h.book()[..2],
        [(4, 3, 1, Buy, 100, 5), (2, 2, 1, Buy, 100, 6)]
    );
    // A smaller quantity at the same price keeps priority.
    assert_eq!(
        h.replace(3, 1, 1, 100, 2),
        vec![replaced(3, 1, 1, 4, 100, 2, true), book_reduce(4, 3)]
    );
    // Only a new id: priority kept, nothing for market data.
    assert_eq!(
        h.replace(3, 1, 7, 100, 2),
        vec![replaced(3, 1, 7, 4, 100, 2, true)]
    );
    assert_eq!(
        h.book()[..2],
        [(4, 3, 7, Buy, 100, 2), (2, 2, 1, Buy, 100, 6)]
    );
    assert_eq!(h.cancel(3, 1, 0), vec![rejected(3, 1, R::UnknownOrder)]);
    assert_eq!(h.e.best_bid(INST), Some((100, 8)));
    assert_eq!(
        h.e.depth(INST, Buy, 5)[1],
        Level {
            price: 99,
            qty: 10,
            orders: 2
        }
    );
}

#[test]
fn crossing_replace_trades_as_a_taker_and_rests_its_remainder() {
    let mut h = H::new();
    h.gtc(1, 1, Buy, 100, 5); // 1
    h.gtc(2, 1, Sell, 101, 3); // 2
    h.gtc(2, 2, Sell, 102, 3); // 3
    h.gtc(2, 3, Sell, 105, 2); // 4
    assert_eq!(
        h.replace(1, 1, 5, 102, 8),
        vec![
            replaced(1, 1, 5, 1, 102, 8, false),
            book_delete(1),
            fill(1, 101, 3, Buy, (2, 1, 2, 0), (1, 5, 1, 5)),
            fill(2, 102, 3, Buy, (2, 2, 3, 0), (1, 5, 1, 2)),
            book_add(1, Buy, 102, 2),
        ]
    );
    assert_eq!(
        h.book(),
        vec![(1, 1, 5, Buy, 102, 2), (4, 2, 3, Sell, 105, 2)]
    );
    // Filled in full: it leaves the book.
    assert_eq!(
        h.replace(2, 3, 3, 102, 2),
        vec![
            replaced(2, 3, 3, 4, 102, 2, false),
            book_delete(4),
            fill(3, 102, 2, Sell, (1, 5, 1, 0), (2, 3, 4, 0)),
        ]
    );
    assert_eq!(h.e.live_orders(), 0);
    assert_eq!(h.cancel(2, 3, 0), vec![rejected(2, 3, R::UnknownOrder)]);
}

#[test]
fn every_replace_reject_reason_in_order() {
    let mut cfg = config();
    cfg.instruments[0].min_qty = 2;
    cfg.instruments[0].max_qty = 50;
    cfg.instruments[0].min_notional = 1_000;
    let mut h = H::with(cfg);
    h.gtc(1, 1, Buy, 100, 10); // 1
    h.gtc(1, 2, Buy, 99, 20); // 2
    let mut p = limit(1, 3, Sell, 110, 10);
    p.post_only = true;
    h.new_order(p); // 3
    let r = |account, orig, new, price, qty| Replace {
        account,
        orig_cl_ord_id: orig,
        new_cl_ord_id: new,
        price,
        qty,
    };
    let cases = vec![
        (r(8, 1, 1, 100, 10), R::UnknownAccount),
        (r(2, 1, 1, 100, 10), R::UnknownOrder),
        (r(1, 9, 9, 100, 10), R::UnknownOrder),
        (r(1, 1, 2, 100, 11), R::DuplicateClientOrderId),
        (r(1, 1, 4, 0, 0), R::InvalidPrice),
        (r(1, 1, 4, 1_001, 10), R::InvalidPrice),
        (r(1, 1, 4, 100, 0), R::InvalidQuantity),
        (r(1, 1, 4, 100, 51), R::InvalidQuantity),
        (r(1, 1, 4, 100, 9), R::BelowMinNotional),
        (r(1, 1, 1, 100, 10), R::InvalidModify),
        (r(1, 3, 3, 100, 10), R::PostOnlyWouldTake),
    ];
    for (cmd, reason) in cases {
        assert_eq!(
            h.run(Command::Replace(cmd)),
            vec![rejected(cmd.account, cmd.orig_cl_ord_id, reason)],
            "{cmd:?}"
        );
    }
    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 100,
        band_bps: 500,
    });
    let before = h.e.state_hash();
    assert_eq!(
        h.run(Command::Replace(r(1, 1, 4, 106, 10))),
        vec![rejected(1, 1, R::PriceOutsideBand)]
    );
    h.run(Command::Halt { instrument: INST });
    assert_eq!(
        h.run(Command::Replace(r(1, 1, 2, 0, 0))),
        vec![rejected(1, 1, R::InstrumentHalted)]
    );
    h.run(Command::Resume { instrument: INST });
    assert_eq!(h.e.state_hash(), before, "rejects change nothing");
    // The post-only order may move to a price that does not cross.
    assert_eq!(
        h.run(Command::Replace(r(1, 3, 3, 101, 10))),
        vec![
            replaced(1, 3, 3, 3, 101, 10, false),
            Event::BookReplace {
                instrument: INST,
                order_id: 3,
                price: 101,
                qty: 10
            },
        ]
    );
}

#[test]
fn mass_cancel_by_account_and_instrument_in_ascending_order_id() {
    let mut h = H::new();
    let other = |account, cl, side, price| NewOrder {
        instrument: OTHER,
        ..limit(account, cl, side, price, 1)
    };
    h.gtc(1, 1, Buy, 100, 1); // 1
    h.new_order(other(1, 2, Sell, 100)); // 2
    h.gtc(2, 1, Buy, 100, 1); // 3
    h.gtc(1, 3, Sell, 105, 2); // 4
    h.new_order(other(1, 4, Buy, 90)); // 5
                                       // Move order 1 behind order 3: mass cancel still goes by order id.
    h.replace(1, 1, 1, 101, 1);
    let on_other = |cl, oid| {
        [
            Event::Cancelled {
                account: 1,
                cl_ord_id: cl,
                order_id: oid,
                instrument: OTHER,
                cancelled_qty: 1,
                leaves_qty: 0,
                reason: C::MassCancel,
            },
            Event::BookDelete {
                instrument: OTHER,
                order_id: oid,
            },
        ]
    };
    assert_eq!(
        h.run(Command::MassCancel(MassCancel {
            account: 1,
            instrument: Some(INST)
        })),
        vec![
            cancelled(1, 1, 1, 1, 0, C::MassCancel),
            book_delete(1),
            cancelled(1, 3, 4, 2, 0, C::MassCancel),
            book_delete(4),
        ]
    );
    assert_eq!(
        h.run(Command::MassCancel(MassCancel {
            account: 1,
            instrument: Some(99)
        })),
        vec![]
    );
    let mut expected = on_other(2, 2).to_vec();
    expected.extend(on_other(4, 5));
    assert_eq!(
        h.run(Command::MassCancel(MassCancel {
            account: 1,
            instrument: None
        })),
        expected
    );
    assert_eq!(
        h.run(Command::MassCancel(MassCancel {
            account: 1,
            instrument: None
        })),
        vec![]
    );
    assert_eq!(
        h.run(Command::MassCancel(MassCancel {
            account: 8,
            instrument: None
        })),
        vec![rejected(8, 0, R::UnknownAccount)]
    );
    assert_eq!(h.book(), vec![(3, 2, 1, Buy, 100, 1)]);
    assert_eq!(h.e.live_orders(), 1);
}
