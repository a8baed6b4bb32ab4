//! The core plan: which CPU runs which thread of a tpx process, and which CPUs the OS keeps.
//!
//! [`CorePlan`] is the TOML file the node (`tpx node`), the feed handler (`tpx-feed`) and
//! the systemd units (through Ansible) read; [`plan`] computes one from a [`HostTopology`]. The
//! planner is a pure function, so it is tested on synthetic c6i.metal, c6i.4xlarge and 2-vCPU
//! hosts. The format is documented in `docs/OPERATIONS.md` ("The core plan").

use crate::cpuset::format_list;
use crate::topology::{HostTopology, PhysicalCore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;

/// The version of the core-plan format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where the Ansible roles install the plan, and where the tools look by default.
pub const DEFAULT_PLAN_PATH: &str = "/etc/tpx/core-plan.toml";

/// What a host runs; decides which threads the plan places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostRole {
    /// A matching node (`tpx node`, primary or standby): shards, sessions, sequencer and the
    /// media driver.
    Node,
    /// A market-data feed handler (`tpx-feed`): the feed thread and the media driver.
    Feed,
    /// The witness (`tpx witness`): no hot thread, housekeeping CPUs only.
    Witness,
}

impl fmt::Display for HostRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostRole::Node => "node",
            HostRole::Feed => "feed",
            HostRole::Witness => "witness",
        })
    }
}

/// A hot (busy-polling, pinned) thread kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A matching shard (engine instance for a partition of the symbols).
    Shard,
    /// A set of order-entry gateway sessions (io_uring reactor).
    Session,
    /// The sequencer: stamps, appends the input log, replicates.
    Sequencer,
    /// The Aeron media driver (conductor/sender/receiver in one thread).
    MediaDriver,
    /// The feed handler's subscriber thread (arbitration, gap detection, books).
    Feed,
}

impl Role {
    /// The short name used in thread names.
    pub fn short_name(self) -> &'static str {
        match self {
            Role::Shard => "shard",
            Role::Session => "sess",
            Role::Sequencer => "seq",
            Role::MediaDriver => "media",
            Role::Feed => "feed",
        }
    }

    /// Whether a process has exactly one thread of this role (no index in its name).
    pub fn is_singleton(self) -> bool {
        matches!(self, Role::Sequencer | Role::MediaDriver)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Shard => "shard",
            Role::Session => "session",
            Role::Sequencer => "sequencer",
            Role::MediaDriver => "media-driver",
            Role::Feed => "feed",
        })
    }
}

/// Scheduling policy for a hot thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedPolicy {
    /// `SCHED_OTHER` (CFS). The default: a busy-polling thread alone on an isolated CPU does
    /// not need more, and cannot starve per-CPU kernel work.
    #[default]
    Other,
    /// `SCHED_FIFO` at `priority`. Needs `kernel.sched_rt_runtime_us = -1` and CAP_SYS_NICE.
    Fifo,
}

impl SchedPolicy {
    /// The value `/proc/PID/task/TID/stat` reports (field 41).
    pub fn kernel_value(self) -> u32 {
        match self {
            SchedPolicy::Other => 0,
            SchedPolicy::Fifo => 1,
        }
    }
}

/// Where one thread runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadPlacement {
    /// What the thread does.
    pub role: Role,
    /// Which one of its role (shard 0, shard 1, ...); 0 for the sequencer and media driver.
    #[serde(default)]
    pub index: u32,
    /// The CPU (OS index) to pin it to, alone.
    pub cpu: u32,
    /// `true` when the CPU is not the thread's own: it shares a housekeeping CPU with the OS
    /// and other threads (a degraded plan, on a host with too few cores).
    #[serde(default)]
    pub shared: bool,
    /// Scheduling policy.
    #[serde(default)]
    pub policy: SchedPolicy,
    /// `SCHED_FIFO` priority (1-99); 0 for `other`.
    #[serde(default)]
    pub priority: u8,
}

impl ThreadPlacement {
    /// The name the process gives the thread (`/proc/PID/task/TID/comm`, at most 15 bytes):
    /// `tpx-shard-0`, `tpx-sess-1`, `tpx-seq`, `tpx-media`, `tpx-feed-0`. `tpx-tune check --pid`
    /// finds threads by this name.
    pub fn thread_name(&self) -> String {
        if self.role.is_singleton() {
            format!("tpx-{}", self.role.short_name())
        } else {
            format!("tpx-{}-{}", self.role.short_name(), self.index)
        }
    }
}

