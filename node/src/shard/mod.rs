//! Matching shards: the stage on its core, the engine with its report mapping, market data.

pub mod apply;
pub mod checkpoint;
pub mod md;
pub mod plan;
pub mod query;
pub mod replay;
pub mod snapshot;
pub mod stage;
