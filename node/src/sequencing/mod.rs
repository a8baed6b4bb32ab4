//! Sequencing: the stage over the replicated log, its feed to the shards, transport.

pub mod inprocess;
pub mod replication;
pub mod stage;
