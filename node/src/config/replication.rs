//! `[replication]`: where the input log lives, the peer and the witness. See
//! `sequencing/replication.rs` for the log itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tpx_sequencer::Durability;

/// The witness's peer id on the replication network.
pub const WITNESS_ID: u32 = 100;

fn default_node_id() -> u32 {
    1
}
fn default_peer_id() -> u32 {
    2
}
fn default_log_dir() -> PathBuf {
    PathBuf::from("tpx-log")
}
fn default_timeout_us() -> u64 {
    20_000
}
fn default_heartbeat_us() -> u64 {
    500
}
fn default_true() -> bool {
    true
}
fn default_lease_us() -> u64 {
    20_000
}

/// How the log writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogWrite {
    /// `O_DIRECT | O_DSYNC`: a write is on the device when it returns (the default).
    #[default]
    Direct,
    /// Buffered writes + `fdatasync` (filesystems without O_DIRECT, e.g. tmpfs).
    Buffered,
}

/// `[replication]`: where the log lives, the peer and the witness. Absent: a single node with a
/// durable local log (`fsync`) and an in-process witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    #[serde(default = "default_node_id")]
    pub node_id: u32,
    #[serde(default = "default_peer_id")]
    pub peer_id: u32,
    /// Where this node listens for its peer (replication); required with `peer_addr`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The peer's replication address; absent: no peer (single node).
    #[serde(default)]
    pub peer_addr: Option<SocketAddr>,
    /// The witness (`tpx witness`); absent: an in-process witness (single node only).
    #[serde(default)]
    pub witness_addr: Option<SocketAddr>,
    /// The input log's folder (relative paths: against the config file's folder).
    #[serde(default = "default_log_dir")]
    pub log_dir: PathBuf,
    /// `replicated` | `fsync` | `replicated+fsync`; default `replicated` with a peer, `fsync`
    /// without.
    #[serde(default)]
    pub durability: Option<String>,
    /// A standby that hears nothing from the primary for this long asks the witness for the
    /// next term (and a primary counts a silent standby as gone).
    #[serde(default = "default_timeout_us")]
    pub timeout_us: u64,
    /// The primary heartbeats an idle standby this often.
    #[serde(default = "default_heartbeat_us")]
    pub heartbeat_us: u64,
    /// Lease of the in-process witness (single node).
    #[serde(default = "default_lease_us")]
    pub lease_us: u64,
    /// The log writer thread: `park` (sleeps on a condition variable) or `spin`.
    #[serde(default)]
    pub writer_idle: crate::config::IdleMode,
    #[serde(default)]
    pub write: LogWrite,
    /// Preallocated bytes per log segment.
    #[serde(default)]
    pub segment_bytes: Option<u64>,
    /// Write zeros over a new segment once (at creation), so that O_DSYNC writes overwrite
    /// written blocks instead of converting unwritten extents (an ext4 journal commit each).
    #[serde(default = "default_true")]
    pub zero_fill: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty replication config is valid")
    }
}

impl ReplicationConfig {
    /// The durability mode in force.
    pub fn durability(&self) -> Result<Durability, String> {
        match &self.durability {
            Some(s) => s.parse(),
            None if self.peer_addr.is_some() => Ok(Durability::Replicated),
            None => Ok(Durability::Fsync),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.durability()?;
        if self.peer_addr.is_some() && (self.listen.is_none() || self.witness_addr.is_none()) {
            return Err("[replication]: peer_addr needs listen and witness_addr".into());
        }
        if self.peer_addr.is_none() && self.durability()? != Durability::Fsync {
            return Err("[replication]: without peer_addr the durability must be fsync".into());
        }
        if self.node_id == self.peer_id || self.node_id == WITNESS_ID || self.peer_id == WITNESS_ID
        {
            return Err(format!(
                "[replication]: node_id and peer_id must differ from each other and from {WITNESS_ID} (the witness)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c = ReplicationConfig::default();
        assert_eq!(c.durability().unwrap(), Durability::Fsync);
        assert!(c.validate().is_ok());
        let c: ReplicationConfig = toml::from_str(
            r#"
            node_id = 1
            peer_id = 2
            listen = "127.0.0.1:9201"
            peer_addr = "127.0.0.1:9202"
            witness_addr = "127.0.0.1:9200"
            "#,
        )
        .unwrap();
        assert_eq!(c.durability().unwrap(), Durability::Replicated);
        assert!(c.validate().is_ok());
        let bad: ReplicationConfig = toml::from_str(r#"durability = "replicated""#).unwrap();
        assert!(bad.validate().is_err());
        assert!(toml::from_str::<ReplicationConfig>("nope = 1").is_err());
    }
}
