//! The node's configuration (`node.toml`): listen address, accounts file, idle strategy, timers,
//! capacities, the core plan and the instruments.
//!
//! Every field has a default, so an empty file is a valid configuration: one core per CPU the
//! process may run on, the built-in instruments, park idle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tpx_engine::{InstrumentId, InstrumentKind, InstrumentSpec};

pub mod md;
pub mod replication;
pub mod risk;
pub mod snapshots;
pub mod stats;

use replication::ReplicationConfig;

/// How a core waits when a duty cycle found no work (`idle`, and the log writer's
/// `writer_idle`): the sequencer's one idle mode. `park` (the default) backs off 4 empty
/// cycles, then sleeps (10 µs doubling up to `park_max_us`) in `ppoll(2)` on the core's sockets
/// and its doorbell, so socket data or a message from another core wakes it at once; `spin`
/// busy-polls (lowest latency, burns the core; opt in only).
pub use tpx_sequencer::IdleMode;

/// The roles one pinned core runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreAssignment {
    /// The CPU id (`core_affinity` / `Placement::Fixed` numbering).
    pub cpu: usize,
    /// Runs order-entry sessions (accepts connections, owns the sessions of its accounts).
    #[serde(default)]
    pub gateway: bool,
    /// Runs the sequencing stage (exactly one core in the plan does).
    #[serde(default)]
    pub sequencer: bool,
    /// The matching shards this core runs (each shard on exactly one core).
    #[serde(default)]
    pub shards: Vec<u32>,
}

/// Which core runs which shard, the sessions and the sequencer: the node's view of a core plan,
/// one entry per pinned core (one glommio executor each).
///
/// It comes from the config's inline `[[core_plan.cores]]`, or from a `tpx-tune` plan file
/// (`core_plan_file`, the [`tpx_tuning::CorePlan`] format, converted by
/// [`CorePlan::from_tuning`]), or by default from the machine ([`CorePlan::from_machine`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorePlan {
    pub cores: Vec<CoreAssignment>,
}

impl CorePlan {
    /// Everything on one core.
    pub fn single(cpu: usize) -> CorePlan {
        CorePlan {
            cores: vec![CoreAssignment {
                cpu,
                gateway: true,
                sequencer: true,
                shards: vec![0],
            }],
        }
    }

    /// A plan for the given CPUs: one CPU runs everything; two CPUs put sessions and the
    /// sequencer on the first and the single shard on the second; more CPUs give the sequencer
    /// and one gateway to the first and a shard to each of the others, which also run sessions.
    pub fn for_cpus(cpus: &[usize]) -> CorePlan {
        match cpus {
            [] => CorePlan::single(0),
            [only] => CorePlan::single(*only),
            [a, b] => CorePlan {
                cores: vec![
                    CoreAssignment {
                        cpu: *a,
                        gateway: true,
                        sequencer: true,
                        shards: vec![],
                    },
                    CoreAssignment {
                        cpu: *b,
                        gateway: false,
                        sequencer: false,
                        shards: vec![0],
                    },
                ],
            },
            [first, rest @ ..] => {
                let mut cores = vec![CoreAssignment {
                    cpu: *first,
                    gateway: true,
                    sequencer: true,
                    shards: vec![],
                }];
                for (i, cpu) in rest.iter().enumerate() {
                    cores.push(CoreAssignment {
                        cpu: *cpu,
                        gateway: true,
                        sequencer: false,
                        shards: vec![i as u32],
                    });
                }
                CorePlan { cores }
            }
        }
    }

    /// The plan derived from the CPUs this process may run on (`core_affinity::get_core_ids()`,
    /// which must be called before any thread pins itself).
    pub fn from_machine() -> CorePlan {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        CorePlan::for_cpus(&cpus)
    }

