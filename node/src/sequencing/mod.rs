//! Sequencing: the stage over the replicated log (`stage.rs`), its feed to the shards
//! (`feed.rs`), the accounts it fenced after refusing them `Unavailable` (`fence.rs`), and the
//! log and transport the replica runs over (`log.rs`).

pub mod feed;
pub mod fence;
pub mod log;
pub mod stage;
