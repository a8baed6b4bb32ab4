//! Shared by the random tests: a thread-local allocation counter (the global allocator of each
//! test binary that includes `common`), a deterministic generator and a random command.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tpx_engine::*;

use super::book::{INST, OTHER};

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

pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random command around `mid` (prices mostly within `spread` of it).
pub fn command(rng: &mut Rng, mid: i64, spread: i64, max_price: i64) -> Command {
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