    /// Converts a `tpx-tune` plan: its hot threads are grouped by CPU; `session` threads make
    /// gateway cores, `shard` threads shards, the `sequencer` thread the sequencer core. Other
    /// roles (the media driver) are not run by this node yet and are ignored.
    pub fn from_tuning(plan: &tpx_tuning::CorePlan) -> Result<CorePlan, String> {
        use tpx_tuning::Role;
        let mut cores: Vec<CoreAssignment> = Vec::new();
        for t in &plan.threads {
            if !matches!(t.role, Role::Session | Role::Shard | Role::Sequencer) {
                continue;
            }
            let cpu = t.cpu as usize;
            let i = match cores.iter().position(|c| c.cpu == cpu) {
                Some(i) => i,
                None => {
                    cores.push(CoreAssignment {
                        cpu,
                        gateway: false,
                        sequencer: false,
                        shards: Vec::new(),
                    });
                    cores.len() - 1
                }
            };
            match t.role {
                Role::Session => cores[i].gateway = true,
                Role::Sequencer => cores[i].sequencer = true,
                Role::Shard => cores[i].shards.push(t.index),
                _ => {}
            }
        }
        let plan = CorePlan { cores };
        plan.validate()?;
        Ok(plan)
    }

    pub fn shard_count(&self) -> u32 {
        self.cores.iter().map(|c| c.shards.len() as u32).sum()
    }

    /// Index (into `cores`) of the core running the sequencer.
    pub fn sequencer_core(&self) -> usize {
        self.cores.iter().position(|c| c.sequencer).unwrap_or(0)
    }

    /// Indexes of the gateway cores, in plan order.
    pub fn gateway_cores(&self) -> Vec<usize> {
        (0..self.cores.len())
            .filter(|&i| self.cores[i].gateway)
            .collect()
    }

    /// Index of the core running `shard`.
    pub fn shard_core(&self, shard: u32) -> Option<usize> {
        self.cores.iter().position(|c| c.shards.contains(&shard))
    }

    /// Checks: at least one core, exactly one sequencer, at least one gateway, shards numbered
    /// `0..n` each on exactly one core, no CPU twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.cores.is_empty() {
            return Err("core plan has no cores".into());
        }
        let seqs = self.cores.iter().filter(|c| c.sequencer).count();
        if seqs != 1 {
            return Err(format!(
                "core plan needs exactly one sequencer core, has {seqs}"
            ));
        }
        if !self.cores.iter().any(|c| c.gateway) {
            return Err("core plan has no gateway core".into());
        }
        let n = self.shard_count();
        if n == 0 {
            return Err("core plan has no shard".into());
        }
        for s in 0..n {
            let owners = self.cores.iter().filter(|c| c.shards.contains(&s)).count();
            if owners != 1 {
                return Err(format!(
                    "shard {s} must be on exactly one core (is on {owners}); shards are numbered 0..{n}"
                ));
            }
        }
        let mut cpus: Vec<usize> = self.cores.iter().map(|c| c.cpu).collect();
        cpus.sort_unstable();
        if cpus.windows(2).any(|w| w[0] == w[1]) {
            return Err("a CPU appears twice in the core plan".into());
        }
        Ok(())
    }
}

/// An instrument as configured (the engine's spec plus a symbol and an optional shard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    pub id: InstrumentId,
    pub symbol: String,
    /// `"spot"` (with `base`, `quote`) or `"linear_perp"` (with `settle`).
    pub kind: String,
    #[serde(default)]
    pub base: u32,
    #[serde(default)]
    pub quote: u32,
    #[serde(default)]
    pub settle: u32,
    pub tick_size: u64,
    pub lot_size: u64,
    pub min_price: i64,
    pub max_price: i64,
    pub min_qty: u64,
    pub max_qty: u64,
    pub min_notional: u64,
    /// The shard that owns it; default: instruments are dealt round-robin in id order.
    #[serde(default)]
    pub shard: Option<u32>,
    /// Risk (`[risk]` present): one tick-lot is worth `value_num / value_den` minor units of
    /// the quote (settle) asset, usually `tick_size * lot_size / base units per whole base
    /// unit`. Default 1 / 1.
    #[serde(default = "default_one")]
    pub value_num: u64,
    #[serde(default = "default_one")]
    pub value_den: u64,
    /// Risk: maker and taker fees per tier (`fees[tier]`, tiers past the end use the last);
    /// default: one tier, no fees.
    #[serde(default)]
    pub fees: Vec<crate::config::risk::FeeConfig>,
    /// Risk, perpetuals: initial and maintenance margin (ppm; default 10% / 5%).
    #[serde(default = "default_initial_margin_ppm")]
    pub initial_margin_ppm: u32,
    #[serde(default = "default_maintenance_margin_ppm")]
    pub maintenance_margin_ppm: u32,
    /// Risk, perpetuals: the largest position in lots (0: no limit).
    #[serde(default)]
    pub max_position: u64,
}

