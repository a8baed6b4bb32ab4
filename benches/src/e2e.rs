//! The end-to-end benchmark behind `e2e-bench` (benches/src/bin/e2e-bench.rs), measured in one
//! run on the same two cores:
//!
//! (a) the floor: a busy-polled TCP ping-pong on 127.0.0.1 of the size of a new order (48 bytes);
//! (b) order → ack round trip through a running node: one session, one order in flight, the
//!     node on one core with every role and `idle = "spin"`, the client spinning on the other;
//! (c) throughput: 8 sessions, each with a window of orders in flight, one client thread;
//! (d) the disk floor: 4 KiB O_DIRECT | O_DSYNC writes, one at a time, to fresh blocks of a
//!     zero-filled file in the folder of the node's log (what one group commit of the durable
//!     log costs at least), before the node starts. `ratio_durable_p50` is the ack p50 over
//!     the sum of the TCP floor's p50 and the disk floor's (p99 likewise).
//! (e) with `query_every = N`: the throughput run again with every session also sending a
//!     `QueryOpenOrders` after every N orders (answered by the shard from its state, never
//!     logged), alternated with plain runs (plain, queries, plain, queries) in the same
//!     invocation; `query_cost` is 1 - (mean with queries / mean plain).
//!
//! The node runs as a child process (`tpx node` if the binary sits next to the bench's, else
//! this same executable re-run in node mode), so the client and the node share nothing but
//! the loopback. Orders are IOC on an empty book: each gets `OrderAccepted` (the ack measured)
//! and `OrderCancelled`, and the book never fills.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tpx_client::{req, token_from_str, Client, ClientConfig};
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

use tpx_node::gateway::accounts::{demo_accounts_file, DemoAccount};

/// The argument that makes the bench executable run a node (the child).
pub const NODE_MODE_ARG: &str = "--serve-node";

/// Bytes of a new order on the wire (`EnterOrder`).
pub const ORDER_BYTES: usize = 48;

#[derive(Clone, Debug)]
pub struct Options {
    pub floor_samples: usize,
    pub ack_samples: usize,
    pub warmup: usize,
    pub throughput_secs: f64,
    pub sessions: usize,
    /// Orders in flight per session in the throughput run.
    pub window: usize,
    /// The node's core and the client's (default: the first two CPUs).
    pub node_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    /// The `tpx` binary (default: next to this executable, else this executable in node mode).
    pub tpx: Option<PathBuf>,
    /// The node's input log: `durable` (O_DIRECT, fsync durability: an ack waits for the
    /// commit) or `in-process` (the same stage and replica over an in-memory log: nothing
    /// stored, for comparison).
    pub log: String,
    /// Run the node with `[risk]` (the built-in risk parameters; the bench accounts funded by
    /// admin deposits before the measurement), to compare with risk off (the default).
    pub risk: bool,
    /// `[replication] log_writer` of the node (`thread` | `uring`); `None`: the node's default
    /// (and a config an older binary reads).
    pub log_writer: Option<String>,
    /// `[replication] uring_depth` (with `log_writer = "uring"`; `None`: the node's default).
    pub uring_depth: Option<usize>,
    /// `[replication] writer_rt_priority` (`None`: the node's default, and a config an older
    /// binary reads).
    pub writer_rt_priority: Option<u8>,
    /// `[replication] writer_commits_in_flight` (`None`: the node's default).
    pub writer_commits_in_flight: Option<usize>,
    /// `[replication] segment_bytes` in MiB (`None`: the node's default, 64 MiB).
    pub segment_mib: Option<u64>,
    /// Writes measured for the disk floor (0: not measured).
    pub disk_samples: usize,
    /// (e): a query per session after every this many orders (0: no query runs).
    pub query_every: usize,
    /// Matching shards (1: every role on the node's core, the default). More: the gateway and
    /// the sequencer on the node's core, shard `k` alone on the `k`-th CPU of `shard_cpus`,
    /// instrument `k + 1` on shard `k` (copies of BTC-USDT), and the throughput run's session `s`
    /// trading instrument `s % shards + 1` (`scripts/scale-check.sh`).
    pub shards: usize,
    /// The shards' CPUs (empty: the CPUs after the node's and the client's, in order).
    pub shard_cpus: Vec<usize>,
    /// The node's `idle` (`spin`, the default, or `park`).
    pub idle: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            floor_samples: 100_000,
            ack_samples: 100_000,
            warmup: 20_000,
            throughput_secs: 3.0,
            shards: 1,
            shard_cpus: Vec::new(),
            idle: "spin".into(),
            sessions: 8,
            window: 256,
            node_cpu: None,
            client_cpu: None,
            tpx: None,
            log: "durable".into(),
            risk: false,
            log_writer: None,
            uring_depth: None,
            writer_rt_priority: None,
            writer_commits_in_flight: None,
            segment_mib: None,
            disk_samples: 20_000,
            query_every: 0,
        }
    }
}