/// The NIC the plan was made around.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicPlacement {
    /// Interface name.
    pub name: String,
    /// Driver, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// NUMA node of the NIC, when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_node: Option<u32>,
}

/// The core plan (TOML, `/etc/tpx/core-plan.toml`). All CPU numbers are OS indices.
///
/// ```toml
/// version = 1
/// host = "ip-10-0-1-10"
/// role = "node"
/// numa_node = 0
/// degraded = false
/// notes = []
/// housekeeping = [0, 64]
/// irq = [1, 65]
/// isolated = [2, 3, 66, 67]
/// idle = [66, 67]
/// spare = []
///
/// [nic]
/// name = "ens5"
/// driver = "ena"
/// numa_node = 0
///
/// [[thread]]
/// role = "shard"
/// index = 0
/// cpu = 2
/// policy = "other"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorePlan {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// The host the plan was made for.
    #[serde(default)]
    pub host: String,
    /// What the host runs.
    pub role: HostRole,
    /// The NUMA node hot threads live on (the NIC's).
    pub numa_node: u32,
    /// `true` when some hot thread shares a CPU (too few cores); see `notes`.
    pub degraded: bool,
    /// Human-readable remarks: why degraded, where IRQs go, what is left spare.
    #[serde(default)]
    pub notes: Vec<String>,
    /// CPUs for the OS, systemd, logging and the non-hot threads of tpx processes.
    pub housekeeping: Vec<u32>,
    /// CPUs that take device interrupts (`irqaffinity=`, the NIC's IRQs).
    pub irq: Vec<u32>,
    /// CPUs kept from the scheduler, timers and RCU (`isolcpus`, `nohz_full`, `rcu_nocbs`):
    /// every CPU of a core that runs a hot thread, SMT siblings included.
    pub isolated: Vec<u32>,
    /// SMT siblings of hot CPUs: isolated and left idle so no two hot threads share a core.
    #[serde(default)]
    pub idle: Vec<u32>,
    /// CPUs tpx does not use and does not isolate (other NUMA nodes, cores beyond the
    /// requested thread counts).
    #[serde(default)]
    pub spare: Vec<u32>,
    /// The NIC the plan follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic: Option<NicPlacement>,
    /// The hot threads, one entry each.
    #[serde(default, rename = "thread")]
    pub threads: Vec<ThreadPlacement>,
}

/// What to plan for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    /// What the host runs.
    pub role: HostRole,
    /// Number of shards (node hosts); `None` fills the NUMA node.
    pub shards: Option<u32>,
    /// Number of session threads (node hosts); `None`: a quarter of the hot cores, at least 1.
    pub sessions: Option<u32>,
    /// The NIC to follow; `None` takes the first physical NIC.
    pub nic: Option<String>,
    /// Policy for threads that own their CPU.
    pub hot_policy: SchedPolicy,
    /// `SCHED_FIFO` priority when `hot_policy` is `Fifo`.
    pub hot_priority: u8,
}

impl Default for PlanRequest {
    fn default() -> Self {
        PlanRequest {
            role: HostRole::Node,
            shards: None,
            sessions: None,
            nic: None,
            hot_policy: SchedPolicy::Other,
            hot_priority: 0,
        }
    }
}

