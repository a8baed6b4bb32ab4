//! `[stats]`: the stats file, the trace ring, Prometheus. See `observe/stats.rs`.

use std::path::PathBuf;

/// `[stats]` of the node config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Stamp every request's stages and publish the stats file (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The stats file; default `/dev/shm/tpx-node-<port>.stats`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Records in each gateway core's trace ring (a power of two; 64 bytes each).
    #[serde(default = "default_trace_slots")]
    pub trace_slots: usize,
    /// Trace one answer in this many (1 = every order).
    #[serde(default = "default_trace_every")]
    pub trace_every: u64,
    /// Serve Prometheus text on this address (a thread off the hot cores); none by default.
    #[serde(default)]
    pub prometheus: Option<std::net::SocketAddr>,
}

fn yes() -> bool {
    true
}
fn default_trace_slots() -> usize {
    1 << 16
}
fn default_trace_every() -> u64 {
    1
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            enabled: true,
            path: None,
            trace_slots: default_trace_slots(),
            trace_every: default_trace_every(),
            prometheus: None,
        }
    }
}
