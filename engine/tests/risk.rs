//! Accounts and risk, rule by rule, with hand-computed amounts (see the comments for the
//! arithmetic). Every command goes through the harness, which checks every invariant (holds,
//! conservation per asset and per perpetual, lists, reduce-only, limits) after it.

mod common;

use common::risk::*;
use tpx_engine::*;

use RejectReason as Rej;
use Side::{Buy, Sell};

#[test]
fn deposits_and_withdrawals_are_idempotent_by_request_id() {
    let mut r = R::new();
    let dep = |request_id, amount| RiskCommand::Deposit {
        account: 1,
        asset: USDT,
        amount,
        request_id,
    };
    let wd = |request_id, amount| RiskCommand::Withdraw {
        account: 1,
        asset: USDT,
        amount,
        request_id,
    };
    let out = r.risk(dep(5, 1_000));
    assert_eq!(
        risk_events(&out),
        vec![RiskEvent::Balance {
            account: 1,
            asset: USDT,
            reason: BalanceReason::Deposit,
            delta: 1_000,
            available: 1_000,
            held: 0,
        }]
    );
    assert_eq!(rejects(&r.risk(dep(5, 1_000))), vec![Rej::DuplicateRequest]);
    assert_eq!(rejects(&r.risk(dep(4, 1_000))), vec![Rej::DuplicateRequest]);
    assert_eq!(rejects(&r.risk(wd(5, 1))), vec![Rej::DuplicateRequest]);
    // An over-withdrawal is refused and does not use up its request id.
    assert_eq!(
        rejects(&r.risk(wd(6, 1_001))),
        vec![Rej::InsufficientBalance]
    );
    assert!(rejects(&r.risk(wd(6, 400))).is_empty());
    assert_eq!(rejects(&r.risk(wd(6, 1))), vec![Rej::DuplicateRequest]);
    assert_eq!(r.bal(1, USDT), (600, 0));
    assert_eq!(r.e.account_risk(1), Some((0, 6)));
    assert_eq!(r.e.net_deposits(USDT), Some(600));
    // Bad inputs.
    let bad = |account, asset, amount| RiskCommand::Deposit {
        account,
        asset,
        amount,
        request_id: 100,
    };
    assert_eq!(rejects(&r.risk(bad(1, 99, 5))), vec![Rej::UnknownAsset]);
    assert_eq!(rejects(&r.risk(bad(1, USDT, 0))), vec![Rej::InvalidAmount]);
    assert_eq!(
        rejects(&r.risk(bad(10, USDT, 5))),
        vec![Rej::UnknownAccount]
    );
    assert_eq!(
        rejects(&r.risk(bad(1, USDT, u64::MAX))),
        vec![Rej::InvalidAmount]
    );
    let out = r.risk(RiskCommand::SetFeeTier {
        account: 1,
        tier: 2,
    });
    assert_eq!(rejects(&out), vec![Rej::InvalidFeeTier]);
    // A rejection names the account and the request id.
    assert_eq!(
        r.risk(wd(7, 10_000)),
        vec![EngineOutput::Event(Event::Rejected {
            account: 1,
            cl_ord_id: 7,
            reason: Rej::InsufficientBalance,
        })]
    );
}

#[test]
fn risk_commands_on_a_risk_off_engine_are_rejected() {
    let mut e = Engine::new(engine_config(16)).unwrap();
    let mut out = Outputs::default();
    e.process_risk(
        0,
        &RiskCommand::Deposit {
            account: 1,
            asset: USDT,
            amount: 5,
            request_id: 1,
        },
        &mut out,
    );
    assert_eq!(rejects(&out.0), vec![Rej::RiskDisabled]);
    assert_eq!(e.balance(1, USDT), None);
    assert!(!e.risk_enabled());
    // With risk off a reduce-only spot order is accepted as before (the flag is ignored).
    let mut o = order(1, 1, SPOT, Buy, 100, 1);
    o.reduce_only = true;
    let mut ev = Vec::new();
    e.process(0, &Command::NewOrder(o), &mut ev);
    assert!(matches!(ev[0], Event::Accepted { .. }));
}

