//! Snapshot and restore: a restored engine has the same state hash and behaves identically
//! (random streams, snapshot at several points, both engines continued and compared event by
//! event), a snapshot round-trips, and every kind of bad snapshot gets its typed error.

mod common;

use common::book::*;
use common::random::{command, Rng};
use tpx_engine::*;

fn stream(seed: u64, n: usize) -> Vec<Command> {
    let mut rng = Rng(seed);
    (0..n).map(|_| command(&mut rng, 100, 10, 1_000)).collect()
}

fn cfg() -> EngineConfig {
    EngineConfig {
        max_orders: 64,
        ..config()
    }
}

/// Runs `cmds`, snapshots after `k` of them, restores, runs the rest on both and compares.
fn snapshot_at(cmds: &[Command], k: usize) {
    let mut a = Engine::new(cfg()).unwrap();
    let mut sink = Vec::new();
    for (i, c) in cmds[..k].iter().enumerate() {
        a.process(i as u64, c, &mut sink);
    }
    let snap = a.snapshot();
    let mut b = Engine::restore(cfg(), &snap).unwrap();
    b.check_invariants().unwrap();
    assert_eq!(a.state_hash(), b.state_hash(), "hash after restore at {k}");
    assert_eq!(b.snapshot(), snap, "snapshot round trip at {k}");
    for (i, c) in cmds[k..].iter().enumerate() {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        a.process((k + i) as u64, c, &mut ea);
        b.process((k + i) as u64, c, &mut eb);
        assert_eq!(
            ea,
            eb,
            "events of command {} ({c:?}) after a snapshot at {k}",
            k + i
        );
        assert_eq!(
            a.state_hash(),
            b.state_hash(),
            "hash after command {}",
            k + i
        );
    }
    b.check_invariants().unwrap();
}

#[test]
fn restored_engines_behave_identically() {
    for seed in 1..=6 {
        let cmds = stream(seed, 3_000);
        for k in [0, 1, 17, 500, 1_500, 2_999] {
            snapshot_at(&cmds, k);
        }
    }
}

#[test]
fn snapshot_exports_every_field() {
    let mut h = H::new();
    h.run(Command::SetReferencePrice {
        instrument: INST,
        price: 100,
        band_bps: 500,
    });
    h.run(Command::Halt { instrument: OTHER });
    let mut o = limit(2, 9, Side::Sell, 104, 5);
    o.stp = StpMode::DecrementAndCancel;
    o.post_only = true;
    o.reduce_only = true;
    h.new_order(o);
    h.gtc(1, 4, Side::Buy, 99, 3);
    h.gtc(1, 5, Side::Buy, 101, 2);
    h.gtc(3, 1, Side::Sell, 104, 1);
    let snap = h.e.snapshot();
    assert_eq!(snap.next_order_id, 5);
    assert_eq!(snap.next_trade_id, 1);
    let ids: Vec<_> = snap.instruments.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![OTHER, INST]);
    assert!(snap.instruments[0].halted && snap.instruments[0].orders.is_empty());
    let inst = &snap.instruments[1];
    assert_eq!(
        (inst.halted, inst.ref_price, inst.band_bps),
        (false, 100, 500)
    );
    let order_ids: Vec<_> = inst.orders.iter().map(|o| o.order_id).collect();
    assert_eq!(
        order_ids,
        vec![3, 2, 1, 4],
        "bids best first, then asks in time priority"
    );
    assert_eq!(
        inst.orders[2],
        OrderSnapshot {
            order_id: 1,
            account: 2,
            cl_ord_id: 9,
            side: Side::Sell,
            price: 104,
            leaves: 5,
            stp: StpMode::DecrementAndCancel,
            post_only: true,
            reduce_only: true,
            hold_per_lot: 0,
            ext: None,
        }
    );
    assert_eq!(snap.risk, None);
    let e = Engine::restore(config(), &snap).unwrap();
    assert_eq!(e.state_hash(), h.e.state_hash());
    // Mass cancel after restore walks the account in ascending order id.
    let mut a = h.e;
    let mut b = e;
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let mc = Command::MassCancel(MassCancel {
        account: 1,
        instrument: None,
    });
    a.process(0, &mc, &mut ea);
    b.process(0, &mc, &mut eb);
    assert_eq!(ea, eb);
    assert_eq!(ea.len(), 4);
}

