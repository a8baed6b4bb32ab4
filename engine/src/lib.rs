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
mod lookahead;
mod matching;
mod memory;
mod modify;
mod new_order;
mod slab;
mod state_hash;
mod store;
mod triggers;
mod view;

pub use command::*;
pub use config::{ConfigError, EngineConfig};
pub use engine::Engine;
pub use event::*;
pub use instrument::*;
pub use lookahead::{LOOKAHEAD, LOOKAHEAD_MIN_LIVE, STREAM_AHEAD};
pub use memory::{deferring_prefault, table_bytes_by_backing, Prefault};
pub use risk::{
    BalanceReason, BalanceView, EngineInput, EngineOutput, FeeRate, InstrumentRisk, Outputs,
    PositionView, RiskCommand, RiskConfig, RiskConfigError, RiskEvent, RiskSnapshot, VenueLedger,
};
pub use snapshot::{
    EngineSnapshot, FreshEngine, InstrumentSnapshot, OrderExtSnapshot, OrderFault, OrderSnapshot,
    RestoreError, TriggerOrderSnapshot,
};
pub use types::*;
pub use view::{L3Order, Level};