#[test]
fn a_spot_buy_holds_quote_and_fees_and_settles_with_rounding_to_the_fee_account() {
    let mut r = R::new();
    r.deposit(1, USDT, 100_000);
    r.deposit(2, BTC, 1_000);
    // Seller: 20 lots of 10 BTC units hold 200 BTC units.
    r.order(order(2, 1, SPOT, Sell, 8_999, 20));
    assert_eq!(r.bal(2, BTC), (800, 200));
    // Buyer: per lot ceil(9000 / 3) = 3000 plus the largest fee, ceil(3000 * 0.3%) = 9.
    let out = r.order(order(1, 1, SPOT, Buy, 9_000, 30));
    assert_eq!(fills(&out), vec![(8_999, 20)]);
    // Notional 8999 * 20 / 3 = 59993.33: the buyer pays 59994, the seller gets 59993. Taker
    // fee ceil(59994 * 0.3%) = 180, maker fee ceil(59994 * 0.1%) = 60.
    assert!(risk_events(&out).contains(&RiskEvent::Fees {
        instrument: SPOT,
        trade_id: 1,
        asset: USDT,
        maker_fee: 60,
        taker_fee: 180,
    }));
    // Buyer: 10 lots still held (30,090); of the 60,180 released 60,174 was spent.
    assert_eq!(r.bal(1, USDT), (100_000 - 90_270 + 6, 30_090));
    assert_eq!(r.bal(1, BTC), (200, 0));
    assert_eq!(r.bal(2, BTC), (800, 0));
    assert_eq!(r.bal(2, USDT), (59_993 - 60, 0));
    // Fee account: the rounding remainder 1 plus both fees.
    assert_eq!(r.bal(FEE, USDT), (241, 0));
    r.cmd(Command::Cancel(Cancel {
        account: 1,
        cl_ord_id: 1,
        remaining_qty: 0,
    }));
    assert_eq!(r.bal(1, USDT), (39_826, 0));
}

#[test]
fn orders_without_enough_balance_are_rejected() {
    let mut r = R::new();
    r.deposit(3, USDT, 3_008);
    assert_eq!(
        rejects(&r.order(order(3, 1, SPOT, Buy, 9_000, 1))),
        vec![Rej::InsufficientBalance]
    );
    r.deposit(3, USDT, 1);
    assert!(rejects(&r.order(order(3, 1, SPOT, Buy, 9_000, 1))).is_empty());
    assert_eq!(r.bal(3, USDT), (0, 3_009));
    // No base to sell.
    assert_eq!(
        rejects(&r.order(order(3, 2, SPOT, Sell, 9_500, 1))),
        vec![Rej::InsufficientBalance]
    );
    // Reduce-only means nothing on a spot pair.
    let mut o = order(3, 3, SPOT, Sell, 9_500, 1);
    o.reduce_only = true;
    assert_eq!(rejects(&r.order(o)), vec![Rej::InvalidOrderType]);
    // A replace that needs more than is available is refused and changes nothing.
    let out = r.cmd(Command::Replace(Replace {
        account: 3,
        orig_cl_ord_id: 1,
        new_cl_ord_id: 1,
        price: 9_003,
        qty: 1,
    }));
    assert_eq!(rejects(&out), vec![Rej::InsufficientBalance]);
    // Cheaper is fine and releases the difference: per lot 2,967 + 9.
    r.cmd(Command::Replace(Replace {
        account: 3,
        orig_cl_ord_id: 1,
        new_cl_ord_id: 1,
        price: 8_900,
        qty: 1,
    }));
    assert_eq!(r.bal(3, USDT), (3_009 - 2_976, 2_976));
}