/// Why a plan could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The topology has no usable CPU.
    NoCpus,
    /// `--nic NAME` names no interface of the host.
    UnknownNic(String),
    /// A request that cannot make sense (zero shards, ...).
    BadRequest(String),
    /// The TOML does not parse.
    Parse(String),
    /// The plan parses but breaks a rule.
    Invalid(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoCpus => write!(f, "the topology has no usable CPU"),
            PlanError::UnknownNic(n) => write!(f, "no network interface named `{n}`"),
            PlanError::BadRequest(m) => write!(f, "bad plan request: {m}"),
            PlanError::Parse(m) => write!(f, "core plan does not parse: {m}"),
            PlanError::Invalid(m) => write!(f, "core plan is invalid: {m}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// Hot threads of a node host in the order they get a core of their own.
fn node_roles(shards: u32, sessions: u32) -> Vec<(Role, u32)> {
    let mut roles = vec![
        (Role::Shard, 0),
        (Role::Sequencer, 0),
        (Role::Session, 0),
        (Role::MediaDriver, 0),
    ];
    let (mut s, mut n) = (1, 1);
    while s < shards || n < sessions {
        if s < shards {
            roles.push((Role::Shard, s));
            s += 1;
        }
        if n < sessions {
            roles.push((Role::Session, n));
            n += 1;
        }
    }
    roles
}

/// Computes the core plan for `topo`. Pure: the same topology and request give the same plan.
///
/// Rules: hot threads live on the NIC's NUMA node; the first core of that node is housekeeping
/// (all its SMT siblings); a second core takes IRQs when the node has cores to spare, else IRQs
/// share the housekeeping core; every hot thread gets a physical core to itself (first CPU of
/// the core; its siblings are isolated and left idle); cores on other NUMA nodes are spare.
/// With too few cores the plan degrades: the threads that do not get a core share the first
/// housekeeping CPU, in this order of precedence: shard 0, sequencer, session 0, media driver,
/// then the other shards and sessions alternately.
pub fn plan(topo: &HostTopology, req: &PlanRequest) -> Result<CorePlan, PlanError> {
    let cores = topo.physical_cores();
    if cores.is_empty() {
        return Err(PlanError::NoCpus);
    }
    if req.shards == Some(0) || req.sessions == Some(0) {
        return Err(PlanError::BadRequest(
            "a node needs at least one shard and one session".into(),
        ));
    }
    if req.hot_policy == SchedPolicy::Fifo && !(1..=99).contains(&req.hot_priority) {
        return Err(PlanError::BadRequest(
            "SCHED_FIFO priority must be 1-99".into(),
        ));
    }
    let mut notes = Vec::new();

    // The NIC and the NUMA node the hot threads live on.
    let nic = match &req.nic {
        Some(name) => Some(
            topo.nics
                .iter()
                .find(|n| &n.name == name)
                .ok_or_else(|| PlanError::UnknownNic(name.clone()))?,
        ),
        None => topo.nics.first(),
    };
    let first_node = cores[0].numa;
    let numa_node = match nic {
        Some(n) => match n.numa {
            Some(node) if cores.iter().any(|c| c.numa == node) => node,
            Some(node) => {
                notes.push(format!(
                    "NIC {} is on NUMA node {node}, which has no usable CPU; hot threads on node {first_node}",
                    n.name
                ));
                first_node
            }
            None => {
                if cores.iter().any(|c| c.numa != first_node) {
                    notes.push(format!(
                        "NIC {} reports no NUMA node; hot threads on node {first_node} (pass --nic or check the BIOS)",
                        n.name
                    ));
                }
                first_node
            }
        },
        None => {
            notes.push(format!(
                "no NIC found; hot threads on NUMA node {first_node}"
            ));
            first_node
        }
    };
    let (node_cores, other_cores): (Vec<PhysicalCore>, Vec<PhysicalCore>) =
        cores.into_iter().partition(|c| c.numa == numa_node);
    let mut spare: BTreeSet<u32> = other_cores
        .iter()
        .flat_map(|c| c.cpus.iter().copied())
        .collect();
    if !spare.is_empty() {
        notes.push(format!(
            "CPUs {} (other NUMA nodes) are spare: left to the OS, not isolated, not used by tpx",
            format_list(&spare)
        ));
    }

    let mut free: VecDeque<PhysicalCore> = node_cores.into();
    let hk = free.pop_front().ok_or(PlanError::NoCpus)?;
    let mut housekeeping: BTreeSet<u32> = hk.cpus.iter().copied().collect();
    // One physical core with SMT: the sibling is all there is for a hot thread.
    if free.is_empty() && hk.cpus.len() > 1 && req.role != HostRole::Witness {
        housekeeping = [hk.cpus[0]].into();
        for &sibling in &hk.cpus[1..] {
            free.push_back(PhysicalCore {
                cpus: vec![sibling],
                ..hk.clone()
            });
        }
        notes.push(format!(
            "one physical core: hot threads use SMT sibling(s) {} of housekeeping CPU {}; expect jitter",
            format_list(&hk.cpus[1..]),
            hk.cpus[0]
        ));
    }

    if req.role == HostRole::Witness {
        // No hot thread: every CPU is the OS's.
        housekeeping = topo.cpus.iter().map(|c| c.os).collect();
        free.clear();
        spare.clear();
        notes.retain(|n| !n.contains("spare"));
    }

    // An IRQ core when the node has cores to spare beyond the hot threads' minimum.
    let irq_core_min = match req.role {
        HostRole::Witness => usize::MAX,
        HostRole::Feed => 3,
        HostRole::Node => 5,
    };
    let irq: BTreeSet<u32> = if req.role == HostRole::Witness {
        housekeeping.clone()
    } else if free.len() >= irq_core_min {
        let core = free.pop_front().ok_or(PlanError::NoCpus)?;
        core.cpus.into_iter().collect()
    } else {
        notes.push("IRQs share the housekeeping CPUs (too few cores for an IRQ core)".to_string());
        housekeeping.clone()
    };

    let roles = match req.role {
        HostRole::Witness => Vec::new(),
        HostRole::Feed => vec![(Role::Feed, 0), (Role::MediaDriver, 0)],
        HostRole::Node => {
            // Cores left after the sequencer and the media driver.
            let base = (free.len() as u32).saturating_sub(2);
            let (shards, sessions) = match (req.shards, req.sessions) {
                (Some(s), Some(n)) => (s, n),
                (Some(s), None) => (s, base.saturating_sub(s).max(1)),
                (None, Some(n)) => (base.saturating_sub(n).max(1), n),
                (None, None) => {
                    let n = (base / 4).max(1);
                    (base.saturating_sub(n).max(1), n)
                }
            };
            node_roles(shards, sessions)
        }
    };

    let mut isolated = BTreeSet::new();
    let mut idle = BTreeSet::new();
    let mut threads = Vec::new();
    let mut shared_names = Vec::new();
    let shared_cpu = *housekeeping.iter().next().ok_or(PlanError::NoCpus)?;
    for (role, index) in roles {
        let placement = match free.pop_front() {
            Some(core) => {
                isolated.extend(core.cpus.iter().copied());
                idle.extend(core.cpus[1..].iter().copied());
                ThreadPlacement {
                    role,
                    index,
                    cpu: core.cpus[0],
                    shared: false,
                    policy: req.hot_policy,
                    priority: if req.hot_policy == SchedPolicy::Fifo {
                        req.hot_priority
                    } else {
                        0
                    },
                }
            }
            None => {
                shared_names.push(if role.is_singleton() {
                    role.to_string()
                } else {
                    format!("{role} {index}")
                });
                ThreadPlacement {
                    role,
                    index,
                    cpu: shared_cpu,
                    shared: true,
                    policy: SchedPolicy::Other,
                    priority: 0,
                }
            }
        };
        threads.push(placement);
    }
    for core in free {
        spare.extend(core.cpus);
    }
    let degraded = !shared_names.is_empty();
    if degraded {
        let own: Vec<String> = threads
            .iter()
            .filter(|t| !t.shared)
            .map(|t| format!("{} on CPU {}", t.thread_name(), t.cpu))
            .collect();
        notes.insert(
            0,
            format!(
                "DEGRADED: too few cores on NUMA node {numa_node} for one core per hot thread; {} share housekeeping CPU {shared_cpu} with the OS{}",
                shared_names.join(", "),
                if own.is_empty() { String::new() } else { format!("; own CPUs: {}", own.join(", ")) }
            ),
        );
    }
    threads.sort_by_key(|t| (t.role, t.index));

    let plan = CorePlan {
        version: FORMAT_VERSION,
        host: topo.hostname.clone(),
        role: req.role,
        numa_node,
        degraded,
        notes,
        housekeeping: housekeeping.into_iter().collect(),
        irq: irq.into_iter().collect(),
        isolated: isolated.into_iter().collect(),
        idle: idle.into_iter().collect(),
        spare: spare.into_iter().collect(),
        nic: nic.map(|n| NicPlacement {
            name: n.name.clone(),
            driver: n.driver.clone(),
            numa_node: n.numa,
        }),
        threads,
    };
    plan.validate()?;
    Ok(plan)
}

impl CorePlan {
    /// Parses and validates a plan.
    pub fn from_toml_str(text: &str) -> Result<CorePlan, PlanError> {
        let plan: CorePlan = toml::from_str(text).map_err(|e| PlanError::Parse(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Reads, parses and validates a plan file.
    pub fn load(path: &std::path::Path) -> Result<CorePlan, PlanError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PlanError::Parse(format!("{}: {e}", path.display())))?;
        CorePlan::from_toml_str(&text)
    }

    /// The plan as TOML, with a header comment.
    pub fn to_toml_string(&self) -> String {
        let body =
            toml::to_string(self).unwrap_or_else(|e| format!("# serialisation failed: {e}\n"));
        format!(
            "# tpx core plan (format {FORMAT_VERSION}), written by tpx-tune {}.\n# See docs/OPERATIONS.md, \"The core plan\". Regenerate with `tpx-tune plan`; do not edit by hand\n# unless you also re-run `tpx-tune check`.\n{body}",
            env!("CARGO_PKG_VERSION")
        )
    }

    /// Checks the rules every plan keeps.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(m));
        if self.version != FORMAT_VERSION {
            return bad(format!(
                "version {} (this build reads {FORMAT_VERSION})",
                self.version
            ));
        }
        if self.housekeeping.is_empty() {
            return bad("no housekeeping CPU".into());
        }
        let hk: BTreeSet<u32> = self.housekeeping.iter().copied().collect();
        let iso: BTreeSet<u32> = self.isolated.iter().copied().collect();
        let irq: BTreeSet<u32> = self.irq.iter().copied().collect();
        if let Some(c) = hk.intersection(&iso).next() {
            return bad(format!("CPU {c} is both housekeeping and isolated"));
        }
        if let Some(c) = irq.intersection(&iso).next() {
            return bad(format!("CPU {c} takes IRQs and is isolated"));
        }
        let mut seen_cpu = BTreeSet::new();
        let mut seen_role = BTreeSet::new();
        for t in &self.threads {
            if !seen_role.insert((t.role, t.index)) {
                return bad(format!("{} {} is placed twice", t.role, t.index));
            }
            if t.shared {
                if !hk.contains(&t.cpu) {
                    return bad(format!(
                        "shared thread {} is on CPU {}, not a housekeeping CPU",
                        t.thread_name(),
                        t.cpu
                    ));
                }
                if !self.degraded {
                    return bad(format!(
                        "{} shares a CPU but the plan is not marked degraded",
                        t.thread_name()
                    ));
                }
            } else {
                if !iso.contains(&t.cpu) {
                    return bad(format!(
                        "{} owns CPU {} but it is not isolated",
                        t.thread_name(),
                        t.cpu
                    ));
                }
                if !seen_cpu.insert(t.cpu) {
                    return bad(format!("CPU {} runs two hot threads", t.cpu));
                }
            }
            if t.policy == SchedPolicy::Fifo && !(1..=99).contains(&t.priority) {
                return bad(format!(
                    "{}: SCHED_FIFO priority {} outside 1-99",
                    t.thread_name(),
                    t.priority
                ));
            }
        }
        let count = |r: Role| self.threads.iter().filter(|t| t.role == r).count();
        match self.role {
            HostRole::Node => {
                if count(Role::Shard) == 0 || count(Role::Session) == 0 {
                    return bad("a node plan needs at least one shard and one session".into());
                }
                if count(Role::Sequencer) != 1 || count(Role::MediaDriver) != 1 {
                    return bad(
                        "a node plan needs exactly one sequencer and one media driver".into(),
                    );
                }
            }
            HostRole::Feed => {
                if count(Role::Feed) == 0 || count(Role::MediaDriver) != 1 {
                    return bad("a feed plan needs a feed thread and one media driver".into());
                }
            }
            HostRole::Witness => {}
        }
        Ok(())
    }

    /// The placement of `role` number `index`.
    pub fn thread(&self, role: Role, index: u32) -> Option<&ThreadPlacement> {
        self.threads
            .iter()
            .find(|t| t.role == role && t.index == index)
    }

    /// The CPU of `role` number `index`.
    pub fn cpu_of(&self, role: Role, index: u32) -> Option<u32> {
        self.thread(role, index).map(|t| t.cpu)
    }

    /// All placements of `role`, by index.
    pub fn threads_of(&self, role: Role) -> impl Iterator<Item = &ThreadPlacement> {
        self.threads.iter().filter(move |t| t.role == role)
    }

    /// The CPUs of threads that own their CPU.
    pub fn hot_cpus(&self) -> BTreeSet<u32> {
        self.threads
            .iter()
            .filter(|t| !t.shared)
            .map(|t| t.cpu)
            .collect()
    }

    /// The CPUs a tpx process of this host may use (systemd `CPUAffinity=`): housekeeping plus
    /// its hot threads' CPUs. Non-hot threads should stay on the housekeeping CPUs.
    pub fn process_cpus(&self) -> BTreeSet<u32> {
        let mut cpus: BTreeSet<u32> = self.housekeeping.iter().copied().collect();
        cpus.extend(self.threads.iter().map(|t| t.cpu));
        cpus
    }

    /// CPUs that should take interrupts: `irq` plus `housekeeping`.
    pub fn interrupt_cpus(&self) -> BTreeSet<u32> {
        self.irq
            .iter()
            .chain(self.housekeeping.iter())
            .copied()
            .collect()
    }

    /// Kernel command-line parameters the plan needs (set in GRUB; a reboot applies them).
    /// Items: tuned `cpu-partitioning` / `network-latency`, the ENA best-practices guide.
    pub fn boot_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        let iso = format_list(&self.isolated);
        if !iso.is_empty() {
            params.push(format!("isolcpus=managed_irq,domain,{iso}"));
            params.push("nohz=on".to_string());
            params.push(format!("nohz_full={iso}"));
            params.push(format!("rcu_nocbs={iso}"));
        }
        params.push(format!(
            "irqaffinity={}",
            format_list(&self.interrupt_cpus())
        ));
        for p in [
            "skew_tick=1",
            "tsc=reliable",
            "clocksource=tsc",
            "transparent_hugepage=never",
            "intel_idle.max_cstate=1",
            "processor.max_cstate=1",
            "nosoftlockup",
        ] {
            params.push(p.to_string());
        }
        params
    }

    /// A human summary, one line per CPU group and per thread.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "core plan for {} ({} host), NUMA node {}{}\n",
            if self.host.is_empty() {
                "?"
            } else {
                &self.host
            },
            self.role,
            self.numa_node,
            if self.degraded { ", DEGRADED" } else { "" }
        );
        let line = |out: &mut String, k: &str, v: &[u32]| {
            out.push_str(&format!(
                "  {k:<14}{}\n",
                if v.is_empty() {
                    "-".to_string()
                } else {
                    format_list(v)
                }
            ))
        };
        line(&mut out, "housekeeping", &self.housekeeping);
        line(&mut out, "irq", &self.irq);
        line(&mut out, "isolated", &self.isolated);
        line(&mut out, "idle siblings", &self.idle);
        line(&mut out, "spare", &self.spare);
        if let Some(nic) = &self.nic {
            out.push_str(&format!(
                "  {:<14}{} ({}, NUMA {})\n",
                "nic",
                nic.name,
                nic.driver.as_deref().unwrap_or("driver ?"),
                nic.numa_node.map_or("?".to_string(), |n| n.to_string())
            ));
        }
        for t in &self.threads {
            out.push_str(&format!(
                "  {:<14}CPU {}{}{}\n",
                t.thread_name(),
                t.cpu,
                if t.shared {
                    " (shared with housekeeping)"
                } else {
                    " (own core)"
                },
                if t.policy == SchedPolicy::Fifo {
                    format!(" SCHED_FIFO {}", t.priority)
                } else {
                    String::new()
                }
            ));
        }
        out.push_str(&format!(
            "  {:<14}{}\n",
            "CPUAffinity",
            format_list(&self.process_cpus())
        ));
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out
    }
}

/// Checks that no two threads with CPUs of their own run on SMT siblings of one core.
pub fn check_smt_rule(plan: &CorePlan, topo: &HostTopology) -> Result<(), String> {
    let hot = plan.hot_cpus();
    for &cpu in &hot {
        for sib in topo.siblings_of(cpu) {
            if hot.contains(&sib) {
                return Err(format!("hot CPUs {cpu} and {sib} are SMT siblings"));
            }
        }
    }
    Ok(())
}