fn default_one() -> u64 {
    1
}
fn default_initial_margin_ppm() -> u32 {
    100_000
}
fn default_maintenance_margin_ppm() -> u32 {
    50_000
}

impl InstrumentConfig {
    pub fn spec(&self) -> Result<InstrumentSpec, String> {
        let kind = match self.kind.as_str() {
            "spot" => InstrumentKind::Spot {
                base: self.base,
                quote: self.quote,
            },
            "linear_perp" => InstrumentKind::LinearPerp {
                settle: self.settle,
            },
            other => return Err(format!("instrument {}: unknown kind {other:?}", self.id)),
        };
        Ok(InstrumentSpec {
            id: self.id,
            kind,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            min_price: self.min_price,
            max_price: self.max_price,
            min_qty: self.min_qty,
            max_qty: self.max_qty,
            min_notional: u128::from(self.min_notional),
        })
    }
}

fn builtin_fees() -> Vec<crate::config::risk::FeeConfig> {
    use crate::config::risk::FeeConfig;
    vec![
        FeeConfig {
            maker_ppm: 200,
            taker_ppm: 500,
        },
        FeeConfig {
            maker_ppm: -100,
            taker_ppm: 400,
        },
    ]
}

/// The `[risk]` section `tpx up` runs with: the built-in assets, two fee tiers, venue accounts
/// 900 (fees) and 901 (liquidation).
pub fn builtin_risk() -> crate::config::risk::RiskSection {
    crate::config::risk::RiskSection {
        fee_account: 900,
        liquidation_account: 901,
        fee_tiers: 2,
        assets: vec![ASSET_USDT, ASSET_BTC, ASSET_ETH],
    }
}

/// Asset ids of the built-in instruments.
pub const ASSET_USDT: u32 = 1;
pub const ASSET_BTC: u32 = 2;
pub const ASSET_ETH: u32 = 3;

/// Reference mid prices (ticks) of the built-in instruments (where the demo's and the load
/// generator's traders start quoting).
pub fn reference_mid(instrument: u32) -> i64 {
    match instrument {
        1 | 3 => 60_000, // BTC: 60,000 USDT at 1 USDT a tick
        _ => 30_000,     // ETH: 3,000.0 USDT at 0.1 USDT a tick
    }
}

/// The built-in instruments: BTC-USDT and ETH-USDT spot, BTC-PERP and ETH-PERP linear perps
/// settled in USDT.
///
/// Units (minor units: USDT 1e-6, BTC 1e-8, ETH 1e-9); a tick-lot is worth 100 USDT minor units
/// for both (`1e6 * 1e4 / 1e8`, `1e5 * 1e6 / 1e9`). Risk: two fee tiers (maker 2 bps / taker
/// 5 bps; maker 1 bp rebate / taker 4 bps), perpetuals 10% initial / 5% maintenance margin,
/// at most 100,000 lots (10 BTC, 100 ETH) per position.
/// - BTC: tick 1 USDT, lot 0.0001 BTC, prices 10,000..200,000 USDT (190 k ladder levels),
///   1..1,000,000 lots (0.0001..100 BTC), min notional 1 USDT (10,000 tick-lots).
/// - ETH: tick 0.1 USDT, lot 0.001 ETH, prices 500.0..20,000.0 USDT (195 k levels),
///   1..1,000,000 lots (0.001..1,000 ETH), min notional 1 USDT (10,000 tick-lots).
pub fn builtin_instruments() -> Vec<InstrumentConfig> {
    let btc = |id: u32, symbol: &str, kind: &str| InstrumentConfig {
        id,
        symbol: symbol.into(),
        kind: kind.into(),
        base: ASSET_BTC,
        quote: ASSET_USDT,
        settle: ASSET_USDT,
        tick_size: 1_000_000,
        lot_size: 10_000,
        min_price: 10_000,
        max_price: 200_000,
        min_qty: 1,
        max_qty: 1_000_000,
        min_notional: 10_000,
        shard: None,
        value_num: 100,
        value_den: 1,
        fees: builtin_fees(),
        initial_margin_ppm: 100_000,
        maintenance_margin_ppm: 50_000,
        max_position: if kind == "spot" { 0 } else { 100_000 },
    };
    let eth = |id: u32, symbol: &str, kind: &str| InstrumentConfig {
        id,
        symbol: symbol.into(),
        kind: kind.into(),
        base: ASSET_ETH,
        quote: ASSET_USDT,
        settle: ASSET_USDT,
        tick_size: 100_000,
        lot_size: 1_000_000,
        min_price: 5_000,
        max_price: 200_000,
        min_qty: 1,
        max_qty: 1_000_000,
        min_notional: 10_000,
        shard: None,
        value_num: 100,
        value_den: 1,
        fees: builtin_fees(),
        initial_margin_ppm: 100_000,
        maintenance_margin_ppm: 50_000,
        max_position: if kind == "spot" { 0 } else { 100_000 },
    };
    vec![
        btc(1, "BTC-USDT", "spot"),
        eth(2, "ETH-USDT", "spot"),
        btc(3, "BTC-PERP", "linear_perp"),
        eth(4, "ETH-PERP", "linear_perp"),
    ]
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:9100".parse().expect("valid address")
}
fn default_accounts_file() -> PathBuf {
    PathBuf::from("accounts.toml")
}
fn default_park_max_us() -> u64 {
    1_000
}
fn default_heartbeat_interval_ms() -> u64 {
    1_000
}
fn default_heartbeat_timeout_ms() -> u64 {
    3_000
}
fn default_login_timeout_ms() -> u64 {
    5_000
}
/// The longest `heartbeat_timeout_ms` / `login_timeout_ms` a node takes (a day).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// The most slots a cross-core ring may have.
pub const MAX_RING_CAPACITY: usize = 1 << 20;
/// The most replies a session's journal may keep (96 bytes each).
pub const MAX_JOURNAL_CAPACITY: usize = 1 << 20;

