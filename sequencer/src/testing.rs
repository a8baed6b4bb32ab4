//! Test and bench support, not used by a running appliance: the two-instrument engine of the
//! sequencer's tests and the `tpx-seq` harness ([`demo_engine_config`]), and a deterministic
//! order load ([`Load`]).

use tpx_engine::{EngineConfig, InstrumentKind, InstrumentSpec};
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::Input;
use tpx_wire::order_entry::{CancelOrder, EnterOrder};

/// The engine every `tpx-seq` node runs (two instruments; the load trades instrument 1).
pub fn demo_engine_config() -> EngineConfig {
    let spec = |id| InstrumentSpec {
        id,
        kind: InstrumentKind::Spot { base: 1, quote: 2 },
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 200_000,
        min_qty: 1,
        max_qty: 1_000_000,
        min_notional: 0,
    };
    EngineConfig {
        instruments: vec![spec(1), spec(2)],
        max_orders: 1 << 16,
        max_accounts: 64,
    }
}

/// The built-in load: one session sending limit orders around a mid price (GTC and IOC) and
/// cancels of its recent orders, from a fixed seed.
#[derive(Debug)]
pub struct Load {
    pub session: u32,
    pub next_cl_ord_id: u64,
    rng: u64,
    pub sent: u64,
    pub duplicates: u64,
    pub refused: u64,
}

impl Load {
    pub fn new(session: u32, seed: u64) -> Load {
        Load {
            session,
            next_cl_ord_id: 1,
            rng: seed,
            sent: 0,
            duplicates: 0,
            refused: 0,
        }
    }

    fn mix(&self, id: u64) -> u64 {
        // splitmix64 of (seed, id): the same id always gives the same request.
        let mut z = self
            .rng
            .wrapping_add(id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The request with client order id `id` (deterministic in the id, so a re-sent request is
    /// the same request).
    pub fn request(&self, id: u64) -> Input {
        let r = self.mix(id);
        if id > 10 && r % 5 == 0 {
            return Input::CancelOrder(CancelOrder {
                cl_ord_id: id - 1 - (r >> 8) % 10,
                remaining_qty: 0,
            });
        }
        let side = if (r >> 3) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let off = ((r >> 4) % 40) as i64 - 20;
        let price = 100_000 + if side == Side::Buy { off - 5 } else { off + 5 };
        Input::EnterOrder(EnterOrder {
            cl_ord_id: id,
            price,
            qty: 1 + (r >> 12) % 10,
            instrument: 1,
            side,
            kind: OrderKind::Limit,
            tif: if (r >> 20) % 4 == 0 {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            },
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        })
    }
}
