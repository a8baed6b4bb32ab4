//! The appliance under test: `tpx witness` (with its state file) and two `tpx node`s (risk on,
//! market data on, durable logs, park idle), their config files, and the restart policy
//! systemd applies (a node that exits, or that the lab killed, comes back as standby).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::disk::NodeDisks;
use super::procs::{spawn, Proc, SharedRef};
use super::topology::{Host, Topology};

pub const ENTRY_PORT: u16 = 9100;
pub const REPL_PORT: u16 = 9200;
pub const WITNESS_PORT: u16 = 9300;
/// The admin account that funds the traders.
pub const ADMIN: u32 = 100;

/// The token of an account (`lab-token-<id>`).
pub fn token_text(account: u32) -> String {
    format!("lab-token-{account}")
}

/// How the lab runs the pair.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub timeout_us: u64,
    pub heartbeat_us: u64,
    /// The witness's lease (`tpx witness --lease-us`); 0: `timeout_us`.
    pub lease_us: u64,
    pub durability: String,
    pub accounts: u32,
    /// Buffered writes instead of O_DIRECT (filesystems without O_DIRECT).
    pub buffered: bool,
    pub md: bool,
}

/// The three processes and what is needed to restart them.
#[derive(Debug)]
pub struct Cluster {
    pub topo: Topology,
    pub dir: PathBuf,
    tpx: PathBuf,
    pub cfg: ClusterConfig,
    pub shared: SharedRef,
    pub started: Instant,
    /// Witness, node 1, node 2 (`None`: down).
    pub procs: [Option<Proc>; 3],
    incarnations: [u32; 3],
    /// Exits the lab did not cause, with their code (`None`: a signal).
    pub own_exits: Vec<(usize, Option<i32>)>,
    /// The nodes' throttled disks ([`Cluster::with_slow_disks`]; `None`: plain folders).
    pub disks: Option<NodeDisks>,
}

fn slot(h: Host) -> usize {
    match h {
        Host::Witness => 0,
        Host::Node(k) => 1 + k,
        Host::Clients => unreachable!("clients are threads of the lab"),
    }
}

fn host_of(slot: usize) -> Host {
    match slot {
        0 => Host::Witness,
        k => Host::Node(k - 1),
    }
}

impl Cluster {
    pub fn entry(&self, k: usize) -> SocketAddr {
        SocketAddr::new(self.topo.addr(Host::Node(k)), self.port(ENTRY_PORT, k))
    }

    /// Ports differ per node only on loopback (namespaces give each its own address).
    fn port(&self, base: u16, k: usize) -> u16 {
        if self.topo.netns {
            base
        } else {
            base + 10 * (std::process::id() % 500) as u16 + k as u16
        }
    }

    fn witness_addr(&self) -> SocketAddr {
        SocketAddr::new(self.topo.addr(Host::Witness), self.port(WITNESS_PORT, 5))
    }

    pub fn log_dir(&self, k: usize) -> PathBuf {
        match &self.disks {
            Some(d) => d.log_dir(k),
            None => self.dir.join(format!("node-{}", k + 1)),
        }
    }

