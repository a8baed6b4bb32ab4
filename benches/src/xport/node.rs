//! One replica process of `repl-transport-bench`: a primary under an open-loop order load, or a
//! standby, over TCP or Aeron, with a spinning or parked duty cycle.
//!
//! The replica is the real `tpx_sequencer::Replica` with the node's replication settings
//! (heartbeat 500 µs, timeout 20 ms; the standby's 10 s, so it never takes over), durability `replicated`, and its log in memory
//! (`SyncLog<FileStorage>` on tmpfs: the disk is not what is compared, and in `replicated`
//! mode the acknowledgement does not wait for it). The witness is reached over TCP in both cases.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tpx_md::aeron::{AeronSetup, DriverConfig, DriverIdle};
use tpx_sequencer::process::mono_ns;
use tpx_sequencer::replica::ReplicaEvent;
use tpx_sequencer::testing::Load;
use tpx_sequencer::{
    Durability, FileStorage, LogConfig, Replica, ReplicaConfig, Role, SyncLog, SystemClock,
    TcpTransport, Transport, WriteMode,
};

use super::aeron::{AeronPeer, AeronReplConfig, AeronReplTransport, Split};

/// The witness's id (the sequencer's, as in the node).
pub use tpx_sequencer::WITNESS_ID;
/// Term length of the replication publications: Aeron's largest message is an eighth of it,
/// and an `Append` may be 256 KiB.
pub const AERON_TERM_BYTES: usize = 4 << 20;

/// The replication transport under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xport {
    Tcp,
    Aeron,
}

/// How the replica threads (and the media drivers) wait for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// The node's `park`: 4 empty cycles, then sleep 10 µs doubling to 1 ms (TCP: in
    /// `ppoll(2)` on the sockets, woken by data; Aeron: a plain sleep, as a subscription has no
    /// file descriptor). The primary does not park while records wait for the standby's ack
    /// (as the node's sequencing stage). Aeron drivers back off.
    Park,
    /// Both replica threads busy-poll (two spinning threads). Aeron drivers back off.
    Spin,
    /// Aeron only: one media driver shared by both processes, busy-spinning, replica threads
    /// parked as in `Park` (two spinning threads at most: the driver and a primary with
    /// records in flight).
    DriverSpin,
}

impl Xport {
    pub fn name(self) -> &'static str {
        match self {
            Xport::Tcp => "tcp",
            Xport::Aeron => "aeron",
        }
    }
    pub fn parse(s: &str) -> Option<Xport> {
        match s {
            "tcp" => Some(Xport::Tcp),
            "aeron" => Some(Xport::Aeron),
            _ => None,
        }
    }
}

impl Idle {
    pub fn name(self) -> &'static str {
        match self {
            Idle::Park => "park",
            Idle::Spin => "spin",
            Idle::DriverSpin => "driver-spin",
        }
    }
    pub fn parse(s: &str) -> Option<Idle> {
        match s {
            "park" => Some(Idle::Park),
            "spin" => Some(Idle::Spin),
            "driver-spin" => Some(Idle::DriverSpin),
            _ => None,
        }
    }
}

/// One process's part of a case.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    pub primary: bool,
    pub xport: Xport,
    pub idle: Idle,
    /// Records per second offered by the primary (0: idle, heartbeats only).
    pub rate: u64,
    /// TCP: where this node listens; Aeron: the UDP endpoint it subscribes on.
    pub listen: SocketAddr,
    pub peer: SocketAddr,
    pub witness: SocketAddr,
    /// Aeron: an external driver directory (`DriverSpin`), else an embedded driver.
    pub aeron_dir: Option<String>,
}

