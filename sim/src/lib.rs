//! `tpx-sim`: the deterministic simulator of the whole cluster.
//!
//! Will hold (issue "prove it"): the sequencer, replication, failover, witness and engine driven
//! through their IO / clock / network traits by a simulated network and storage with faults, all
//! from one seed; checks after every step; `tpx-sim --seeds N` and `--seed S`.
//!
//! Nothing is implemented yet; this crate only reserves its place in the workspace.
