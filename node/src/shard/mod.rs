//! Matching shards: the engine with its report mapping, and market data.

pub mod apply;
pub mod md;
