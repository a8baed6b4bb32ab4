//! Observation: the shared-memory stats file, the per-order trace, Prometheus.

pub mod prometheus;
pub mod stats;
pub mod trace;
