//! `tpx-feed`: the market-data subscriber.
//!
//! Will hold (issue "market data over Aeron UDP multicast"): A/B feed arbitration, gap detection
//! by sequence, recovery by retransmission or snapshot + buffered incrementals, and L3 / L2 books
//! per instrument behind an allocation-free polling API; binary `tpx-feed`.
//!
//! Nothing is implemented yet; this crate only reserves its place in the workspace.
