//! Accounts and pre-trade risk: spot balances and linear-perpetual margin.
//!
//! A second state machine inside the engine, driven by the same sequenced log: the matching
//! code calls it (only when risk is on) to check and hold before an order is accepted, to
//! settle each fill and to release what orders no longer need; its own commands
//! ([`RiskCommand`]) move money (deposits, withdrawals), set fee tiers and mark prices, apply
//! funding and liquidate. It lives on the shard's core next to the books it guards, so a hold
//! and the fills that consume it are applied by one thread in log order: no locks and no
//! cross-core messages on the hot path (see `docs/ARCHITECTURE.md`, "Accounts and risk", for
//! the rules, the rounding and why risk is per shard).

pub mod config;
pub(crate) mod orders;
pub(crate) mod state;
pub mod types;

mod check;
mod commands;
mod ledger;
mod snapshot;
mod view;

pub use config::{FeeRate, InstrumentRisk, RiskConfig, RiskConfigError, MAX_FEE_TIERS};
pub use ledger::MAX_ASSET_TOTAL;
pub use snapshot::{
    AccountRiskSnapshot, BalanceSnapshot, PerpetualSnapshot, PositionSnapshot, RiskRestoreError,
    RiskSnapshot,
};
pub use types::*;
