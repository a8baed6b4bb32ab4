//! `restart-bench`: how long `tpx node` (the real binary) takes from process start to
//! accepting a login, restarting from a snapshot + the log's tail versus replaying the whole
//! log, with risk on (issue 18).
//!
//! ```sh
//! CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
//!   cargo build --release -p tpx-node --bin tpx -p tpx-benches --bin restart-bench
//! target/release/restart-bench --json
//! ```
//!
//! 1. Writes a node config (one core, the built-in instruments, `[risk]`, `checkpoint_every`
//!    records) and a log of `--records` records straight through the log writer
//!    (`SegmentLog`, 64 MiB segments, a commit per 64 Ki records): deposits for `--accounts`
//!    accounts, then a mix on BTC-USDT (resting GTC orders until about `--resting` rest, cancels,
//!    crossing IOC and GTC orders), each record naming its account's session 1; every
//!    `checkpoint_every` records a `Checkpoint` record naming the previous one's seq and state
//!    hash, as a primary logs them. Every record is applied, as written, to the node's own code
//!    (`appliance::snapshots::NodeCopy`: the shards and session tables the snapshot thread
//!    keeps): the uninterrupted run. At the checkpoint `--tail` records before the end it
//!    writes the node's image (`[snapshots] dir`), as the snapshot thread would; the log ends
//!    with two checkpoints, the last naming the uninterrupted run's final state hash.
//! 2. Starts `target/release/tpx node` `--runs` times from the image and `--runs` times with
//!    `[snapshots]` left out (full replay), each time polling a login over TCP until it is
//!    accepted, then reads the node's Prometheus page: the checkpoints the node's shard
//!    compared while replaying (the last one is the uninterrupted run's final hash) all
//!    matched; then SIGKILL, and the log is cut back to its prepared end (a start appends its
//!    term's `TermStart` and `Checkpoint`, whose hash the next start would compute: every start
//!    replays the same log). The p50 of each, their ratio, and the acceptance (≤ 1.5 s, ≤ 10 %).
//! 3. The same from the image once the segments wholly before it are deleted (what retention
//!    with `keep = 1` leaves): the log's recovery at start scans every segment it holds, so a
//!    start's floor grows with the log kept, not with the tail.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use tpx_client::{token_from_str, Client, ClientConfig};
use tpx_node::appliance::snapshots::NodeCopy;
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_node::gateway::routing::Routing;
use tpx_node::shard::plan::ShardPlan;
use tpx_node::NodeConfig;
use tpx_sequencer::log::{LogConfig, SegmentLog};
use tpx_sequencer::snapshot::encode_node_snapshot;
use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::{encode_record, Checkpoint, Deposit, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::{CancelOrder, EnterOrder};

#[derive(Parser, Debug)]
#[command(
    name = "restart-bench",
    about = "tpx node restart: snapshot + tail vs full replay"
)]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Records after the snapshot.
    #[arg(long, default_value_t = 1_000_000)]
    tail: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 100)]
    accounts: u32,
    /// Resting orders the mix holds the book at.
    #[arg(long, default_value_t = 100_000)]
    resting: usize,
    #[arg(long, default_value_t = 100_000)]
    checkpoint_every: u64,
    /// The `tpx` binary (default: `tpx` next to this one).
    #[arg(long)]
    tpx: Option<PathBuf>,
    /// Default: a fresh folder under the temp dir, removed after.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    keep: bool,
    /// Writes the log, the config and the image into `--dir`, then stops (no node started):
    /// for profiling a start by hand (`tpx node --config DIR/node-snapshot.toml`).
    #[arg(long)]
    prepare_only: bool,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Serialize)]
struct ImageReport {
    seq: u64,
    bytes: usize,
    resting_orders: usize,
    /// `NodeCopy::image` (engine copy, state hashes, session tables), ms.
    image_ms: f64,
    encode_ms: f64,
    /// Temporary file, fsync, rename, folder fsync.
    write_ms: f64,
}

#[derive(Serialize)]
struct Run {
    start_to_login_ms: f64,
    /// Where the start's time went: ms from process start to each of the node's lines (as
    /// read from its stdout; absent lines are left out).
    phases: Phases,
    /// The node's REPLAYED line.
    replayed: String,
    checkpoints_matched: u64,
    checkpoint_mismatches: u64,
}

