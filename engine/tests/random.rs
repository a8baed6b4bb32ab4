//! Unit tests: long pseudo-random command streams (every command type, valid and not), with the
//! invariants checked after every command, and no allocation in `process`.

mod common;

use common::book::*;
use common::random::*;
use tpx_engine::*;

fn run_stream(cfg: EngineConfig, seed: u64, n: usize, mid: i64, spread: i64) -> u64 {
    let max_price = cfg.instruments[0].max_price;
    let mut h = H::with(cfg);
    let mut rng = Rng(seed);
    let mut events = 0;
    for _ in 0..n {
        events += h.run(command(&mut rng, mid, spread, max_price)).len();
    }
    assert!(events > n, "the stream did something");
    h.e.state_hash()
}

#[test]
fn random_streams_keep_the_invariants_and_are_deterministic() {
    for seed in 1..=4 {
        let a = run_stream(config(), seed, 5_000, 100, 10);
        let b = run_stream(config(), seed, 5_000, 100, 10);
        assert_eq!(a, b);
    }
}

#[test]
fn random_streams_on_a_wide_ladder() {
    // A million ticks: a four-layer bitmap, prices spread over the whole ladder.
    let mut cfg = config();
    cfg.instruments[0].max_price = 1_000_000;
    cfg.instruments[0].max_qty = 1_000;
    cfg.max_orders = 64;
    run_stream(cfg, 7, 3_000, 500_000, 499_999);
}

#[test]
fn process_does_not_allocate() {
    let mut cfg = config();
    cfg.max_orders = 256;
    let mut e = Engine::new(cfg).unwrap();
    let mut rng = Rng(42);
    let commands: Vec<Command> = (0..20_000)
        .map(|_| command(&mut rng, 100, 10, 1_000))
        .collect();
    let mut sink: Vec<Event> = Vec::with_capacity(4_096);
    let before = allocations();
    for (i, cmd) in commands.iter().enumerate() {
        sink.clear();
        e.process(i as u64, cmd, &mut sink);
    }
    assert_eq!(allocations(), before, "process allocated");
    assert!(e.live_orders() > 0);
    e.check_invariants().unwrap();
}

#[test]
fn many_live_orders_grow_the_client_index_without_allocating() {
    let mut cfg = config();
    cfg.max_orders = 6_000;
    cfg.max_accounts = 3;
    let mut e = Engine::new(cfg).unwrap();
    let mut sink: Vec<Event> = Vec::with_capacity(16);
    let before = allocations();
    for i in 0..5_000u64 {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy {
            1 + (i % 400) as i64
        } else {
            600 + (i % 400) as i64
        };
        sink.clear();
        e.process(
            i,
            &Command::NewOrder(limit((i % 3) as u32, i, side, price, 1)),
            &mut sink,
        );
        assert_eq!(sink.len(), 2);
    }
    assert_eq!(allocations(), before, "process allocated");
    e.check_invariants().unwrap();
    assert_eq!(e.live_orders(), 5_000);
    // Every order is found by its client id.
    for i in (0..5_000u64).step_by(7) {
        sink.clear();
        let cancel = Cancel {
            account: (i % 3) as u32,
            cl_ord_id: i,
            remaining_qty: 0,
        };
        e.process(0, &Command::Cancel(cancel), &mut sink);
        assert!(matches!(sink[0], Event::Cancelled { order_id, .. } if order_id == i + 1));
    }
    e.check_invariants().unwrap();
}
