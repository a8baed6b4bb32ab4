//! `failover-bench`: SIGKILL the primary `tpx node` of the appliance as deployed (`tpx witness`
//! with `--state-file`, two `tpx node`s with risk on, market data on, O_DIRECT logs,
//! `replicated`), under a load of `FailoverClient`s, at seeded random moments; measure the
//! takeover; bring the killed node back as standby (as systemd does); repeat; then check every
//! answer the clients got against the surviving log.
//!
//! ```sh
//! cargo build --release -p tpx-node --bin tpx    # the nodes run target/release/tpx (or $TPX_BIN)
//! cargo run --release -p tpx-benches --bin failover-bench -- --kills 50 --json
//! cargo run --release -p tpx-benches --bin failover-bench -- --hang --kills 20 --json
//! ```
//!
//! **Takeover** (`takeover_us`): from the bench's `CLOCK_MONOTONIC` just before `kill(2)` to
//! the moment the bench read the standby's `tpx node: ROLE primary` line (flushed as the node
//! takes the term; the bench's reader thread stamps it with the same host clock, so the pipe
//! and its wake-up are included: an upper bound). `grant_us`: kill → the witness's `GRANTED`
//! line for the new term (same stamping). `first_ack_us`: kill → the first acknowledgement a
//! client got from the new primary (the client's reconnection, login and re-send included; with
//! `--hang` it waits for the frozen node to be resumed, `--hang-ms` after the takeover, since
//! only then do its connections close).
//!
//! **Checks**: an acknowledgement is what a client saw: accepted, replaced or "already
//! sequenced" (a re-sent request the new primary holds), a fill, a confirmed cancel, an accepted
//! deposit. `acked_lost`: those whose request is not in the surviving log; `duplicates`: orders
//! in it twice, or filled beyond their quantity. `hash_mismatches` counts two things: log
//! comparisons (before every kill the standby's log must be a prefix of the primary's, record
//! by record, and at the end both logs equal with never two different records at one
//! (term, seq) over every read; `hashes_checked` counts them), and state: the nodes run with
//! replica checkpoints (`checkpoint_every = 500`: the primary logs its shards' state hash, a
//! node applying the record compares its own and prints `DIVERGED` on a difference), and each
//! `DIVERGED` line of a process that never said `REJOIN` is a mismatch
//! (`checkpoints_compared`: checkpoints in the surviving log).
//!
//! **Refused kills**: when the witness refuses the standby (`MissingAcked`: the killed primary
//! acknowledged records alone), the killed node is brought back at once and takes the term
//! itself; counted in `refused` / `refused_takeover_us` (restart included).
//!
//! Defaults: every process parks (`idle = "park"`) under the default scheduling policy (the
//! `tpx-seq` bench ran its nodes under `SCHED_FIFO`; `tpx node` under `SCHED_FIFO` on 2 vCPUs
//! stalled: no progress for seconds, host load 20), timeout 500 µs, lease 400 µs, heartbeat
//! 50 µs (the old bench's, for comparison), 4 accounts × 250 requests/s.

use std::path::PathBuf;

use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use tpx_benches::failover::{run, Config};

#[derive(Parser, Debug)]
#[command(
    name = "failover-bench",
    about = "SIGKILL (or SIGSTOP) the primary tpx node under client load, measure the takeover"
)]
struct Args {
    #[arg(long, default_value_t = 50)]
    kills: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The standby's failure-detection timeout (µs; the nodes' `timeout_us`).
    #[arg(long, default_value_t = 500)]
    timeout_us: u64,
    /// The witness lease (µs). Shorter than the timeout less a heartbeat, so that when the
    /// standby asks, the dead primary's lease has run out and the first request is granted.
    #[arg(long, default_value_t = 400)]
    lease_us: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_us: u64,
    /// `replicated` | `fsync` | `replicated+fsync`.
    #[arg(long, default_value = "replicated")]
    durability: String,
    /// Trading accounts (one failing-over client each).
    #[arg(long, default_value_t = 4)]
    accounts: u32,
    /// Requests per second per account.
    #[arg(long, default_value_t = 250)]
    rate: u64,
    /// Shortest run of the primary before a kill (ms).
    #[arg(long, default_value_t = 50)]
    min_gap_ms: u64,
    /// Longest run of the primary before a kill (ms).
    #[arg(long, default_value_t = 300)]
    max_gap_ms: u64,
    /// SIGSTOP the primary instead of SIGKILL: its sockets stay open (as for a frozen machine),
    /// so the standby's timeout detects it, not a closed connection. SIGCONT `--hang-ms` after
    /// the takeover; it finds itself deposed (or exits 3 and is restarted as standby).
    #[arg(long)]
    hang: bool,
    #[arg(long, default_value_t = 100)]
    hang_ms: u64,
    /// Market data off.
    #[arg(long)]
    no_md: bool,
    /// Buffered log writes instead of O_DIRECT.
    #[arg(long)]
    buffered: bool,
    /// Each process in its own network namespace (root; falls back to loopback).
    #[arg(long)]
    netns: bool,
    /// Where the run's files go (default: a fresh directory under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the files after a clean run.
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
    n: u64,
}