/// Process start → the node's lines, ms (`None`: the line did not come).
#[derive(Serialize, Default)]
struct Phases {
    /// `SNAPSHOT start from`: the loader has the image restored and confirmed.
    snapshot_loaded_ms: Option<f64>,
    /// `log ... holds`: the sequencing stage has the log open and, from an image, the replay
    /// positioned after it.
    log_open_ms: Option<f64>,
    /// `REPLAYED`: the shards hold every record of the log.
    replayed_ms: Option<f64>,
    /// `ROLE primary`: the term is granted.
    primary_ms: Option<f64>,
    /// `listening on`: the address the bench logs in to (printed once the gateways serve).
    listening_ms: Option<f64>,
}

impl Phases {
    fn note(&mut self, line: &str, at_ms: f64) {
        let slot = if line.contains("SNAPSHOT start from") {
            &mut self.snapshot_loaded_ms
        } else if line.contains(" holds seq ") {
            &mut self.log_open_ms
        } else if line.contains("REPLAYED") {
            &mut self.replayed_ms
        } else if line.contains("ROLE primary") {
            &mut self.primary_ms
        } else if line.contains("listening on") {
            &mut self.listening_ms
        } else {
            return;
        };
        slot.get_or_insert(at_ms);
    }
}

#[derive(Serialize)]
struct Report {
    records: u64,
    tail: u64,
    log_bytes: u64,
    build_s: f64,
    image: ImageReport,
    snapshot_runs: Vec<Run>,
    full_runs: Vec<Run>,
    /// From the image, on the log as retention leaves it (`keep = 1`: the segments wholly
    /// before the image deleted): the start's log recovery scans only what is left.
    snapshot_pruned_runs: Vec<Run>,
    pruned_log_bytes: u64,
    snapshot_p50_ms: f64,
    full_p50_ms: f64,
    snapshot_pruned_p50_ms: f64,
    ratio: f64,
    ratio_pruned: f64,
    /// Every run's shard matched every checkpoint it replayed, the last naming the
    /// uninterrupted run's final hash.
    state_hash_ok: bool,
    acceptance_1500ms: bool,
    acceptance_10pct: bool,
    acceptance_pruned_1500ms: bool,
    acceptance_pruned_10pct: bool,
    loadavg_1m: f64,
}

const ACCOUNTS_TOKEN_RATE: u32 = 1_000_000;

