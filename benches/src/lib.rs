//! `tpx-benches`: benchmarks that print JSON and HdrHistogram percentiles.
//!
//! `engine-bench` compares the matching engine with the reference book and peer crates on
//! generated workloads ([`workload`]): the same stream, generated up front from a seed, goes
//! through every book in the same process ([`run`]), and [`report`] prints one JSON object or a
//! table. The latency lab's load generator `tpx-load` lives in [`lab`]; the end-to-end, market-data and failover benches join as their issues
//! land.

/// The demo's admin account and deposits, shared with `tpx up` (one source, two crates).
#[path = "../../node/src/bin/tpx/funding.rs"]
pub mod demo_funding;
pub mod e2e;
pub mod failover;
pub mod fault_lab;
pub mod lab;
pub mod peers;
pub mod replay;
pub mod report;
pub mod run;
pub mod timer;
pub mod workload;
pub mod xport;
