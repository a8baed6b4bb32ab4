//! The matching engine against the reference book: the input bytes are decoded into a stream
//! of engine inputs (10 bytes an input, see `input`), applied to `tpx_engine::Engine` and
//! to `tpx_engine::reference::ReferenceBook`. After every input both must have emitted the
//! same events, hash the same (`state_hash`), hold the same live and pending orders and best
//! prices, and pass `check_invariants`. Prices, quantities, accounts and client ids come from
//! small ranges (plus out-of-range values), so crossing, queueing, self-trade prevention, id
//! collisions, rejects and a full order pool happen all the time. New orders carry the crypto
//! order types (triggers on the last or mark price, GTD, iceberg, post-only slide, OCO), the
//! clock moves by data-driven steps (so GTD orders expire), and marks and ticks are inputs.
#![no_main]

use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

const INSTRUMENTS: [InstrumentId; 2] = [7, 3];

fn spec(id: InstrumentId, tick: u64, min: PriceTicks, max: PriceTicks) -> InstrumentSpec {
    InstrumentSpec {
        id,
        kind: InstrumentKind::Spot { base: 1, quote: 2 },
        tick_size: tick,
        lot_size: 1,
        min_price: min,
        max_price: max,
        min_qty: 1,
        max_qty: 40,
        min_notional: 0,
    }
}

fn config(max_orders: u32) -> EngineConfig {
    let mut perp = spec(3, 5, 1, 20);
    perp.kind = InstrumentKind::LinearPerp { settle: 2 };
    EngineConfig {
        instruments: vec![spec(7, 1, 95, 110), perp],
        max_orders,
        max_accounts: 4,
    }
}

/// One input from 10 bytes at time `ts_ns`: bytes 0-7 a command (see `command`), byte 8 the
/// order types of a new order (bits 0-1 trigger: none, last, mark; bit 2 rising; bits 3-4
/// GTD; bit 5 iceberg; bit 6 post-only slide; bit 7 OCO) with byte 9 their values (trigger
/// price, expiry step, display quantity, OCO client id); inputs 10 and 11 of byte 0 are a tick
/// and a mark.
fn input(b: &[u8; 10], ts_ns: u64) -> EngineInput {
    let cmd = command(b[..8].try_into().expect("8 bytes"));
    let (x, v) = (b[8], b[9]);
    match b[0] % 12 {
        10 => return EngineInput::Command(Command::Tick),
        11 => {
            return EngineInput::Risk(RiskCommand::SetMarkPrice {
                instrument: if b[1] % 4 == 0 { INSTRUMENTS[0] } else { INSTRUMENTS[1] },
                price: match v {
                    255 => 0,
                    _ => 1 + i64::from(v % 20),
                },
            })
        }
        _ => {}
    }
    let Command::NewOrder(mut o) = cmd else {
        return EngineInput::Command(cmd);
    };
    let trigger_price = if o.instrument == INSTRUMENTS[1] {
        1 + i64::from(v % 20)
    } else {
        93 + i64::from(v % 20)
    };
    let direction = if x & 4 != 0 {
        TriggerDirection::RisesTo
    } else {
        TriggerDirection::FallsTo
    };
    o.ext.trigger = match x & 3 {
        1 => Some(Trigger {
            price: trigger_price,
            source: TriggerSource::Last,
            direction,
        }),
        2 => Some(Trigger {
            price: trigger_price,
            source: TriggerSource::Mark,
            direction,
        }),
        _ => None,
    };
    match (x >> 3) & 3 {
        0 => {}
        1 => {
            o.tif = TimeInForce::Gtd;
            o.ext.expire_ts_ns = ts_ns + 1 + u64::from(v % 16);
        }
        2 => o.ext.expire_ts_ns = ts_ns + u64::from(v % 3), // GTD expiry on a non-GTD order
        _ => o.tif = TimeInForce::Gtd,                     // GTD without an expiry
    }
    if x & 0x20 != 0 {
        o.ext.display_qty = 1 + u64::from(v % 4);
    }
    if x & 0x40 != 0 {
        o.ext.post_only_slide = true;
    }
    if x & 0x80 != 0 {
        o.ext.oco_cl_ord_id = u64::from(v % 12);
    }
    EngineInput::Command(Command::NewOrder(o))
}