#[test]
fn a_market_buy_holds_at_its_protection_price() {
    let mut r = R::new();
    r.deposit(2, BTC, 100);
    r.order(order(2, 1, SPOT, Sell, 9_500, 1));
    r.deposit(4, USDT, 10_000);
    let market = |qty| NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        ..order(4, 1, SPOT, Buy, 10_000, qty)
    };
    // Per lot ceil(10000 / 3) = 3334 + ceil(3334 * 0.3%) = 11: 3 lots need 10,035.
    assert_eq!(rejects(&r.order(market(3))), vec![Rej::InsufficientBalance]);
    let out = r.order(market(2));
    assert_eq!(fills(&out), vec![(9_500, 1)]);
    assert_eq!(
        cancels(&out),
        vec![(1, 1, 0, CancelReason::MarketProtection)]
    );
    // Paid ceil(9500 / 3) = 3167 and ceil(3167 * 0.3%) = 10; nothing left held.
    assert_eq!(r.bal(4, USDT), (10_000 - 3_177, 0));
    assert_eq!(r.bal(4, BTC), (10, 0));
}

#[test]
fn a_maker_rebate_comes_out_of_the_taker_fee() {
    let mut r = R::new();
    for account in [5, 6] {
        r.risk(RiskCommand::SetFeeTier { account, tier: 1 });
    }
    r.deposit(5, ETH, 10);
    r.deposit(6, USDT, 20_000);
    r.order(order(5, 1, SPOT2, Sell, 1_000, 10));
    let out = r.order(order(6, 1, SPOT2, Buy, 1_000, 10));
    // Notional 10,000: taker fee 0.2% = 20, maker rebate 0.05% = 5.
    assert!(risk_events(&out).contains(&RiskEvent::Fees {
        instrument: SPOT2,
        trade_id: 1,
        asset: USDT,
        maker_fee: -5,
        taker_fee: 20,
    }));
    assert_eq!(r.bal(5, USDT), (10_005, 0));
    assert_eq!(r.bal(FEE, USDT), (15, 0));
    assert_eq!(r.bal(6, USDT).0 + r.bal(6, USDT).1, 20_000 - 10_020);
}

/// Accounts 1 (long 10) and 2 (short 10) on `PERP` at 1000.
fn perp_pair() -> R {
    let mut r = R::new();
    r.deposit(1, USDT, 100_000);
    r.deposit(2, USDT, 100_000);
    // Per lot: value ceil(1000 * 7/10) = 700, margin 10% = 70, fee 0.3% = ceil(2.1) = 3.
    r.order(order(1, 1, PERP, Buy, 1_000, 10));
    assert_eq!(r.bal(1, USDT), (100_000 - 730, 730));
    let out = r.order(order(2, 1, PERP, Sell, 1_000, 10));
    assert_eq!(fills(&out), vec![(1_000, 10)]);
    r
}

#[test]
fn a_perpetual_fill_locks_margin_and_charges_fees() {
    let r = perp_pair();
    // Notional 7,000: maker fee 7, taker fee 21; margin locked 700 each.
    assert_eq!(r.bal(1, USDT), (100_000 - 7 - 700, 700));
    assert_eq!(r.bal(2, USDT), (100_000 - 21 - 700, 700));
    assert_eq!(r.bal(FEE, USDT), (28, 0));
    let p = r.pos(1, PERP);
    assert_eq!(
        (p.size, p.cost, p.margin, p.fees, p.entry_price),
        (10, 10_000, 700, -7, 1_000)
    );
    let p = r.pos(2, PERP);
    assert_eq!((p.size, p.cost, p.margin, p.fees), (-10, -10_000, 700, -21));
    assert_eq!(r.e.venue_ledger(PERP).unwrap().fees, 28);
}

