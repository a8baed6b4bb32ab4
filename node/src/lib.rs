//! `tpx-node`: the thread-per-core appliance (binary `tpx`).
//!
//! One glommio `LocalExecutor` pinned per configured core (`Placement::Fixed`), each running the
//! roles the core plan gives it: order-entry gateway (sessions), the sequencer, matching shards.
//! The hot path is a duty cycle that busy-polls non-blocking sockets and SPSC rings; glommio owns
//! placement, timers and parking. See "The node" in `docs/ARCHITECTURE.md`.

pub mod accounts;
pub mod admin_cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod gateway;
pub mod journal;
pub mod md;
pub mod msg;
pub mod node;
pub mod prometheus;
pub mod replica_stage;
pub mod replication;
pub mod ring;
pub mod risk_config;
pub mod sequencer;
pub mod session;
pub mod shard;
pub mod stat;
pub mod stats;
pub mod throttle;
pub mod trace;

pub use config::{CorePlan, IdleMode, NodeConfig};
pub use node::Node;
pub mod demo;
pub mod demo_funding;
pub mod doorbell;
pub mod e2e_bench;
pub mod up;

/// Re-exported for the benches and tools that link the node.
pub use core_affinity;
pub use tpx_client;
pub use tpx_wire;
