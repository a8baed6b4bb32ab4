//! `tpx-node`: the thread-per-core appliance (binary `tpx`).
//!
//! Will hold (issue "the node"): one glommio `LocalExecutor` pinned per configured core, each
//! running a matching shard and the order-entry sessions that landed on it, with a busy-poll /
//! io_uring socket path near the floor; SPSC rings between cores; `tpx node` and `tpx up`.
//!
//! Until the node lands, `tpx up --demo` runs the engine demo (see `demo.rs`).