#[test]
fn the_mark_settles_variation_margin_and_funding_moves_between_sides() {
    let mut r = perp_pair();
    let out = r.mark(PERP, 1_100);
    // 10 * 100 ticks * 7/10 = 700 each way.
    let ev = risk_events(&out);
    assert_eq!(
        ev[0],
        RiskEvent::MarkPrice {
            instrument: PERP,
            price: 1_100
        }
    );
    assert_eq!(r.bal(1, USDT).0, 100_000 - 707 + 700);
    assert_eq!(r.bal(2, USDT).0, 100_000 - 721 - 700);
    assert_eq!(r.pos(1, PERP).realized_pnl, 700);
    assert_eq!(r.pos(1, PERP).cost, 11_000);
    assert_eq!(r.e.mark_price(PERP), Some(1_100));
    // Funding 0.01%: the long owes 10 * 1100 * 0.7 * 0.0001 = 0.77, pays 1; the short is owed
    // 0.77, gets 0; the fee account keeps the 1.
    let fee_before = r.bal(FEE, USDT).0;
    r.risk(RiskCommand::ApplyFunding {
        instrument: PERP,
        rate_ppm: 100,
        funding_id: 7,
    });
    assert_eq!(r.pos(1, PERP).funding, -1);
    assert_eq!(r.pos(2, PERP).funding, 0);
    assert_eq!(r.bal(FEE, USDT).0, fee_before + 1);
    assert_eq!(r.e.venue_ledger(PERP).unwrap().funding, 1);
    // Bad inputs.
    assert_eq!(r.e.last_funding_id(PERP), Some(7));
    // The same funding re-sent (after a failover, say) is refused and pays nothing.
    let before = (r.pos(1, PERP).funding, r.bal(FEE, USDT).0);
    for id in [7, 6, 0] {
        let dup = RiskCommand::ApplyFunding {
            instrument: PERP,
            rate_ppm: 100,
            funding_id: id,
        };
        assert_eq!(rejects(&r.risk(dup)), vec![Rej::DuplicateRequest]);
    }
    assert_eq!((r.pos(1, PERP).funding, r.bal(FEE, USDT).0), before);
    let funding = |instrument, rate_ppm| RiskCommand::ApplyFunding {
        instrument,
        rate_ppm,
        funding_id: 100,
    };
    assert_eq!(rejects(&r.risk(funding(PERP2, 1))), vec![Rej::NoMarkPrice]);
    assert_eq!(rejects(&r.risk(funding(SPOT, 1))), vec![Rej::NotPerpetual]);
    assert_eq!(
        rejects(&r.risk(funding(99, 1))),
        vec![Rej::UnknownInstrument]
    );
    assert_eq!(
        rejects(&r.risk(funding(PERP, 1_000_001))),
        vec![Rej::InvalidAmount]
    );
    assert_eq!(rejects(&r.mark(PERP, 0)), vec![Rej::InvalidPrice]);
}

/// Found by probing `tpx up` with extreme admin requests: a mark of `i64::MAX` on a
/// perpetual was accepted and settled variation margin at it (every short wiped out and
/// covered by the insurance account in one request). A mark outside the prices the instrument
/// can trade at (`min_price..=max_price`, as an order's) is now refused `InvalidPrice`.
#[test]
fn a_mark_outside_the_instrument_s_price_range_is_refused() {
    let mut r = perp_pair();
    let before = (r.bal(1, USDT), r.bal(2, USDT), r.pos(1, PERP).cost);
    for price in [20_001, i64::MAX] {
        assert_eq!(rejects(&r.mark(PERP, price)), vec![Rej::InvalidPrice]);
    }
    assert_eq!(
        (r.bal(1, USDT), r.bal(2, USDT), r.pos(1, PERP).cost),
        before
    );
    assert_eq!(r.e.mark_price(PERP), None);
    // The range's ends are prices like any other.
    assert!(rejects(&r.mark(PERP, 20_000)).is_empty());
    assert!(rejects(&r.mark(PERP, 1)).is_empty());
}

