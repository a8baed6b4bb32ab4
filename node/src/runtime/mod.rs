//! What every stage runs on: SPSC rings, doorbells, the idle policy, the clock, and the state
//! every core of the node shares.

pub mod affinity;
pub mod clock;
pub mod doorbell;
pub mod idle;
pub mod lines;
pub mod memory_lock;
pub mod readiness;
pub mod ring;
pub mod state;
