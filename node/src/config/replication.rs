//! `[replication]`: where the input log lives, the peer and the witness. See
//! `sequencing/` for the stage, its log and transport.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tpx_sequencer::{Durability, WITNESS_ID};

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
fn default_checkpoint_every() -> u64 {
    100_000
}
fn default_writer_commits_in_flight() -> usize {
    1
}
fn default_writer_rt_priority() -> u8 {
    1
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

fn default_uring_depth() -> usize {
    tpx_sequencer::uring::DEFAULT_DEPTH
}

/// Who writes the log's commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogWriter {
    /// A writer thread (`writer_idle`) takes what the core appended (under a mutex) and
    /// writes it as one group commit (`tpx_sequencer::ThreadedLog`; the default).
    #[default]
    Thread,
    /// The sequencing core submits each group commit itself through io_uring and reaps its
    /// completion while it polls: no writer thread, no lock (`tpx_sequencer::UringLog`).
    /// A parked core sees a completion when it wakes (its back-off bounds the delay).
    Uring,
}

/// The largest `segment_bytes` a node takes (each segment is preallocated at its roll).
pub const MAX_SEGMENT_BYTES: u64 = 4 << 30;

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
    /// `SCHED_FIFO` priority of the parked log writer thread (1-99; 0: normal scheduling), so
    /// that a commit never waits for a time slice behind a busy-polling core. Needs
    /// `CAP_SYS_NICE` (the systemd unit grants it); without it the node says so at start and
    /// the writer keeps normal scheduling. Not applied to a spinning writer.
    #[serde(default = "default_writer_rt_priority")]
    pub writer_rt_priority: u8,
    /// With `log_writer = "thread"`: commits in flight at most (1-64; default 1). Above 1 the
    /// writer hands each commit's write to one of that many worker threads and starts the next
    /// one meanwhile, on fresh blocks (`tpx_sequencer::ThreadedLog::open_pipelined`).
    #[serde(default = "default_writer_commits_in_flight")]
    pub writer_commits_in_flight: usize,
    #[serde(default)]
    pub write: LogWrite,
    /// `thread` (the default) or `uring`: see [`LogWriter`].
    #[serde(default)]
    pub log_writer: LogWriter,
    /// With `log_writer = "uring"`: commits in flight at most (1-64; default 4).
    #[serde(default = "default_uring_depth")]
    pub uring_depth: usize,
    /// Preallocated bytes per log segment (64 MiB by default; rounded up to a multiple of 4
    /// KiB, at least 8 KiB; at most [`MAX_SEGMENT_BYTES`]).
    #[serde(default)]
    pub segment_bytes: Option<u64>,
    /// Write zeros over a new segment once (at creation), so that O_DSYNC writes overwrite
    /// written blocks instead of converting unwritten extents (an ext4 journal commit each).
    #[serde(default = "default_true")]
    pub zero_fill: bool,
    /// Replication connections (peer and witness) must name this cluster.
    #[serde(default)]
    pub cluster_id: u64,
    /// A file holding the cluster's 32-byte shared secret as 64 hex digits (`openssl rand
    /// -hex 32`); the peer and the witness (`--secret-file`) must hold the same. Absent: no
    /// secret (connections are checked for the cluster id and configuration only).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Replica checkpoints: the primary logs a `Checkpoint` record per shard every this many
    /// records, and every node compares the state hash it carries with its own (see
    /// ARCHITECTURE.md, "Replicas checked while running"); 0: none.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Set by the node (not configured): the digest of the configuration primary and standby
    /// must share ([`config_digest`]); 0: not checked.
    #[serde(skip)]
    pub config_digest: u64,
    /// Set by the node (not configured): the seq of the snapshot it expects to start from (the
    /// newest image's name; 0: none). The log's open trusts the segments wholly at or before
    /// it (`SegmentLog::open_trusting`); the snapshot loader checks them (`appliance/restore.rs`).
    #[serde(skip)]
    pub trusted_through_seq: u64,
}

/// A stable 64-bit digest (FNV-1a) of what a primary and its standby must agree on: the shard
/// count, every instrument with its shard, the risk section, `max_accounts`, the crate version
/// (the `Debug` forms are stable within one version, which is part of the digest) and the input
/// log's format ([`tpx_sequencer::log::FORMAT_VERSION`]: a standby of another format would
/// fail only at the first record whose layout changed; with it in the digest the pair refuses
/// at the handshake, as for any other configuration mismatch).
pub fn config_digest(
    shard_count: u32,
    instruments: &[(crate::config::InstrumentConfig, u32)],
    risk: Option<&crate::config::risk::RiskSection>,
    max_accounts: u32,
) -> u64 {
    digest_with_format(
        tpx_sequencer::log::FORMAT_VERSION,
        shard_count,
        instruments,
        risk,
        max_accounts,
    )
}

