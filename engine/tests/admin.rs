//! Unit tests: halt/resume, reference price and band, the state hash and the configuration.

mod common;

use common::book::*;
use tpx_engine::config::{MAX_INSTRUMENT_ID, MAX_LADDER_LEVELS};
use tpx_engine::hash::StateHasher;
use tpx_engine::*;
use RejectReason as R;
use Side::{Buy, Sell};

#[test]
fn halt_rejects_new_orders_and_replaces_and_keeps_the_book() {
    let mut h = H::new();
    h.gtc(1, 1, Sell, 100, 5);
    assert_eq!(
        h.run(Command::Halt { instrument: INST }),
        vec![Event::TradingStatus {
            instrument: INST,
            halted: true
        }]
    );
    assert_eq!(
        h.run(Command::Halt { instrument: INST }),
        vec![Event::TradingStatus {
            instrument: INST,
            halted: true
        }]
    );
    assert_eq!(
        h.gtc(2, 1, Buy, 100, 5),
        vec![rejected(2, 1, R::InstrumentHalted)]
    );
    assert_eq!(
        h.replace(1, 1, 1, 101, 5),
        vec![rejected(1, 1, R::InstrumentHalted)]
    );
    assert_eq!(h.book(), vec![(1, 1, 1, Sell, 100, 5)]);
    // The other instrument trades on.
    let o = NewOrder {
        instrument: OTHER,
        ..limit(2, 1, Buy, 100, 5)
    };
    assert_eq!(h.new_order(o).len(), 2);
    assert_eq!(
        h.run(Command::Resume { instrument: INST }),
        vec![Event::TradingStatus {
            instrument: INST,
            halted: false
        }]
    );
    assert_eq!(
        h.gtc(2, 2, Buy, 100, 5),
        vec![
            accepted(2, 2, 3, Buy, 100, 5),
            fill(1, 100, 5, Buy, (1, 1, 1, 0), (2, 2, 3, 0)),
        ]
    );
    for cmd in [
        Command::Halt { instrument: 99 },
        Command::Resume { instrument: 99 },
        Command::SetReferencePrice {
            instrument: 99,
            price: 0,
            band_bps: 1,
        },
    ] {
        assert_eq!(h.run(cmd), vec![rejected(0, 0, R::UnknownInstrument)]);
    }
}

#[test]
fn band_around_the_reference_price() {
    let mut h = H::new();
    assert_eq!(
        h.run(Command::SetReferencePrice {
            instrument: INST,
            price: 100,
            band_bps: 1_000
        }),
        vec![Event::ReferencePrice {
            instrument: INST,
            price: 100,
            band_bps: 1_000
        }]
    );
    assert_eq!(
        h.gtc(1, 1, Buy, 89, 1),
        vec![rejected(1, 1, R::PriceOutsideBand)]
    );
    assert_eq!(
        h.gtc(1, 1, Sell, 111, 1),
        vec![rejected(1, 1, R::PriceOutsideBand)]
    );
    assert_eq!(
        h.gtc(1, 1, Buy, 0, 1),
        vec![rejected(1, 1, R::InvalidPrice)]
    );
    assert_eq!(h.gtc(1, 1, Buy, 90, 1)[0], accepted(1, 1, 1, Buy, 90, 1));
    assert_eq!(
        h.gtc(1, 2, Sell, 110, 1)[0],
        accepted(1, 2, 2, Sell, 110, 1)
    );
    // A market order's protection price is checked against the band too.
    let m = NewOrder {
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        ..limit(2, 1, Buy, 120, 1)
    };
    assert_eq!(h.new_order(m), vec![rejected(2, 1, R::PriceOutsideBand)]);
    // The width is ref * bps / 10_000, rounded down: 105 * 100 / 10_000 = 1.
    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 105,
        band_bps: 100,
    });
    assert_eq!(
        h.gtc(2, 1, Buy, 103, 1),
        vec![rejected(2, 1, R::PriceOutsideBand)]
    );
    assert_eq!(
        h.gtc(2, 1, Sell, 107, 1),
        vec![rejected(2, 1, R::PriceOutsideBand)]
    );
    assert_eq!(h.gtc(2, 1, Buy, 104, 1)[0], accepted(2, 1, 3, Buy, 104, 1));
    assert_eq!(
        h.gtc(2, 2, Sell, 106, 1)[0],
        accepted(2, 2, 4, Sell, 106, 1)
    );
    // Resting orders outside a new band stay; band 0 disables the band.
    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 500,
        band_bps: 1,
    });
    assert_eq!(h.e.live_orders(), 4);
    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 500,
        band_bps: 0,
    });
    assert_eq!(h.gtc(3, 1, Buy, 1, 1)[0], accepted(3, 1, 5, Buy, 1, 1));
    for price in [0, -3] {
        assert_eq!(
            h.run(Command::SetReferencePrice {
                instrument: INST,
                price,
                band_bps: 0
            }),
            vec![rejected(0, 0, R::InvalidPrice)]
        );
    }
}

