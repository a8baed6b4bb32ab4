//! Hand-written scenarios for the crypto order types ("Engine semantics" in
//! `docs/ARCHITECTURE.md`), every event written out: stop-market and stop-limit orders fired
//! by trades (a cascade included), take-profit / stop-loss as an OCO pair fired by the mark,
//! GTD expiry by timestamp and tick, an iceberg refilling behind the queue, post-only slide
//! next to post-only reject, and OCO with a resting leg. Each runs on both the reference book
//! and the engine.

mod common;

use common::*;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

const A: InstrumentId = INST_A;
const B: InstrumentId = INST_B;

fn limit(
    instrument: InstrumentId,
    account: AccountId,
    cl: ClientOrderId,
    side: Side,
    price: PriceTicks,
    qty: QtyLots,
) -> NewOrder {
    NewOrder {
        account,
        cl_ord_id: cl,
        instrument,
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

fn with_trigger(
    mut o: NewOrder,
    price: PriceTicks,
    source: TriggerSource,
    direction: TriggerDirection,
) -> NewOrder {
    o.ext.trigger = Some(Trigger {
        price,
        source,
        direction,
    });
    o
}

fn market(o: NewOrder) -> NewOrder {
    NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        ..o
    }
}

fn new(o: NewOrder) -> EngineInput {
    EngineInput::Command(Command::NewOrder(o))
}

fn mark(instrument: InstrumentId, price: PriceTicks) -> EngineInput {
    EngineInput::Risk(RiskCommand::SetMarkPrice { instrument, price })
}

fn tick() -> EngineInput {
    EngineInput::Command(Command::Tick)
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

fn book_add(o: &NewOrder, order_id: OrderId, price: PriceTicks, qty: QtyLots) -> Event {
    Event::BookAdd {
        instrument: o.instrument,
        order_id,
        side: o.side,
        price,
        qty,
    }
}

fn rests(o: &NewOrder, order_id: OrderId) -> Vec<Event> {
    vec![accepted(o, order_id), book_add(o, order_id, o.price, o.qty)]
}

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

fn triggered(o: &NewOrder, order_id: OrderId, price: PriceTicks) -> Event {
    Event::Triggered {
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        order_id,
        instrument: o.instrument,
        side: o.side,
        trigger_price: o.ext.trigger.unwrap().price,
        price,
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

fn rej(o: &NewOrder, reason: RejectReason) -> Vec<Event> {
    vec![Event::Rejected {
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        reason,
    }]
}

/// Runs `(ts_ns, input, expected events)` steps on both books, checking each step, the
/// invariants, equal hashes and L3 books, and a snapshot round trip of the engine.
fn scenario(steps: &[(u64, EngineInput, Vec<Event>)]) -> (Engine, ReferenceBook) {
    let mut engine = Engine::new(config(64)).unwrap();
    let mut reference = ReferenceBook::new(config(64)).unwrap();
    for (i, (ts, input, expected)) in steps.iter().enumerate() {
        let mut out = Vec::new();
        reference.apply(*ts, input, &mut out);
        assert_eq!(&out, expected, "reference, step #{i}: {input:?}");
        let mut out = Vec::new();
        engine.apply(*ts, input, &mut out);
        assert_eq!(&out, expected, "engine, step #{i}: {input:?}");
        engine.check_invariants().unwrap();
        reference.check_invariants().unwrap();
        assert_eq!(
            engine.state_hash(),
            reference.state_hash(),
            "hash after #{i}"
        );
        for inst in KNOWN {
            assert_eq!(engine.l3(inst), reference.l3(inst), "l3 after #{i}");
        }
        let restored = Engine::restore(config(64), &engine.snapshot()).unwrap();
        assert_eq!(
            restored.state_hash(),
            engine.state_hash(),
            "restore after #{i}"
        );
    }
    (engine, reference)
}

#[test]
fn stop_market_fires_on_the_trade_that_reaches_it() {
    let s1 = limit(A, 0, 1, Side::Sell, 100, 5);
    let s2 = limit(A, 0, 2, Side::Sell, 102, 5);
    // Buy 3 at market (protection 105) once the last price rises to 100.
    let stop = market(with_trigger(
        limit(A, 1, 1, Side::Buy, 105, 3),
        100,
        TriggerSource::Last,
        TriggerDirection::RisesTo,
    ));
    let b = limit(A, 2, 1, Side::Buy, 100, 2);
    let (engine, _) = scenario(&[
        (1, new(s1), rests(&s1, 1)),
        (2, new(s2), rests(&s2, 2)),
        // Pending: accepted, nothing on the book.
        (3, new(stop), vec![accepted(&stop, 3)]),
        (
            4,
            new(b),
            vec![
                accepted(&b, 4),
                fill(1, 100, 2, (&s1, 1, 3), (&b, 4, 0)),
                // The trade at 100 reaches the stop: it fires and takes as a market order.
                triggered(&stop, 3, 100),
                fill(2, 100, 3, (&s1, 1, 0), (&stop, 3, 0)),
            ],
        ),
    ]);
    assert_eq!(engine.pending_triggers(), 0);
    assert_eq!(engine.live_orders(), 1);
}

#[test]
fn a_stop_limit_whose_fills_fire_another_stop_cascades_within_the_command() {
    let a1 = limit(A, 0, 1, Side::Sell, 100, 2);
    let a2 = limit(A, 0, 2, Side::Sell, 101, 3);
    let a3 = limit(A, 0, 3, Side::Sell, 102, 5);
    // Stop-limit: at last >= 100, buy 4 limit 101. Stop-market: at last >= 101, buy 2.
    let stop_limit = with_trigger(
        limit(A, 1, 1, Side::Buy, 101, 4),
        100,
        TriggerSource::Last,
        TriggerDirection::RisesTo,
    );
    let stop_market = market(with_trigger(
        limit(A, 3, 1, Side::Buy, 105, 2),
        101,
        TriggerSource::Last,
        TriggerDirection::RisesTo,
    ));
    let b = limit(A, 2, 1, Side::Buy, 100, 2);
    scenario(&[
        (1, new(a1), rests(&a1, 1)),
        (1, new(a2), rests(&a2, 2)),
        (1, new(a3), rests(&a3, 3)),
        (2, new(stop_limit), vec![accepted(&stop_limit, 4)]),
        (2, new(stop_market), vec![accepted(&stop_market, 5)]),
        (
            3,
            new(b),
            vec![
                accepted(&b, 6),
                fill(1, 100, 2, (&a1, 1, 0), (&b, 6, 0)),
                // Pass 1 (trades at 100): the stop-limit fires, takes 3 at 101, rests 1.
                triggered(&stop_limit, 4, 100),
                fill(2, 101, 3, (&a2, 2, 0), (&stop_limit, 4, 1)),
                book_add(&stop_limit, 4, 101, 1),
                // Pass 2 (its trade at 101): the stop-market fires.
                triggered(&stop_market, 5, 101),
                fill(3, 102, 2, (&a3, 3, 3), (&stop_market, 5, 0)),
            ],
        ),
    ]);
}

#[test]
fn falling_triggers_fire_highest_first_and_a_stop_already_reached_is_refused() {
    let bid1 = limit(A, 0, 1, Side::Buy, 99, 1);
    let bid2 = limit(A, 0, 2, Side::Buy, 97, 5);
    let seller = limit(A, 2, 1, Side::Sell, 99, 1);
    // Two sell stops below: the one at 98 fires before the one at 99 only if the price
    // reaches... both are reached by the trade at 97; 99 is first (highest first).
    let stop98 = market(with_trigger(
        limit(A, 1, 1, Side::Sell, 95, 1),
        98,
        TriggerSource::Last,
        TriggerDirection::FallsTo,
    ));
    let stop99 = market(with_trigger(
        limit(A, 1, 2, Side::Sell, 95, 1),
        99,
        TriggerSource::Last,
        TriggerDirection::FallsTo,
    ));
    let late = with_trigger(
        limit(A, 1, 3, Side::Sell, 95, 1),
        98,
        TriggerSource::Last,
        TriggerDirection::FallsTo,
    );
    let sweep = limit(A, 3, 1, Side::Sell, 97, 2);
    scenario(&[
        (1, new(bid1), rests(&bid1, 1)),
        (1, new(bid2), rests(&bid2, 2)),
        (1, new(stop98), vec![accepted(&stop98, 3)]),
        (1, new(stop99), vec![accepted(&stop99, 4)]),
        (
            2,
            new(sweep),
            vec![
                accepted(&sweep, 5),
                fill(1, 99, 1, (&bid1, 1, 0), (&sweep, 5, 1)),
                fill(2, 97, 1, (&bid2, 2, 4), (&sweep, 5, 0)),
                // Range 97..=99: both reached; highest trigger first, each at the low price.
                triggered(&stop99, 4, 97),
                fill(3, 97, 1, (&bid2, 2, 3), (&stop99, 4, 0)),
                triggered(&stop98, 3, 97),
                fill(4, 97, 1, (&bid2, 2, 2), (&stop98, 3, 0)),
            ],
        ),
        // Last is 97: a falling trigger at 98 is already reached.
        (3, new(late), rej(&late, RejectReason::InvalidTrigger)),
        (
            4,
            new(seller),
            vec![accepted(&seller, 6), book_add(&seller, 6, 99, 1)],
        ),
    ]);
}

#[test]
fn take_profit_and_stop_loss_on_the_mark_one_fires_and_the_other_is_cancelled() {
    // Perpetual B: a long's take-profit (sell limit 6 when the mark rises to 7) and stop-loss
    // (sell at market, protection 3, when the mark falls to 3), paired OCO.
    let bid = limit(B, 0, 1, Side::Buy, 6, 5);
    let tp = with_trigger(
        limit(B, 1, 1, Side::Sell, 6, 2),
        7,
        TriggerSource::Mark,
        TriggerDirection::RisesTo,
    );
    let mut sl = market(with_trigger(
        limit(B, 1, 2, Side::Sell, 3, 2),
        3,
        TriggerSource::Mark,
        TriggerDirection::FallsTo,
    ));
    sl.ext.oco_cl_ord_id = 1;
    let spot_mark = with_trigger(
        limit(A, 1, 3, Side::Sell, 100, 2),
        100,
        TriggerSource::Mark,
        TriggerDirection::RisesTo,
    );
    scenario(&[
        (1, new(bid), rests(&bid, 1)),
        (1, mark(B, 5), vec![]),
        (2, new(tp), vec![accepted(&tp, 2)]),
        (2, new(sl), vec![accepted(&sl, 3)]),
        (3, mark(B, 6), vec![]),
        (
            4,
            mark(B, 7),
            vec![
                triggered(&tp, 2, 7),
                // The other leg goes first (it is pending: no market data).
                cancelled(&sl, 3, 2, 0, CancelReason::Oco),
                fill(1, 6, 2, (&bid, 1, 3), (&tp, 2, 0)),
            ],
        ),
        (5, mark(B, 2), vec![]),
        (
            6,
            new(spot_mark),
            rej(&spot_mark, RejectReason::NotPerpetual),
        ),
        (
            7,
            mark(A, 100),
            vec![Event::Rejected {
                account: 0,
                cl_ord_id: 0,
                reason: RejectReason::NotPerpetual,
            }],
        ),
    ]);
}

#[test]
fn gtd_orders_expire_at_the_first_timestamp_that_reaches_them() {
    let mut gtd = limit(A, 0, 1, Side::Sell, 101, 5);
    gtd.tif = TimeInForce::Gtd;
    gtd.ext.expire_ts_ns = 50;
    let mut gtd2 = limit(A, 0, 2, Side::Sell, 101, 1);
    gtd2.tif = TimeInForce::Gtd;
    gtd2.ext.expire_ts_ns = 40;
    let b = limit(A, 1, 1, Side::Buy, 101, 2);
    let mut stale = gtd;
    stale.cl_ord_id = 3;
    stale.ext.expire_ts_ns = 60; // not above the command's own timestamp
    let mut no_expiry = gtd;
    no_expiry.cl_ord_id = 4;
    no_expiry.ext.expire_ts_ns = 0;
    scenario(&[
        (10, new(gtd), rests(&gtd, 1)),
        (11, new(gtd2), rests(&gtd2, 2)),
        (39, tick(), vec![]),
        (
            49,
            tick(),
            vec![
                cancelled(&gtd2, 2, 1, 0, CancelReason::Expired),
                Event::BookDelete {
                    instrument: A,
                    order_id: 2,
                },
            ],
        ),
        // The expiry comes before the command: the buy finds nothing to take.
        (
            50,
            new(b),
            vec![
                cancelled(&gtd, 1, 5, 0, CancelReason::Expired),
                Event::BookDelete {
                    instrument: A,
                    order_id: 1,
                },
                accepted(&b, 3),
                book_add(&b, 3, 101, 2),
            ],
        ),
        (60, new(stale), rej(&stale, RejectReason::InvalidExpireTime)),
        (
            61,
            new(no_expiry),
            rej(&no_expiry, RejectReason::InvalidExpireTime),
        ),
    ]);
}

#[test]
fn an_iceberg_refills_at_the_back_of_its_level_and_shows_only_its_slice() {
    let mut ice = limit(A, 0, 1, Side::Sell, 100, 10);
    ice.ext.display_qty = 3;
    let other = limit(A, 1, 1, Side::Sell, 100, 2);
    let b = limit(A, 2, 1, Side::Buy, 100, 4);
    let (engine, _) = scenario(&[
        // Accepted with its whole quantity (private); the book shows 3.
        (
            1,
            new(ice),
            vec![accepted(&ice, 1), book_add(&ice, 1, 100, 3)],
        ),
        (1, new(other), rests(&other, 2)),
        (
            2,
            new(b),
            vec![
                accepted(&b, 3),
                // maker_leaves is the whole remainder (private); market data carries qty only.
                fill(1, 100, 3, (&ice, 1, 7), (&b, 3, 1)),
                Event::Refilled {
                    account: 0,
                    cl_ord_id: 1,
                    order_id: 1,
                    instrument: A,
                    display_qty: 3,
                    hidden_qty: 4,
                },
                book_add(&ice, 1, 100, 3),
                // The refill went behind `other`.
                fill(2, 100, 1, (&other, 2, 1), (&b, 3, 0)),
            ],
        ),
        // Cancel-down of the whole quantity takes from the hidden part first.
        (
            3,
            EngineInput::Command(Command::Cancel(Cancel {
                account: 0,
                cl_ord_id: 1,
                remaining_qty: 5,
            })),
            vec![cancelled(&ice, 1, 2, 5, CancelReason::UserRequested)],
        ),
    ]);
    assert_eq!(engine.best_ask(A), Some((100, 4)));
}

#[test]
fn post_only_slides_one_tick_behind_the_opposite_best_or_is_rejected() {
    let ask = limit(A, 0, 1, Side::Sell, 101, 5);
    let mut reject = limit(A, 1, 1, Side::Buy, 103, 2);
    reject.post_only = true;
    let mut slide = reject;
    slide.cl_ord_id = 2;
    slide.ext.post_only_slide = true;
    let edge_ask = limit(A, 0, 2, Side::Sell, 95, 1);
    let mut edge = slide;
    edge.cl_ord_id = 3;
    let mut sloppy = limit(A, 1, 4, Side::Buy, 96, 2);
    sloppy.ext.post_only_slide = true; // without post_only
    scenario(&[
        (1, new(ask), rests(&ask, 1)),
        (
            2,
            new(reject),
            rej(&reject, RejectReason::PostOnlyWouldTake),
        ),
        (
            3,
            new(slide),
            vec![
                accepted(&slide, 2),
                Event::Slid {
                    account: 1,
                    cl_ord_id: 2,
                    order_id: 2,
                    instrument: A,
                    requested_price: 103,
                    price: 100,
                },
                book_add(&slide, 2, 100, 2),
            ],
        ),
        (
            4,
            EngineInput::Command(Command::Cancel(Cancel {
                account: 1,
                cl_ord_id: 2,
                remaining_qty: 0,
            })),
            vec![
                cancelled(&slide, 2, 2, 0, CancelReason::UserRequested),
                Event::BookDelete {
                    instrument: A,
                    order_id: 2,
                },
            ],
        ),
        (5, new(edge_ask), rests(&edge_ask, 3)),
        // One tick behind an ask at the lowest price is outside the range: rejected.
        (6, new(edge), rej(&edge, RejectReason::PostOnlyWouldTake)),
        (7, new(sloppy), rej(&sloppy, RejectReason::InvalidOrderType)),
    ]);
}

#[test]
fn oco_with_a_resting_leg_its_first_fill_cancels_the_stop() {
    // Spot OCO: sell 2 at 104, or sell-stop-limit at 96 when the last falls to 97.
    let tp = limit(A, 1, 1, Side::Sell, 104, 2);
    let mut sl = with_trigger(
        limit(A, 1, 2, Side::Sell, 96, 2),
        97,
        TriggerSource::Last,
        TriggerDirection::FallsTo,
    );
    sl.ext.oco_cl_ord_id = 1;
    let mut third = limit(A, 1, 3, Side::Sell, 105, 1);
    third.ext.oco_cl_ord_id = 1; // already paired
    let b = limit(A, 2, 1, Side::Buy, 104, 1);
    scenario(&[
        (1, new(tp), rests(&tp, 1)),
        (1, new(sl), vec![accepted(&sl, 2)]),
        (1, new(third), rej(&third, RejectReason::InvalidOcoLink)),
        (
            2,
            new(b),
            vec![
                accepted(&b, 3),
                fill(1, 104, 1, (&tp, 1, 1), (&b, 3, 0)),
                cancelled(&sl, 2, 2, 0, CancelReason::Oco),
            ],
        ),
    ]);
}

#[test]
fn cancelling_one_oco_leg_cancels_the_other_and_mass_cancel_dissolves_pairs() {
    let tp = limit(A, 1, 1, Side::Sell, 104, 2);
    let mut sl = with_trigger(
        limit(A, 1, 2, Side::Sell, 96, 2),
        97,
        TriggerSource::Last,
        TriggerDirection::FallsTo,
    );
    sl.ext.oco_cl_ord_id = 1;
    scenario(&[
        (1, new(tp), rests(&tp, 1)),
        (1, new(sl), vec![accepted(&sl, 2)]),
        (
            2,
            EngineInput::Command(Command::Cancel(Cancel {
                account: 1,
                cl_ord_id: 1,
                remaining_qty: 0,
            })),
            vec![
                cancelled(&tp, 1, 2, 0, CancelReason::UserRequested),
                Event::BookDelete {
                    instrument: A,
                    order_id: 1,
                },
                cancelled(&sl, 2, 2, 0, CancelReason::Oco),
            ],
        ),
        (3, new(tp), rests(&tp, 3)),
        (3, new(sl), vec![accepted(&sl, 4)]),
        (
            4,
            EngineInput::Command(Command::MassCancel(MassCancel {
                account: 1,
                instrument: None,
            })),
            vec![
                cancelled(&tp, 3, 2, 0, CancelReason::MassCancel),
                Event::BookDelete {
                    instrument: A,
                    order_id: 3,
                },
                cancelled(&sl, 4, 2, 0, CancelReason::MassCancel),
            ],
        ),
    ]);
}
