//! The pinned cores: the node assembled from its config, and each core's duty cycle.

pub mod core;
pub mod restore;
pub mod serve;
pub mod snapshots;
pub mod start;
pub mod systemd;
