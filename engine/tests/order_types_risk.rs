//! The crypto order types with risk on: a pending trigger holds nothing until it fires, then
//! passes the risk check like a new order (or is cancelled `TriggerRejected`); reduce-only
//! triggers are trimmed to the position when they fire; close-position takes the position's
//! size; an iceberg holds for its whole quantity. The harness checks every risk invariant
//! after every command.

mod common;

use common::risk::*;
use tpx_engine::*;

fn trig(mut o: NewOrder, price: PriceTicks, direction: TriggerDirection) -> NewOrder {
    o.ext.trigger = Some(Trigger {
        price,
        source: TriggerSource::Last,
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

fn triggered(out: &[EngineOutput]) -> Vec<ClientOrderId> {
    out.iter()
        .filter_map(|o| match o {
            EngineOutput::Event(Event::Triggered { cl_ord_id, .. }) => Some(*cl_ord_id),
            _ => None,
        })
        .collect()
}

/// A long of `qty` on `instrument` for account 1 (account 2 sells it).
fn long(r: &mut R, instrument: InstrumentId, qty: QtyLots) {
    r.order(order(2, 900, instrument, Side::Sell, 100, qty));
    let out = r.order(order(1, 900, instrument, Side::Buy, 100, qty));
    assert_eq!(fills(&out), vec![(100, qty)]);
}

#[test]
fn a_pending_trigger_holds_nothing_until_it_fires_then_holds_like_a_new_order() {
    let mut r = R::new();
    for a in 1..5 {
        r.deposit(a, USDT, 100_000);
        r.deposit(a, ETH, 100);
    }
    let stop = trig(
        order(1, 1, SPOT2, Side::Buy, 105, 2),
        100,
        TriggerDirection::RisesTo,
    );
    let before = r.bal(1, USDT);
    r.order(stop);
    assert_eq!(r.bal(1, USDT), before, "pending: nothing held");
    // What the same order holds when placed plainly.
    let mut plain = R::new();
    plain.deposit(1, USDT, 100_000);
    plain.order(order(1, 1, SPOT2, Side::Buy, 105, 2));
    let plain_held = plain.bal(1, USDT).1;
    assert!(plain_held > 0);
    r.order(order(2, 1, SPOT2, Side::Sell, 100, 1));
    let out = r.order(order(3, 1, SPOT2, Side::Buy, 100, 1));
    assert_eq!(triggered(&out), vec![1]);
    // It found no ask and rests at 105, holding what a plain order holds.
    assert_eq!(r.bal(1, USDT).1, plain_held);
    assert_eq!(r.e.best_bid(SPOT2), Some((105, 2)));
}

#[test]
fn a_trigger_the_balance_no_longer_covers_is_cancelled_when_it_fires() {
    let mut r = R::new();
    r.deposit(1, USDT, 10);
    for a in 2..4 {
        r.deposit(a, USDT, 100_000);
        r.deposit(a, ETH, 100);
    }
    let stop = trig(
        order(1, 1, SPOT2, Side::Buy, 105, 5),
        100,
        TriggerDirection::RisesTo,
    );
    assert_eq!(rejects(&r.order(stop)), vec![]);
    r.order(order(2, 1, SPOT2, Side::Sell, 100, 1));
    let out = r.order(order(3, 1, SPOT2, Side::Buy, 100, 1));
    assert_eq!(triggered(&out), vec![1]);
    assert_eq!(
        cancels(&out),
        vec![(1, 5, 0, CancelReason::TriggerRejected)]
    );
    assert_eq!(r.e.live_orders(), 0);
    assert_eq!(r.bal(1, USDT), (10, 0));
}

#[test]
fn a_reduce_only_stop_is_trimmed_to_the_position_when_it_fires() {
    let mut r = R::new();
    for a in 1..5 {
        r.deposit(a, USDT, 1_000_000);
    }
    long(&mut r, PERP2, 3);
    let mut stop = market(trig(
        order(1, 1, PERP2, Side::Sell, 90, 5),
        95,
        TriggerDirection::FallsTo,
    ));
    stop.reduce_only = true;
    assert_eq!(rejects(&r.order(stop)), vec![]);
    r.order(order(3, 1, PERP2, Side::Buy, 95, 10));
    let out = r.order(order(4, 1, PERP2, Side::Sell, 95, 1));
    assert_eq!(triggered(&out), vec![1]);
    assert_eq!(cancels(&out), vec![(1, 2, 3, CancelReason::ReduceOnly)]);
    assert_eq!(fills(&out), vec![(95, 1), (95, 3)]);
    assert_eq!(r.pos(1, PERP2).size, 0);
}

#[test]
fn close_position_takes_the_positions_size_when_it_fires() {
    let mut r = R::new();
    for a in 1..5 {
        r.deposit(a, USDT, 1_000_000);
    }
    long(&mut r, PERP2, 4);
    let mut stop = market(trig(
        order(1, 1, PERP2, Side::Sell, 90, 1),
        95,
        TriggerDirection::FallsTo,
    ));
    stop.ext.close_position = true;
    assert_eq!(rejects(&r.order(stop)), vec![]);
    r.order(order(3, 1, PERP2, Side::Buy, 95, 10));
    let out = r.order(order(4, 1, PERP2, Side::Sell, 95, 1));
    assert_eq!(triggered(&out), vec![1]);
    assert_eq!(cancels(&out), vec![]);
    assert_eq!(fills(&out), vec![(95, 1), (95, 4)]);
    assert_eq!(r.pos(1, PERP2).size, 0);
    // Close-position needs a trigger (and risk, and a perpetual).
    let mut bad = order(1, 2, PERP2, Side::Sell, 90, 1);
    bad.ext.close_position = true;
    assert_eq!(rejects(&r.order(bad)), vec![RejectReason::InvalidOrderType]);
}

#[test]
fn an_iceberg_holds_for_its_whole_quantity() {
    let mut r = R::new();
    r.deposit(1, ETH, 100);
    r.deposit(2, USDT, 100_000);
    let mut ice = order(1, 1, SPOT2, Side::Sell, 100, 10);
    ice.ext.display_qty = 3;
    r.order(ice);
    assert_eq!(r.bal(1, ETH), (90, 10));
    assert_eq!(r.e.best_ask(SPOT2), Some((100, 3)));
    let out = r.order(order(2, 1, SPOT2, Side::Buy, 100, 4));
    assert_eq!(fills(&out), vec![(100, 3), (100, 1)]);
    assert_eq!(r.bal(1, ETH), (90, 6));
    let out = r.cmd(Command::Cancel(Cancel {
        account: 1,
        cl_ord_id: 1,
        remaining_qty: 0,
    }));
    assert_eq!(cancels(&out), vec![(1, 6, 0, CancelReason::UserRequested)]);
    assert_eq!(r.bal(1, ETH), (96, 0));
}

#[test]
fn pending_triggers_and_icebergs_survive_a_snapshot_with_risk() {
    let mut r = R::new();
    for a in 1..5 {
        r.deposit(a, USDT, 1_000_000);
        r.deposit(a, ETH, 100);
    }
    long(&mut r, PERP2, 3);
    let mut stop = market(trig(
        order(1, 1, PERP2, Side::Sell, 90, 5),
        95,
        TriggerDirection::FallsTo,
    ));
    stop.reduce_only = true;
    stop.tif = TimeInForce::Ioc;
    r.order(stop);
    let mut ice = order(3, 7, SPOT2, Side::Sell, 100, 10);
    ice.ext.display_qty = 3;
    ice.tif = TimeInForce::Gtd;
    ice.ext.expire_ts_ns = 1_000;
    r.order(ice);
    let snap = r.e.snapshot();
    let mut b = R::new();
    b.e = Engine::restore_with_risk(engine_config(256), risk_config(), &snap).unwrap();
    assert_eq!(b.e.state_hash(), r.e.state_hash());
    assert_eq!(b.e.snapshot(), snap);
    assert_eq!(b.e.pending_triggers(), 1);
    b.e.check_invariants().unwrap();
    // Both fire the stop and refill the iceberg alike.
    let mut outs = Vec::new();
    for e in [&mut r, &mut b] {
        e.order(order(3, 1, PERP2, Side::Buy, 95, 10));
        let mut out = e.order(order(4, 1, PERP2, Side::Sell, 95, 1));
        out.extend(e.order(order(2, 8, SPOT2, Side::Buy, 100, 4)));
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(triggered(&outs[0]), vec![1]);
    assert_eq!(r.e.state_hash(), b.e.state_hash());
}