fn default_journal_capacity() -> usize {
    16_384
}
fn default_ring_capacity() -> usize {
    8_192
}
fn default_max_orders() -> u32 {
    1 << 20
}
fn default_max_accounts() -> u32 {
    1 << 16
}
fn default_max_sessions_per_account() -> usize {
    64
}
fn default_max_sessions_per_core() -> usize {
    1_024
}

/// Which input log the sequencing stage writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogMode {
    /// The durable log (`[replication]`, or its defaults: a single node, `fsync`). The default.
    #[default]
    Durable,
    /// The same sequencing stage and replica over an in-memory log (positions only, nothing
    /// stored, every record durable when appended) and the single node's in-process witness:
    /// for the e2e bench's comparison and tests. A single node only; never for real use.
    InProcess,
}

/// `node.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Order-entry address; every gateway core listens on it (`SO_REUSEPORT`). Port 0 picks an
    /// ephemeral port (the node reports the one it got).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The accounts file (TOML, see `accounts.rs`); relative paths are relative to the config
    /// file's folder.
    #[serde(default = "default_accounts_file")]
    pub accounts_file: PathBuf,
    #[serde(default)]
    pub idle: IdleMode,
    /// Longest park sleep in `park` mode (also the resolution of heartbeat timers when idle).
    #[serde(default = "default_park_max_us")]
    pub park_max_us: u64,
    /// The node sends a heartbeat after this long without sending anything on a session.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// The node ends a connection (`Logout(HeartbeatTimeout)`) after this long without receiving
    /// anything on it; the protocol's default is 3 heartbeat intervals.
    #[serde(default = "default_heartbeat_timeout_ms")]
    pub heartbeat_timeout_ms: u64,
    /// A connection that has not logged in after this long is closed.
    #[serde(default = "default_login_timeout_ms")]
    pub login_timeout_ms: u64,
    /// Sent replies kept per session for replay after a reconnect.
    #[serde(default = "default_journal_capacity")]
    pub journal_capacity: usize,
    /// Slots of each cross-core ring.
    #[serde(default = "default_ring_capacity")]
    pub ring_capacity: usize,
    /// Engine capacity per shard.
    #[serde(default = "default_max_orders")]
    pub max_orders: u32,
    #[serde(default = "default_max_accounts")]
    pub max_accounts: u32,
    #[serde(default = "default_max_sessions_per_core")]
    pub max_connections_per_core: usize,
    /// Sessions (session ids) one account may open by logging in, per gateway core. Each holds
    /// a journal, and a core holds `4 × max_connections_per_core` sessions in all: without a
    /// cap per account one member's logins (4,095 session ids in a second) filled the table
    /// and every other member's new session was refused.
    #[serde(default = "default_max_sessions_per_account")]
    pub max_sessions_per_account: usize,
    /// The core plan; default: `core_plan_file` if set, else derived from the machine
    /// (`CorePlan::from_machine`).
    #[serde(default)]
    pub core_plan: Option<CorePlan>,
    /// A `tpx-tune plan` file (e.g. `/etc/tpx/core-plan.toml`) to take the core plan from.
    #[serde(default)]
    pub core_plan_file: Option<PathBuf>,
    /// Default: the built-in instruments.
    #[serde(default)]
    pub instruments: Option<Vec<InstrumentConfig>>,
    /// `durable` (default) or `in-process` (see [`LogMode`]).
    #[serde(default)]
    pub log: LogMode,
    /// Lock every page of the process in RAM (`mlockall(MCL_CURRENT | MCL_FUTURE)`) once the
    /// node has replayed its log and allocated its tables, so that no page of the hot path is
    /// ever swapped or paged out. Needs `LimitMEMLOCK=infinity` (the unit) or CAP_IPC_LOCK; a
    /// failure is printed (`tpx node: WARNING memory not locked`) and the node runs on. Off by
    /// default (tests, the demo); the Ansible role turns it on.
    #[serde(default)]
    pub lock_memory: bool,
    /// The durable log, the peer and the witness; absent: a single node with a local log in
    /// `tpx-log` (next to the config file), `fsync` durability, an in-process witness.
    #[serde(default)]
    pub replication: Option<ReplicationConfig>,
    /// Market data (`[md]`, see `crate::config::md::MdConfig`); absent: the node publishes nothing.
    #[serde(default)]
    pub md: Option<crate::config::md::MdConfig>,
    /// `[stats]`: shared-memory counters, stage histograms, trace, Prometheus endpoint.
    #[serde(default)]
    pub stats: crate::config::stats::StatsConfig,
    /// `[risk]` (see `crate::config::risk`): accounts and pre-trade risk in every shard; absent:
    /// risk off.
    #[serde(default)]
    pub risk: Option<crate::config::risk::RiskSection>,
    /// `[snapshots]` (see `crate::config::snapshots`); absent: none taken, a restart replays
    /// the whole log.
    #[serde(default)]
    pub snapshots: Option<crate::config::snapshots::SnapshotsConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty config is valid")
    }
}