#[test]
fn margin_call_liquidation_and_insurance_cover() {
    let mut r = R::new();
    r.deposit(3, USDT, 1_000);
    r.deposit(4, USDT, 100_000);
    r.deposit(5, USDT, 100_000);
    r.order(order(3, 1, PERP, Buy, 1_000, 10));
    r.order(order(4, 1, PERP, Sell, 1_000, 10));
    // Account 3: 1000 - 7 fee - 700 margin available, 700 held.
    assert_eq!(r.bal(3, USDT), (293, 700));
    let out = r.mark(PERP, 900);
    // VM -700: available -407; equity 293 < maintenance ceil(6300 * 5%) = 315.
    assert!(risk_events(&out).contains(&RiskEvent::MarginCall {
        account: 3,
        asset: USDT,
        equity: 293,
        maintenance: 315,
    }));
    assert!(r.e.balance(3, USDT).unwrap().margin_call);
    // A lower mark: -1400 more.
    r.mark(PERP, 700);
    assert_eq!(r.bal(3, USDT), (-1_807, 700));
    r.order(order(5, 1, PERP, Buy, 650, 10));
    let fee_before = r.bal(FEE, USDT).0;
    let out = r.risk(RiskCommand::Liquidate {
        account: 3,
        instrument: PERP,
        cl_ord_id: 77,
        price: 600,
        request_id: 1_000,
    });
    let ev = risk_events(&out);
    assert!(ev.contains(&RiskEvent::Liquidated {
        account: 3,
        instrument: PERP,
        size: 10,
        price: 700,
    }));
    // Margin released: -1107 left, covered by the fee (insurance) account.
    assert!(ev.contains(&RiskEvent::Balance {
        account: 3,
        asset: USDT,
        reason: BalanceReason::InsuranceCover,
        delta: 1_107,
        available: 0,
        held: 0,
    }));
    assert!(ev.contains(&RiskEvent::MarginRestored {
        account: 3,
        asset: USDT
    }));
    assert_eq!(r.bal(3, USDT), (0, 0));
    assert_eq!(r.pos(3, PERP).size, 0);
    // The liquidation account sold what it took over to account 5's bid.
    assert_eq!(fills(&out), vec![(650, 10)]);
    assert_eq!(r.pos(LIQ, PERP).size, 0);
    assert_eq!(r.pos(5, PERP).size, 10);
    // Fee account: paid 1107, received the liquidation fill's fees.
    let fees = 14 + 5; // taker ceil(4550 * 0.3%), maker ceil(4550 * 0.1%)
    assert_eq!(r.bal(FEE, USDT).0, fee_before - 1_107 + fees);
    // Not liquidatable: flat, venue, spot, unknown.
    let liq = |account, instrument| RiskCommand::Liquidate {
        account,
        instrument,
        cl_ord_id: 1,
        price: 600,
        request_id: 1_001,
    };
    assert_eq!(rejects(&r.risk(liq(3, PERP))), vec![Rej::NoPosition]);
    assert_eq!(rejects(&r.risk(liq(LIQ, PERP))), vec![Rej::NotLiquidatable]);
    assert_eq!(rejects(&r.risk(liq(FEE, PERP))), vec![Rej::NotLiquidatable]);
    assert_eq!(rejects(&r.risk(liq(5, SPOT))), vec![Rej::NotPerpetual]);
    assert_eq!(rejects(&r.risk(liq(5, PERP2))), vec![Rej::NoMarkPrice]);
    assert_eq!(rejects(&r.risk(liq(10, PERP))), vec![Rej::UnknownAccount]);
}

#[test]
fn liquidation_cancels_every_order_of_the_account() {
    let mut r = perp_pair();
    r.deposit(2, BTC, 100);
    r.order(order(2, 2, SPOT, Sell, 9_000, 3));
    r.order(order(2, 3, PERP, Sell, 1_500, 2));
    r.mark(PERP, 1_000);
    let out = r.risk(RiskCommand::Liquidate {
        account: 2,
        instrument: PERP,
        cl_ord_id: 5,
        price: 1_200,
        request_id: 1_000,
    });
    assert_eq!(
        cancels(&out)[..2],
        [
            (2, 3, 0, CancelReason::Liquidation),
            (3, 2, 0, CancelReason::Liquidation)
        ]
    );
    assert_eq!(r.bal(2, BTC), (100, 0));
    // Nobody sells: the liquidation account's IOC buy finds nothing and keeps the position.
    assert_eq!(r.pos(LIQ, PERP).size, -10);
    assert_eq!(r.e.live_orders(), 0);
}

