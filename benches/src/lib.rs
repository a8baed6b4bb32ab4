//! `tpx-benches`: benchmarks that print JSON and HdrHistogram percentiles.
//!
//! `engine-bench` compares the matching engine with the reference book and peer crates on
//! generated workloads. The load generator, end-to-end, market-data and failover benches join
//! as their issues land.