fn digest_with_format(
    log_format: u32,
    shard_count: u32,
    instruments: &[(crate::config::InstrumentConfig, u32)],
    risk: Option<&crate::config::risk::RiskSection>,
    max_accounts: u32,
) -> u64 {
    let canon = format!(
        "v={};log_format={log_format};shards={shard_count};instruments={instruments:?};risk={risk:?};max_accounts={max_accounts}",
        env!("CARGO_PKG_VERSION")
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canon.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
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
        if let Some(b) = self.segment_bytes.filter(|&b| b > MAX_SEGMENT_BYTES) {
            // Preallocated at each roll: one that cannot be left the node READY and unable
            // to log anything.
            return Err(format!(
                "[replication] segment_bytes {b} must be at most {MAX_SEGMENT_BYTES} (4 GiB)"
            ));
        }
        if self.peer_addr.is_some() && (self.listen.is_none() || self.witness_addr.is_none()) {
            return Err("[replication]: peer_addr needs listen and witness_addr".into());
        }
        if self.peer_addr.is_none() && self.durability()? != Durability::Fsync {
            return Err("[replication]: without peer_addr the durability must be fsync".into());
        }
        // Timing that breaks the lease arithmetic or makes failovers spurious is refused:
        // a standby must hear several heartbeats per timeout, and a primary must renew its
        // lease (every quarter lease, at most every heartbeat) well within it. The drift
        // margin is derived (an eighth of the witness's lease, at least timeout / 10).
        if self.heartbeat_us == 0 || self.heartbeat_us.saturating_mul(4) > self.timeout_us {
            return Err(format!(
                "[replication]: heartbeat_us {} must be non-zero and at most timeout_us / 4 ({})",
                self.heartbeat_us,
                self.timeout_us / 4
            ));
        }
        tpx_sequencer::witness::check_lease_ns(self.lease_us.saturating_mul(1_000))
            .map_err(|e| format!("[replication] lease_us: {e}"))?;
        if self.heartbeat_us.saturating_mul(4) > self.lease_us {
            return Err(format!(
                "[replication]: heartbeat_us {} must be at most lease_us / 4 ({}): the lease is \
                 renewed at most once a heartbeat",
                self.heartbeat_us,
                self.lease_us / 4
            ));
        }
        if self.writer_rt_priority > 99 {
            return Err(format!(
                "[replication] writer_rt_priority {} must be 0 (normal scheduling) to 99",
                self.writer_rt_priority
            ));
        }
        if !(1..=64).contains(&self.writer_commits_in_flight) {
            return Err(format!(
                "[replication] writer_commits_in_flight {} must be 1 to 64",
                self.writer_commits_in_flight
            ));
        }
        if let Some(f) = &self.secret_file {
            tpx_sequencer::transport::read_secret_file(f)
                .map_err(|e| format!("[replication] {e}"))?;
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

    /// Item 11: timing that breaks the lease arithmetic is refused at start (the old code
    /// accepted all three).
    #[test]
    fn unsafe_lease_and_timeout_settings_are_refused() {
        let base = |extra: &str| -> ReplicationConfig {
            toml::from_str(&format!(
                "listen = \"127.0.0.1:9300\"\npeer_addr = \"127.0.0.1:9301\"\n\
                 witness_addr = \"127.0.0.1:9200\"\n{extra}"
            ))
            .unwrap()
        };
        assert!(base("").validate().is_ok());
        // A heartbeat longer than a quarter timeout: the standby takes a late one for a death.
        let e = base("heartbeat_us = 10000\ntimeout_us = 20000").validate();
        assert!(e.unwrap_err().contains("timeout_us / 4"));
        // A lease the primary cannot renew within (renewals are at most once a heartbeat).
        let e = base("heartbeat_us = 2000\ntimeout_us = 20000\nlease_us = 4000").validate();
        assert!(e.unwrap_err().contains("lease_us / 4"));
        // A lease too short to carry a drift margin.
        let e = base("lease_us = 10").validate();
        assert!(e.unwrap_err().contains("lease_us"));
    }

    /// The log writer runs at `SCHED_FIFO` 1 unless told otherwise; 0 turns it off; a
    /// priority above the kernel's 99 is refused at start.
    #[test]
    fn writer_rt_priority_defaults_to_one_and_is_checked() {
        assert_eq!(ReplicationConfig::default().writer_rt_priority, 1);
        let c: ReplicationConfig = toml::from_str("writer_rt_priority = 0").unwrap();
        assert!(c.validate().is_ok());
        let c: ReplicationConfig = toml::from_str("writer_rt_priority = 100").unwrap();
        assert!(c.validate().unwrap_err().contains("writer_rt_priority"));
        assert_eq!(ReplicationConfig::default().writer_commits_in_flight, 1);
        for bad in [0, 65] {
            let c: ReplicationConfig =
                toml::from_str(&format!("writer_commits_in_flight = {bad}")).unwrap();
            assert!(c
                .validate()
                .unwrap_err()
                .contains("writer_commits_in_flight"));
        }
    }

    /// Item 7: the digest covers the shard count, the instrument -> shard map and the crate
    /// version; it is never 0 (0 means "not checked").
    #[test]
    fn the_config_digest_changes_with_the_shard_map() {
        let ics = crate::config::NodeConfig::default().instruments();
        let placed =
            |shard_of: &dyn Fn(usize) -> u32| -> Vec<(crate::config::InstrumentConfig, u32)> {
                ics.iter()
                    .enumerate()
                    .map(|(k, ic)| (ic.clone(), shard_of(k)))
                    .collect()
            };
        let a = config_digest(2, &placed(&|k| k as u32 % 2), None, 1000);
        assert_eq!(a, config_digest(2, &placed(&|k| k as u32 % 2), None, 1000));
        assert_ne!(a, 0);
        assert_ne!(a, config_digest(1, &placed(&|_| 0), None, 1000));
        assert_ne!(
            a,
            config_digest(2, &placed(&|k| 1 - k as u32 % 2), None, 1000)
        );
        assert_ne!(a, config_digest(2, &placed(&|k| k as u32 % 2), None, 2000));
        // Builds of two log formats never pair.
        let f = tpx_sequencer::log::FORMAT_VERSION;
        assert_eq!(
            a,
            digest_with_format(f, 2, &placed(&|k| k as u32 % 2), None, 1000)
        );
        assert_ne!(
            a,
            digest_with_format(f - 1, 2, &placed(&|k| k as u32 % 2), None, 1000)
        );
    }
}