/// What the run measured (latencies in nanoseconds).
#[derive(Debug)]
pub struct Results {
    pub shards: usize,
    pub floor: Histogram<u64>,
    pub ack: Histogram<u64>,
    pub throughput_orders_per_sec: f64,
    pub node: String,
    pub cpus: (usize, usize),
    pub log: String,
    pub risk: bool,
    pub log_writer: String,
    /// 4 KiB O_DIRECT | O_DSYNC write latency on the log's filesystem (ns; empty: not measured).
    pub disk: Histogram<u64>,
    /// The 1-minute load average when the run ended.
    pub load_avg_1m: f64,
    /// (e), `query_every > 0`: `(orders/s without queries, orders/s with queries, queries/s)`
    /// of each alternated pair of runs.
    pub query_runs: Vec<(f64, f64, f64)>,
    pub query_every: usize,
    /// The throughput run's sessions and orders in flight per session.
    pub sessions: usize,
    pub window: usize,
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

impl Results {
    pub fn ratio_p50(&self) -> f64 {
        us(&self.ack, 0.5) / us(&self.floor, 0.5)
    }
    pub fn ratio_p99(&self) -> f64 {
        us(&self.ack, 0.99) / us(&self.floor, 0.99)
    }
    /// Ack p50 / (TCP floor p50 + disk floor p50).
    pub fn ratio_durable_p50(&self) -> f64 {
        us(&self.ack, 0.5) / (us(&self.floor, 0.5) + us(&self.disk, 0.5))
    }
    /// Ack p99 / (TCP floor p99 + disk floor p99).
    pub fn ratio_durable_p99(&self) -> f64 {
        us(&self.ack, 0.99) / (us(&self.floor, 0.99) + us(&self.disk, 0.99))
    }

    /// Mean orders/s of the plain and of the query runs of (e), and the queries' cost:
    /// 1 - with / without (`None`: no query runs).
    pub fn query_cost(&self) -> Option<(f64, f64, f64)> {
        if self.query_runs.is_empty() {
            return None;
        }
        let n = self.query_runs.len() as f64;
        let plain = self.query_runs.iter().map(|r| r.0).sum::<f64>() / n;
        let with = self.query_runs.iter().map(|r| r.1).sum::<f64>() / n;
        Some((plain, with, 1.0 - with / plain))
    }

    /// (e) as JSON fields (empty without query runs).
    fn query_json(&self) -> String {
        let Some((plain, with, cost)) = self.query_cost() else {
            return String::new();
        };
        let runs: Vec<String> = self
            .query_runs
            .iter()
            .map(|r| format!("[{:.0}, {:.0}, {:.0}]", r.0, r.1, r.2))
            .collect();
        format!(
            concat!(
                ", \"query_every\": {}, \"query_runs_plain_with_queries_per_sec\": [{}], ",
                "\"throughput_plain_mean\": {:.0}, \"throughput_with_queries_mean\": {:.0}, ",
                "\"query_cost\": {:.4}"
            ),
            self.query_every,
            runs.join(", "),
            plain,
            with,
            cost
        )
    }

