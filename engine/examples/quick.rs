//! A BTC-USDT-like book in a few commands, printing every event: handy for debugging.
//!
//! ```sh
//! cargo run -p tpx-engine --example quick
//! ```
//!
//! Prices are ticks of 0.1 USDT (the ladder spans 50,000.0 to 150,000.0 USDT, one million
//! levels per side) and quantities lots of 0.0001 BTC.

use tpx_engine::*;

const BTC_USDT: InstrumentId = 1;

fn order(account: AccountId, cl_ord_id: u64, side: Side, usdt: f64, btc: f64) -> NewOrder {
    NewOrder {
        account,
        cl_ord_id,
        instrument: BTC_USDT,
        side,
        kind: OrderKind::Limit,
        price: (usdt * 10.0).round() as PriceTicks,
        qty: (btc * 10_000.0).round() as QtyLots,
        tif: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        stp: StpMode::ExpireMaker,
        ext: OrderExt::NONE,
    }
}

fn main() -> Result<(), ConfigError> {
    let mut engine = Engine::new(EngineConfig {
        instruments: vec![InstrumentSpec {
            id: BTC_USDT,
            kind: InstrumentKind::Spot { base: 1, quote: 2 },
            tick_size: 10_000,    // 0.1 USDT in 1e-6 USDT units
            lot_size: 10_000,     // 0.0001 BTC in satoshi
            min_price: 500_000,   // 50,000.0 USDT
            max_price: 1_500_000, // 150,000.0 USDT
            min_qty: 1,
            max_qty: 10_000_000,
            min_notional: 500_000, // 5 USDT: one tick-lot is 1e-5 USDT
        }],
        max_orders: 10_000,
        max_accounts: 100,
    })?;

    let commands = [
        Command::SetReferencePrice {
            instrument: BTC_USDT,
            price: 1_000_000,
            band_bps: 500,
        },
        Command::NewOrder(order(1, 1, Side::Sell, 100_010.0, 0.5)),
        Command::NewOrder(order(1, 2, Side::Sell, 100_000.0, 0.25)),
        Command::NewOrder(order(2, 1, Side::Buy, 99_990.0, 1.0)),
        Command::NewOrder(order(3, 1, Side::Buy, 100_010.0, 0.6)),
        Command::Replace(Replace {
            account: 2,
            orig_cl_ord_id: 1,
            new_cl_ord_id: 2,
            price: 999_950,
            qty: 5_000,
        }),
        Command::Cancel(Cancel {
            account: 1,
            cl_ord_id: 1,
            remaining_qty: 1_000,
        }),
        Command::NewOrder(order(4, 1, Side::Buy, 120_000.0, 0.1)),
        Command::MassCancel(MassCancel {
            account: 1,
            instrument: None,
        }),
    ];
    let mut events = Vec::new();
    for (ts_ns, cmd) in commands.iter().enumerate() {
        events.clear();
        engine.process(ts_ns as u64, cmd, &mut events);
        println!("{cmd:?}");
        for event in &events {
            println!("    {event:?}");
        }
    }
    println!("best bid {:?}", engine.best_bid(BTC_USDT));
    println!("best ask {:?}", engine.best_ask(BTC_USDT));
    for o in engine.l3(BTC_USDT) {
        println!("    {o:?}");
    }
    println!("state hash {:#018x}", engine.state_hash());
    engine
        .check_invariants()
        .expect("the engine's invariants hold");
    Ok(())
}