    /// Node `k`'s config file.
    pub fn node_config_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node-{}.toml", k + 1))
    }

    /// Node `k`'s config with `max_accounts` changed (its config digest differs from the
    /// peer's): the misconfigured-standby fault.
    pub fn misconfigured_config_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node-{}.misconfigured.toml", k + 1))
    }

    pub fn new(
        topo: Topology,
        dir: &Path,
        cfg: ClusterConfig,
        shared: SharedRef,
        started: Instant,
    ) -> Result<Cluster, String> {
        let c = Cluster {
            topo,
            dir: dir.to_path_buf(),
            tpx: super::procs::tpx_bin()?,
            cfg,
            shared,
            started,
            procs: [None, None, None],
            incarnations: [0; 3],
            own_exits: Vec::new(),
            disks: None,
        };
        c.write_files()?;
        Ok(c)
    }

    /// Puts each node's log on a disk of its own that the slow-disk fault throttles
    /// ([`NodeDisks`]); before any process starts. `Err`: why the host cannot (the cluster is
    /// unchanged).
    pub fn with_slow_disks(&mut self, tag: &str) -> Result<(), String> {
        self.disks = Some(NodeDisks::create(&self.dir, tag)?);
        self.write_files()
    }

    fn write_files(&self) -> Result<(), String> {
        let w = |p: PathBuf, text: String| {
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
        };
        let mut accts = String::new();
        for id in (1..=self.cfg.accounts).chain([ADMIN]) {
            let mut t = [0u8; 32];
            let b = token_text(id);
            t[..b.len()].copy_from_slice(b.as_bytes());
            let hash: String = Sha256::digest(t)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            accts.push_str(&format!(
                "[[account]]\nid = {id}\nname = \"lab-{id}\"\ntoken_sha256 = \"{hash}\"\nrate_limit_per_sec = 1000000\nadmin = {}\n\n",
                id == ADMIN
            ));
        }
        w(self.dir.join("accounts.toml"), accts)?;
        let cpus = crate_cpus();
        for k in 0..2 {
            let me = SocketAddr::new(self.topo.addr(Host::Node(k)), self.port(REPL_PORT, k));
            let peer = SocketAddr::new(
                self.topo.addr(Host::Node(1 - k)),
                self.port(REPL_PORT, 1 - k),
            );
            // Market data: shard 0's feed A and snapshots to the clients' namespace, where the
            // lab's feed handler listens (only the primary sends); without namespaces over IPC
            // through each node's own driver (nothing subscribes).
            let md = match (self.cfg.md, self.topo.netns) {
                (false, _) => String::new(),
                (true, true) => format!(
                    "\n[md]\nchannel_a = \"aeron:udp?endpoint={}:{}\"\nsnapshot_interval_ms = 200\n\
                     heartbeat_interval_ms = 100\nterm_length = 1048576\n",
                    self.topo.addr(Host::Clients),
                    super::feed::MD_PORT
                ),
                (true, false) => "\n[md]\nterm_length = 1048576\n".into(),
            };
            let text = format!(
                r#"listen = "{entry}"
accounts_file = "{accounts}"
idle = "park"
max_orders = 65536
max_accounts = 1024
journal_capacity = 4096
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
[replication]
node_id = {id}
peer_id = {peer_id}
listen = "{me}"
peer_addr = "{peer}"
witness_addr = "{witness}"
log_dir = "{log}"
durability = "{durability}"
write = "{write}"
segment_bytes = 4194304
checkpoint_every = 500
timeout_us = {timeout}
heartbeat_us = {hb}
[stats]
path = "{stats}"
[risk]
fee_account = 900
liquidation_account = 901
fee_tiers = 2
assets = [1, 2, 3]
{md}"#,
                entry = self.entry(k),
                accounts = self.dir.join("accounts.toml").display(),
                cpu = cpus[k % cpus.len()],
                id = k + 1,
                peer_id = 2 - k,
                witness = self.witness_addr(),
                log = self.log_dir(k).display(),
                stats = self.dir.join(format!("node-{}.stats", k + 1)).display(),
                durability = self.cfg.durability,
                write = if self.cfg.buffered {
                    "buffered"
                } else {
                    "direct"
                },
                timeout = self.cfg.timeout_us,
                hb = self.cfg.heartbeat_us,
            );
            w(
                self.misconfigured_config_path(k),
                text.replace("max_accounts = 1024", "max_accounts = 2048"),
            )?;
            w(self.dir.join(format!("node-{}.toml", k + 1)), text)?;
        }
        Ok(())
    }

    fn args(&self, h: Host, primary: bool) -> Vec<String> {
        match h {
            Host::Witness => vec![
                "witness".into(),
                "--listen".into(),
                self.witness_addr().to_string(),
                "--lease-us".into(),
                if self.cfg.lease_us > 0 {
                    self.cfg.lease_us
                } else {
                    self.cfg.timeout_us
                }
                .to_string(),
                "--state-file".into(),
                self.dir.join("witness.state").display().to_string(),
            ],
            Host::Node(k) => vec![
                "node".into(),
                "--config".into(),
                self.node_config_path(k).display().to_string(),
                "--role".into(),
                if primary { "primary" } else { "standby" }.into(),
            ],
            Host::Clients => Vec::new(),
        }
    }

    /// Starts (or restarts) a process; nodes other than the first start come up as standby.
    pub fn start(&mut self, h: Host, primary: bool) -> Result<(), String> {
        let args = self.args(h, primary);
        self.start_with(h, args)
    }

    /// Restarts node `h` as standby with [`Cluster::misconfigured_config_path`].
    pub fn start_misconfigured(&mut self, h: Host) -> Result<(), String> {
        let Host::Node(k) = h else {
            return Err("only a node has a configuration".into());
        };
        let mut args = self.args(h, false);
        args[2] = self.misconfigured_config_path(k).display().to_string();
        self.start_with(h, args)
    }

    fn start_with(&mut self, h: Host, args: Vec<String>) -> Result<(), String> {
        let s = slot(h);
        if let Some(mut p) = self.procs[s].take() {
            p.stop(Duration::from_secs(2));
        }
        self.incarnations[s] += 1;
        let p = spawn(
            &self.topo,
            &self.tpx,
            &self.dir,
            h,
            &args,
            &self.shared,
            self.started,
            self.incarnations[s],
        )?;
        if let (Host::Node(k), Some(d)) = (h, &self.disks) {
            // Into its disk's cgroup (the throttle applies to the process's writes): a node
            // starts with a fresh process, and a throttle in force applies to it too.
            d.join(k, p.child.id())?;
        }
        self.procs[s] = Some(p);
        Ok(())
    }

    pub fn proc_mut(&mut self, h: Host) -> Option<&mut Proc> {
        self.procs[slot(h)].as_mut()
    }

    pub fn is_up(&self, h: Host) -> bool {
        self.procs[slot(h)].is_some()
    }

    /// SIGKILL; the process stays down until [`Cluster::start`].
    pub fn kill(&mut self, h: Host) {
        if let Some(mut p) = self.procs[slot(h)].take() {
            p.signal(libc::SIGKILL);
            let _ = p.child.wait();
        }
    }

    /// The restart policy: a process that exited by itself is started again (nodes as
    /// standby; exit status 3 is the node's "restart me as standby").
    pub fn supervise(&mut self) -> Result<(), String> {
        for s in 0..3 {
            let exited = match self.procs[s].as_mut() {
                Some(p) if !p.killed => p.exited(),
                _ => None,
            };
            if let Some(code) = exited {
                self.own_exits.push((s, code));
                self.procs[s] = None;
                self.start(host_of(s), false)?;
            }
        }
        Ok(())
    }

    /// Node `k`'s last `ROLE` line of its running incarnation: (primary, term); `None` while
    /// it is down or has not said one yet.
    pub fn role(&self, k: usize) -> Option<(bool, u64)> {
        self.procs[1 + k].as_ref()?;
        let sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        sh.roles
            .iter()
            .rev()
            .find(|r| r.node == k)
            .filter(|r| r.incarnation == self.incarnations[1 + k])
            .map(|r| (r.primary, r.term))
    }

    /// The node that last said it is primary (by the highest term), if it is still up.
    pub fn primary(&self) -> Option<usize> {
        let sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut last: [Option<(bool, u64, u32)>; 2] = [None, None];
        for r in &sh.roles {
            last[r.node] = Some((r.primary, r.term, r.incarnation));
        }
        (0..2)
            .filter(|&k| {
                last[k].is_some_and(|(p, _, inc)| p && inc == self.incarnations[1 + k])
                    && self.procs[1 + k].is_some()
            })
            .max_by_key(|&k| last[k].map_or(0, |l| l.1))
    }

    /// SIGCONT everything, SIGTERM the standby, the primary, then the witness.
    pub fn stop_all(&mut self) {
        let p = self.primary();
        let order: Vec<usize> = match p {
            Some(k) => vec![1 + (1 - k), 1 + k, 0],
            None => vec![1, 2, 0],
        };
        for s in order {
            if let Some(mut pr) = self.procs[s].take() {
                pr.stop(Duration::from_secs(5));
            }
        }
    }
}

/// The CPUs this process may run on.
fn crate_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    let mut v = Vec::new();
    if r == 0 {
        for c in 0..libc::CPU_SETSIZE as usize {
            // SAFETY: c < CPU_SETSIZE.
            if unsafe { libc::CPU_ISSET(c, &set) } {
                v.push(c);
            }
        }
    }
    if v.is_empty() {
        v.push(0);
    }
    v
}
