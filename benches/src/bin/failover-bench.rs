//! `failover-bench`: SIGKILL the primary of a running pair (witness, primary under order load,
//! hot standby: three processes) at seeded random moments and measure the takeover.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin failover-bench -- --kills 50 --json
//! ```
//!
//! Takeover is from the kill (`CLOCK_MONOTONIC` read just before `kill(2)`) to the first record
//! the new primary sequences (its `CLOCK_MONOTONIC`, printed by the node): the same host clock.
//! It is split into detect (kill → the standby asks the witness), grant (ask → granted) and
//! first record (granted → sequenced). `acked_lost` counts records up to the highest `ACKED`
//! any primary printed that the new primary's log lacks or holds differently;
//! `hash_mismatches` compares the state each new primary took over with (and each node's final
//! state) with a replay of its log; `duplicates` counts client orders sequenced twice.
//!
//! When the witness refuses the standby (`MissingAcked`: the killed primary had acknowledged
//! records alone, its standby having looked dead, and only the killed node holds them) the
//! bench restarts the killed node, which resumes as primary; such kills are counted apart
//! (`refused`, `refused_takeover_us`). A failed safety check stops the run, prints the
//! evidence and keeps the logs.
//!
//! Defaults are for a small shared host: every process parks (no spinning), under
//! `SCHED_FIFO` where the bench may use it (root or `RLIMIT_RTPRIO`), timeout 500 µs, lease
//! 400 µs, heartbeat 50 µs.
//!
//! The nodes run through [`Launcher`]: by default this executable itself (`failover-bench seq
//! node ...` is `tpx-seq node ...`), or `--node-bin path/to/tpx-seq`.

use std::path::PathBuf;

use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use tpx_benches::failover::{run, Config, Launcher};