    /// The JSON the issue asks for.
    pub fn to_json(&self) -> String {
        let json = format!(
            concat!(
                "{{\"floor\": {{\"p50_us\": {:.2}, \"p99_us\": {:.2}, \"p999_us\": {:.2}}}, ",
                "\"ack\": {{\"p50_us\": {:.2}, \"p99_us\": {:.2}, \"p999_us\": {:.2}, \"max_us\": {:.2}}}, ",
                "\"ratio_p50\": {:.3}, \"ratio_p99\": {:.3}, \"throughput_orders_per_sec\": {:.0}, ",
                "\"disk_floor\": {{\"p50_us\": {:.2}, \"p99_us\": {:.2}, \"p999_us\": {:.2}, \"max_us\": {:.2}}}, ",
                "\"ratio_durable_p50\": {:.3}, \"ratio_durable_p99\": {:.3}, ",
                "\"samples\": {{\"floor\": {}, \"ack\": {}, \"disk\": {}}}, \"node\": \"{}\", \"cpus\": [{}, {}], \"log\": \"{}\", ",
                "\"log_writer\": \"{}\", \"risk\": {}, \"load_avg_1m\": {:.2}}}"
            ),
            us(&self.floor, 0.5),
            us(&self.floor, 0.99),
            us(&self.floor, 0.999),
            us(&self.ack, 0.5),
            us(&self.ack, 0.99),
            us(&self.ack, 0.999),
            self.ack.max() as f64 / 1000.0,
            self.ratio_p50(),
            self.ratio_p99(),
            self.throughput_orders_per_sec,
            us(&self.disk, 0.5),
            us(&self.disk, 0.99),
            us(&self.disk, 0.999),
            self.disk.max() as f64 / 1000.0,
            self.ratio_durable_p50(),
            self.ratio_durable_p99(),
            self.floor.len(),
            self.ack.len(),
            self.disk.len(),
            self.node,
            self.cpus.0,
            self.cpus.1,
            self.log,
            self.log_writer,
            self.risk,
            self.load_avg_1m,
        );
        // The query runs' fields go before the closing brace.
        let head = json.strip_suffix('}').unwrap_or(&json);
        format!(
            "{head}, \"shards\": {}, \"sessions\": {}, \"window\": {}{}}}",
            self.shards,
            self.sessions,
            self.window,
            self.query_json()
        )
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

/// The disk floor: `samples` 4 KiB O_DIRECT | O_DSYNC writes (after `warmup` unmeasured ones),
/// one at a time, each to the next block of a zero-filled 64 MiB file in `dir` (wrapping), as
/// the log writes its commits into a zero-filled segment. The file is removed after.
pub fn disk_floor(dir: &Path, warmup: usize, samples: usize) -> Result<Histogram<u64>, String> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const FILE_BYTES: u64 = 64 << 20;
    let mut h = histogram();
    if samples == 0 {
        return Ok(h);
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = dir.join("disk-floor.tmp");
    let res = (|| {
        let zeros = vec![0u8; 1 << 20];
        let plain = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let mut at = 0;
        while at < FILE_BYTES {
            plain.write_all_at(&zeros, at).map_err(|e| e.to_string())?;
            at += zeros.len() as u64;
        }
        plain.sync_all().map_err(|e| e.to_string())?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(&path)
            .map_err(|e| format!("O_DIRECT | O_DSYNC on {}: {e}", dir.display()))?;
        let block = tpx_sequencer::storage::AlignedBuf::new(4096);
        let mut off = 0u64;
        for i in 0..warmup + samples {
            let t0 = Instant::now();
            f.write_all_at(&block, off).map_err(|e| e.to_string())?;
            let ns = t0.elapsed().as_nanos() as u64;
            if i >= warmup {
                h.record(ns.max(1)).map_err(|e| e.to_string())?;
            }
            off = (off + 4096) % FILE_BYTES;
        }
        Ok(h)
    })();
    let _ = std::fs::remove_file(&path);
    res
}

fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1.0)
}

/// Lets the calling thread run on any of `cpus` (no-op if empty; best effort).
fn allow_cpus(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET is given ids below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn pin(cpu: usize) {
    tpx_node::core_affinity::set_for_current(tpx_node::core_affinity::CoreId { id: cpu });
}

fn spin_read_exact(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn spin_write_all(s: &mut TcpStream, buf: &[u8]) -> std::io::Result<()> {
    let mut put = 0;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(n) => put += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// (a) Busy-polled ping-pong of `ORDER_BYTES` between a server on `server_cpu` and a client on
/// `client_cpu`. Round trips in ns.
pub fn floor(
    server_cpu: usize,
    client_cpu: usize,
    warmup: usize,
    samples: usize,
) -> Result<Histogram<u64>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        pin(server_cpu);
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut buf = [0u8; ORDER_BYTES];
        while spin_read_exact(&mut s, &mut buf)? {
            spin_write_all(&mut s, &buf)?;
        }
        Ok(())
    });
    pin(client_cpu);
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut h = histogram();
    let msg = [7u8; ORDER_BYTES];
    let mut buf = [0u8; ORDER_BYTES];
    for i in 0..warmup + samples {
        let t0 = Instant::now();
        spin_write_all(&mut s, &msg).map_err(|e| e.to_string())?;
        spin_read_exact(&mut s, &mut buf).map_err(|e| e.to_string())?;
        let ns = t0.elapsed().as_nanos() as u64;
        if i >= warmup {
            let _ = h.record(ns.max(1));
        }
    }
    drop(s);
    server
        .join()
        .map_err(|_| "floor server panicked".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(h)
}

/// A node child process; killed with SIGTERM on drop.
struct NodeChild {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The admin account of a risk-on run (funds the bench accounts).
const BENCH_ADMIN: u32 = 1000;

fn bench_accounts(n: usize) -> Vec<DemoAccount> {
    (1..=n as u32)
        .map(|id| DemoAccount {
            id,
            name: format!("bench-{id}"),
            token: format!("bench-token-{id}"),
            admin: false,
        })
        .collect()
}

/// The core plan and instruments of the node: every role on `node_cpu` with the built-in
/// instruments (one shard), or the gateway and sequencer there and each of `opts.shards`
/// shards on a CPU of its own, with one instrument each.
fn plan_text(node_cpu: usize, shard_cpus: &[usize], opts: &Options) -> Result<String, String> {
    if opts.shards <= 1 {
        return Ok(format!(
            "[[core_plan.cores]]\ncpu = {node_cpu}\ngateway = true\nsequencer = true\nshards = [0]\n"
        ));
    }
    if shard_cpus.is_empty() {
        return Err("no CPU for the shards".into());
    }
    let mut t =
        format!("[[core_plan.cores]]\ncpu = {node_cpu}\ngateway = true\nsequencer = true\n");
    // Shards sharing a CPU share its core (a machine with fewer CPUs than shards).
    let mut by_cpu: Vec<(usize, Vec<usize>)> = Vec::new();
    for k in 0..opts.shards {
        let c = shard_cpus[k % shard_cpus.len()];
        match by_cpu.iter_mut().find(|(cpu, _)| *cpu == c) {
            Some((_, v)) => v.push(k),
            None => by_cpu.push((c, vec![k])),
        }
    }
    for (c, shards) in by_cpu {
        let list: Vec<String> = shards.iter().map(|k| k.to_string()).collect();
        if c == node_cpu {
            return Err(format!("shard CPU {c} is the gateway's"));
        }
        t += &format!(
            "[[core_plan.cores]]\ncpu = {c}\nshards = [{}]\n",
            list.join(", ")
        );
    }
    let btc = tpx_node::config::builtin_instruments()
        .into_iter()
        .next()
        .ok_or("no built-in instrument")?;
    #[derive(serde::Serialize)]
    struct Instruments {
        instruments: Vec<tpx_node::config::InstrumentConfig>,
    }
    let instruments = (1..=opts.shards as u32)
        .map(|id| tpx_node::config::InstrumentConfig {
            id,
            symbol: format!("BENCH-{id}"),
            shard: Some(id - 1),
            ..btc.clone()
        })
        .collect();
    Ok(t + &toml::to_string(&Instruments { instruments }).map_err(|e| e.to_string())?)
}

fn start_node(
    tpx: &Path,
    node_cpu: usize,
    shard_cpus: &[usize],
    accounts: &[DemoAccount],
    extra_args: &[&str],
    opts: &Options,
) -> Result<NodeChild, String> {
    let dir = node_dir();
    let cfg_path = write_node(&dir, node_cpu, shard_cpus, accounts, opts)?;
    spawn_node(tpx, &dir, &cfg_path, extra_args)
}

/// Writes the node's `node.toml` and `accounts.toml` into `dir`; the config's path.
pub fn write_node(
    dir: &Path,
    node_cpu: usize,
    shard_cpus: &[usize],
    accounts: &[DemoAccount],
    opts: &Options,
) -> Result<PathBuf, String> {
    let (log, risk) = (&opts.log, opts.risk);
    let (log_writer, uring_depth) = (opts.log_writer.as_deref(), opts.uring_depth);
    let idle = &opts.idle;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut all = accounts.to_vec();
    if risk {
        all.push(DemoAccount {
            id: BENCH_ADMIN,
            ..crate::demo_funding::demo_admin()
        });
    }
    let file = demo_accounts_file(&all, 1_000_000_000);
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&file).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let config = format!(
        "listen = \"127.0.0.1:0\"\naccounts_file = \"accounts.toml\"\nidle = \"{idle}\"\n\
         max_orders = 1048576\nmax_accounts = 1024\nring_capacity = 16384\njournal_capacity = 65536\n\
         log = \"{log}\"\n{}",
        plan_text(node_cpu, shard_cpus, opts)?
    );
    // TPX_E2E_NO_STATS=1: the node without stage stamps (the latency lab's cost, before/after).
    let config = if std::env::var_os("TPX_E2E_NO_STATS").is_some() {
        config + "[stats]\nenabled = false\n"
    } else {
        config
    };
    // Risk on: the built-in parameters, venue accounts below max_accounts.
    let config = if risk {
        config
            + "[risk]\nfee_account = 1020\nliquidation_account = 1021\nfee_tiers = 2\nassets = [1, 2, 3]\n"
    } else {
        config
    };
    let mut replication = String::new();
    if let Some(w) = log_writer {
        replication += &format!("log_writer = \"{w}\"\n");
    }
    if let Some(d) = uring_depth {
        replication += &format!("uring_depth = {d}\n");
    }
    if let Some(p) = opts.writer_rt_priority {
        replication += &format!("writer_rt_priority = {p}\n");
    }
    if let Some(d) = opts.writer_commits_in_flight {
        replication += &format!("writer_commits_in_flight = {d}\n");
    }
    if let Some(m) = opts.segment_mib {
        replication += &format!("segment_bytes = {}\n", m << 20);
    }
    let config = if replication.is_empty() {
        config
    } else {
        config + "[replication]\n" + &replication
    };
    let cfg_path = dir.join("node.toml");
    std::fs::write(&cfg_path, config).map_err(|e| e.to_string())?;
    Ok(cfg_path)
}

fn spawn_node(
    tpx: &Path,
    dir: &Path,
    cfg_path: &Path,
    extra_args: &[&str],
) -> Result<NodeChild, String> {
    let dir = dir.to_path_buf();
    let mut cmd = Command::new(tpx);
    cmd.args(extra_args)
        .arg(cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", tpx.display()))?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("tpx node: listening on ") {
                    break a.trim().parse::<SocketAddr>().map_err(|e| e.to_string())?;
                }
            }
            _ => {
                let _ = child.kill();
                return Err("the node exited before listening".into());
            }
        }
    };
    // Keep draining the child's stdout so it never blocks on a full pipe; its last line (orders
    // sequenced) cross-checks the client's count.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("e2e-bench: node says: {line}");
        }
    });
    Ok(NodeChild { child, addr, dir })
}

