//! `[md]`: market data from the shards (absent: the node publishes nothing). See
//! `shard/md.rs` for what the node does with it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Threading of the embedded media driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MdThreading {
    /// One driver thread (conductor, sender, receiver). The default; right for 2 cores.
    #[default]
    Shared,
    /// Conductor on one thread, sender + receiver on another.
    SharedNetwork,
    /// Three threads.
    Dedicated,
}

/// How the embedded driver's threads wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MdDriverIdle {
    /// Back off to sleeps (the default: never a spinning thread unless asked).
    #[default]
    Backoff,
    /// Busy-spin (a dedicated core for the driver).
    Spin,
}

fn default_true() -> bool {
    true
}
fn default_channel() -> String {
    "aeron:ipc".into()
}
fn default_stream_id() -> u32 {
    100
}
fn default_snapshot_stream_id() -> u32 {
    200
}
fn default_interval_ms() -> u64 {
    1_000
}
fn default_ring_capacity() -> usize {
    1 << 16
}
fn default_term_length() -> usize {
    16 << 20
}

/// `[md]` of `node.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdConfig {
    /// `false`: the section is kept but nothing is published.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Feed A, e.g. `aeron:udp?endpoint=239.1.1.1:40456|interface=10.0.0.2` (default
    /// `aeron:ipc`).
    #[serde(default = "default_channel")]
    pub channel_a: String,
    /// Feed B (another group on another interface); none by default.
    #[serde(default)]
    pub channel_b: Option<String>,
    /// The snapshot stream's channel (default: `channel_a`).
    #[serde(default)]
    pub snapshot_channel: Option<String>,
    /// Manual multi-destination-cast (unicast fan-out where there is no multicast, as in an
    /// AWS VPC): with `channel_a = "aeron:udp?control-mode=manual"`, the subscribers'
    /// endpoints (`host:port`) feed A is sent to. Dynamic MDC
    /// (`aeron:udp?control=<this host>:<port>|control-mode=dynamic`) needs no list: subscribers
    /// join by naming the control address. See OPERATIONS.md, "Market data on AWS".
    #[serde(default)]
    pub destinations_a: Vec<String>,
    /// Feed B's manual MDC destinations (with a manual `channel_b`).
    #[serde(default)]
    pub destinations_b: Vec<String>,
    /// The snapshot channel's manual MDC destinations, when `snapshot_channel` is its own
    /// manual channel (when it is `channel_a`, the snapshots go to `destinations_a`).
    #[serde(default)]
    pub snapshot_destinations: Vec<String>,
    /// Shard `s` publishes feed A on stream `stream_id + s` (also the packets' session id).
    #[serde(default = "default_stream_id")]
    pub stream_id: u32,
    /// Shard `s` publishes feed B on stream `stream_id_b + s` (default `stream_id`; must differ
    /// from it when B's channel is A's, e.g. both `aeron:ipc`).
    #[serde(default)]
    pub stream_id_b: Option<u32>,
    /// Shard `s` publishes snapshots on stream `snapshot_stream_id + s`.
    #[serde(default = "default_snapshot_stream_id")]
    pub snapshot_stream_id: u32,
    /// Retransmission server of shard 0 (shard `s` binds port + `s`; port 0: any free port).
    /// None: no retransmission (subscribers recover from snapshots only).
    #[serde(default)]
    pub retransmit_addr: Option<SocketAddr>,
    /// Pause between two snapshot cycles.
    #[serde(default = "default_interval_ms")]
    pub snapshot_interval_ms: u64,
    /// A heartbeat goes out after this long without a packet.
    #[serde(default = "default_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Messages each shard keeps for retransmission (64 bytes each).
    #[serde(default = "default_ring_capacity")]
    pub ring_capacity: usize,
    /// An external media driver's directory; none: the node embeds a driver (its own directory
    /// under /dev/shm, removed when the node stops).
    #[serde(default)]
    pub aeron_dir: Option<String>,
    /// The embedded driver's threading.
    #[serde(default)]
    pub threading: MdThreading,
    #[serde(default)]
    pub driver_idle: MdDriverIdle,
    /// The embedded driver's term length (UDP and IPC), a power of two >= 64 KiB.
    #[serde(default = "default_term_length")]
    pub term_length: usize,
}

impl Default for MdConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [md] section is valid")
    }
}

impl MdConfig {
    /// What `tpx up --demo` publishes: `aeron:ipc` through the node's embedded driver,
    /// retransmission on 127.0.0.1, snapshots every second.
    pub fn demo() -> MdConfig {
        MdConfig {
            retransmit_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            term_length: 1 << 20,
            ..MdConfig::default()
        }
    }