/// A liquidation's `request_id` is the account's idempotency key of deposits and withdrawals:
/// one re-sent (after a failover, say) is refused `DuplicateRequest` even once the account
/// holds a position again; a refused one does not use up its id.
#[test]
fn liquidations_are_idempotent_by_request_id() {
    let mut r = perp_pair();
    r.mark(PERP, 1_000);
    let liq = |request_id, cl_ord_id| RiskCommand::Liquidate {
        account: 1,
        instrument: PERP,
        cl_ord_id,
        price: 900,
        request_id,
    };
    // Account 1's deposit used id 1.
    assert_eq!(rejects(&r.risk(liq(1, 70))), vec![Rej::DuplicateRequest]);
    assert_eq!(r.pos(1, PERP).size, 10);
    assert!(rejects(&r.risk(liq(10, 71))).is_empty());
    assert_eq!(r.pos(1, PERP).size, 0);
    // Long again; the same liquidation re-sent is refused and the new position stays.
    r.order(order(2, 2, PERP, Sell, 1_000, 5));
    r.order(order(1, 2, PERP, Buy, 1_000, 5));
    assert_eq!(r.pos(1, PERP).size, 5);
    let out = r.risk(liq(10, 72));
    assert_eq!(rejects(&out), vec![Rej::DuplicateRequest]);
    assert!(risk_events(&out).is_empty());
    assert_eq!(r.pos(1, PERP).size, 5);
    // One sequence with deposits.
    let dep = RiskCommand::Deposit {
        account: 1,
        asset: USDT,
        amount: 1,
        request_id: 10,
    };
    assert_eq!(rejects(&r.risk(dep)), vec![Rej::DuplicateRequest]);
    // A refused liquidation does not use up its id.
    let spot = RiskCommand::Liquidate {
        account: 1,
        instrument: SPOT,
        cl_ord_id: 73,
        price: 900,
        request_id: 11,
    };
    assert_eq!(rejects(&r.risk(spot)), vec![Rej::NotPerpetual]);
    assert!(rejects(&r.risk(liq(11, 74))).is_empty());
    assert_eq!(r.pos(1, PERP).size, 0);
    assert_eq!(r.e.account_risk(1).map(|a| a.1), Some(11));
}

#[test]
fn reduce_only_never_increases_and_is_trimmed_when_the_position_shrinks() {
    let mut r = perp_pair();
    let ro = |cl, side, price, qty| NewOrder {
        reduce_only: true,
        ..order(1, cl, PERP, side, price, qty)
    };
    assert_eq!(
        rejects(&r.order(ro(10, Sell, 1_200, 11))),
        vec![Rej::ReduceOnlyWouldIncrease]
    );
    assert_eq!(
        rejects(&r.order(ro(10, Buy, 900, 1))),
        vec![Rej::ReduceOnlyWouldIncrease]
    );
    assert!(rejects(&r.order(ro(10, Sell, 1_200, 6))).is_empty());
    assert_eq!(
        rejects(&r.order(ro(11, Sell, 1_300, 5))),
        vec![Rej::ReduceOnlyWouldIncrease]
    );
    assert!(rejects(&r.order(ro(11, Sell, 1_300, 4))).is_empty());
    // A reduce-only replace may not grow past the position either.
    let out = r.cmd(Command::Replace(Replace {
        account: 1,
        orig_cl_ord_id: 11,
        new_cl_ord_id: 11,
        price: 1_300,
        qty: 5,
    }));
    assert_eq!(rejects(&out), vec![Rej::ReduceOnlyWouldIncrease]);
    // A plain sell of 7 fills: the position is 3, so 7 lots of reduce-only go, newest first.
    r.order(order(1, 12, PERP, Sell, 1_150, 7));
    let out = r.order(order(2, 2, PERP, Buy, 1_150, 7));
    assert_eq!(
        cancels(&out),
        vec![
            (11, 4, 0, CancelReason::ReduceOnly),
            (10, 3, 3, CancelReason::ReduceOnly)
        ]
    );
    assert_eq!(r.pos(1, PERP).size, 3);
    assert_eq!(r.pos(1, PERP).reduce_only_sell, 3);
    // A plain sell of 3 ahead of the reduce-only sell: when a buyer takes both, the
    // reduce-only one has nothing left to reduce and is cut at the head, not filled.
    r.order(order(1, 13, PERP, Sell, 1_190, 3));
    let out = r.order(order(2, 3, PERP, Buy, 1_200, 6));
    assert_eq!(fills(&out), vec![(1_190, 3)]);
    assert_eq!(cancels(&out), vec![(10, 3, 0, CancelReason::ReduceOnly)]);
    assert_eq!(r.pos(1, PERP).size, 0);
    assert_eq!(r.e.best_bid(PERP), Some((1_200, 3)));
}

