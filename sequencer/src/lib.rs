//! `tpx-sequencer`: sequencing and the durable input log.
//!
//! Will hold (issue "sequencer and hot standby"): the sequencing stage that stamps every request
//! with `(seq, term, timestamp_ns)`; preallocated O_DIRECT log segments written in group commits
//! with CRC32C per record and torn-tail recovery; rkyv snapshots; replication to a hot standby;
//! heartbeats, witness-granted promotion and term fencing. The IO, clock and network seams are
//! traits so that `tpx-sim` drives the same code from a seed.
//!
//! Nothing is implemented yet; this crate only reserves its place in the workspace.
