//! Hand-written scenarios, one per rule of the contract ("Engine semantics" in
//! `docs/ARCHITECTURE.md`), with the exact events written out. Each runs on both the reference
//! book and the engine, so the oracle itself is checked against the written contract.

mod common;

use common::*;
use tpx_engine::hash::StateHasher;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

const A: InstrumentId = INST_A;
const B: InstrumentId = INST_B;

fn limit(
    account: AccountId,
    cl: ClientOrderId,
    side: Side,
    price: PriceTicks,
    qty: QtyLots,
) -> NewOrder {
    NewOrder {
        account,
        cl_ord_id: cl,
        instrument: A,
        side,
        kind: OrderKind::Limit,
        price,
        qty,
        tif: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        stp: StpMode::None,
        ext: OrderExt::NONE,
    }
}

fn new(o: NewOrder) -> Command {
    Command::NewOrder(o)
}

fn cancel(account: AccountId, cl: ClientOrderId, remaining_qty: QtyLots) -> Command {
    Command::Cancel(Cancel {
        account,
        cl_ord_id: cl,
        remaining_qty,
    })
}

fn replace(
    account: AccountId,
    orig: ClientOrderId,
    new: ClientOrderId,
    price: PriceTicks,
    qty: QtyLots,
) -> Command {
    Command::Replace(Replace {
        account,
        orig_cl_ord_id: orig,
        new_cl_ord_id: new,
        price,
        qty,
    })
}

fn rej(account: AccountId, cl_ord_id: ClientOrderId, reason: RejectReason) -> Vec<Event> {
    vec![Event::Rejected {
        account,
        cl_ord_id,
        reason,
    }]
}

fn accepted(o: &NewOrder, order_id: OrderId) -> Event {
    Event::Accepted {
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        order_id,
        instrument: o.instrument,
        side: o.side,
        price: o.price,
        qty: o.qty,
    }
}

fn book_add(o: &NewOrder, order_id: OrderId, qty: QtyLots) -> Event {
    Event::BookAdd {
        instrument: o.instrument,
        order_id,
        side: o.side,
        price: o.price,
        qty,
    }
}

/// `accepted` + `book_add` of a resting order.
fn rests(o: &NewOrder, order_id: OrderId) -> Vec<Event> {
    vec![accepted(o, order_id), book_add(o, order_id, o.qty)]
}

#[allow(clippy::too_many_arguments)]
fn fill(
    trade_id: TradeId,
    price: PriceTicks,
    qty: QtyLots,
    maker: (&NewOrder, OrderId, QtyLots),
    taker: (&NewOrder, OrderId, QtyLots),
) -> Event {
    Event::Fill {
        instrument: taker.0.instrument,
        trade_id,
        price,
        qty,
        taker_side: taker.0.side,
        maker_account: maker.0.account,
        maker_cl_ord_id: maker.0.cl_ord_id,
        maker_order_id: maker.1,
        maker_leaves: maker.2,
        taker_account: taker.0.account,
        taker_cl_ord_id: taker.0.cl_ord_id,
        taker_order_id: taker.1,
        taker_leaves: taker.2,
    }
}

fn cancelled(
    o: &NewOrder,
    order_id: OrderId,
    cancelled_qty: QtyLots,
    leaves_qty: QtyLots,
    reason: CancelReason,
) -> Event {
    Event::Cancelled {
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        order_id,
        instrument: o.instrument,
        cancelled_qty,
        leaves_qty,
        reason,
    }
}

fn delete(order_id: OrderId) -> Event {
    Event::BookDelete {
        instrument: A,
        order_id,
    }
}

fn reduce(order_id: OrderId, qty: QtyLots) -> Event {
    Event::BookReduce {
        instrument: A,
        order_id,
        qty,
    }
}

