//! `tpx-node`: the thread-per-core appliance (binary `tpx`).
//!
//! One glommio `LocalExecutor` pinned per configured core (`Placement::Fixed`), each running the
//! roles the core plan gives it: order-entry gateway (sessions), the sequencer, matching shards.
//! The hot path is a duty cycle that busy-polls non-blocking sockets and SPSC rings; glommio owns
//! placement, timers and parking. See "The node" in `docs/ARCHITECTURE.md`.

pub mod admin_cli;
pub mod appliance;
pub mod config;
pub mod gateway;
pub mod msg;
pub mod observe;
pub mod runtime;
pub mod sequencing;
pub mod shard;
pub mod stat;

pub use appliance::start::Node;
pub use config::{CorePlan, IdleMode, NodeConfig};
pub mod demo;
pub mod demo_feed;
pub mod demo_funding;
pub mod e2e_bench;
pub mod up;

/// Re-exported for the benches and tools that link the node.
pub use core_affinity;
pub use tpx_client;
pub use tpx_wire;