fn us(h: &Histogram<u64>) -> Us {
    let r = |ns: f64| (ns / 100.0).round() / 10.0;
    Us {
        p50: r(h.value_at_quantile(0.5) as f64),
        p99: r(h.value_at_quantile(0.99) as f64),
        p999: r(h.value_at_quantile(0.999) as f64),
        max: r(h.max() as f64),
        mean: r(h.mean()),
        n: h.len(),
    }
}

#[derive(Serialize)]
struct Report {
    /// What ran: `tpx node` ×2 + `tpx witness`.
    appliance: &'static str,
    kills: u32,
    /// Kills the standby took over from.
    takeovers: u32,
    /// Kill → the standby's `ROLE primary` line.
    takeover_us: Us,
    /// Kills after which the witness refused the standby (`MissingAcked`) and the killed node,
    /// brought back, took the term; kill → its `ROLE primary` line (restart included).
    refused: u32,
    refused_takeover_us: Us,
    /// Kill → the witness's `GRANTED` line.
    grant_us: Us,
    /// Kill → the first acknowledgement a client got from the new primary.
    first_ack_us: Us,
    no_first_ack: u32,
    acked_lost: u64,
    duplicates: u64,
    /// Log comparisons that disagreed, plus replica checkpoints whose state hash diverged.
    hash_mismatches: u64,
    hashes_checked: u64,
    /// Replica checkpoints in the surviving log: state hashes the nodes compared.
    checkpoints_compared: u64,
    diverged_after_rejoin: u64,
    spurious_promotions: u64,
    unexpected_exits: u64,
    /// Noted, not violations (see the fault lab's checker): one trade reported twice to a
    /// client (both nodes of a flapping pair), requests answered `Unavailable` that are in the
    /// log nevertheless.
    repeated_fill_reports: u64,
    unavailable_then_sequenced: u64,
    /// Requests without an answer when the run ended (or in flight at a re-login).
    unknown: u64,
    /// Distinct orders and replaces acknowledged to the clients.
    acked: u64,
    sent: u64,
    client_errors: u64,
    final_last_seq: u64,
    timeout_us: u64,
    lease_us: u64,
    heartbeat_us: u64,
    durability: String,
    accounts: u32,
    load_per_sec: u64,
    md: bool,
    netns: bool,
    hang: bool,
    seed: u64,
    cpus: usize,
    /// `/proc/loadavg`'s 1-minute load at the start and at the end of the run.
    load_avg_start: f64,
    load_avg_end: f64,
    elapsed_s: f64,
    /// The first failed check and its evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    /// Up to five examples of each finding (violations and notes).
    examples: std::collections::BTreeMap<String, Vec<String>>,
    /// Where the takeovers' time went (the new primary's `TAKEOVER` line; see the docs).
    split: SplitReport,
}

/// [`tpx_benches::failover::Split`] in µs.
#[derive(Serialize)]
struct SplitReport {
    /// Kill → the standby saw the connections close.
    closed_us: Us,
    /// Takeovers the standby's timeout detected (it saw no close).
    timeout_detections: u64,
    /// Kill → its first `Promote`.
    ask_us: Us,
    /// First `Promote` → the grant read (lease wait and retries included).
    witness_us: Us,
    asks: Us,
    /// Grant read → term stored.
    store_us: Us,
    /// Term stored → acting as primary.
    start_us: Us,
    /// Acting as primary → `ROLE primary` written.
    line_us: Us,
    /// Written → read by the bench.
    read_us: Us,
    missing: u64,
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1.0)
}