fn good() -> EngineSnapshot {
    let mut h = H::new();
    h.gtc(1, 1, Side::Buy, 99, 3);
    h.gtc(1, 2, Side::Buy, 98, 3);
    h.gtc(2, 1, Side::Sell, 101, 3);
    h.gtc(2, 2, Side::Sell, 102, 3);
    h.e.snapshot()
}

fn restore_with(f: impl FnOnce(&mut EngineSnapshot)) -> Result<Engine, RestoreError> {
    let mut snap = good();
    f(&mut snap);
    Engine::restore(config(), &snap)
}

fn inst(s: &mut EngineSnapshot) -> &mut InstrumentSnapshot {
    s.instruments.iter_mut().find(|i| i.id == INST).unwrap()
}

#[test]
fn bad_snapshots_get_typed_errors() {
    use OrderFault as F;
    use RestoreError as E;
    assert!(restore_with(|_| {}).is_ok());
    let fault = |r: Result<Engine, RestoreError>| match r {
        Err(E::InvalidOrder { fault, .. }) => Some(fault),
        _ => None,
    };
    assert!(matches!(
        restore_with(|s| s.next_order_id = 0),
        Err(E::Counters { .. })
    ));
    assert!(matches!(
        restore_with(|s| s.next_trade_id = 0),
        Err(E::Counters { .. })
    ));
    assert_eq!(
        restore_with(|s| s.instruments[0].id = 99).err(),
        Some(E::UnknownInstrument { id: 99 })
    );
    assert_eq!(
        restore_with(|s| s.instruments[0].id = INST).err(),
        Some(E::DuplicateInstrument { id: INST })
    );
    assert_eq!(
        restore_with(|s| {
            s.instruments.remove(0);
        })
        .err(),
        Some(E::MissingInstrument { id: OTHER })
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].account = 8)),
        Some(F::UnknownAccount)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].order_id = 0)),
        Some(F::IdNotIssued)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].order_id = 5)),
        Some(F::IdNotIssued)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].price = 0)),
        Some(F::InvalidPrice)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[3].price = 1_001)),
        Some(F::InvalidPrice)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].leaves = 0)),
        Some(F::InvalidQuantity)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders[0].leaves = 1_001)),
        Some(F::InvalidQuantity)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders.swap(0, 1))),
        Some(F::OutOfPriorityOrder)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders.swap(2, 3))),
        Some(F::OutOfPriorityOrder)
    );
    assert_eq!(
        fault(restore_with(|s| inst(s).orders.swap(1, 2))),
        Some(F::OutOfPriorityOrder)
    );
    assert_eq!(
        restore_with(|s| inst(s).orders[1].order_id = 1).err(),
        Some(E::DuplicateOrderId { order_id: 1 })
    );
    assert_eq!(
        restore_with(|s| inst(s).orders[1].cl_ord_id = 1).err(),
        Some(E::DuplicateClientOrderId {
            account: 1,
            cl_ord_id: 1
        })
    );
    assert_eq!(
        restore_with(|s| inst(s).orders[0].price = 101).err(),
        Some(E::Crossed { instrument: INST })
    );
    let mut snap = good();
    let extra = inst(&mut snap).orders[3];
    for i in 0..13 {
        inst(&mut snap).orders.push(OrderSnapshot {
            order_id: 1 + i % 4,
            cl_ord_id: 100 + i,
            ..extra
        });
    }
    assert!(matches!(
        Engine::restore(config(), &snap),
        Err(E::TooManyOrders {
            orders: 17,
            max_orders: 16
        })
    ));
    let bad_cfg = EngineConfig {
        max_accounts: u32::MAX,
        ..config()
    };
    assert!(matches!(
        Engine::restore(bad_cfg, &good()),
        Err(E::Config(ConfigError::TooManyAccounts { .. }))
    ));
}
