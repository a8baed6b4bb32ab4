//! Unit tests: long pseudo-random command streams (every command type, valid and not), with the
//! invariants checked after every command, and no allocation in `process`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::tests_support::*;
use crate::*;

/// Counts this thread's allocations, so tests running in parallel do not disturb each other.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as this function.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as this function.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as this function.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// xorshift64*: deterministic and dependency-free.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random command around `mid` (prices mostly within `spread` of it).
pub(crate) fn command(rng: &mut Rng, mid: i64, spread: i64, max_price: i64) -> Command {
    let account = rng.below(9) as u32; // 8 is unknown
    let cl = rng.below(24);
    let price = match rng.below(50) {
        0 => 0,
        1 => max_price + 1,
        _ => mid - spread + rng.below(2 * spread as u64 + 1) as i64,
    };
    let qty = if rng.below(40) == 0 {
        0
    } else {
        1 + rng.below(20)
    };
    let instrument = rng.pick(&[INST, INST, INST, INST, OTHER, 99]);
    match rng.below(100) {
        0..=39 => Command::NewOrder(NewOrder {
            account,
            cl_ord_id: cl,
            instrument,
            side: rng.pick(&[Side::Buy, Side::Sell]),
            kind: if rng.below(15) == 0 {
                OrderKind::Market
            } else {
                OrderKind::Limit
            },
            price,
            qty,
            tif: rng.pick(&[
                TimeInForce::Gtc,
                TimeInForce::Gtc,
                TimeInForce::Ioc,
                TimeInForce::Fok,
            ]),
            post_only: rng.below(8) == 0,
            reduce_only: false,
            stp: rng.pick(&[
                StpMode::None,
                StpMode::None,
                StpMode::ExpireTaker,
                StpMode::ExpireMaker,
                StpMode::ExpireBoth,
                StpMode::DecrementAndCancel,
            ]),
            ext: OrderExt::NONE,
        }),
        40..=69 => Command::Replace(Replace {
            account,
            orig_cl_ord_id: cl,
            new_cl_ord_id: if rng.below(2) == 0 { cl } else { rng.below(24) },
            price,
            qty,
        }),
        70..=89 => Command::Cancel(Cancel {
            account,
            cl_ord_id: cl,
            remaining_qty: if rng.below(2) == 0 { 0 } else { rng.below(10) },
        }),
        90..=93 => Command::MassCancel(MassCancel {
            account,
            instrument: rng.pick(&[None, Some(INST), Some(99)]),
        }),
        94..=96 => Command::SetReferencePrice {
            instrument,
            price: mid - 2 + rng.below(5) as i64,
            band_bps: rng.pick(&[0, 0, 50, 200, 1_000]),
        },
        97 => Command::Halt { instrument },
        _ => Command::Resume { instrument },
    }
}

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