fn config_text(cpu: usize, metrics: u16, snapshots: bool, every: u64) -> String {
    let snaps = if snapshots {
        // Restore only: the node's own thread takes no image during the run.
        "[snapshots]\nevery_records = 1000000000000\nkeep = 3\ndelete_segments = false\n"
    } else {
        ""
    };
    format!(
        r#"listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
journal_capacity = 1024
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
[replication]
log_dir = "log"
write = "buffered"
checkpoint_every = {every}
[stats]
prometheus = "127.0.0.1:{metrics}"
{snaps}[risk]
fee_account = 900
liquidation_account = 901
fee_tiers = 2
assets = [1, 2, 3]
"#
    )
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tpx-restart-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let res = bench(&a, &dir);
    if !a.keep && !a.prepare_only {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let Some(rep) = res? else {
        return Ok(());
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&rep).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{} records, tail {}: start to login from the snapshot p50 {:.0} ms, full replay \
             p50 {:.0} ms (ratio {:.3}); image {} bytes of {} resting orders in {:.1} ms \
             (+ encode {:.1} ms, write {:.1} ms); state hash ok {}",
            rep.records,
            rep.tail,
            rep.snapshot_p50_ms,
            rep.full_p50_ms,
            rep.ratio,
            rep.image.bytes,
            rep.image.resting_orders,
            rep.image.image_ms,
            rep.image.encode_ms,
            rep.image.write_ms,
            rep.state_hash_ok
        );
    }
    if !rep.state_hash_ok {
        return Err("state hash mismatch".into());
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn bench(a: &Args, dir: &Path) -> Result<Option<Report>, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let cpu = 0;
    let metrics = free_port();
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(
            &demo_accounts(a.accounts),
            ACCOUNTS_TOKEN_RATE,
        ))
        .map_err(|x| e(&x))?,
    )
    .map_err(|x| e(&x))?;
    let snap_cfg = dir.join("node-snapshot.toml");
    let full_cfg = dir.join("node-full.toml");
    std::fs::write(
        &snap_cfg,
        config_text(cpu, metrics, true, a.checkpoint_every),
    )
    .map_err(|x| e(&x))?;
    std::fs::write(
        &full_cfg,
        config_text(cpu, metrics, false, a.checkpoint_every),
    )
    .map_err(|x| e(&x))?;
    let cfg = NodeConfig::load(&snap_cfg)?;
    let plan = ShardPlan::of(&cfg, 1)?;
    let sessions = tpx_node::gateway::session::SessionSettings::of(&cfg);
    let routing = Routing::new(&plan.instrument_shards, 1);
    let mut copy = NodeCopy::fresh(&plan, 1, &sessions, &routing)?;
    let snaps_dir = cfg
        .snapshots
        .as_ref()
        .map(|s| s.dir_for(&cfg.replication().log_dir))
        .ok_or("no [snapshots]")?;

    // 1. The log, the uninterrupted run and the image.
    let t_build = Instant::now();
    let log_dir = cfg.replication().log_dir;
    let st = FileStorage::new(&log_dir, WriteMode::Buffered).map_err(|x| e(&x))?;
    let (mut log, _) = SegmentLog::open(st, LogConfig::default()).map_err(|x| e(&x))?;
    let mut buf = vec![0u8; 1024];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(a.seed);
    let every = a.checkpoint_every.max(1);
    let snap_at = (a.records.saturating_sub(a.tail) / every).max(1) * every;
    let mut seq = 0u64;
    let mut prev_cp = (0u64, 0u64);
    let mut image = None;
    let mut next_cl = vec![0u64; a.accounts as usize + 1];
    let mut live: Vec<(u32, u64)> = Vec::with_capacity(a.resting * 2);
    let mut append =
        |input: Input, account: u32, origin: u32, seq: &mut u64| -> Result<LogRecord, String> {
            *seq += 1;
            let rec = LogRecord {
                meta: RecordMeta {
                    seq: *seq,
                    term: 1,
                    timestamp_ns: 1_000_000_000 + *seq * 1_000,
                    origin,
                    account,
                    session: if account == 0 { 0 } else { 1 },
                },
                input,
            };
            let n = encode_record(&rec, &mut buf).map_err(|x| format!("{x:?}"))?;
            log.append(&buf[..n]).map_err(|x| e(&x))?;
            if *seq % 65_536 == 0 {
                log.commit().map_err(|x| e(&x))?;
            }
            Ok(rec)
        };
    let mut request_id = 0u64;
    let mut checkpoints: Vec<u64> = Vec::new();
    for acct in 1..=a.accounts {
        for asset in [1u32, 2] {
            request_id += 1;
            let d = Input::Deposit(Deposit {
                amount: 1_000_000_000_000_000,
                request_id,
                account: acct,
                asset,
            });
            let r = append(d, 0, 0, &mut seq)?;
            copy.apply(&r);
        }
    }
    while seq < a.records {
        if (seq + 1) % every == 0 {
            let cp = Input::Checkpoint(Checkpoint {
                prev_seq: prev_cp.0,
                prev_hash: prev_cp.1,
            });
            let r = append(cp, 0, 0, &mut seq)?;
            copy.apply(&r);
            prev_cp = (r.meta.seq, copy.state_hashes()[0]);
            checkpoints.push(r.meta.seq);
            if image.is_none() && r.meta.seq >= snap_at {
                let t = Instant::now();
                let snap = copy.image(&r, plan.config_digest);
                let image_ms = ms(t.elapsed());
                let t = Instant::now();
                let bytes = encode_node_snapshot(&snap).map_err(|x| e(&x))?;
                let encode_ms = ms(t.elapsed());
                let t = Instant::now();
                tpx_node::shard::snapshot::write_image(&snaps_dir, r.meta.seq, &bytes)
                    .map_err(|x| e(&x))?;
                image = Some(ImageReport {
                    seq: r.meta.seq,
                    bytes: bytes.len(),
                    resting_orders: snap
                        .shards
                        .iter()
                        .flat_map(|s| s.engine.instruments.iter())
                        .map(|i| i.orders.len())
                        .sum(),
                    image_ms,
                    encode_ms,
                    write_ms: ms(t.elapsed()),
                });
            }
            continue;
        }
        let account = rng.gen_range(1..=a.accounts);
        let k = rng.gen_range(0..100u32);
        let input = if k < 35 && !live.is_empty() {
            let i = rng.gen_range(0..live.len());
            let (acct, cl) = live.swap_remove(i);
            let r = append(
                Input::CancelOrder(CancelOrder {
                    cl_ord_id: cl,
                    remaining_qty: 0,
                }),
                acct,
                acct,
                &mut seq,
            )?;
            copy.apply(&r);
            continue;
        } else {
            next_cl[account as usize] += 1;
            let cl = next_cl[account as usize];
            let buy = rng.gen_bool(0.5);
            let rest = live.len() < a.resting || k < 70;
            let (price, tif) = if rest && k >= 15 {
                let off = rng.gen_range(1..2_000i64);
                (
                    if buy { 60_000 - off } else { 60_000 + off },
                    TimeInForce::Gtc,
                )
            } else {
                (if buy { 61_000 } else { 59_000 }, TimeInForce::Ioc)
            };
            if tif == TimeInForce::Gtc {
                live.push((account, cl));
            }
            EnterOrder {
                cl_ord_id: cl,
                price,
                qty: rng.gen_range(1..10u64),
                instrument: 1,
                side: if buy { Side::Buy } else { Side::Sell },
                kind: OrderKind::Limit,
                tif,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
            }
        };
        let r = append(Input::EnterOrder(input), account, account, &mut seq)?;
        copy.apply(&r);
    }
    // Two closing checkpoints: the last names the final state's hash.
    for _ in 0..2 {
        let cp = Input::Checkpoint(Checkpoint {
            prev_seq: prev_cp.0,
            prev_hash: prev_cp.1,
        });
        let r = append(cp, 0, 0, &mut seq)?;
        copy.apply(&r);
        prev_cp = (r.meta.seq, copy.state_hashes()[0]);
        checkpoints.push(r.meta.seq);
    }
    log.commit().map_err(|x| e(&x))?;
    drop(log);
    let build_s = t_build.elapsed().as_secs_f64();
    let image = image.ok_or("no image was taken (tail longer than the log?)")?;
    if a.prepare_only {
        println!(
            "prepared {seq} records, image at seq {} in {}",
            image.seq,
            dir.display()
        );
        return Ok(None);
    }
    // The log was just written through the page cache (~1 GB for 10 M records): the kernel
    // writes it back over the next seconds, beside the first starts. A node restarts on a log
    // long on disk, so the starts begin once it is (the first start from the image was the
    // slowest of its five in 6 of 8 rounds before).
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let log_bytes = dir_bytes(&log_dir)?;
    // Checkpoints a replay compares: every one but the first (which names none); from the
    // image, those after it.
    let compared_full = checkpoints.len().saturating_sub(1) as u64;
    let compared_tail = checkpoints.iter().filter(|&&c| c > image.seq).count() as u64;

    // 2. The node, from the image and from the whole log.
    let tpx = match &a.tpx {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|x| e(&x))?
            .with_file_name("tpx"),
    };
    let mut snapshot_runs = Vec::new();
    let mut full_runs = Vec::new();
    // Each start appends its term's first records (a `TermStart`, a `Checkpoint`, whose state
    // hash the next start's replay computes on its core): cut back after every run, so that
    // every start replays the same log.
    for _ in 0..a.runs.max(1) {
        snapshot_runs.push(start_node(&tpx, &snap_cfg, metrics)?);
        cut_log(&log_dir, seq)?;
        full_runs.push(start_node(&tpx, &full_cfg, metrics)?);
        cut_log(&log_dir, seq)?;
    }
    let p50 = |runs: &[Run]| {
        let mut v: Vec<f64> = runs.iter().map(|r| r.start_to_login_ms).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Then the log as retention leaves it.
    tpx_node::shard::snapshot::prune_segments(&log_dir, image.seq).map_err(|x| e(&x))?;
    let pruned_log_bytes = dir_bytes(&log_dir)?;
    let mut snapshot_pruned_runs = Vec::new();
    for _ in 0..a.runs.max(1) {
        snapshot_pruned_runs.push(start_node(&tpx, &snap_cfg, metrics)?);
        cut_log(&log_dir, seq)?;
    }
    let snapshot_pruned_p50_ms = p50(&snapshot_pruned_runs);
    let snapshot_p50_ms = p50(&snapshot_runs);
    let full_p50_ms = p50(&full_runs);
    let ok = |runs: &[Run], min: u64| {
        runs.iter()
            .all(|r| r.checkpoint_mismatches == 0 && r.checkpoints_matched >= min)
    };
    let state_hash_ok = ok(&snapshot_runs, compared_tail)
        && ok(&snapshot_pruned_runs, compared_tail)
        && ok(&full_runs, compared_full)
        && snapshot_runs.iter().all(|r| {
            r.replayed
                .contains(&format!("after snapshot seq={}", image.seq))
        });
    let ratio = snapshot_p50_ms / full_p50_ms;
    let ratio_pruned = snapshot_pruned_p50_ms / full_p50_ms;
    Ok(Some(Report {
        records: seq,
        tail: seq - image.seq,
        log_bytes,
        build_s: (build_s * 10.0).round() / 10.0,
        image,
        acceptance_1500ms: snapshot_p50_ms <= 1_500.0,
        acceptance_10pct: ratio <= 0.10,
        acceptance_pruned_1500ms: snapshot_pruned_p50_ms <= 1_500.0,
        acceptance_pruned_10pct: ratio_pruned <= 0.10,
        snapshot_runs,
        full_runs,
        snapshot_pruned_runs,
        pruned_log_bytes,
        snapshot_p50_ms,
        full_p50_ms,
        snapshot_pruned_p50_ms,
        ratio: (ratio * 1e4).round() / 1e4,
        ratio_pruned: (ratio_pruned * 1e4).round() / 1e4,
        state_hash_ok,
        loadavg_1m: loadavg_1m(),
    }))
}

