//! Sequencing: the stage on its core, the stage over the replicated log, its feed to the
//! shards and transport, and the in-process log.

pub mod inprocess;
pub mod on_core;
pub mod replication;
pub mod stage;