impl NodeConfig {
    /// Reads `path`; a relative `accounts_file` is resolved against the config's folder.
    pub fn load(path: &Path) -> Result<NodeConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut cfg: NodeConfig =
            toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        if let Some(dir) = path.parent() {
            if cfg.accounts_file.is_relative() {
                cfg.accounts_file = dir.join(&cfg.accounts_file);
            }
            if let Some(p) = cfg.core_plan_file.as_mut().filter(|p| p.is_relative()) {
                *p = dir.join(&*p);
            }
            let r = cfg
                .replication
                .get_or_insert_with(ReplicationConfig::default);
            if r.log_dir.is_relative() {
                r.log_dir = dir.join(&r.log_dir);
            }
            if let Some(d) = cfg
                .snapshots
                .as_mut()
                .and_then(|s| s.dir.as_mut())
                .filter(|d| d.is_relative())
            {
                *d = dir.join(&*d);
            }
        }
        Ok(cfg)
    }

    /// Refuses settings with which a node would start and then fail every client: no
    /// session heartbeats or timeout (every session logged out at once), a timeout not longer
    /// than the interval (a client heartbeating as told would be timed out), no connections,
    /// no orders. Checked by [`crate::Node::start_as`] (`tests/config_limits.rs`).
    pub fn validate_limits(&self) -> Result<(), String> {
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms > u64::from(u32::MAX) {
            return Err(format!(
                "heartbeat_interval_ms {} must be 1 to {}",
                self.heartbeat_interval_ms,
                u32::MAX
            ));
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return Err(format!(
                "heartbeat_timeout_ms {} must be above heartbeat_interval_ms {} (the \
                 protocol's default is 3 intervals)",
                self.heartbeat_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        if self.max_connections_per_core == 0 {
            return Err("max_connections_per_core must be at least 1".into());
        }
        if self.max_orders == 0 {
            return Err("max_orders must be at least 1".into());
        }
        if self.max_sessions_per_account == 0 {
            return Err("max_sessions_per_account must be at least 1".into());
        }
        // Times scaled to nanoseconds must not wrap (a wrapped timeout closed every
        // connection at once).
        for (key, ms) in [
            ("heartbeat_timeout_ms", self.heartbeat_timeout_ms),
            ("login_timeout_ms", self.login_timeout_ms),
        ] {
            if ms > MAX_TIMEOUT_MS {
                return Err(format!(
                    "{key} {ms} must be at most {MAX_TIMEOUT_MS} (a day)"
                ));
            }
        }
        // Sizes allocated up front (a ring) or at a login (a journal): an impossible one
        // aborted the process, at start or at a member's first login.
        if self.ring_capacity > MAX_RING_CAPACITY {
            return Err(format!(
                "ring_capacity {} must be at most {MAX_RING_CAPACITY}",
                self.ring_capacity
            ));
        }
        if self.journal_capacity == 0 || self.journal_capacity > MAX_JOURNAL_CAPACITY {
            return Err(format!(
                "journal_capacity {} must be 1 to {MAX_JOURNAL_CAPACITY} (replies kept per \
                 session for replay after a reconnect)",
                self.journal_capacity
            ));
        }
        Ok(())
    }

    /// The core plan in force (see [`NodeConfig::core_plan`]).
    pub fn plan(&self) -> Result<CorePlan, String> {
        if let Some(p) = &self.core_plan {
            return Ok(p.clone());
        }
        if let Some(path) = &self.core_plan_file {
            let tuned = tpx_tuning::CorePlan::load(path).map_err(|e| e.to_string())?;
            return CorePlan::from_tuning(&tuned);
        }
        Ok(CorePlan::from_machine())
    }

    /// The replication settings in force (defaults when the section is absent).
    pub fn replication(&self) -> ReplicationConfig {
        self.replication.clone().unwrap_or_default()
    }

    pub fn instruments(&self) -> Vec<InstrumentConfig> {
        self.instruments.clone().unwrap_or_else(builtin_instruments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_defaults() {
        let c = NodeConfig::default();
        assert_eq!(c.idle, IdleMode::Park);
        assert_eq!(c.instruments().len(), 4);
        assert!(c.plan().unwrap().validate().is_ok());
    }

    #[test]
    fn parses_plan_and_idle() {
        let c: NodeConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:0"
            idle = "spin"
            [[core_plan.cores]]
            cpu = 0
            gateway = true
            sequencer = true
            shards = [0]
            [[core_plan.cores]]
            cpu = 1
            shards = [1]
            "#,
        )
        .unwrap();
        assert_eq!(c.idle, IdleMode::Spin);
        let p = c.plan().unwrap();
        assert!(p.validate().is_ok());
        assert_eq!(p.shard_count(), 2);
        assert_eq!(p.shard_core(1), Some(1));
    }

    #[test]
    fn plans_for_cpus_validate() {
        for n in 1..6 {
            let cpus: Vec<usize> = (0..n).collect();
            let p = CorePlan::for_cpus(&cpus);
            assert!(p.validate().is_ok(), "{n}: {p:?}");
        }
        let bad = CorePlan {
            cores: vec![CoreAssignment {
                cpu: 0,
                gateway: true,
                sequencer: false,
                shards: vec![0],
            }],
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn converts_a_tuning_plan() {
        let tuned = tpx_tuning::CorePlan::from_toml_str(
            r#"
            version = 1
            role = "node"
            numa_node = 0
            degraded = true
            housekeeping = [0]
            irq = [0]
            isolated = [1]
            [[thread]]
            role = "shard"
            cpu = 1
            [[thread]]
            role = "session"
            cpu = 0
            shared = true
            [[thread]]
            role = "sequencer"
            cpu = 0
            shared = true
            [[thread]]
            role = "media-driver"
            cpu = 0
            shared = true
            "#,
        )
        .unwrap();
        let p = CorePlan::from_tuning(&tuned).unwrap();
        assert_eq!(p.cores.len(), 2);
        assert_eq!(p.shard_core(0).map(|i| p.cores[i].cpu), Some(1));
        assert_eq!(p.cores[p.sequencer_core()].cpu, 0);
        assert_eq!(p.gateway_cores(), vec![p.sequencer_core()]);
    }

    #[test]
    fn builtin_specs_are_valid() {
        let specs: Vec<_> = builtin_instruments()
            .iter()
            .map(|i| i.spec().unwrap())
            .collect();
        assert_eq!(specs.len(), 4);
    }
}
