//! `tpx-tuning`: host topology, the core plan and low-latency tuning checks (binary `tpx-tune`).
//!
//! - [`topology`] / [`hw`]: what the host has (hwlocality for CPUs, sysfs for NICs).
//! - [`plan`]: the [`CorePlan`] TOML format the node reads, and the pure planner.
//! - [`check`]: PASS / FAIL / N/A per tuning item, pure functions over a [`sys::SysSource`].
//! - [`apply`]: the run-time changes for failed items; [`render`]: their persistent form.
//!
//! The node depends on this crate to read its plan:
//!
//! ```
//! use tpx_tuning::{CorePlan, Role};
//! let plan = CorePlan::from_toml_str(r#"
//!     version = 1
//!     role = "node"
//!     numa_node = 0
//!     degraded = true
//!     housekeeping = [0]
//!     irq = [0]
//!     isolated = [1]
//!     [[thread]]
//!     role = "shard"
//!     cpu = 1
//!     [[thread]]
//!     role = "session"
//!     cpu = 0
//!     shared = true
//!     [[thread]]
//!     role = "sequencer"
//!     cpu = 0
//!     shared = true
//!     [[thread]]
//!     role = "media-driver"
//!     cpu = 0
//!     shared = true
//! "#).unwrap();
//! assert_eq!(plan.cpu_of(Role::Shard, 0), Some(1));
//! assert_eq!(plan.thread(Role::Shard, 0).unwrap().thread_name(), "tpx-shard-0");
//! ```

pub mod apply;
pub mod check;
pub mod cpuset;
pub mod hw;
pub mod plan;
pub mod render;
pub mod sys;
pub mod topology;

pub use plan::{
    plan, CorePlan, HostRole, PlanError, PlanRequest, Role, SchedPolicy, ThreadPlacement,
    DEFAULT_PLAN_PATH, FORMAT_VERSION,
};
pub use topology::{Cpu, HostTopology, Nic};