/// Runs `steps` (command, expected events) on both books, checking each step and that the two
/// books end with the same state hash; returns the engine for further checks.
fn scenario(max_orders: u32, steps: &[(Command, Vec<Event>)]) -> (Engine, ReferenceBook) {
    let mut engine = Engine::new(config(max_orders)).unwrap();
    let mut reference = ReferenceBook::new(config(max_orders)).unwrap();
    for (i, (cmd, expected)) in steps.iter().enumerate() {
        assert_eq!(
            &run(&mut reference, i as u64, cmd),
            expected,
            "reference, step #{i}: {cmd:?}"
        );
        assert_eq!(
            &run(&mut engine, i as u64, cmd),
            expected,
            "engine, step #{i}: {cmd:?}"
        );
        engine.check_invariants().unwrap();
        reference.check_invariants().unwrap();
        assert_eq!(
            engine.state_hash(),
            reference.state_hash(),
            "hash after step #{i}"
        );
        assert_eq!(engine.l3(A), reference.l3(A), "l3 after step #{i}");
    }
    (engine, reference)
}

#[test]
fn rest_then_cross_partially_at_maker_prices_in_priority() {
    let s1 = limit(0, 1, Side::Sell, 101, 5);
    let s2 = limit(1, 1, Side::Sell, 100, 3);
    let s3 = limit(2, 1, Side::Sell, 100, 4);
    let b = limit(3, 1, Side::Buy, 101, 10);
    let (engine, _) = scenario(
        100,
        &[
            (new(s1), rests(&s1, 1)),
            (new(s2), rests(&s2, 2)),
            (new(s3), rests(&s3, 3)),
            (
                new(b),
                vec![
                    accepted(&b, 4),
                    fill(1, 100, 3, (&s2, 2, 0), (&b, 4, 7)),
                    fill(2, 100, 4, (&s3, 3, 0), (&b, 4, 3)),
                    fill(3, 101, 3, (&s1, 1, 2), (&b, 4, 0)),
                ],
            ),
        ],
    );
    assert_eq!(engine.best_ask(A), Some((101, 2)));
    assert_eq!(engine.best_bid(A), None);
    assert_eq!(engine.live_orders(), 1);
}

#[test]
fn validation_order_first_failure_wins() {
    let mut o = limit(0, 1, Side::Buy, 100, 5);
    // 1. account before everything.
    o.account = MAX_ACCOUNTS;
    o.instrument = 2;
    let bad_account = o;
    // 2. unknown instrument before the order type.
    let mut bad_inst = limit(0, 1, Side::Buy, 100, 5);
    bad_inst.instrument = 2;
    bad_inst.kind = OrderKind::Market;
    // 3. market with GTC, and a post-only market, before the price.
    let mut market_gtc = limit(0, 1, Side::Buy, 0, 5);
    market_gtc.kind = OrderKind::Market;
    let mut market_post = market_gtc;
    market_post.tif = TimeInForce::Ioc;
    market_post.post_only = true;
    // 4. price before quantity.
    let mut bad_price = limit(0, 1, Side::Buy, 106, 0);
    bad_price.price = 106;
    let mut zero_price_b = limit(0, 1, Side::Buy, 0, 5);
    zero_price_b.instrument = B; // min_price is -2, but prices <= 0 are invalid
                                 // 5. quantity, then notional.
    let zero_qty = limit(0, 1, Side::Buy, 100, 0);
    let big_qty = limit(0, 1, Side::Buy, 100, 51);
    let mut small_qty_b = limit(0, 1, Side::Buy, 5, 1);
    small_qty_b.instrument = B; // min_qty 2
    let mut notional_b = limit(0, 1, Side::Buy, 2, 2);
    notional_b.instrument = B; // 4 < 6
    let mut notional_ok_b = notional_b;
    notional_ok_b.price = 3; // 6 >= 6
    scenario(
        100,
        &[
            (
                new(bad_account),
                rej(MAX_ACCOUNTS, 1, RejectReason::UnknownAccount),
            ),
            (new(bad_inst), rej(0, 1, RejectReason::UnknownInstrument)),
            (new(market_gtc), rej(0, 1, RejectReason::InvalidOrderType)),
            (new(market_post), rej(0, 1, RejectReason::InvalidOrderType)),
            (new(bad_price), rej(0, 1, RejectReason::InvalidPrice)),
            (new(zero_price_b), rej(0, 1, RejectReason::InvalidPrice)),
            (new(zero_qty), rej(0, 1, RejectReason::InvalidQuantity)),
            (new(big_qty), rej(0, 1, RejectReason::InvalidQuantity)),
            (new(small_qty_b), rej(0, 1, RejectReason::InvalidQuantity)),
            (new(notional_b), rej(0, 1, RejectReason::BelowMinNotional)),
            (
                new(notional_ok_b),
                vec![
                    accepted(&notional_ok_b, 1),
                    Event::BookAdd {
                        instrument: B,
                        order_id: 1,
                        side: Side::Buy,
                        price: 3,
                        qty: 2,
                    },
                ],
            ),
            // 6. the same client id on another instrument is still a duplicate.
            (
                new(limit(0, 1, Side::Sell, 104, 1)),
                rej(0, 1, RejectReason::DuplicateClientOrderId),
            ),
        ],
    );
}