/// What a process measured.
#[derive(Clone, Debug, Default)]
pub struct NodeResult {
    pub role: String,
    /// Primary: per record, the intended submit time → the standby's ack seen on the primary.
    pub latency_ns: Option<Histogram<u64>>,
    pub records: u64,
    /// Records submitted in the window whose ack had not arrived 500 ms after it.
    pub unacked: u64,
    /// Submissions the replica refused (back-pressure).
    pub refused: u64,
    /// CPU seconds (all threads of the process: replica, media driver, Aeron client) per
    /// second of the window.
    pub cpu_per_s: f64,
    pub window_s: f64,
    pub error: Option<String>,
    /// The replica at the end (role, seqs, counters), for the record.
    pub detail: String,
}

fn cpu_ns() -> u64 {
    // SAFETY: `ru` is a valid rusage for the call to write.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Sleeping when idle: on the sockets (TCP) or a plain sleep (Aeron).
pub trait Park {
    fn park(&mut self, timeout_ns: u64);
}

impl Park for TcpTransport {
    fn park(&mut self, timeout_ns: u64) {
        self.wait_readable(timeout_ns.div_ceil(1_000));
    }
}

impl Park for Split<AeronReplTransport, TcpTransport> {
    fn park(&mut self, timeout_ns: u64) {
        std::thread::sleep(Duration::from_nanos(timeout_ns));
    }
}

struct NullApplier;
impl tpx_sequencer::Applier for NullApplier {
    fn apply(&mut self, _rec: &tpx_wire::log_record::LogRecord) {}
    fn rewind(&mut self, _seq: u64) {}
}

fn replica_config(a: &NodeArgs) -> ReplicaConfig {
    ReplicaConfig {
        node_id: if a.primary { 1 } else { 2 },
        peer_id: if a.primary { 2 } else { 1 },
        witness_id: WITNESS_ID,
        durability: Durability::Replicated,
        heartbeat_ns: 500_000,
        // The standby never asks for promotion here (a bench of replication, not failover); the
        // primary counts its standby gone after 20 ms (the node's default).
        timeout_ns: if a.primary {
            20_000_000
        } else {
            10_000_000_000
        },
        lease_margin_ns: 2_000_000,
        ..ReplicaConfig::default()
    }
}

/// The Aeron setup of a node: the external driver, or an embedded one.
pub fn aeron_setup(dir: Option<&str>, spin: bool) -> AeronSetup {
    match dir {
        Some(d) => AeronSetup::External { dir: d.to_string() },
        None => AeronSetup::Embedded(driver_config(spin)),
    }
}

/// The media driver's settings for replication (shared threading, terms big enough for an
/// `Append`, sparse).
pub fn driver_config(spin: bool) -> DriverConfig {
    DriverConfig {
        term_length: AERON_TERM_BYTES,
        ipc_term_length: 64 << 10,
        idle: if spin {
            DriverIdle::Spin
        } else {
            DriverIdle::Backoff
        },
        ..DriverConfig::default()
    }
}

/// An Aeron transport to the peer plus TCP to the witness.
pub fn aeron_transport(
    node_id: u32,
    peer_id: u32,
    setup: AeronSetup,
    listen: SocketAddr,
    peer: SocketAddr,
    witness: SocketAddr,
) -> Result<Split<AeronReplTransport, TcpTransport>, String> {
    let cfg = AeronReplConfig::new(
        setup,
        node_id,
        &listen.to_string(),
        vec![AeronPeer {
            id: peer_id,
            endpoint: peer.to_string(),
        }],
    );
    let a = AeronReplTransport::connect(&cfg).map_err(|e| e.to_string())?;
    let b =
        TcpTransport::new(node_id, None, vec![(WITNESS_ID, witness)]).map_err(|e| e.to_string())?;
    Ok(Split {
        first: vec![peer_id],
        a,
        b,
    })
}

/// Runs one process's part of a case. The window (`START <start_ns> <end_ns>` on stdin,
/// `CLOCK_MONOTONIC`) comes from the parent once the pair is joined; blocks until it ends plus
/// a drain of 500 ms.
pub fn run_node(a: &NodeArgs) -> NodeResult {
    let r = match a.xport {
        Xport::Tcp => {
            let me = if a.primary { 1 } else { 2 };
            let peer = if a.primary { 2 } else { 1 };
            TcpTransport::new(
                me,
                Some(a.listen),
                vec![(peer, a.peer), (WITNESS_ID, a.witness)],
            )
            .map_err(|e| e.to_string())
            .and_then(|t| drive(a, t))
        }
        Xport::Aeron => {
            let cfg = replica_config(a);
            let setup = aeron_setup(a.aeron_dir.as_deref(), false);
            aeron_transport(cfg.node_id, cfg.peer_id, setup, a.listen, a.peer, a.witness)
                .and_then(|t| drive(a, t))
        }
    };
    r.unwrap_or_else(|e| NodeResult {
        role: if a.primary { "primary" } else { "standby" }.into(),
        error: Some(e),
        ..NodeResult::default()
    })
}

/// The measurement window, read from stdin by a helper thread (`u64::MAX`: not yet).
struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

fn window_from_stdin() -> Arc<Window> {
    let w = Arc::new(Window {
        start_ns: AtomicU64::new(u64::MAX),
        end_ns: AtomicU64::new(u64::MAX),
    });
    let w2 = w.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_ok() {
            let mut it = line.split_whitespace().skip(1).map(|v| v.parse::<u64>());
            if let (Some(Ok(s)), Some(Ok(e))) = (it.next(), it.next()) {
                w2.end_ns.store(e, Ordering::Release);
                w2.start_ns.store(s, Ordering::Release);
            }
        }
    });
    w
}

