//! `tpx-node`: the thread-per-core appliance (binary `tpx`).
//!
//! One glommio `LocalExecutor` pinned per configured core (`Placement::Fixed`), each running the
//! roles the core plan gives it: order-entry gateway (sessions), the sequencer, matching shards.
//! The hot path is a duty cycle that busy-polls non-blocking sockets and SPSC rings; glommio owns
//! placement, timers and parking. See "The node" in `docs/ARCHITECTURE.md`.

pub mod appliance;
pub mod config;
pub mod gateway;
pub mod msg;
pub mod observe;
pub mod runtime;
pub mod sequencing;
pub mod shard;

pub use appliance::start::Node;
pub use config::{CorePlan, IdleMode, NodeConfig};

/// Re-exported for the benches and tools that link the node.
pub use core_affinity;
pub use tpx_wire;