/// The canonical hash computed by hand, word by word, from the contract.
#[test]
fn state_hash_follows_the_contract_word_by_word() {
    let mut h = H::new();
    let mut w = StateHasher::new();
    // Per instrument: id, halted, reference price, band, no bids, no asks, then no last or
    // mark price and no pending triggers.
    for v in [
        1u64, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0,
    ] {
        w.word(v);
    }
    assert_eq!(h.e.state_hash(), w.finish());

    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 100,
        band_bps: 500,
    });
    h.run(Command::Halt { instrument: OTHER });
    h.gtc(2, 11, Buy, 99, 4); // 1
    let p = NewOrder {
        post_only: true,
        stp: StpMode::ExpireBoth,
        ..limit(3, 12, Buy, 100, 5)
    };
    h.new_order(p); // 2
    h.gtc(2, 13, Buy, 100, 6); // 3
    h.gtc(4, 14, Sell, 102, 7); // 4
    h.gtc(4, 15, Sell, 101, 1); // 5
    h.gtc(5, 16, Buy, 101, 1); // 6: trades with 5
    let mut w = StateHasher::new();
    w.word(7); // next order id
    w.word(2); // next trade id
    for v in [3, 1, 0, 0, 0, 0, 0, 0, 0] {
        w.word(v); // OTHER: halted, no reference price, empty, no last, mark or triggers
    }
    for v in [7, 0, 100, 500] {
        w.word(v);
    }
    let order = |w: &mut StateHasher, o: [u64; 8]| o.iter().for_each(|&v| w.word(v));
    w.word(3);
    order(
        &mut w,
        [2, 3, 12, Buy as u64, 100, 5, StpMode::ExpireBoth as u64, 1],
    );
    order(&mut w, [3, 2, 13, Buy as u64, 100, 6, 0, 0]);
    order(&mut w, [1, 2, 11, Buy as u64, 99, 4, 0, 0]);
    w.word(1);
    order(&mut w, [4, 4, 14, Sell as u64, 102, 7, 0, 0]);
    for v in [101, 0, 0] {
        w.word(v); // last trade price, no mark, no pending triggers
    }
    assert_eq!(h.e.state_hash(), w.finish());
}

fn script() -> Vec<Command> {
    let o = |account, cl, side, price, qty| Command::NewOrder(limit(account, cl, side, price, qty));
    vec![
        o(1, 1, Buy, 100, 5),
        o(2, 1, Sell, 103, 5),
        o(3, 1, Buy, 101, 2),
        Command::Replace(Replace {
            account: 1,
            orig_cl_ord_id: 1,
            new_cl_ord_id: 2,
            price: 103,
            qty: 3,
        }),
        Command::Cancel(Cancel {
            account: 3,
            cl_ord_id: 1,
            remaining_qty: 1,
        }),
        o(2, 2, Sell, 99, 9),
        Command::Halt { instrument: OTHER },
    ]
}