fn say(what: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{what}");
    let _ = o.flush();
}

fn drive<T: Transport + Park>(a: &NodeArgs, net: T) -> Result<NodeResult, String> {
    let cfg = replica_config(a);
    // Real files on tmpfs: the disk is not what is compared (and in `replicated` mode the
    // acknowledgement does not wait for it); the log is committed inline by `poll`.
    let dir = format!("/dev/shm/tpx-xport-log-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    let st = FileStorage::new(&dir, WriteMode::Buffered).map_err(|e| format!("{dir}: {e}"))?;
    let res = drive_with(a, cfg, st, net);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn drive_with<T: Transport + Park>(
    a: &NodeArgs,
    cfg: ReplicaConfig,
    st: FileStorage,
    net: T,
) -> Result<NodeResult, String> {
    let (log, _) = SyncLog::open(st, LogConfig::default()).map_err(|e| format!("log: {e}"))?;
    let mut rep = Replica::new(cfg, log, net, SystemClock::new(), 0, a.primary)
        .map_err(|e| format!("replica: {e}"))?;
    let win = window_from_stdin();
    let mut app = NullApplier;
    let spin = a.idle == Idle::Spin;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut load = Load::new(1, 42);
    let interval_ns = 1_000_000_000u64.checked_div(a.rate).unwrap_or(0);
    let mut pending: VecDeque<(u64, u64)> = VecDeque::with_capacity(1 << 20);
    let (mut records, mut refused) = (0u64, 0u64);
    let (mut cpu_start, mut cpu_end) = (None, None);
    let (mut start_ns, mut end_ns, mut next_due) = (u64::MAX, u64::MAX, u64::MAX);
    // Primary: one record before the window; its ack says the standby has joined.
    let mut warmup: Option<u64> = None;
    let mut joined = false;
    let (mut empty, mut backoff_ns) = (0u32, 10_000u64);
    // A pair that does not join (or a parent that is gone) ends the process.
    let give_up_ns = mono_ns() + 30_000_000_000;
    loop {
        let now = mono_ns();
        if start_ns == u64::MAX && now > give_up_ns {
            return Err(format!("no measurement window after 30 s: {rep:?}"));
        }
        if start_ns == u64::MAX {
            let s = win.start_ns.load(Ordering::Acquire);
            if s != u64::MAX {
                start_ns = s;
                end_ns = win.end_ns.load(Ordering::Acquire);
                next_due = s;
            }
        }
        if cpu_start.is_none() && now >= start_ns {
            cpu_start = Some(cpu_ns());
        }
        if cpu_end.is_none() && now >= end_ns {
            cpu_end = Some(cpu_ns());
        }
        if now >= end_ns.saturating_add(500_000_000) {
            break;
        }
        if a.primary && now >= end_ns && pending.is_empty() && (a.rate == 0 || next_due >= end_ns) {
            break;
        }
        let mut busy = false;
        if a.primary && rep.role() == Role::Primary {
            if warmup.is_none() {
                warmup = Some(
                    rep.submit(1, 1, &load.request(load.next_cl_ord_id))
                        .map_err(|e| format!("warm-up record: {e:?}"))?,
                );
                load.next_cl_ord_id += 1;
            }
            // Open loop: everything due is submitted now, stamped with when it was due.
            while a.rate > 0 && next_due <= now && next_due < end_ns {
                let id = load.next_cl_ord_id;
                load.next_cl_ord_id += 1;
                match rep.submit(1, 1, &load.request(id)) {
                    Ok(seq) => {
                        pending.push_back((seq, next_due));
                        records += 1;
                    }
                    Err(_) => refused += 1,
                }
                next_due += interval_ns;
                busy = true;
            }
        }
        busy |= rep.poll(&mut app);
        while let Some(ev) = rep.take_event() {
            match ev {
                ReplicaEvent::LogError(e) => return Err(format!("log error: {e}")),
                // The parent starts the standby once the primary holds the term.
                ReplicaEvent::BecamePrimary { .. } => say("PRIMARY"),
                _ => {}
            }
        }
        if a.primary {
            let acked = rep.peer_seqs().0;
            if !joined && warmup.is_some_and(|w| acked >= w) {
                joined = true;
                // The parent starts the window once the pair is joined.
                say("JOINED");
            }
            if pending.front().is_some_and(|&(s, _)| s <= acked) {
                let t = mono_ns();
                while let Some(&(s, due)) = pending.front() {
                    if s > acked {
                        break;
                    }
                    pending.pop_front();
                    hist.saturating_record(t.saturating_sub(due).max(1));
                }
            }
            // The node's sequencing stage does not park while records wait for durability.
            busy |= !pending.is_empty();
        }
        if busy {
            empty = 0;
            backoff_ns = 10_000;
            continue;
        }
        if spin {
            std::hint::spin_loop();
            continue;
        }
        empty += 1;
        if empty < 64 {
            continue;
        }
        let mut t = backoff_ns;
        if a.primary && a.rate > 0 && next_due < end_ns {
            t = t.min(next_due.saturating_sub(now).max(1_000));
        }
        if start_ns != u64::MAX && now < start_ns {
            t = t.min(start_ns - now);
        }
        rep.transport_mut().park(t);
        backoff_ns = (backoff_ns * 2).min(1_000_000);
    }
    let (c0, c1) = (cpu_start.unwrap_or(0), cpu_end.unwrap_or_else(cpu_ns));
    let window_s = end_ns.saturating_sub(start_ns) as f64 / 1e9;
    if a.primary && rep.role() != Role::Primary {
        return Err(format!("lost the primary role ({:?})", rep.role()));
    }
    Ok(NodeResult {
        role: if a.primary { "primary" } else { "standby" }.into(),
        latency_ns: a.primary.then_some(hist),
        records,
        unacked: pending.len() as u64,
        refused,
        cpu_per_s: (c1.saturating_sub(c0)) as f64 / 1e9 / window_s.max(1e-9),
        window_s,
        error: None,
        detail: format!("{rep:?} {:?} peer={:?}", rep.stats(), rep.peer_seqs()),
    })
}