/// [`write_node`] with demo accounts 1..=64 (`demo-token-<id>`) and the CPUs [`run`] would
/// pick: the node `scripts/scale-check.sh` starts for `tpx-load`.
pub fn write_demo_node(dir: &Path, opts: &Options) -> Result<PathBuf, String> {
    let cpus: Vec<usize> = tpx_node::core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let node_cpu = opts.node_cpu.or(cpus.first().copied()).unwrap_or(0);
    let client_cpu = opts
        .client_cpu
        .or(cpus.iter().copied().find(|&c| c != node_cpu))
        .unwrap_or(node_cpu);
    let accounts = tpx_node::gateway::accounts::demo_accounts(64);
    write_node(
        dir,
        node_cpu,
        &shard_cpus(&cpus, node_cpu, client_cpu, opts),
        &accounts,
        opts,
    )
}

/// The shards' CPUs: as given, else the CPUs that are neither the node's nor the client's, else
/// (a small machine) any but the node's.
pub fn shard_cpus(
    cpus: &[usize],
    node_cpu: usize,
    client_cpu: usize,
    opts: &Options,
) -> Vec<usize> {
    if !opts.shard_cpus.is_empty() {
        return opts.shard_cpus.clone();
    }
    let free: Vec<usize> = cpus
        .iter()
        .copied()
        .filter(|&c| c != node_cpu && c != client_cpu)
        .collect();
    if !free.is_empty() {
        return free;
    }
    cpus.iter().copied().filter(|&c| c != node_cpu).collect()
}