#[test]
fn fok_does_not_count_reduce_only_makers() {
    let mut r = perp_pair();
    r.order(NewOrder {
        reduce_only: true,
        ..order(1, 5, PERP, Sell, 1_100, 5)
    });
    let fok = NewOrder {
        tif: TimeInForce::Fok,
        ..order(2, 5, PERP, Buy, 1_100, 5)
    };
    assert_eq!(rejects(&r.order(fok)), vec![Rej::FokNotFillable]);
}

#[test]
fn position_limits_count_every_open_order() {
    let mut r = R::new();
    r.deposit(1, USDT, 1_000_000);
    // PERP2: limit 50.
    assert!(rejects(&r.order(order(1, 1, PERP2, Buy, 100, 30))).is_empty());
    assert_eq!(
        rejects(&r.order(order(1, 2, PERP2, Buy, 100, 21))),
        vec![Rej::MaxPositionExceeded]
    );
    assert!(rejects(&r.order(order(1, 2, PERP2, Buy, 100, 20))).is_empty());
    assert_eq!(
        rejects(&r.order(order(1, 3, PERP2, Sell, 200, 51))),
        vec![Rej::MaxPositionExceeded]
    );
    assert!(rejects(&r.order(order(1, 3, PERP2, Sell, 200, 50))).is_empty());
    let grow = Command::Replace(Replace {
        account: 1,
        orig_cl_ord_id: 2,
        new_cl_ord_id: 2,
        price: 100,
        qty: 21,
    });
    assert_eq!(rejects(&r.cmd(grow)), vec![Rej::MaxPositionExceeded]);
}

#[test]
fn venue_accounts_and_configuration_are_validated() {
    use RiskConfigError as E;
    let with = |f: &dyn Fn(&mut RiskConfig)| {
        let mut rc = risk_config();
        f(&mut rc);
        Engine::with_risk(engine_config(16), rc).err()
    };
    assert_eq!(with(&|_| {}), None);
    assert_eq!(
        with(&|c| c.fee_account = 10),
        Some(E::InvalidVenueAccount { account: 10 })
    );
    assert_eq!(
        with(&|c| c.liquidation_account = FEE),
        Some(E::InvalidVenueAccount { account: FEE })
    );
    assert_eq!(
        with(&|c| c.assets.retain(|&a| a != ETH)),
        Some(E::UnknownAsset {
            instrument: SPOT2,
            asset: ETH
        })
    );
    assert_eq!(
        with(&|c| c.assets.push(BTC)),
        Some(E::DuplicateAsset { asset: BTC })
    );
    assert_eq!(
        with(&|c| c.instruments.retain(|i| i.instrument != PERP)),
        Some(E::MissingInstrument { instrument: PERP })
    );
    assert_eq!(
        with(&|c| c.instruments.push(InstrumentRisk::new(PERP))),
        Some(E::DuplicateInstrument { instrument: PERP })
    );
    assert_eq!(
        with(&|c| c.instruments[0].value_den = 0),
        Some(E::InvalidValue { instrument: SPOT })
    );
    assert_eq!(
        with(&|c| c.instruments[0].value_num = u64::MAX),
        Some(E::NotionalTooLarge { instrument: SPOT })
    );
    assert_eq!(
        with(&|c| c.instruments[2].fees[0].taker_ppm = 1_000_001),
        Some(E::InvalidFees { instrument: PERP })
    );
    assert_eq!(
        with(&|c| c.instruments[2].fees.clear()),
        Some(E::InvalidFees { instrument: PERP })
    );
    assert_eq!(
        with(&|c| c.instruments[2].maintenance_margin_ppm = 200_000),
        Some(E::InvalidMargin { instrument: PERP })
    );
    assert_eq!(
        with(&|c| c.fee_tiers = 0),
        Some(E::InvalidFeeTiers { fee_tiers: 0 })
    );
    // Entries for instruments the engine does not have are ignored (one list for all shards).
    assert_eq!(
        with(&|c| c.instruments.push(InstrumentRisk::new(500))),
        None
    );
    let mut bad = engine_config(16);
    bad.max_accounts = u32::MAX;
    assert!(matches!(
        Engine::with_risk(bad, risk_config()),
        Err(E::Engine(ConfigError::TooManyAccounts { .. }))
    ));
}

