//! Engine configuration and its validation.
//!
//! # Sizing rule
//!
//! Everything the engine needs is allocated once, in [`crate::Engine::new`]; `process` never
//! allocates afterwards. From an [`EngineConfig`]:
//!
//! - **order slab**: `max_orders` slots of 64 bytes (one cache line each). Every live order, and
//!   the taker of the command being applied, holds one slot; a new order finding no free slot is
//!   rejected with [`crate::RejectReason::BookFull`].
//! - **client-id index** (`(account, cl_ord_id) -> slot`, see `index.rs`): an open-addressing
//!   table of `next_power_of_two(2 * max_orders)` 8-byte buckets, so its load never passes 1/2;
//!   it never grows, rehashes or leaves tombstones.
//! - **price ladders**: per instrument and side, one 16-byte level per price in
//!   `[min_price, max_price]` (`levels = max_price - min_price + 1`), plus a hierarchical bitmap of
//!   about `levels / 8` bytes.
//! - **account lists**: 8 bytes per account (`max_accounts`).
//! - **order types** (`ext.rs`): per slot an 80-byte side table (GTD expiry, iceberg slice and
//!   hidden quantity, trigger fields, OCO leg, and the nodes of the expiry and trigger treaps),
//!   faulted in at construction; a fire queue of 24 bytes per slot, reserved, touched only as far
//!   as triggers fire in one command.
//!
//! Memory is therefore about `144 * max_orders + 16 * next_power_of_two(max_orders)` (slab,
//! order-type table and index) `+ 2 * 16.2 * levels` per instrument `+ 8 * max_accounts` bytes,
//! faulted in once at construction (the slab, order-type table, index and bitmaps by the kernel,
//! not written: see `memory.rs`), plus the fire queue's `24 * max_orders` reserved. For example
//! 1 M orders (2^20), one instrument with a 1 M-tick ladder and 100 k accounts: about
//! 64 + 80 + 16 + 32 + 1 MB (and 24 MB reserved). Every table of 2 MiB or more is mapped on
//! 2 MiB pages where the host allows (`memory.rs`: `MAP_HUGETLB`, else `MADV_HUGEPAGE`), rounded
//! up to a whole huge page.

use std::fmt;

use crate::instrument::InstrumentSpec;
use crate::types::InstrumentId;

/// The largest accepted instrument id (instrument ids index a dense table).
pub const MAX_INSTRUMENT_ID: InstrumentId = 65_535;
/// The largest accepted `max_orders` (order slots are `u32` indexes).
pub const MAX_ORDERS: u32 = 1 << 26;
/// The largest accepted `max_accounts`.
pub const MAX_ACCOUNTS: u32 = 1 << 24;
/// The most price levels one instrument's ladder may have (per side).
pub const MAX_LADDER_LEVELS: u64 = 1 << 24;
/// The most price levels all instruments' ladders may have together (per side).
pub const MAX_TOTAL_LADDER_LEVELS: u64 = 1 << 25;

/// What the engine is built for: its instruments and the capacity of its tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// The tradable instruments, in any order; ids must be unique.
    pub instruments: Vec<InstrumentSpec>,
    /// The capacity of the order pool: live (resting) orders plus the one being applied.
    pub max_orders: u32,
    /// Account ids `0..max_accounts` are valid; others are rejected with `UnknownAccount`.
    pub max_accounts: u32,
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Two instruments share an id.
    DuplicateInstrument { id: InstrumentId },
    /// An instrument id above [`MAX_INSTRUMENT_ID`].
    InstrumentIdTooLarge { id: InstrumentId },
    /// `min_price > max_price`.
    InvalidPriceRange {
        id: InstrumentId,
        min_price: i64,
        max_price: i64,
    },
    /// `min_qty > max_qty`, or `max_qty == 0`.
    InvalidQtyRange {
        id: InstrumentId,
        min_qty: u64,
        max_qty: u64,
    },
    /// `max_price - min_price + 1` above [`MAX_LADDER_LEVELS`].
    LadderTooLarge { id: InstrumentId, levels: u128 },
    /// The ladders of all instruments together above [`MAX_TOTAL_LADDER_LEVELS`].
    LaddersTooLarge { levels: u128 },
    /// `max_orders` above [`MAX_ORDERS`].
    TooManyOrders { max_orders: u32 },
    /// `max_accounts` above [`MAX_ACCOUNTS`].
    TooManyAccounts { max_accounts: u32 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::DuplicateInstrument { id } => write!(f, "duplicate instrument id {id}"),
            ConfigError::InstrumentIdTooLarge { id } => {
                write!(f, "instrument id {id} above {MAX_INSTRUMENT_ID}")
            }
            ConfigError::InvalidPriceRange {
                id,
                min_price,
                max_price,
            } => write!(
                f,
                "instrument {id}: min_price {min_price} above max_price {max_price}"
            ),
            ConfigError::InvalidQtyRange {
                id,
                min_qty,
                max_qty,
            } => write!(
                f,
                "instrument {id}: invalid quantity range [{min_qty}, {max_qty}]"
            ),
            ConfigError::LadderTooLarge { id, levels } => write!(
                f,
                "instrument {id}: price ladder of {levels} levels above {MAX_LADDER_LEVELS}"
            ),
            ConfigError::LaddersTooLarge { levels } => write!(
                f,
                "price ladders of {levels} levels in all above {MAX_TOTAL_LADDER_LEVELS}"
            ),
            ConfigError::TooManyOrders { max_orders } => {
                write!(f, "max_orders {max_orders} above {MAX_ORDERS}")
            }
            ConfigError::TooManyAccounts { max_accounts } => {
                write!(f, "max_accounts {max_accounts} above {MAX_ACCOUNTS}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The number of price levels of an instrument's ladder, `max_price - min_price + 1`.
pub(crate) fn ladder_levels(spec: &InstrumentSpec) -> u128 {
    (i128::from(spec.max_price) - i128::from(spec.min_price) + 1).max(0) as u128
}

impl EngineConfig {
    /// Checks the configuration; [`crate::Engine::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_orders > MAX_ORDERS {
            return Err(ConfigError::TooManyOrders {
                max_orders: self.max_orders,
            });
        }
        if self.max_accounts > MAX_ACCOUNTS {
            return Err(ConfigError::TooManyAccounts {
                max_accounts: self.max_accounts,
            });
        }
        let mut total: u128 = 0;
        let mut seen = vec![false; MAX_INSTRUMENT_ID as usize + 1];
        for spec in &self.instruments {
            let id = spec.id;
            if id > MAX_INSTRUMENT_ID {
                return Err(ConfigError::InstrumentIdTooLarge { id });
            }
            if std::mem::replace(&mut seen[id as usize], true) {
                return Err(ConfigError::DuplicateInstrument { id });
            }
            if spec.min_price > spec.max_price {
                return Err(ConfigError::InvalidPriceRange {
                    id,
                    min_price: spec.min_price,
                    max_price: spec.max_price,
                });
            }
            if spec.max_qty == 0 || spec.min_qty > spec.max_qty {
                return Err(ConfigError::InvalidQtyRange {
                    id,
                    min_qty: spec.min_qty,
                    max_qty: spec.max_qty,
                });
            }
            let levels = ladder_levels(spec);
            if levels > u128::from(MAX_LADDER_LEVELS) {
                return Err(ConfigError::LadderTooLarge { id, levels });
            }
            total += levels;
        }
        if total > u128::from(MAX_TOTAL_LADDER_LEVELS) {
            return Err(ConfigError::LaddersTooLarge { levels: total });
        }
        Ok(())
    }
}