/// One command from 8 bytes.
fn command(b: &[u8; 8]) -> Command {
    let instrument = match b[1] % 5 {
        0..=2 => INSTRUMENTS[0],
        3 => INSTRUMENTS[1],
        _ => 99, // unknown instrument: a reject
    };
    let account = u32::from(b[2] % 5); // 4 is outside max_accounts
    let cl_ord_id = u64::from(b[3] % 12);
    let price = match b[4] {
        250 => i64::MIN,
        251 => i64::MAX,
        252 => 0,
        253 => -1,
        x => 93 + i64::from(x % 20),
    };
    let qty = match b[5] {
        255 => u64::MAX,
        254 => 0,
        x => 1 + u64::from(x % 45),
    };
    let flags = b[6];
    let side = if flags & 1 == 0 { Side::Buy } else { Side::Sell };
    match b[0] % 10 {
        0..=3 => Command::NewOrder(NewOrder {
            account,
            cl_ord_id,
            instrument,
            side,
            kind: if flags & 2 == 0 {
                OrderKind::Limit
            } else {
                OrderKind::Market
            },
            price,
            qty,
            tif: match (flags >> 2) % 3 {
                0 => TimeInForce::Gtc,
                1 => TimeInForce::Ioc,
                _ => TimeInForce::Fok,
            },
            post_only: flags & 0x20 != 0,
            reduce_only: flags & 0x40 != 0,
            stp: match b[7] % 5 {
                0 => StpMode::None,
                1 => StpMode::ExpireTaker,
                2 => StpMode::ExpireMaker,
                3 => StpMode::ExpireBoth,
                _ => StpMode::DecrementAndCancel,
            },
            ext: OrderExt::NONE,
        }),
        4 | 5 => Command::Cancel(Cancel {
            account,
            cl_ord_id,
            remaining_qty: if flags & 1 == 0 { 0 } else { qty },
        }),
        6 | 7 => Command::Replace(Replace {
            account,
            orig_cl_ord_id: cl_ord_id,
            new_cl_ord_id: if flags & 2 == 0 {
                cl_ord_id
            } else {
                u64::from(b[7] % 12)
            },
            price,
            qty,
        }),
        8 => Command::MassCancel(MassCancel {
            account,
            instrument: if flags & 1 == 0 { None } else { Some(instrument) },
        }),
        _ => match flags % 3 {
            0 => Command::SetReferencePrice {
                instrument,
                price,
                band_bps: u32::from(b[7]) * 40,
            },
            1 => Command::Halt { instrument },
            _ => Command::Resume { instrument },
        },
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max_orders = u32::from(first % 24);
    let mut engine = Engine::new(config(max_orders)).expect("valid config");
    let mut reference = ReferenceBook::new(config(max_orders)).expect("valid config");
    assert_eq!(engine.state_hash(), reference.state_hash(), "initial hash");
    let (mut ev_e, mut ev_r) = (Vec::new(), Vec::new());
    let mut ts = 1_000u64;
    for (i, chunk) in rest.chunks_exact(10).enumerate() {
        let b: &[u8; 10] = chunk.try_into().expect("10 bytes");
        ts += u64::from(b[9] >> 6);
        let cmd = input(b, ts);
        ev_e.clear();
        ev_r.clear();
        engine.apply(ts, &cmd, &mut ev_e);
        reference.apply(ts, &cmd, &mut ev_r);
        assert_eq!(ev_e, ev_r, "events of command #{i}: {cmd:?}");
        if let Err(e) = engine.check_invariants() {
            panic!("engine invariants after command #{i} {cmd:?}: {e}");
        }
        if let Err(e) = reference.check_invariants() {
            panic!("reference invariants after command #{i} {cmd:?}: {e}");
        }
        assert_eq!(
            engine.state_hash(),
            reference.state_hash(),
            "state hash after command #{i}: {cmd:?}"
        );
        assert_eq!(engine.live_orders(), reference.live_orders(), "#{i}");
        assert_eq!(engine.pending_triggers(), reference.pending_triggers(), "#{i}");
        for inst in INSTRUMENTS {
            assert_eq!(engine.best_bid(inst), reference.best_bid(inst), "#{i}");
            assert_eq!(engine.best_ask(inst), reference.best_ask(inst), "#{i}");
        }
    }
});