    pub fn stream_a(&self, shard: u16) -> u32 {
        self.stream_id + u32::from(shard)
    }

    pub fn stream_b(&self, shard: u16) -> u32 {
        self.stream_id_b.unwrap_or(self.stream_id) + u32::from(shard)
    }

    pub fn snapshot_stream(&self, shard: u16) -> u32 {
        self.snapshot_stream_id + u32::from(shard)
    }

    pub fn snapshot_channel(&self) -> &str {
        self.snapshot_channel.as_deref().unwrap_or(&self.channel_a)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.channel_b.as_deref() == Some(self.channel_a.as_str())
            && self.stream_b(0) == self.stream_a(0)
        {
            return Err("[md] channel_b equals channel_a: set stream_id_b to another id".into());
        }
        if self.ring_capacity == 0 {
            return Err("[md] ring_capacity must be > 0".into());
        }
        let manual = |c: &str| c.contains("control-mode=manual");
        for (name, channel, list) in [
            (
                "destinations_a",
                Some(self.channel_a.as_str()),
                &self.destinations_a,
            ),
            (
                "destinations_b",
                self.channel_b.as_deref(),
                &self.destinations_b,
            ),
            (
                "snapshot_destinations",
                self.snapshot_channel.as_deref(),
                &self.snapshot_destinations,
            ),
        ] {
            match channel {
                Some(c) if manual(c) && list.is_empty() && name != "snapshot_destinations" => {
                    return Err(format!(
                        "[md] {c} is manual MDC: {name} names no subscriber"
                    ));
                }
                Some(c) if !list.is_empty() && !manual(c) => {
                    return Err(format!(
                        "[md] {name} needs a manual MDC channel (control-mode=manual), not {c}"
                    ));
                }
                None if !list.is_empty() => {
                    return Err(format!("[md] {name} without its channel"));
                }
                _ => {}
            }
        }
        if self.snapshot_channel.as_deref().is_some_and(manual)
            && self.snapshot_channel.as_deref() != Some(self.channel_a.as_str())
            && self.snapshot_destinations.is_empty()
        {
            return Err(
                "[md] a manual snapshot_channel of its own needs snapshot_destinations".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md_section_defaults_and_streams() {
        let c: MdConfig = toml::from_str(
            r#"
            channel_a = "aeron:udp?endpoint=239.1.1.1:40456|interface=10.0.0.2"
            channel_b = "aeron:udp?endpoint=239.1.2.1:40456|interface=10.0.1.2"
            retransmit_addr = "10.0.0.2:40470"
            threading = "shared_network"
            "#,
        )
        .unwrap();
        assert!(c.enabled);
        assert_eq!(
            (c.stream_a(2), c.stream_b(2), c.snapshot_stream(2)),
            (102, 102, 202)
        );
        assert_eq!(c.snapshot_channel(), c.channel_a);
        assert_eq!(c.threading, MdThreading::SharedNetwork);
        assert!(c.check().is_ok());
        let same: MdConfig = toml::from_str("channel_b = \"aeron:ipc\"").unwrap();
        assert!(same.check().is_err(), "A and B on one IPC stream");
        let ok: MdConfig = toml::from_str("channel_b = \"aeron:ipc\"\nstream_id_b = 150").unwrap();
        assert_eq!(ok.stream_b(1), 151);
        assert!(ok.check().is_ok());
        assert!(toml::from_str::<MdConfig>("bogus = 1").is_err());
    }

    #[test]
    fn manual_mdc_needs_its_destinations() {
        let ok: MdConfig = toml::from_str(
            r#"
            channel_a = "aeron:udp?control-mode=manual"
            destinations_a = ["10.0.0.7:40500", "10.0.0.8:40500"]
            "#,
        )
        .unwrap();
        assert!(ok.check().is_ok(), "{:?}", ok.check());
        let none: MdConfig =
            toml::from_str("channel_a = \"aeron:udp?control-mode=manual\"").unwrap();
        assert!(none.check().unwrap_err().contains("destinations_a"));
        let not_manual: MdConfig = toml::from_str(
            "channel_a = \"aeron:udp?endpoint=10.0.0.7:40500\"\ndestinations_a = [\"10.0.0.8:1\"]",
        )
        .unwrap();
        assert!(not_manual.check().unwrap_err().contains("manual"));
        let b_alone: MdConfig = toml::from_str("destinations_b = [\"10.0.0.8:1\"]").unwrap();
        assert!(b_alone.check().is_err());
        let dynamic: MdConfig =
            toml::from_str("channel_a = \"aeron:udp?control=10.0.0.2:40456|control-mode=dynamic\"")
                .unwrap();
        assert!(dynamic.check().is_ok());
    }
}
