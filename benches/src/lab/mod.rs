//! The latency lab: `tpx-load`, an open-loop (or closed-loop) load generator of market makers
//! and takers over the real order-entry protocol, and what it writes per run.
//!
//! - [`load`]: sessions, their strategies and the driver threads; latency from the *intended*
//!   send time (coordinated-omission corrected) and the service time.
//! - [`hgrm`], [`hlog`]: HdrHistogram percentile distributions and interval logs in the formats
//!   HdrHistogram's own tools read.
//! - [`breakdown`]: joins the node's per-order stage stamps (shared-memory trace) with the load
//!   generator's own send/receive stamps.
//! - [`plot`]: PNG and SVG plots (`plotters`).
//! - [`machine`]: the machine summary of a run.
//! - [`relay`]: the floor of the replicated path (client → two relay processes → client),
//!   measured in the same run.

pub mod breakdown;
pub mod hgrm;
pub mod hlog;
pub mod load;
pub mod machine;
pub mod plot;
pub mod relay;
