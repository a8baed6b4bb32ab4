//! `Engine::process_ahead` (prefetch for the commands that follow) is `Engine::process`: on a
//! book large enough for the prefetch to run, the same stream gives the same events, the same
//! state hash and a consistent book whether or not the engine is told what comes next, with
//! the lookahead naming dead orders, wrong accounts, unknown instruments and prices off the
//! ladder.

use tpx_engine::*;

const ACCOUNTS: u32 = 64;

fn spec(id: InstrumentId) -> InstrumentSpec {
    InstrumentSpec {
        id,
        kind: InstrumentKind::Spot { base: 1, quote: 2 },
        tick_size: 1,
        lot_size: 1,
        min_price: 1_000,
        max_price: 400_000,
        min_qty: 1,
        max_qty: 1_000_000,
        min_notional: 0,
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn order(
    account: u32,
    cl: u64,
    inst: u32,
    side: Side,
    price: i64,
    qty: u64,
    tif: TimeInForce,
) -> Command {
    Command::NewOrder(NewOrder {
        account,
        cl_ord_id: cl,
        instrument: inst,
        side,
        kind: OrderKind::Limit,
        price,
        qty,
        tif,
        post_only: false,
        reduce_only: false,
        stp: StpMode::None,
        ext: OrderExt::NONE,
    })
}

/// A resting book of `resting` orders on two instruments, then `ops` commands of every kind,
/// some of them naming orders, accounts, instruments or prices that do not exist.
fn stream(seed: u64, resting: u64, ops: u64) -> Vec<Command> {
    let mut r = Rng(seed);
    let mut cmds = Vec::new();
    let mut cl = 0u64;
    let side_of = |x: u64| if x & 1 == 0 { Side::Buy } else { Side::Sell };
    let passive = |r: &mut Rng, side: Side| match side {
        Side::Buy => 200_000 - 1 - r.below(150_000) as i64,
        Side::Sell => 200_000 + 1 + r.below(150_000) as i64,
    };
    for _ in 0..resting {
        cl += 1;
        let side = side_of(r.next());
        let price = passive(&mut r, side);
        cmds.push(order(
            (cl % u64::from(ACCOUNTS)) as u32,
            cl,
            1 + (cl % 2) as u32,
            side,
            price,
            1 + r.below(50),
            TimeInForce::Gtc,
        ));
    }
    for _ in 0..ops {
        let pick = r.below(100);
        // An id that was used (live or not) or, sometimes, never was.
        let named = 1 + r.below(cl + cl / 20);
        let account = if r.below(50) == 0 {
            ACCOUNTS + 3
        } else {
            (named % u64::from(ACCOUNTS)) as u32
        };
        let side = side_of(r.next());
        let cmd = match pick {
            0..=59 => Command::Replace(Replace {
                account,
                orig_cl_ord_id: named,
                new_cl_ord_id: if r.below(10) == 0 {
                    cl + 1_000_000 + named
                } else {
                    named
                },
                price: if r.below(40) == 0 {
                    500_000
                } else if r.below(10) == 0 {
                    200_000
                } else {
                    passive(&mut r, side)
                },
                qty: 1 + r.below(60),
            }),
            60..=74 => Command::Cancel(Cancel {
                account,
                cl_ord_id: named,
                remaining_qty: if r.below(5) == 0 { r.below(10) } else { 0 },
            }),
            75..=91 => {
                cl += 1;
                order(
                    (cl % u64::from(ACCOUNTS)) as u32,
                    cl,
                    if r.below(40) == 0 {
                        9
                    } else {
                        1 + (cl % 2) as u32
                    },
                    side,
                    if r.below(40) == 0 {
                        10
                    } else {
                        passive(&mut r, side)
                    },
                    1 + r.below(50),
                    TimeInForce::Gtc,
                )
            }
            92..=98 => {
                cl += 1;
                // Through the touch: sweeps a few levels.
                let price = match side {
                    Side::Buy => 200_000 + 2_000,
                    Side::Sell => 200_000 - 2_000,
                };
                order(
                    (cl % u64::from(ACCOUNTS)) as u32,
                    cl,
                    1 + (cl % 2) as u32,
                    side,
                    price,
                    1 + r.below(400),
                    TimeInForce::Ioc,
                )
            }
            _ => Command::MassCancel(MassCancel {
                account: (r.below(u64::from(ACCOUNTS))) as u32,
                instrument: Some(1),
            }),
        };
        cmds.push(cmd);
    }
    cmds
}

#[test]
fn process_ahead_is_process_on_a_large_book() {
    let resting = 2 * u64::from(LOOKAHEAD_MIN_LIVE);
    let cmds = stream(0x5eed_1234_abcd_0001, resting, 40_000);
    let cfg = EngineConfig {
        instruments: vec![spec(1), spec(2)],
        max_orders: 1 << 17,
        max_accounts: ACCOUNTS,
    };
    let mut plain = Engine::new(cfg.clone()).unwrap();
    let mut ahead = Engine::new(cfg).unwrap();
    let (mut ev_plain, mut ev_ahead) = (Vec::new(), Vec::new());
    let mut ran_ahead = 0u64;
    for (i, cmd) in cmds.iter().enumerate() {
        let ts = i as u64 + 1;
        ev_plain.clear();
        ev_ahead.clear();
        plain.process(ts, cmd, &mut ev_plain);
        if ahead.live_orders() >= LOOKAHEAD_MIN_LIVE as usize {
            ran_ahead += 1;
        }
        ahead.process_ahead(ts, cmd, &cmds[i + 1..], &mut ev_ahead);
        assert_eq!(ev_plain, ev_ahead, "command {i}: {cmd:?}");
    }
    assert!(
        ran_ahead > 40_000,
        "the prefetch ran on most of the stream ({ran_ahead} commands)"
    );
    assert_eq!(plain.state_hash(), ahead.state_hash());
    ahead.check_invariants().unwrap();
    for id in [1, 2] {
        assert_eq!(plain.l3(id), ahead.l3(id));
    }
}

#[test]
fn prefetch_of_any_command_at_any_step_changes_nothing() {
    let cmds = stream(7, 5_000, 5_000);
    let cfg = EngineConfig {
        instruments: vec![spec(1), spec(2)],
        max_orders: 1 << 14,
        max_accounts: ACCOUNTS,
    };
    let mut e = Engine::new(cfg).unwrap();
    let mut out = Vec::new();
    for (i, cmd) in cmds.iter().enumerate().take(6_000) {
        e.process(i as u64 + 1, cmd, &mut out);
    }
    let before = e.state_hash();
    for cmd in &cmds {
        for step in 0..=5 {
            e.prefetch(cmd, step);
        }
    }
    assert_eq!(e.state_hash(), before);
    e.check_invariants().unwrap();
}

/// A caller that copies each batch into one reused buffer (as a shard draining its ring would):
/// the same addresses hold other commands from batch to batch, so the slots the pipeline keeps
/// by command address (step 3 for steps 2 and 1) are often another command's. With batches
/// shorter than step 3's reach, steps 2 and 1 only ever see such foreign entries. The events,
/// the state hash and the books are still `process`'s.
#[test]
fn process_ahead_with_a_reused_batch_buffer_is_process() {
    let resting = 2 * u64::from(LOOKAHEAD_MIN_LIVE);
    let cmds = stream(0x5eed_1234_abcd_0002, resting, 20_000);
    let cfg = EngineConfig {
        instruments: vec![spec(1), spec(2)],
        max_orders: 1 << 17,
        max_accounts: ACCOUNTS,
    };
    for batch in [7, 13, LOOKAHEAD + 1] {
        let mut plain = Engine::new(cfg.clone()).unwrap();
        let mut ahead = Engine::new(cfg.clone()).unwrap();
        let (mut ev_plain, mut ev_ahead) = (Vec::new(), Vec::new());
        let mut buf = vec![Command::Tick; batch];
        let mut ts = 0;
        let mut ran_ahead = 0u64;
        for chunk in cmds.chunks(batch) {
            buf[..chunk.len()].copy_from_slice(chunk);
            let live = &buf[..chunk.len()];
            for (j, cmd) in live.iter().enumerate() {
                ts += 1;
                ev_plain.clear();
                ev_ahead.clear();
                plain.process(ts, cmd, &mut ev_plain);
                if ahead.live_orders() >= LOOKAHEAD_MIN_LIVE as usize {
                    ran_ahead += 1;
                }
                ahead.process_ahead(ts, cmd, &live[j + 1..], &mut ev_ahead);
                assert_eq!(ev_plain, ev_ahead, "batch {batch}, command {ts}: {cmd:?}");
            }
        }
        assert!(
            ran_ahead > 15_000,
            "the prefetch ran on most of the stream ({ran_ahead} commands)"
        );
        assert_eq!(plain.state_hash(), ahead.state_hash(), "batch {batch}");
        ahead.check_invariants().unwrap();
        for id in [1, 2] {
            assert_eq!(plain.l3(id), ahead.l3(id), "batch {batch}");
        }
    }
}