#[test]
fn halt_band_and_admin_rejects() {
    let o = limit(0, 1, Side::Buy, 100, 5);
    let mut far = limit(0, 2, Side::Buy, 96, 5);
    let near = limit(0, 3, Side::Buy, 98, 5);
    scenario(
        100,
        &[
            (
                Command::Halt { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: true,
                }],
            ),
            (new(o), rej(0, 1, RejectReason::InstrumentHalted)),
            (
                Command::Resume { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: false,
                }],
            ),
            (
                Command::Halt { instrument: 2 },
                rej(0, 0, RejectReason::UnknownInstrument),
            ),
            (
                Command::SetReferencePrice {
                    instrument: 4,
                    price: 0,
                    band_bps: 1,
                },
                rej(0, 0, RejectReason::UnknownInstrument),
            ),
            (
                Command::SetReferencePrice {
                    instrument: A,
                    price: 0,
                    band_bps: 1,
                },
                rej(0, 0, RejectReason::InvalidPrice),
            ),
            // 100 +- 100 * 299 / 10000 = 100 +- 2 (integer division).
            (
                Command::SetReferencePrice {
                    instrument: A,
                    price: 100,
                    band_bps: 299,
                },
                vec![Event::ReferencePrice {
                    instrument: A,
                    price: 100,
                    band_bps: 299,
                }],
            ),
            (new(far), rej(0, 2, RejectReason::PriceOutsideBand)),
            (new(near), rests(&near, 1)),
            // A range failure is reported before a band failure.
            (
                new({
                    far.price = 94;
                    far
                }),
                rej(0, 2, RejectReason::InvalidPrice),
            ),
        ],
    );
}

#[test]
fn post_only_book_full_and_fok() {
    let s = limit(0, 1, Side::Sell, 100, 5);
    let mut po = limit(1, 1, Side::Buy, 100, 1);
    po.post_only = true;
    let mut po_ok = po;
    po_ok.price = 99;
    let mut fok = limit(1, 2, Side::Buy, 100, 6);
    fok.tif = TimeInForce::Fok;
    let mut fok_ok = fok;
    fok_ok.qty = 5;
    let full = limit(2, 1, Side::Buy, 97, 1);
    scenario(
        2,
        &[
            (new(s), rests(&s, 1)),
            (new(po), rej(1, 1, RejectReason::PostOnlyWouldTake)),
            (new(po_ok), rests(&po_ok, 2)),
            // The pool is full: even an order that would not rest is refused.
            (new(full), rej(2, 1, RejectReason::BookFull)),
            (new(fok), rej(1, 2, RejectReason::BookFull)),
            (
                cancel(1, 1, 0),
                vec![
                    cancelled(&po_ok, 2, 1, 0, CancelReason::UserRequested),
                    delete(2),
                ],
            ),
            (new(fok), rej(1, 2, RejectReason::FokNotFillable)),
            (
                new(fok_ok),
                vec![
                    accepted(&fok_ok, 3),
                    fill(1, 100, 5, (&s, 1, 0), (&fok_ok, 3, 0)),
                ],
            ),
        ],
    );
}

