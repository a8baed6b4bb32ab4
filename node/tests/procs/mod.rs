//! Shared by the multi-process tests: child processes of
//! `tpx` whose stdout lines the test waits on, free ports, a node pair's config files, and
//! [`Pair`]: a witness and a started primary / standby pair.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(15);

/// A loopback address whose port is free for TCP and UDP now, for a child process to bind.
///
/// Not a port the kernel hands out (`127.0.0.1:0`): those come from the ephemeral range
/// (`ip_local_port_range`, 32768-60999), which every outgoing connection of the other tests
/// draws from too, so between this check and the child's bind another test's client could
/// take it (CI saw `replication listen ...: Address already in use`). These come from below
/// that range, in turn per process (parallel tests of one binary never get the same one),
/// starting at a base derived from the pid (test processes running at once start apart).
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000; // up to 31,999: below the ephemeral range
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() % 220) * 100;
    loop {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (base + k) % SPAN) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if let (Ok(l), Ok(_)) = (tcp, udp) {
            return l.local_addr().unwrap();
        }
    }
}

/// A child process whose stdout lines arrive on a channel; killed (by pid) when dropped.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    /// Every line received so far.
    seen: std::cell::RefCell<Vec<String>>,
    name: &'static str,
}

impl Proc {
    pub fn start(name: &'static str, args: &[&str]) -> Proc {
        Proc::start_with_env(name, args, &[])
    }

    /// [`Proc::start`] with environment variables set for the child.
    pub fn start_with_env(name: &'static str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tpx"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Default::default(),
            name,
        }
    }

    /// Waits for a line containing `needle` (or finds one already received); returns it.
    pub fn expect(&self, needle: &str) -> String {
        if let Some(l) = self.seen.borrow().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.borrow_mut().push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("{}: no line with {needle:?}", self.name),
            }
        }
    }

    /// Waits up to `dur` for a line containing `needle` (or finds one already received);
    /// `None` if none came.
    pub fn within(&self, needle: &str, dur: Duration) -> Option<String> {
        if let Some(l) = self.seen.borrow().iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.borrow_mut().push(l.clone());
                    if l.contains(needle) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line received so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.borrow().clone()
    }

    pub fn signal(&mut self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} did not exit", self.name);
    }
}

impl Proc {
    /// The stats file a `tpx node` child made (`/dev/shm/tpx-node-PORT.stats`, named for the
    /// port of its `listening on` line), while it names this child's pid.
    pub fn own_stats_file(&self) -> Option<PathBuf> {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.borrow_mut().push(l);
        }
        let port = self.seen.borrow().iter().find_map(|l| {
            l.strip_prefix("tpx node: listening on ")?
                .trim()
                .parse::<SocketAddr>()
                .ok()
                .map(|a| a.port())
        })?;
        let path = tpx_node::observe::stats::default_path(port);
        let map = tpx_node::observe::stats::StatsMap::open(&path).ok()?;
        (map.pid() == u64::from(self.child.id())).then_some(path)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // A node that ended by a signal leaves its stats file (a clean stop removes it): 4 MiB
        // of /dev/shm per node killed, hundreds per `make test` before. Removed only while it
        // is this child's (a later node on the same port wrote its own pid into it).
        if let Some(path) = self.own_stats_file() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Node `k + 1` of a pair (replicated, park idle, one core) with `extra` appended (e.g. an
/// `[md]` section).
pub fn node_config_with(
    dir: &Path,
    k: usize,
    cpu: usize,
    repl: [SocketAddr; 2],
    w: SocketAddr,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
journal_capacity = 1024
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
[replication]
node_id = {id}
peer_id = {peer}
listen = "{listen}"
peer_addr = "{peer_addr}"
witness_addr = "{w}"
log_dir = "node-{id}"
segment_bytes = 1048576
timeout_us = 200000
heartbeat_us = 500
"#,
        id = k + 1,
        peer = 2 - k,
        listen = repl[k],
        peer_addr = repl[1 - k],
    ) + extra;
    let p = dir.join(format!("node-{}.toml", k + 1));
    std::fs::write(&p, text).unwrap();
    p
}

pub fn listening(p: &Proc) -> SocketAddr {
    p.expect("listening on ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Node `k + 1` of a pair (see [`node_config_with`]).
pub fn node_config(
    dir: &Path,
    k: usize,
    cpu: usize,
    repl: [SocketAddr; 2],
    w: SocketAddr,
) -> PathBuf {
    node_config_with(dir, k, cpu, repl, w, "")
}

/// A resting buy at one of 500 prices: these never cross, so each order has exactly one answer.
pub fn order(cl: u64) -> tpx_wire::order_entry::EnterOrder {
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    tpx_wire::order_entry::EnterOrder {
        cl_ord_id: cl,
        price: 50_000 - (cl % 500) as i64,
        qty: 1,
        instrument: 1,
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
    }
}

/// `[risk]` with the demo's venue accounts (fees to 60, liquidations to 61) and assets 1-3.
pub const RISK_SECTION: &str = r#"
[risk]
fee_account = 60
liquidation_account = 61
fee_tiers = 2
assets = [1, 2, 3]
"#;

/// Writes `dir/accounts.toml`: two demo accounts with 1,000,000 of each asset (the file the
/// configs below name).
pub fn write_demo_accounts(dir: &Path) {
    use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(2), 1_000_000)).unwrap(),
    )
    .unwrap();
}