#[derive(Parser, Debug)]
#[command(
    name = "failover-bench",
    about = "SIGKILL the primary, measure the takeover"
)]
struct Args {
    #[arg(long, default_value_t = 50)]
    kills: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The standby's failure-detection timeout (µs).
    #[arg(long, default_value_t = 500)]
    timeout_us: u64,
    /// The witness lease (µs). Shorter than the timeout less a heartbeat, so that when the
    /// standby asks, the dead primary's lease has run out and the first request is granted.
    #[arg(long, default_value_t = 400)]
    lease_us: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_us: u64,
    /// Built-in order load of the primary (orders/s).
    #[arg(long, default_value_t = 5_000)]
    load: u64,
    /// Shortest run of the primary before a kill (ms).
    #[arg(long, default_value_t = 50)]
    min_gap_ms: u64,
    /// Longest run of the primary before a kill (ms).
    #[arg(long, default_value_t = 300)]
    max_gap_ms: u64,
    /// Busy-poll the standby's loop (the failure detector). Off by default: every process
    /// parks, which under SCHED_FIFO wakes within microseconds; a spinning standby under CFS
    /// gets a share of a core, not a core, and a spinning real-time one would starve the box.
    #[arg(long)]
    spin_standby: bool,
    /// SIGSTOP the primary instead of SIGKILL: its sockets stay open (as for a frozen machine
    /// or a broken link), so the standby's timeout detects it, not the closed connection. It
    /// is SIGKILLed once the standby took over, and restarted as the new standby.
    #[arg(long)]
    hang: bool,
    /// Accepted for old command lines (parking is the default now).
    #[arg(long, hide = true)]
    no_spin: bool,
    /// Run the nodes under SCHED_FIFO at this priority, the witness one above, the bench's
    /// report reading one below (its log checks under the default policy). Default: 10 where the bench may (root or RLIMIT_RTPRIO), else the default policy
    /// with a note; 0: the default policy.
    #[arg(long)]
    rt_priority: Option<u32>,
    /// Nodes report ACKED / FOLLOW at most this often (µs).
    #[arg(long, default_value_t = 500)]
    report_us: u64,
    /// Where the nodes keep their logs (default: a fresh directory under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the witness persists its term (default: /dev/shm, where fsync costs nothing).
    #[arg(long)]
    witness_state: Option<PathBuf>,
    /// Run nodes with this `tpx-seq` binary instead of this executable.
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Keep the logs after the run.
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Us {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

fn us(h: &Histogram<u64>) -> Us {
    let r = |ns: f64| (ns / 100.0).round() / 10.0;
    Us {
        p50: r(h.value_at_quantile(0.5) as f64),
        p99: r(h.value_at_quantile(0.99) as f64),
        p999: r(h.value_at_quantile(0.999) as f64),
        max: r(h.max() as f64),
        mean: r(h.mean()),
    }
}

#[derive(Serialize)]
struct Report {
    kills: u32,
    /// Kills the standby took over from.
    takeovers: u32,
    takeover_us: Us,
    /// Kills after which the witness refused the standby (`MissingAcked`) and the killed node,
    /// restarted, resumed as primary; kill → its first record (includes the restart).
    refused: u32,
    refused_takeover_us: Us,
    detect_us: Us,
    grant_us: Us,
    first_record_us: Us,
    acked_lost: u64,
    duplicates: u64,
    hash_mismatches: u64,
    spurious_promotions: u64,
    unexpected_exits: u64,
    hashes_checked: u64,
    acked_seq: u64,
    final_last_seq: u64,
    timeout_us: u64,
    lease_us: u64,
    heartbeat_us: u64,
    load_per_sec: u64,
    spin_standby: bool,
    hang: bool,
    rt_priority: u32,
    seed: u64,
    cpus: usize,
    /// `/proc/loadavg`'s 1-minute load at the start and at the end of the run.
    load_avg_start: f64,
    load_avg_end: f64,
    /// The first failed safety check and its evidence (the run stopped there).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1.0)
}

/// The SCHED_FIFO priority to run at: the one asked for, or 10 where this process may use it.
fn rt_priority(asked: Option<u32>) -> u32 {
    match asked {
        Some(p) => p,
        // Probe on this process, then back to the default policy (see `run`).
        None => match tpx_sequencer::node::set_realtime(10) {
            Ok(()) => {
                tpx_sequencer::node::set_normal();
                10
            }
            Err(e) => {
                eprintln!(
                    "failover-bench: note: no SCHED_FIFO ({e}); running under the default \
                     policy (expect a longer tail on a busy host; root or `ulimit -r 10` enables it)"
                );
                0
            }
        },
    }
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "seq") {
        // A node or the witness of a run (see `Launcher::self_exec`).
        std::process::exit(tpx_sequencer::cli::main_with(argv[1..].iter().cloned()));
    }
    let a = Args::parse();
    let _ = a.no_spin;
    let rt = rt_priority(a.rt_priority);
    let load_avg_start = load_avg();
    let pid = std::process::id();
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tpx-failover-{pid}")));
    let witness_state = a.witness_state.clone().unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
        .join(format!("tpx-failover-{pid}.witness"))
    });
    let launcher = match &a.node_bin {
        Some(p) => Launcher::tpx_seq(p),
        None => Launcher::self_exec().expect("current executable"),
    };
    let cfg = Config {
        kills: a.kills,
        seed: a.seed,
        timeout_us: a.timeout_us,
        lease_us: a.lease_us,
        heartbeat_us: a.heartbeat_us,
        load_per_sec: a.load,
        gap_ms: (a.min_gap_ms, a.max_gap_ms),
        spin_standby: a.spin_standby,
        hang: a.hang,
        rt_priority: rt,
        report_us: a.report_us,
        dir: dir.clone(),
        witness_state: witness_state.clone(),
    };
    let res = run(cfg, launcher);
    let _ = std::fs::remove_file(&witness_state);
    let failed = !matches!(&res, Ok(o) if o.failure.is_none());
    if !a.keep && !failed {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let o = match res {
        Ok(o) => o,
        Err(e) => {
            eprintln!("failover-bench: {e} (logs kept in {})", dir.display());
            std::process::exit(1);
        }
    };
    if let Some(f) = &o.failure {
        eprintln!(
            "failover-bench: SAFETY CHECK FAILED after {} kills: {f}\nfailover-bench: logs kept in {}",
            o.kills,
            dir.display()
        );
    }
    let rep = Report {
        kills: o.kills,
        takeovers: o.takeovers,
        takeover_us: us(&o.takeover_ns),
        refused: o.refused,
        refused_takeover_us: us(&o.refused_ns),
        detect_us: us(&o.detect_ns),
        grant_us: us(&o.grant_ns),
        first_record_us: us(&o.first_ns),
        acked_lost: o.acked_lost,
        duplicates: o.duplicates,
        hash_mismatches: o.hash_mismatches,
        spurious_promotions: o.spurious_promotions,
        unexpected_exits: o.unexpected_exits,
        hashes_checked: o.hashes_checked,
        acked_seq: o.acked_seq,
        final_last_seq: o.final_last_seq,
        timeout_us: a.timeout_us,
        lease_us: a.lease_us,
        heartbeat_us: a.heartbeat_us,
        load_per_sec: a.load,
        spin_standby: a.spin_standby,
        hang: a.hang,
        rt_priority: rt,
        seed: a.seed,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_avg_start,
        load_avg_end: load_avg(),
        failure: o.failure.clone(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&rep).expect("json"));
    } else {
        let t = &rep.takeover_us;
        println!(
            "kills {} (standby took over {}, refused {})  takeover µs p50 {} p99 {} p99.9 {} max {}  (detect p50 {}, grant p50 {}, first p50 {})",
            rep.kills, rep.takeovers, rep.refused, t.p50, t.p99, t.p999, t.max,
            rep.detect_us.p50, rep.grant_us.p50, rep.first_record_us.p50
        );
        println!(
            "acked_lost {}  duplicates {}  hash_mismatches {} (of {})  spurious promotions {}  \
             load {:.2} -> {:.2}  rt_priority {}",
            rep.acked_lost,
            rep.duplicates,
            rep.hash_mismatches,
            rep.hashes_checked,
            rep.spurious_promotions,
            rep.load_avg_start,
            rep.load_avg_end,
            rep.rt_priority
        );
    }
    let ok = rep.acked_lost == 0
        && rep.duplicates == 0
        && rep.hash_mismatches == 0
        && rep.failure.is_none();
    std::process::exit(if ok { 0 } else { 2 });
}