#[test]
fn replaying_the_same_commands_gives_the_same_hash() {
    let mut a = H::new();
    let mut b = H::new();
    let mut hashes = Vec::new();
    for cmd in script() {
        let ea = a.run(cmd);
        let eb = b.run(cmd);
        assert_eq!(ea, eb);
        assert_eq!(a.e.state_hash(), b.e.state_hash());
        hashes.push(a.e.state_hash());
    }
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(
        hashes.len(),
        script().len(),
        "every command changed the state"
    );
    // One different command gives a different hash.
    let mut c = H::new();
    for (i, cmd) in script().into_iter().enumerate() {
        let cmd = match (i, cmd) {
            (1, Command::NewOrder(o)) => Command::NewOrder(NewOrder { qty: 6, ..o }),
            (_, cmd) => cmd,
        };
        c.run(cmd);
    }
    assert_ne!(c.e.state_hash(), a.e.state_hash());
    // A flag that only the hash sees changes it too.
    let mut d = H::new();
    let mut e = H::new();
    d.new_order(limit(1, 1, Buy, 100, 1));
    e.new_order(NewOrder {
        post_only: true,
        ..limit(1, 1, Buy, 100, 1)
    });
    assert_ne!(d.e.state_hash(), e.e.state_hash());
}

#[test]
fn config_errors() {
    let new = |f: &dyn Fn(&mut EngineConfig)| {
        let mut cfg = config();
        f(&mut cfg);
        Engine::new(cfg).err()
    };
    assert_eq!(new(&|_| {}), None);
    assert_eq!(
        new(&|c| c.instruments[1].id = INST),
        Some(ConfigError::DuplicateInstrument { id: INST })
    );
    assert_eq!(
        new(&|c| c.instruments[0].id = MAX_INSTRUMENT_ID + 1),
        Some(ConfigError::InstrumentIdTooLarge {
            id: MAX_INSTRUMENT_ID + 1
        })
    );
    assert_eq!(
        new(&|c| c.instruments[0].min_price = 1_001),
        Some(ConfigError::InvalidPriceRange {
            id: INST,
            min_price: 1_001,
            max_price: 1_000
        })
    );
    assert_eq!(
        new(&|c| c.instruments[0].min_qty = 1_001),
        Some(ConfigError::InvalidQtyRange {
            id: INST,
            min_qty: 1_001,
            max_qty: 1_000
        })
    );
    assert_eq!(
        new(&|c| c.instruments[0].max_price = MAX_LADDER_LEVELS as i64 + 1),
        Some(ConfigError::LadderTooLarge {
            id: INST,
            levels: u128::from(MAX_LADDER_LEVELS) + 1
        })
    );
    assert!(matches!(
        new(&|c| {
            c.instruments[0].max_price = MAX_LADDER_LEVELS as i64;
            c.instruments[1].max_price = MAX_LADDER_LEVELS as i64;
            c.instruments.push(InstrumentSpec {
                id: 9,
                ..c.instruments[0]
            });
        }),
        Some(ConfigError::LaddersTooLarge { .. })
    ));
    assert!(matches!(
        new(&|c| c.max_orders = u32::MAX),
        Some(ConfigError::TooManyOrders { .. })
    ));
    assert!(matches!(
        new(&|c| c.max_accounts = u32::MAX),
        Some(ConfigError::TooManyAccounts { .. })
    ));
    // One-price ladders and zero capacity are valid.
    let e = new(&|c| {
        c.instruments[0].min_price = 5;
        c.instruments[0].max_price = 5;
        c.max_orders = 0;
    });
    assert_eq!(e, None);
}

#[test]
fn an_engine_with_no_slots_rejects_every_order_as_book_full() {
    let mut h = H::with(EngineConfig {
        max_orders: 0,
        ..config()
    });
    assert_eq!(h.gtc(1, 1, Buy, 100, 1), vec![rejected(1, 1, R::BookFull)]);
    assert_eq!(h.e.state_hash(), H::new().e.state_hash());
}
