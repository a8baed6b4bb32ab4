//! `failover-bench`: a witness and two sequencer nodes as separate processes, the primary
//! under order load; SIGKILL the primary at seeded random moments, measure the takeover on the
//! host's `CLOCK_MONOTONIC` (kill → the first record the new primary sequences), restart the
//! killed node as the new standby, wait for it to catch up, repeat. Every acknowledgement the
//! killed primary reported must be in the new primary's log, unchanged; no client order may be
//! sequenced twice; the state the standby took over with must equal a replay of its log.

pub mod procs;
pub mod run;

pub use procs::{Launcher, NodeSpec, Proc};
pub use run::{run, Config, Outcome};