fn main() {
    let a = Args::parse();
    let load_avg_start = load_avg();
    let t0 = std::time::Instant::now();
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tpx-failover-{}", std::process::id()))
    });
    let cfg = Config {
        kills: a.kills,
        seed: a.seed,
        timeout_us: a.timeout_us,
        lease_us: a.lease_us,
        heartbeat_us: a.heartbeat_us,
        durability: a.durability.clone(),
        accounts: a.accounts,
        rate: a.rate,
        gap_ms: (a.min_gap_ms, a.max_gap_ms),
        hang: a.hang,
        hang_ms: a.hang_ms,
        md: !a.no_md,
        buffered: a.buffered,
        netns: a.netns,
        dir: dir.clone(),
    };
    let o = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("failover-bench: {e} (files kept in {})", dir.display());
            std::process::exit(1);
        }
    };
    let ok =
        o.acked_lost == 0 && o.duplicates == 0 && o.hash_mismatches == 0 && o.failure.is_none();
    let kept = !ok || a.keep;
    if !kept {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(f) = &o.failure {
        eprintln!(
            "failover-bench: CHECK FAILED after {} kills: {f}\nfailover-bench: files kept in {}",
            o.kills,
            dir.display()
        );
    }
    let rep = Report {
        appliance: "tpx witness + 2 tpx node",
        kills: o.kills,
        takeovers: o.takeovers,
        takeover_us: us(&o.takeover_ns),
        refused: o.refused,
        refused_takeover_us: us(&o.refused_ns),
        grant_us: us(&o.grant_ns),
        first_ack_us: us(&o.first_ack_ns),
        no_first_ack: o.no_first_ack,
        acked_lost: o.acked_lost,
        duplicates: o.duplicates,
        hash_mismatches: o.hash_mismatches,
        hashes_checked: o.hashes_checked,
        checkpoints_compared: o.checkpoints_compared,
        diverged_after_rejoin: o.diverged_after_rejoin,
        spurious_promotions: o.spurious_promotions,
        unexpected_exits: o.unexpected_exits,
        repeated_fill_reports: o.findings.repeated_fill_reports,
        unavailable_then_sequenced: o.findings.unavailable_then_sequenced,
        unknown: o.findings.unknown,
        acked: o.acked,
        sent: o.sent,
        client_errors: o.client_errors,
        final_last_seq: o.final_last_seq,
        timeout_us: a.timeout_us,
        lease_us: a.lease_us,
        heartbeat_us: a.heartbeat_us,
        durability: a.durability.clone(),
        accounts: a.accounts,
        load_per_sec: a.rate * u64::from(a.accounts),
        md: !a.no_md,
        netns: o.netns,
        hang: a.hang,
        seed: a.seed,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_avg_start,
        load_avg_end: load_avg(),
        elapsed_s: (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        failure: o.failure.clone(),
        dir: kept.then(|| dir.display().to_string()),
        examples: o.findings.examples.clone(),
        split: SplitReport {
            closed_us: us(&o.split.closed),
            timeout_detections: o.split.timeout_detections,
            ask_us: us(&o.split.ask),
            witness_us: us(&o.split.witness),
            asks: Us {
                p50: o.split.asks.value_at_quantile(0.5) as f64,
                p99: o.split.asks.value_at_quantile(0.99) as f64,
                p999: o.split.asks.value_at_quantile(0.999) as f64,
                max: o.split.asks.max() as f64,
                mean: o.split.asks.mean(),
                n: o.split.asks.len(),
            },
            store_us: us(&o.split.store),
            start_us: us(&o.split.start),
            line_us: us(&o.split.line),
            read_us: us(&o.split.read),
            missing: o.split.missing,
        },
    };
    if a.json {
        println!("{}", serde_json::to_string(&rep).expect("json"));
    } else {
        let t = &rep.takeover_us;
        println!(
            "kills {} (standby took over {}, refused {})  takeover µs p50 {} p99 {} p99.9 {} max {}  (granted p50 {}, first client ack p50 {})",
            rep.kills, rep.takeovers, rep.refused, t.p50, t.p99, t.p999, t.max,
            rep.grant_us.p50, rep.first_ack_us.p50
        );
        println!(
            "acked {}  acked_lost {}  duplicates {}  hash_mismatches {} (of {} log comparisons and {} state-hash checkpoints)  spurious promotions {}  load {:.2} -> {:.2}",
            rep.acked,
            rep.acked_lost,
            rep.duplicates,
            rep.hash_mismatches,
            rep.hashes_checked,
            rep.checkpoints_compared,
            rep.spurious_promotions,
            rep.load_avg_start,
            rep.load_avg_end,
        );
        let s = &rep.split;
        println!(
            "split p50/p99 µs: closed {}/{} (timeout-detected {})  ask {}/{}  witness {}/{} (asks p50 {} max {})  store {}/{}  start {}/{}  line {}/{}  read {}/{}",
            s.closed_us.p50, s.closed_us.p99, s.timeout_detections, s.ask_us.p50, s.ask_us.p99,
            s.witness_us.p50, s.witness_us.p99, s.asks.p50, s.asks.max, s.store_us.p50,
            s.store_us.p99, s.start_us.p50, s.start_us.p99, s.line_us.p50, s.line_us.p99,
            s.read_us.p50, s.read_us.p99
        );
    }
    std::process::exit(if ok { 0 } else { 2 });
}