/// A single node's config, written to `dir/node.toml`: one core (the host's first CPU) with the
/// gateway, the sequencer and `shards`, park idle, the log in `dir/log` (local, fsync).
/// `top`: top-level keys (`heartbeat_timeout_ms = ...`); `replication`: more `[replication]`
/// keys; `sections`: what follows (`[snapshots]`, `[stats]`, [`RISK_SECTION`], `[md]`).
pub fn single_node_config(
    dir: &Path,
    shards: &[u16],
    top: &str,
    replication: &str,
    sections: &str,
) -> PathBuf {
    let cpu = pair_cpu(0);
    let text = format!(
        r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
journal_capacity = 1024
{top}
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = {shards:?}
[replication]
log_dir = "log"
{replication}
{sections}"#
    );
    let p = dir.join("node.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The CPU a pair's node `k + 1` pins its core to (the host's CPUs dealt round-robin).
pub fn pair_cpu(k: usize) -> usize {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0)
}

/// A witness (`--state-file`, 200 ms lease) and a replicated pair of `tpx node`s in one
/// folder: node 1 started as primary, node 2 as standby, each with a config from
/// [`node_config_with`]; `start` returns once node 1 is primary and node 2 follows it.
pub struct Pair {
    pub witness: Proc,
    pub primary: Proc,
    pub standby: Proc,
    /// The order-entry address of node 1 and node 2.
    pub entry: [SocketAddr; 2],
    /// The config file of node 1 and node 2.
    pub configs: [String; 2],
}

impl Pair {
    /// `top` goes before the config's own keys (top-level settings such as
    /// `heartbeat_timeout_ms`), `section(k)` after them (`[md]`, `[snapshots]`, ...).
    pub fn start(dir: &Path, top: &str, section: impl Fn(usize) -> String) -> Pair {
        Pair::start_edited(dir, 200_000, |k, text| format!("{top}{text}{}", section(k)))
    }

    /// [`Pair::start`] with the witness's lease `lease_us` and each node's config text (from
    /// [`node_config_with`]) replaced by `edit(k, text)`: for a test that runs a setting the
    /// config already sets at another value (`tpx up`'s defaults, say).
    pub fn start_edited(dir: &Path, lease_us: u64, edit: impl Fn(usize, String) -> String) -> Pair {
        let w = free_port();
        let repl = [free_port(), free_port()];
        let configs = [0, 1].map(|k| {
            let p = node_config_with(dir, k, pair_cpu(k), repl, w, "");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, edit(k, text)).unwrap();
            p.display().to_string()
        });
        let w_s = w.to_string();
        let witness = Proc::start(
            "witness",
            &[
                "witness",
                "--listen",
                &w_s,
                "--lease-us",
                &lease_us.to_string(),
                "--state-file",
                &dir.join("witness.state").display().to_string(),
            ],
        );
        let primary = Proc::start(
            "node-1",
            &["node", "--config", &configs[0], "--role", "primary"],
        );
        primary.expect("ROLE primary node=1");
        let a1 = listening(&primary);
        let standby = Proc::start(
            "node-2",
            &["node", "--config", &configs[1], "--role", "standby"],
        );
        let a2 = listening(&standby);
        standby.expect("ROLE standby node=2");
        Pair {
            witness,
            primary,
            standby,
            entry: [a1, a2],
            configs,
        }
    }
}

/// Logs in asking for replies from `next_seq` (0: none), retrying while the node answers
/// `NotPrimary` (a new primary serves logins once its term has acknowledged the log it
/// inherited; a standby never does), up to [`WAIT`].
pub fn login_retrying(cfg: tpx_client::ClientConfig, next_seq: u64) -> tpx_client::Client {
    use tpx_client::{Client, ClientError};
    use tpx_wire::enums::LoginRejectReason;
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect_at(cfg.clone(), next_seq) {
            Ok(c) => return c,
            Err(ClientError::LoginRejected(LoginRejectReason::NotPrimary))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("login of account {}: {e:?}", cfg.account),
        }
    }
}