#[test]
fn fok_walk_skips_own_orders_only_under_expire_maker() {
    let own = limit(0, 1, Side::Sell, 100, 5);
    let other = limit(1, 1, Side::Sell, 101, 5);
    let mut fok = limit(0, 2, Side::Buy, 101, 5);
    fok.tif = TimeInForce::Fok;
    fok.stp = StpMode::ExpireTaker;
    let mut fok_em = fok;
    fok_em.stp = StpMode::ExpireMaker;
    let mut fok_none = fok;
    fok_none.stp = StpMode::None;
    fok_none.cl_ord_id = 3;
    let mut fok_big = fok_none;
    fok_big.qty = 6;
    scenario(
        100,
        &[
            (new(own), rests(&own, 1)),
            (new(other), rests(&other, 2)),
            (new(fok), rej(0, 2, RejectReason::FokNotFillable)),
            (
                new(fok_em),
                vec![
                    accepted(&fok_em, 3),
                    cancelled(&own, 1, 5, 0, CancelReason::SelfTradePrevention),
                    delete(1),
                    fill(1, 101, 5, (&other, 2, 0), (&fok_em, 3, 0)),
                ],
            ),
            (new(own), rests(&own, 4)),
            (new(fok_big), rej(0, 3, RejectReason::FokNotFillable)),
            // Without STP the account's own order counts and trades.
            (
                new(fok_none),
                vec![
                    accepted(&fok_none, 5),
                    fill(2, 100, 5, (&own, 4, 0), (&fok_none, 5, 0)),
                ],
            ),
        ],
    );
}

#[test]
fn self_trade_prevention_modes() {
    let m1 = limit(0, 1, Side::Sell, 100, 4);
    let m2 = limit(1, 1, Side::Sell, 100, 4);
    let mut t = limit(0, 2, Side::Buy, 100, 6);
    // ExpireTaker: the taker's remainder goes, the maker stays.
    t.stp = StpMode::ExpireTaker;
    let t_et = t;
    // ExpireBoth.
    t.stp = StpMode::ExpireBoth;
    t.cl_ord_id = 3;
    let t_eb = t;
    // DecrementAndCancel: maker 4 vs taker 6: maker gone, taker down to 2, then trades m2.
    t.stp = StpMode::DecrementAndCancel;
    t.cl_ord_id = 4;
    let t_dc = t;
    let m1b = NewOrder { cl_ord_id: 5, ..m1 };
    scenario(
        100,
        &[
            (new(m1), rests(&m1, 1)),
            (new(m2), rests(&m2, 2)),
            (
                new(t_et),
                vec![
                    accepted(&t_et, 3),
                    cancelled(&t_et, 3, 6, 0, CancelReason::SelfTradePrevention),
                ],
            ),
            (
                new(t_eb),
                vec![
                    accepted(&t_eb, 4),
                    cancelled(&m1, 1, 4, 0, CancelReason::SelfTradePrevention),
                    delete(1),
                    cancelled(&t_eb, 4, 6, 0, CancelReason::SelfTradePrevention),
                ],
            ),
            // m2 (account 1) is now first; put an account-0 order behind it.
            (new(m1b), rests(&m1b, 5)),
            (
                new(t_dc),
                vec![
                    accepted(&t_dc, 6),
                    fill(1, 100, 4, (&m2, 2, 0), (&t_dc, 6, 2)),
                    cancelled(&m1b, 5, 2, 2, CancelReason::SelfTradePrevention),
                    reduce(5, 2),
                    cancelled(&t_dc, 6, 2, 0, CancelReason::SelfTradePrevention),
                ],
            ),
        ],
    );
}

#[test]
fn market_and_ioc_remainders() {
    let s = limit(0, 1, Side::Sell, 100, 2);
    let mut mkt = limit(1, 1, Side::Buy, 102, 5);
    mkt.kind = OrderKind::Market;
    mkt.tif = TimeInForce::Ioc;
    let mut ioc = limit(1, 2, Side::Sell, 99, 3);
    ioc.tif = TimeInForce::Ioc;
    scenario(
        100,
        &[
            (new(s), rests(&s, 1)),
            (
                new(mkt),
                vec![
                    accepted(&mkt, 2),
                    fill(1, 100, 2, (&s, 1, 0), (&mkt, 2, 3)),
                    cancelled(&mkt, 2, 3, 0, CancelReason::MarketProtection),
                ],
            ),
            (
                new(ioc),
                vec![
                    accepted(&ioc, 3),
                    cancelled(&ioc, 3, 3, 0, CancelReason::ImmediateOrCancel),
                ],
            ),
        ],
    );
}