/// A perpetual sell that crosses a higher bid holds at that bid (it may fill up to there), and
/// keeps holding that much per lot when its rest rests at its lower limit: the one kind of
/// plain order whose hold is not what its price gives, so it is stored per slot. It survives
/// a snapshot, is released exactly by a cancel, and a replace recomputes it.
#[test]
fn a_crossing_perpetual_sell_keeps_its_higher_hold_when_it_rests() {
    let mut r = R::new();
    r.deposit(1, USDT, 100_000);
    r.deposit(2, USDT, 100_000);
    // Per lot at 1010: value ceil(1010 * 7/10) = 707, margin ceil(70.7) = 71, fee ceil(2.121)
    // = 3: 74. At 1000: 70 + 3 = 73.
    r.order(order(1, 1, PERP, Buy, 1_010, 1));
    assert_eq!(r.bal(1, USDT), (100_000 - 74, 74));
    let out = r.order(order(2, 1, PERP, Sell, 1_000, 5));
    assert_eq!(fills(&out), vec![(1_010, 1)]);
    // Account 2: 4 lots rest at 1000 holding 74 each, plus margin 71 locked for the fill;
    // taker fee ceil(707 * 0.3%) = 3.
    assert_eq!(r.bal(2, USDT), (100_000 - 3 - 296 - 71, 296 + 71));
    let snap = r.e.snapshot();
    let resting: Vec<_> = snap.instruments.iter().flat_map(|i| &i.orders).collect();
    assert_eq!(resting.len(), 1);
    assert_eq!((resting[0].leaves, resting[0].hold_per_lot), (4, 74));
    let hash = r.e.state_hash();
    let mut b = R::new();
    b.e = Engine::restore_with_risk(engine_config(256), risk_config(), &snap).unwrap();
    assert_eq!(b.e.state_hash(), hash);
    assert_eq!(b.e.snapshot(), snap);
    for e in [&mut r, &mut b] {
        // A cancel down to 1 lot releases 3 * 74.
        e.cmd(Command::Cancel(Cancel {
            account: 2,
            cl_ord_id: 1,
            remaining_qty: 1,
        }));
        assert_eq!(e.bal(2, USDT), (100_000 - 3 - 74 - 71, 74 + 71));
    }
    assert_eq!(b.e.state_hash(), r.e.state_hash());
    // A replace to 2 lots at the same price recomputes the hold at 1000: 2 * 73.
    r.cmd(Command::Replace(Replace {
        account: 2,
        orig_cl_ord_id: 1,
        new_cl_ord_id: 1,
        price: 1_000,
        qty: 2,
    }));
    assert_eq!(r.bal(2, USDT), (100_000 - 3 - 146 - 71, 146 + 71));
    let snap = r.e.snapshot();
    let resting: Vec<_> = snap.instruments.iter().flat_map(|i| &i.orders).collect();
    assert_eq!((resting[0].leaves, resting[0].hold_per_lot), (2, 73));
}
