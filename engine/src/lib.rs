//! `tpx-engine`: the deterministic matching engine.
//!
//! A pure state machine: `Engine::process(ts_ns, &Command, &mut impl EventSink)` applies one
//! sequenced command and emits events in order. No IO, no clock reads (time enters as the
//! sequencer's `ts_ns`), no randomness, no hash-map iteration reaching outputs, and no
//! allocation on the hot path after construction.

pub mod command;
pub mod event;
pub mod hash;
pub mod instrument;
pub mod types;

pub use command::*;
pub use event::*;
pub use instrument::*;
pub use types::*;