fn ioc(cl: u64) -> EnterOrder {
    ioc_on(cl, 1)
}

fn ioc_on(cl: u64, instrument: u32) -> EnterOrder {
    EnterOrder {
        cl_ord_id: cl,
        price: 50_000,
        qty: 1,
        instrument,
        side: if cl % 2 == 0 { Side::Buy } else { Side::Sell },
        kind: OrderKind::Limit,
        tif: TimeInForce::Ioc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
    }
}

fn connect(addr: SocketAddr, a: &DemoAccount) -> Result<Client, String> {
    connect_session(addr, a, 1)
}

fn connect_session(addr: SocketAddr, a: &DemoAccount, session: u32) -> Result<Client, String> {
    let mut cfg = ClientConfig::new(addr, a.id, session, token_from_str(&a.token));
    cfg.read_buffer = 1 << 20;
    Client::connect_at(cfg, 0).map_err(|e| format!("login {}: {e}", a.id))
}

/// (b) One order in flight: send, spin until its `OrderAccepted`, then its `OrderCancelled`.
fn ack_latency(
    addr: SocketAddr,
    a: &DemoAccount,
    warmup: usize,
    samples: usize,
) -> Result<Histogram<u64>, String> {
    let mut c = connect(addr, a)?;
    let mut h = histogram();
    let far = Instant::now() + Duration::from_secs(600);
    for i in 0..warmup + samples {
        let cl = i as u64 + 1;
        let msg = req::enter(ioc(cl));
        let t0 = Instant::now();
        c.send(&msg).map_err(|e| e.to_string())?;
        loop {
            match c.recv_spin(far).map_err(|e| e.to_string())? {
                ServerMessage::OrderAccepted(x) if x.cl_ord_id == cl => break,
                ServerMessage::OrderRejected(r) => return Err(format!("order rejected: {r:?}")),
                _ => {}
            }
        }
        let ns = t0.elapsed().as_nanos() as u64;
        if i >= warmup {
            let _ = h.record(ns.max(1));
        }
        loop {
            if let ServerMessage::OrderCancelled(x) = c.recv_spin(far).map_err(|e| e.to_string())? {
                if x.cl_ord_id == cl {
                    break;
                }
            }
        }
    }
    Ok(h)
}

