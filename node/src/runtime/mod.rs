//! What every stage runs on: SPSC rings, doorbells, the clock.

pub mod clock;
pub mod doorbell;
pub mod ring;
