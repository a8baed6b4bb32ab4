//! `tpx-sequencer`: sequencing, the durable input log, replication, failover and snapshots.
//!
//! Layers, bottom up (each a pure state machine over the seams, so `tpx-sim` can drive them):
//!
//! - [`storage`]: the [`storage::Storage`] seam; [`storage::FileStorage`] (O_DIRECT | O_DSYNC,
//!   `fallocate`) and [`storage::MemStorage`] (crash, ENOSPC and fault injection).
//! - [`log`]: preallocated segments of `tpx_wire::log_record` records, group commits of whole
//!   4 KiB blocks, torn-tail recovery, corruption refusal, reader, retention.
//! - [`writer`]: the [`writer::LogSink`] the replica writes through: inline ([`writer::SyncLog`])
//!   or a writer thread doing group commits ([`writer::ThreadedLog`]).
//! - [`clock`], [`transport`]: the [`clock::Clock`] and [`transport::Transport`] seams, with
//!   real (system clock, non-blocking TCP) and test (manual clock, in-memory network) versions.
//! - [`proto`]: replication and witness messages.
//! - [`replica`]: the primary / standby / candidate state machine: stamping, de-duplication,
//!   replication, heartbeats, durability modes, promotion, term fencing, rejoin.
//! - [`witness`]: the witness state machine and its server.
//! - [`apply`], [`snapshot`], [`restart`]: records to engine commands, replay, rkyv snapshots,
//!   restart from a snapshot + the log tail, retention.
//! - [`process`]: what a process needs around them (host clock, signals, real-time policy, idle
//!   back-off) and the witness process (`tpx witness`).
//! - [`testing`]: test and bench support (the demo engine, a deterministic load). The `tpx-seq`
//!   test harness process lives with its binary (`src/bin/tpx-seq/`), not in the library.

pub mod apply;
pub mod clock;
pub mod log;
pub mod process;
pub mod proto;
mod replay;
pub mod replica;
pub mod restart;
mod scan;
pub mod snapshot;
pub mod storage;
pub mod term_store;
pub mod testing;
pub mod transport;
pub mod uring;
pub mod witness;
pub mod witness_state;
pub mod writer;

pub use apply::{command_of, Applier, EngineApplier};
pub use clock::{Clock, ManualClock, SystemClock};
pub use log::{LogConfig, LogError, LogReader, Recovery, SegmentLog};
pub use replica::{Durability, Replica, ReplicaConfig, ReplicaEvent, Role, SubmitError};
pub use storage::{FileStorage, MemStorage, Storage, WriteMode};
pub use transport::{MemNet, PeerId, TcpTransport, Transport, WITNESS_ID};
pub use uring::UringLog;
pub use witness::{Witness, WitnessServer};
pub use writer::{IdleMode, LogSink, SyncLog, ThreadedLog};