/// (c) `sessions` sessions, `window` orders in flight each; orders completed per second, and
/// with `query_every > 0` (e) a `QueryOpenOrders` per session after every `query_every` orders:
/// `(orders/s, queries answered/s)`. Run `run` (0, 1, ...) logs in on session `run + 1` of each
/// account and numbers its orders from `run * 10^12 + 1` (above every earlier run's).
fn throughput(
    addr: SocketAddr,
    accounts: &[DemoAccount],
    window: usize,
    secs: f64,
    query_every: usize,
    run_no: u32,
    shards: usize,
) -> Result<(f64, f64), String> {
    let mut clients = accounts
        .iter()
        .map(|a| connect_session(addr, a, run_no + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let mut inflight = vec![0usize; clients.len()];
    let mut next_cl = vec![u64::from(run_no) * 1_000_000_000_000 + 1; clients.len()];
    let warm = Duration::from_millis(500);
    let run = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut measured_from: Option<(Instant, u64, u64)> = None;
    let mut done = 0u64;
    let mut answered = 0u64;
    let mut next_query = 1u64;
    loop {
        let now = Instant::now();
        let elapsed = now - start;
        if measured_from.is_none() && elapsed >= warm {
            measured_from = Some((now, done, answered));
        }
        if elapsed >= warm + run {
            let (t0, d0, a0) = measured_from.unwrap_or((start, 0, 0));
            let secs = (now - t0).as_secs_f64();
            return Ok(((done - d0) as f64 / secs, (answered - a0) as f64 / secs));
        }
        for (k, c) in clients.iter_mut().enumerate() {
            while inflight[k] < window {
                c.queue(&req::enter(ioc_on(
                    next_cl[k],
                    (k % shards.max(1)) as u32 + 1,
                )));
                if query_every > 0 && next_cl[k] % query_every as u64 == 0 {
                    c.queue(&tpx_client::query::open_orders(next_query, None));
                    next_query += 1;
                }
                next_cl[k] += 1;
                inflight[k] += 1;
            }
            c.flush().map_err(|e| e.to_string())?;
            let mut rejected = None;
            c.poll_batch(|m| match m {
                ServerMessage::OrderCancelled(_) => {
                    inflight[k] -= 1;
                    done += 1;
                }
                ServerMessage::OrderRejected(r) => rejected = Some(*r),
                ServerMessage::QueryDone(_) => answered += 1,
                _ => {}
            })
            .map_err(|e| e.to_string())?;
            if let Some(r) = rejected {
                return Err(format!("order rejected: {r:?}"));
            }
        }
    }
}

/// Runs (a), (b) and (c).
pub fn run(opts: &Options) -> Result<Results, String> {
    let cpus: Vec<usize> = tpx_node::core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let node_cpu = opts.node_cpu.or(cpus.first().copied()).unwrap_or(0);
    let client_cpu = opts
        .client_cpu
        .or(cpus.iter().copied().find(|&c| c != node_cpu))
        .unwrap_or(node_cpu);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (tpx, args, node_kind): (PathBuf, Vec<&str>, String) = match &opts.tpx {
        Some(p) => (
            p.clone(),
            vec!["node", "--config"],
            format!("child process {}", p.display()),
        ),
        None => {
            let sibling = exe.with_file_name("tpx");
            if sibling.exists() {
                (
                    sibling,
                    vec!["node", "--config"],
                    "child process tpx node".into(),
                )
            } else {
                (
                    exe.clone(),
                    vec![NODE_MODE_ARG],
                    "child process (bench executable in node mode)".into(),
                )
            }
        }
    };

    eprintln!("e2e-bench: floor ping-pong, cpus {node_cpu} <-> {client_cpu} ...");
    let floor_h = floor(node_cpu, client_cpu, opts.warmup, opts.floor_samples)?;

    let accounts = bench_accounts(opts.sessions.max(1) + 1);
    // The disk floor, on the filesystem of the node's log, before the node runs.
    let disk_h = if opts.log == "durable" {
        pin(node_cpu);
        eprintln!("e2e-bench: disk floor (4 KiB O_DIRECT | O_DSYNC writes) ...");
        disk_floor(&node_dir(), opts.warmup.min(2_000), opts.disk_samples)?
    } else {
        histogram()
    };
    let shard_cpus = shard_cpus(&cpus, node_cpu, client_cpu, opts);
    // The node starts as an operator would start it, on every CPU this bench may use (its
    // core plan pins the cores; its other threads, the log writer among them, go where the
    // scheduler puts them), not confined to the CPU the disk floor was just measured on.
    allow_cpus(&cpus);
    let node = start_node(&tpx, node_cpu, &shard_cpus, &accounts, &args, opts)?;
    if opts.risk {
        // Every bench account gets every asset of the one shard, through the log.
        let admin = DemoAccount {
            id: BENCH_ADMIN,
            ..crate::demo_funding::demo_admin()
        };
        let f = crate::demo_funding::fund(node.addr, &admin, &accounts, &[(0, 1), (0, 2), (0, 3)])?;
        eprintln!(
            "e2e-bench: risk on, {} accounts funded ({} deposits)",
            accounts.len(),
            f.accepted
        );
    }
    eprintln!(
        "e2e-bench: node on {} ({node_kind}); ack round trip ...",
        node.addr
    );
    pin(client_cpu);
    let ack_h = ack_latency(node.addr, &accounts[0], opts.warmup, opts.ack_samples)?;
    eprintln!("e2e-bench: throughput with {} sessions ...", opts.sessions);
    let (tput, _) = throughput(
        node.addr,
        &accounts[1..],
        opts.window,
        opts.throughput_secs,
        0,
        0,
        opts.shards,
    )?;
    let mut query_runs = Vec::new();
    if opts.query_every > 0 {
        for round in 1..=2 {
            eprintln!(
                "e2e-bench: round {round}: throughput plain, then with a query every {} orders ...",
                opts.query_every
            );
            let t = opts.throughput_secs;
            let accts = &accounts[1..];
            let (plain, _) = throughput(
                node.addr,
                accts,
                opts.window,
                t,
                0,
                2 * round - 1,
                opts.shards,
            )?;
            let (with, qps) = throughput(
                node.addr,
                accts,
                opts.window,
                t,
                opts.query_every,
                2 * round,
                opts.shards,
            )?;
            query_runs.push((plain, with, qps));
        }
    }
    drop(node);
    Ok(Results {
        shards: opts.shards.max(1),
        floor: floor_h,
        ack: ack_h,
        throughput_orders_per_sec: tput,
        node: node_kind,
        cpus: (node_cpu, client_cpu),
        log: opts.log.clone(),
        risk: opts.risk,
        log_writer: opts.log_writer.clone().unwrap_or_else(|| "default".into()),
        disk: disk_h,
        load_avg_1m: load_avg_1m(),
        query_runs,
        query_every: opts.query_every,
        sessions: opts.sessions,
        window: opts.window,
    })
}

/// The node's folder (its config, accounts and log).
fn node_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tpx-e2e-bench-{}", std::process::id()))
}

/// The node-mode entry point of the bench executable: `<exe> --serve-node CONFIG`.
pub fn serve_node(config: &Path) -> Result<(), String> {
    tpx_node::appliance::serve::serve(config, tpx_node::sequencing::stage::StartRole::Primary)
        .map(|_| ())
}