#[test]
fn cancels_and_cancel_downs() {
    let o = limit(0, 1, Side::Buy, 99, 5);
    let behind = limit(1, 1, Side::Buy, 99, 1);
    let taker = limit(2, 1, Side::Sell, 99, 3);
    scenario(
        100,
        &[
            (new(o), rests(&o, 1)),
            (new(behind), rests(&behind, 2)),
            (cancel(0, 9, 0), rej(0, 9, RejectReason::UnknownOrder)),
            (
                cancel(MAX_ACCOUNTS, 1, 0),
                rej(MAX_ACCOUNTS, 1, RejectReason::UnknownAccount),
            ),
            (cancel(0, 1, 5), rej(0, 1, RejectReason::InvalidModify)),
            (
                Command::Halt { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: true,
                }],
            ),
            // Cancels work while halted; a cancel-down keeps priority.
            (
                cancel(0, 1, 2),
                vec![
                    cancelled(&o, 1, 3, 2, CancelReason::UserRequested),
                    reduce(1, 3),
                ],
            ),
            (
                Command::Resume { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: false,
                }],
            ),
            (
                new(taker),
                vec![
                    accepted(&taker, 3),
                    fill(1, 99, 2, (&o, 1, 0), (&taker, 3, 1)),
                    fill(2, 99, 1, (&behind, 2, 0), (&taker, 3, 0)),
                ],
            ),
            (cancel(0, 1, 0), rej(0, 1, RejectReason::UnknownOrder)),
        ],
    );
}