/// Starts `tpx node --config cfg`, polls a login until accepted, reads the checkpoint counters,
/// SIGKILLs it.
fn start_node(tpx: &Path, cfg: &Path, metrics: u16) -> Result<Run, String> {
    let t0 = Instant::now();
    let mut child = Command::new(tpx)
        .args(["node", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|x| format!("{}: {x}", tpx.display()))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let (tx_at, rx_at) = std::sync::mpsc::channel::<(String, f64)>();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            // Stamped as read, not as the polling loop gets to it.
            let _ = tx_at.send((l.clone(), ms(t0.elapsed())));
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut addr = None;
    let deadline = t0 + Duration::from_secs(600);
    let res = loop {
        while let Ok(l) = rx.try_recv() {
            if let Some(a) = l.strip_prefix("tpx node: listening on ") {
                addr = a.trim().parse::<std::net::SocketAddr>().ok();
            }
            lines.push(l);
        }
        if let Some(addr) = addr {
            let c = ClientConfig::new(addr, 1, 99, token_from_str("demo-token-1"));
            if Client::connect_at(c, 0).is_ok() {
                break Ok(t0.elapsed());
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            break Err(format!("the node exited ({st}): {lines:?}"));
        }
        if Instant::now() > deadline {
            break Err("no login within 600 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let page = scrape(metrics).unwrap_or_default();
    // SAFETY: kill(2) of the child this function started, by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    if let Some(a) = addr {
        // A SIGKILLed node leaves its stats file (named for its ephemeral order-entry port).
        let _ = std::fs::remove_file(tpx_node::observe::stats::default_path(a.port()));
    }
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(l);
    }
    let took = res?;
    let mut phases = Phases::default();
    while let Ok((l, at)) = rx_at.try_recv() {
        phases.note(&l, at);
    }
    Ok(Run {
        start_to_login_ms: ms(took),
        phases,
        replayed: lines
            .iter()
            .find(|l| l.contains("REPLAYED"))
            .cloned()
            .unwrap_or_default(),
        checkpoints_matched: metric(&page, "tpx_node_checkpoints_matched_total"),
        checkpoint_mismatches: metric(&page, "tpx_node_checkpoint_mismatches_total"),
    })
}

/// Drops the records a node appended after the prepared log's last seq.
fn cut_log(log_dir: &Path, seq: u64) -> Result<(), String> {
    let st = FileStorage::new(log_dir, WriteMode::Buffered).map_err(|x| x.to_string())?;
    let (mut log, _) = SegmentLog::open(st, LogConfig::default()).map_err(|x| x.to_string())?;
    log.truncate_after(seq).map_err(|x| x.to_string())
}

fn dir_bytes(dir: &Path) -> Result<u64, String> {
    Ok(std::fs::read_dir(dir)
        .map_err(|x| x.to_string())?
        .flatten()
        .filter_map(|d| d.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum())
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
