//! Risk configuration and its validation.
//!
//! # Sizing rule (risk on)
//!
//! Everything is allocated in [`crate::Engine::with_risk`], on top of the matching tables:
//!
//! - **balances**: `max_accounts * assets` rows of 16 bytes (available, held) plus one margin
//!   flag byte each;
//! - **positions**: `max_accounts * perpetuals` records of 64 bytes, one cache line, in a
//!   dense table of what the order path touches (size, plain open leaves per side, the
//!   reduce-only total, and what a fill settles: cost, locked margin, fees) plus 48 bytes each
//!   for the rest (reduce-only leaves per side, list links and flags, realised PnL, funding);
//! - **accounts**: `max_accounts` records of 8 bytes (last request id) and one fee-tier byte;
//! - **holds**: 8 bytes per order slot (`max_orders`), written and read only for the orders
//!   whose hold per lot is not what a plain order at their price holds (reduce-only orders,
//!   the liquidation account's, a perpetual sell that crossed a higher bid); the others'
//!   hold is recomputed from the plain-hold table;
//! - **trim queue**: 4 bytes per order slot plus one (positions whose reduce-only orders need
//!   trimming after a command; a command touches at most one position per fill);
//! - **plain holds**: 8 bytes per ladder level of each instrument (what a plain order holds
//!   per lot at each price, computed once).
//!
//! So about `max_accounts * (17 * assets + 112 * perpetuals + 9) + 12 * max_orders + 8 *
//! ladder levels` bytes: 100 k accounts, 4 assets and 2 perpetuals take about 30 MB plus the
//! ladders' share; 1 k accounts and 4 perpetuals about 0.5 MB.
//! `process` and `process_risk` never allocate; settlement, funding and mark-to-market walk
//! intrusive lists inside these tables.

use std::fmt;

use crate::config::ConfigError;
use crate::instrument::AssetId;
use crate::types::*;

/// The most fee tiers an instrument may have.
pub const MAX_FEE_TIERS: usize = 8;
/// The most assets a risk configuration may have.
pub const MAX_ASSETS: usize = 256;
/// Rates are in parts per million.
pub const PPM: u64 = 1_000_000;
/// The largest value, in quote (settle) minor units times the tick-lot denominator, of one
/// order (`max_price * max_qty * value_num`) or one full position (`max_price * max_position *
/// value_num`): 2^62, so that sums of a few of them fit an `i64`.
pub const MAX_NOTIONAL: u128 = 1 << 62;

/// Maker and taker fees of one tier, in parts per million of the notional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FeeRate {
    /// Negative: a rebate, paid out of the taker fee of the same fill (never more than it).
    pub maker_ppm: i32,
    pub taker_ppm: u32,
}

/// The risk parameters of one instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentRisk {
    pub instrument: InstrumentId,
    /// The value of one tick-lot (one lot at a price of one tick) in quote (spot) or settle
    /// (perpetual) minor units is `value_num / value_den`; usually `tick_size * lot_size /
    /// (base minor units per whole base unit)`. Reduced by their gcd at construction.
    pub value_num: u64,
    pub value_den: u64,
    /// Fees per account tier: `fees[tier]`; tiers past its end use the last entry.
    pub fees: Vec<FeeRate>,
    /// Perpetuals: initial margin rate (held for open orders and positions), in ppm.
    pub initial_margin_ppm: u32,
    /// Perpetuals: maintenance margin rate, in ppm (`<= initial_margin_ppm`).
    pub maintenance_margin_ppm: u32,
    /// Perpetuals: the largest position, in lots, an account's orders may lead to (0: none).
    pub max_position: u64,
}

impl InstrumentRisk {
    /// An instrument whose tick-lot is worth one minor unit, with no fees and, for
    /// perpetuals, 10% initial and 5% maintenance margin and no position limit.
    pub fn new(instrument: InstrumentId) -> InstrumentRisk {
        InstrumentRisk {
            instrument,
            value_num: 1,
            value_den: 1,
            fees: vec![FeeRate::default()],
            initial_margin_ppm: 100_000,
            maintenance_margin_ppm: 50_000,
            max_position: 0,
        }
    }
}

/// Accounts and pre-trade risk, per engine (per shard): see `docs/ARCHITECTURE.md`,
/// "Accounts and risk".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskConfig {
    /// The assets accounts hold; every spot base and quote asset and every perpetual's settle
    /// asset must be here.
    pub assets: Vec<AssetId>,
    /// One entry per instrument of the engine (entries for other instruments are ignored, so
    /// every shard may be given the same list).
    pub instruments: Vec<InstrumentRisk>,
    /// Number of fee tiers accounts may be put in (`SetFeeTier`), at least 1.
    pub fee_tiers: u8,
    /// The venue account credited with fees and rounding remainders; it pays maker rebates and
    /// covers bankrupt accounts (its balance may go negative: the insurance fund's deficit).
    pub fee_account: AccountId,
    /// The venue account that takes over liquidated positions and closes them with IOC orders.
    /// It is exempt from holds, margin and position limits.
    pub liquidation_account: AccountId,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            assets: Vec::new(),
            instruments: Vec::new(),
            fee_tiers: 1,
            fee_account: 0,
            liquidation_account: 0,
        }
    }
}

/// Why a risk configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskConfigError {
    /// The engine configuration itself.
    Engine(ConfigError),
    TooManyAssets {
        assets: usize,
    },
    DuplicateAsset {
        asset: AssetId,
    },
    /// An instrument names an asset not in `assets`.
    UnknownAsset {
        instrument: InstrumentId,
        asset: AssetId,
    },
    /// An instrument of the engine has no risk entry.
    MissingInstrument {
        instrument: InstrumentId,
    },
    DuplicateInstrument {
        instrument: InstrumentId,
    },
    /// `value_num == 0` or `value_den == 0`.
    InvalidValue {
        instrument: InstrumentId,
    },
    /// `max_price * max_qty * value_num` (or `* max_position`) above [`MAX_NOTIONAL`].
    NotionalTooLarge {
        instrument: InstrumentId,
    },
    /// No fee entry, more than [`MAX_FEE_TIERS`], a rate above 100%, or a rebate above 100%.
    InvalidFees {
        instrument: InstrumentId,
    },
    /// Maintenance above initial margin, or initial margin above 100%.
    InvalidMargin {
        instrument: InstrumentId,
    },
    /// `fee_tiers` 0 or above [`MAX_FEE_TIERS`].
    InvalidFeeTiers {
        fee_tiers: u8,
    },
    /// A venue account outside `0..max_accounts`, or the two venue accounts the same.
    InvalidVenueAccount {
        account: AccountId,
    },
}

impl fmt::Display for RiskConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskConfigError::Engine(e) => write!(f, "{e}"),
            other => write!(f, "invalid risk configuration: {other:?}"),
        }
    }
}

impl std::error::Error for RiskConfigError {}

impl From<ConfigError> for RiskConfigError {
    fn from(e: ConfigError) -> Self {
        RiskConfigError::Engine(e)
    }
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