#[test]
fn replaces() {
    let o = limit(0, 1, Side::Buy, 99, 5);
    let behind = limit(1, 1, Side::Buy, 99, 5);
    let ask = limit(2, 1, Side::Sell, 101, 2);
    let replaced = |orig, new, price, qty, kept| Event::Replaced {
        account: 0,
        orig_cl_ord_id: orig,
        new_cl_ord_id: new,
        order_id: 1,
        instrument: A,
        price,
        qty,
        priority_kept: kept,
    };
    let (engine, _) = scenario(
        100,
        &[
            (new(o), rests(&o, 1)),
            (new(behind), rests(&behind, 2)),
            (new(ask), rests(&ask, 3)),
            (
                replace(0, 7, 8, 99, 5),
                rej(0, 7, RejectReason::UnknownOrder),
            ),
            (
                replace(0, 1, 1, 99, 5),
                rej(0, 1, RejectReason::InvalidModify),
            ),
            (
                replace(0, 1, 1, 106, 5),
                rej(0, 1, RejectReason::InvalidPrice),
            ),
            (
                replace(0, 1, 1, 99, 0),
                rej(0, 1, RejectReason::InvalidQuantity),
            ),
            // Smaller, same price, new id: keeps priority.
            (
                replace(0, 1, 2, 99, 4),
                vec![replaced(1, 2, 99, 4, true), reduce(1, 1)],
            ),
            // Only a new id: keeps priority, no market data.
            (replace(0, 2, 3, 99, 4), vec![replaced(2, 3, 99, 4, true)]),
            // Larger: to the back of the level.
            (
                replace(0, 3, 3, 99, 6),
                vec![
                    replaced(3, 3, 99, 6, false),
                    Event::BookReplace {
                        instrument: A,
                        order_id: 1,
                        price: 99,
                        qty: 6,
                    },
                ],
            ),
            // Crossing: trades as a taker, rests the remainder with its new id.
            (
                replace(0, 3, 4, 101, 6),
                vec![
                    replaced(3, 4, 101, 6, false),
                    delete(1),
                    fill(
                        1,
                        101,
                        2,
                        (&ask, 3, 0),
                        (
                            &NewOrder {
                                cl_ord_id: 4,
                                price: 101,
                                qty: 6,
                                ..o
                            },
                            1,
                            4,
                        ),
                    ),
                    Event::BookAdd {
                        instrument: A,
                        order_id: 1,
                        side: Side::Buy,
                        price: 101,
                        qty: 4,
                    },
                ],
            ),
            (
                Command::Halt { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: true,
                }],
            ),
            (
                replace(0, 4, 5, 100, 1),
                rej(0, 4, RejectReason::InstrumentHalted),
            ),
        ],
    );
    let l3 = engine.l3(A);
    assert_eq!(
        l3.iter().map(|o| o.order_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!((l3[0].cl_ord_id, l3[0].price, l3[0].leaves), (4, 101, 4));
}

#[test]
fn replace_duplicate_id_and_post_only() {
    let mut o = limit(0, 1, Side::Buy, 99, 5);
    o.post_only = true;
    let other = limit(0, 2, Side::Buy, 98, 5);
    let ask = limit(1, 1, Side::Sell, 101, 2);
    scenario(
        100,
        &[
            (new(o), rests(&o, 1)),
            (new(other), rests(&other, 2)),
            (new(ask), rests(&ask, 3)),
            (
                replace(0, 1, 2, 99, 6),
                rej(0, 1, RejectReason::DuplicateClientOrderId),
            ),
            (
                replace(0, 1, 1, 101, 5),
                rej(0, 1, RejectReason::PostOnlyWouldTake),
            ),
        ],
    );
}

#[test]
fn mass_cancel_in_order_id_order() {
    let a1 = limit(0, 1, Side::Sell, 104, 1);
    let a2 = limit(0, 2, Side::Buy, 96, 2);
    let mut b1 = limit(0, 3, Side::Buy, 5, 3);
    b1.instrument = B;
    let x = limit(1, 1, Side::Buy, 96, 1);
    let b1_add = book_add(&b1, 3, 3);
    scenario(
        100,
        &[
            (new(a1), rests(&a1, 1)),
            (new(a2), rests(&a2, 2)),
            (new(b1), vec![accepted(&b1, 3), b1_add]),
            (new(x), rests(&x, 4)),
            (
                Command::MassCancel(MassCancel {
                    account: MAX_ACCOUNTS,
                    instrument: None,
                }),
                rej(MAX_ACCOUNTS, 0, RejectReason::UnknownAccount),
            ),
            (
                Command::MassCancel(MassCancel {
                    account: 0,
                    instrument: Some(B),
                }),
                vec![
                    cancelled(&b1, 3, 3, 0, CancelReason::MassCancel),
                    Event::BookDelete {
                        instrument: B,
                        order_id: 3,
                    },
                ],
            ),
            (new(b1), vec![accepted(&b1, 5), book_add(&b1, 5, 3)]),
            (
                Command::MassCancel(MassCancel {
                    account: 0,
                    instrument: None,
                }),
                vec![
                    cancelled(&a1, 1, 1, 0, CancelReason::MassCancel),
                    delete(1),
                    cancelled(&a2, 2, 2, 0, CancelReason::MassCancel),
                    delete(2),
                    cancelled(&b1, 5, 3, 0, CancelReason::MassCancel),
                    Event::BookDelete {
                        instrument: B,
                        order_id: 5,
                    },
                ],
            ),
            (
                Command::MassCancel(MassCancel {
                    account: 0,
                    instrument: None,
                }),
                vec![],
            ),
        ],
    );
}

/// The state hash, computed by hand from the written definition.
#[test]
fn state_hash_by_hand() {
    let bid = NewOrder {
        stp: StpMode::ExpireBoth,
        post_only: true,
        ..limit(2, 7, Side::Buy, 99, 5)
    };
    let (engine, reference) = scenario(
        100,
        &[
            (
                Command::SetReferencePrice {
                    instrument: B,
                    price: 5,
                    band_bps: 9_000,
                },
                vec![Event::ReferencePrice {
                    instrument: B,
                    price: 5,
                    band_bps: 9_000,
                }],
            ),
            (new(bid), rests(&bid, 1)),
            (
                Command::Halt { instrument: A },
                vec![Event::TradingStatus {
                    instrument: A,
                    halted: true,
                }],
            ),
        ],
    );
    let mut h = StateHasher::new();
    h.word(2); // next order id
    h.word(1); // next trade id
               // Instrument 1: halted, no reference price, one bid, no asks.
    for w in [1, 1, 0, 0, 1] {
        h.word(w);
    }
    for w in [
        1u64,
        2,
        7,
        Side::Buy as u64,
        99,
        5,
        StpMode::ExpireBoth as u64,
        1,
    ] {
        h.word(w);
    }
    h.word(0);
    // No last or mark price, no pending triggers.
    for w in [0, 0, 0] {
        h.word(w);
    }
    // Instrument 3: reference price 5, band 9000, empty; instrument 5: untouched (each then no
    // last or mark price and no pending triggers).
    for w in [3, 0, 5, 9_000, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0] {
        h.word(w);
    }
    assert_eq!(reference.state_hash(), h.finish());
    assert_eq!(engine.state_hash(), h.finish());
}
