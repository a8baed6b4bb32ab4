//! Sequencing: the stage over the replicated log (`stage.rs`), its feed to the shards
//! (`feed.rs`), the accounts it fenced after refusing them `Unavailable` (`fence.rs`), and the
//! log and transport the replica runs over (`log.rs`), and the replay's log reader
//! (`read_ahead.rs`).

pub mod feed;
pub mod fence;
pub mod log;
pub mod read_ahead;
pub mod stage;
