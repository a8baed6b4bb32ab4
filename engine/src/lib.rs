//! `tpx-engine`: the deterministic matching engine.
//!
//! A pure state machine: `Engine::process(ts_ns, &Command, &mut impl EventSink)` applies one
//! sequenced command and emits events in order. No IO, no clock reads (time enters as the
//! sequencer's `ts_ns`), no randomness, no hash-map iteration reaching outputs, and no
//! allocation on the hot path after construction.

pub mod command;
pub mod config;
pub mod event;
pub mod hash;
pub mod instrument;
pub mod reference;
pub mod risk;
pub mod snapshot;
pub mod types;

mod bitmap;
mod book;
mod engine;
mod ext;
mod index;
mod invariants;
mod ladder;
mod matching;
mod modify;
mod new_order;
mod slab;
mod state_hash;
mod store;
mod triggers;
mod view;

#[cfg(test)]
mod tests_admin;
#[cfg(test)]
mod tests_modify;
#[cfg(test)]
mod tests_new_order;
#[cfg(test)]
mod tests_order_types_risk;
#[cfg(test)]
mod tests_random;
#[cfg(test)]
mod tests_risk;
#[cfg(test)]
mod tests_risk_random;
#[cfg(test)]
mod tests_risk_support;
#[cfg(test)]
mod tests_snapshot;
#[cfg(test)]
mod tests_stp;
#[cfg(test)]
mod tests_support;

pub use command::*;
pub use config::{ConfigError, EngineConfig};
pub use engine::Engine;
pub use event::*;
pub use instrument::*;
pub use risk::{
    BalanceReason, BalanceView, EngineInput, EngineOutput, FeeRate, InstrumentRisk, Outputs,
    PositionView, RiskCommand, RiskConfig, RiskConfigError, RiskEvent, RiskSnapshot, VenueLedger,
};
pub use snapshot::{
    EngineSnapshot, InstrumentSnapshot, OrderExtSnapshot, OrderFault, OrderSnapshot, RestoreError,
    TriggerOrderSnapshot,
};
pub use types::*;
pub use view::{L3Order, Level};
