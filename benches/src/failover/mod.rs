//! `failover-bench`: the appliance as deployed (`tpx witness` with its state file, two `tpx
//! node`s with risk and market data on, durable logs, `replicated` by default) under a load of
//! `FailoverClient`s; SIGKILL (or, with `--hang`, SIGSTOP) the primary `tpx node` at seeded
//! random moments, time the standby's takeover on the host's `CLOCK_MONOTONIC`, bring the
//! killed node back as the new standby (as systemd does), wait for it to catch up, repeat; at
//! the end check every answer the clients got against the surviving log.
//!
//! It reuses the fault lab's pieces ([`crate::fault_lab`]): the node configs and the restart
//! policy (`cluster`), the processes (`procs`), the clients (`workload`), the history and the
//! checker; on loopback by default (`--netns`: each process in its own namespace).

pub mod run;

pub use run::{run, Config, Outcome, Split};
