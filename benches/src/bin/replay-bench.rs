//! `replay-bench`: how fast a node replays its input log, and how long a restart takes.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin replay-bench -- --json
//! ```
//!
//! 1. Generates the exchange-core-style order mix (`engine-bench`'s `exchange-core-mix`: GTC
//!    and IOC limit orders, cancels and moves around a 1,000-order book) and writes it as
//!    `--records` log records through the real `SegmentLog` (64 MiB segments, CRC32C records,
//!    buffered writes + fdatasync per 64 K-record commit) while applying it to an engine, taking
//!    a snapshot (rkyv, `Engine::snapshot()`) `--tail` records before the end.
//! 2. Replay: reads the whole log from the files (256 KiB sequential reads), checks each CRC,
//!    decodes and applies every record to a fresh engine: records/s (best and median of
//!    `--runs`, page cache warm), plus one read + CRC + decode pass without the engine and one
//!    cold pass after `posix_fadvise(DONTNEED)` on the segment files.
//! 3. Restart: recovery scan of the log (`SegmentLog::open`) + the latest snapshot (load,
//!    CRC, rkyv validation, `Engine::restore`, hash check) + replay of the tail, and the state
//!    hash against the uninterrupted run. Also the same without a snapshot (full replay).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde::Serialize;
use tpx_benches::replay::record_of;
use tpx_benches::workload::{generate, Workload};
use tpx_sequencer::apply::{Applier, EngineApplier};
use tpx_sequencer::log::{replay, LogConfig, LogReader, SegmentLog};
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::restart::{restore, take_snapshot};
use tpx_sequencer::snapshot::{encode_snapshot, Snapshot};
use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_wire::log_record::encode_record;

/// The issue's floor for replay speed.
const TARGET_RECORDS_PER_SEC: f64 = 10e6;

#[derive(Parser, Debug)]
#[command(
    name = "replay-bench",
    about = "input-log replay speed and restart time"
)]
struct Args {
    /// Log records (the stream's setup orders included).
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Records after the snapshot (the tail a restart replays).
    #[arg(long, default_value_t = 1_000_000)]
    tail: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the log (default: a fresh directory under the temp dir; removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Rate {
    records_per_sec: f64,
    seconds: f64,
}

/// This thread's CPU time (ns): on a shared machine, records per CPU second say what a
/// dedicated core would do; wall-clock rates count the time other processes held the core.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Serialize)]
struct Report {
    records: u64,
    log_bytes: u64,
    segments: usize,
    write: Rate,
    /// Read + CRC + decode + apply, page cache warm: best and median of the runs.
    replay: Rate,
    replay_median: Rate,
    replay_runs_records_per_sec: Vec<f64>,
    /// The best run's records per second of this thread's CPU time.
    replay_records_per_cpu_sec: f64,
    read_decode_records_per_cpu_sec: f64,
    /// The same after dropping the files from the page cache.
    replay_cold: Rate,
    /// Read + CRC + decode only.
    read_decode: Rate,
    target_records_per_sec: f64,
    meets_target: bool,
    snapshot: SnapshotReport,
    restart: RestartReport,
    restart_without_snapshot_ms: f64,
    /// After retention deleted the segments before the snapshot.
    restart_after_retention: RestartReport,
    state_hash_ok: bool,
}

#[derive(Serialize)]
struct SnapshotReport {
    seq: u64,
    resting_orders: usize,
    bytes: usize,
    /// `Engine::snapshot()`: the pause of whoever takes it (the standby's engine).
    engine_snapshot_us: f64,
    /// rkyv encode + CRC.
    encode_us: f64,
    /// The whole `take_snapshot` (snapshot, encode, write, fsync, rename).
    take_ms: f64,
}

#[derive(Serialize)]
struct RestartReport {
    log_open_ms: f64,
    snapshot_load_ms: f64,
    tail_records: u64,
    tail_replay_ms: f64,
    total_ms: f64,
}

fn rate(n: u64, secs: f64) -> Rate {
    Rate {
        records_per_sec: (n as f64 / secs).round(),
        seconds: (secs * 1e4).round() / 1e4,
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 1e2
}

fn drop_cache(dir: &std::path::Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(f) = std::fs::File::open(e.path()) {
                // SAFETY: fadvise on an open descriptor; it only drops clean cached pages.
                unsafe {
                    libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
                }
            }
        }
    }
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tpx-replay-{}", std::process::id())));
    let log_dir = dir.join("log");
    let snap_dir = dir.join("snap");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&snap_dir).map_err(|e| e.to_string())?;
    let res = bench(&a, &log_dir, &snap_dir);
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let rep = res?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&rep).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{} records ({} MiB): replay {:.2} M/s (median {:.2}, cold {:.2}, read+decode {:.2}); \
             restart from snapshot + {} records {:.1} ms (without snapshot {:.1} ms); hash ok {}",
            rep.records,
            rep.log_bytes >> 20,
            rep.replay.records_per_sec / 1e6,
            rep.replay_median.records_per_sec / 1e6,
            rep.replay_cold.records_per_sec / 1e6,
            rep.read_decode.records_per_sec / 1e6,
            rep.restart.tail_records,
            rep.restart.total_ms,
            rep.restart_without_snapshot_ms,
            rep.state_hash_ok
        );
    }
    if !rep.state_hash_ok {
        return Err("state hash mismatch".into());
    }
    Ok(())
}

fn bench(
    a: &Args,
    log_dir: &std::path::Path,
    snap_dir: &std::path::Path,
) -> Result<Report, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    // The stream: setup (the resting book) then the mix, `records` in all.
    let setup_len = Workload::ExchangeCoreMix.params()?.resting_target as u64;
    let stream = generate(
        Workload::ExchangeCoreMix,
        a.seed,
        a.records.saturating_sub(setup_len) as usize,
    )?;
    let cfg = stream.config.clone();
    let snap_at = a.records.saturating_sub(a.tail).max(1);

    // Write the log (and run the engine: the uninterrupted state, and the snapshot).
    let st = FileStorage::new(log_dir, WriteMode::Buffered).map_err(|x| e(&x))?;
    let (mut log, _) = SegmentLog::open(st, LogConfig::default()).map_err(|x| e(&x))?;
    let mut app = EngineApplier::new(cfg.clone()).map_err(|x| format!("{x:?}"))?;
    let mut buf = vec![0u8; 1024];
    let mut snap = None;
    let mut snaps = FileStorage::new(snap_dir, WriteMode::Buffered).map_err(|x| e(&x))?;
    let t0 = Instant::now();
    let mut seq = 0u64;
    for cmd in stream.setup.iter().chain(&stream.ops) {
        let Some(r) = record_of(cmd, seq + 1, (seq + 1) * 1_000) else {
            continue;
        };
        seq += 1;
        let n = encode_record(&r, &mut buf).map_err(|x| format!("{x:?}"))?;
        log.append(&buf[..n]).map_err(|x| e(&x))?;
        if seq % 65_536 == 0 {
            log.commit().map_err(|x| e(&x))?;
        }
        app.apply(&r);
        if seq == snap_at {
            let t = Instant::now();
            let es = app.engine.snapshot();
            let engine_snapshot_us = t.elapsed().as_nanos() as f64 / 1e3;
            let s = Snapshot::of(seq, 1, r.meta.timestamp_ns, &app.engine, &Dedup::default());
            let t = Instant::now();
            let bytes = encode_snapshot(&s).map_err(|x| e(&x))?.len();
            let encode_us = t.elapsed().as_nanos() as f64 / 1e3;
            let t = Instant::now();
            take_snapshot(&mut snaps, &app, 1, r.meta.timestamp_ns, &Dedup::default())
                .map_err(|x| e(&x))?;
            snap = Some(SnapshotReport {
                seq,
                resting_orders: es.instruments.iter().map(|i| i.orders.len()).sum(),
                bytes,
                engine_snapshot_us: (engine_snapshot_us * 10.0).round() / 10.0,
                encode_us: (encode_us * 10.0).round() / 10.0,
                take_ms: ms(t.elapsed().as_nanos() as u64),
            });
        }
    }
    log.commit().map_err(|x| e(&x))?;
    let write_secs = t0.elapsed().as_secs_f64();
    let records = seq;
    let final_hash = app.state_hash();
    let segments = log.segment_names().len();
    drop(log);
    drop(stream);
    let log_bytes: u64 = std::fs::read_dir(log_dir)
        .map_err(|x| e(&x))?
        .flatten()
        .filter_map(|d| d.metadata().ok())
        .map(|m| m.len())
        .sum();
    let open = || FileStorage::new(log_dir, WriteMode::Buffered).map_err(|x| e(&x));

    // Read + CRC + decode only.
    let t = Instant::now();
    let c0 = thread_cpu_ns();
    let mut r = LogReader::new(open()?).map_err(|x| e(&x))?;
    let mut n = 0u64;
    while let Some(rec) = r.next().map_err(|x| e(&x))? {
        n += rec.meta.seq & 1;
    }
    std::hint::black_box(n);
    let read_decode = rate(records, t.elapsed().as_secs_f64());
    let read_decode_cpu = records as f64 / ((thread_cpu_ns() - c0) as f64 / 1e9);

    // Full replay into a fresh engine.
    let mut ok = true;
    let mut runs = Vec::new();
    let mut cpu = Vec::new();
    let mut replay_once = || -> Result<(f64, f64), String> {
        let mut app = EngineApplier::new(cfg.clone()).map_err(|x| format!("{x:?}"))?;
        let t = Instant::now();
        let c0 = thread_cpu_ns();
        let last = replay(open()?, 1, |r| app.apply(r)).map_err(|x| e(&x))?;
        let secs = t.elapsed().as_secs_f64();
        let cpu_secs = (thread_cpu_ns() - c0) as f64 / 1e9;
        ok &= last == records && app.state_hash() == final_hash;
        Ok((secs, cpu_secs))
    };
    drop_cache(log_dir);
    let cold = replay_once()?.0;
    for _ in 0..a.runs.max(1) {
        let (w, c) = replay_once()?;
        runs.push(w);
        cpu.push(c);
    }
    let best_cpu = cpu.iter().copied().fold(f64::INFINITY, f64::min);
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let best = sorted[0];
    let median = sorted[sorted.len() / 2];

    // Restart: recovery scan + snapshot + tail.
    let t = Instant::now();
    let (log, _) = SegmentLog::open(open()?, LogConfig::default()).map_err(|x| e(&x))?;
    let log_open_ns = t.elapsed().as_nanos() as u64;
    drop(log);
    let rs = restore(open()?, &mut snaps, cfg.clone()).map_err(|x| e(&x))?;
    ok &= rs.app.applied_seq == records && rs.app.state_hash() == final_hash;
    ok &= rs.snapshot_seq == Some(snap_at);
    let restart = RestartReport {
        log_open_ms: ms(log_open_ns),
        snapshot_load_ms: ms(rs.snapshot_ns),
        tail_records: rs.replayed,
        tail_replay_ms: ms(rs.replay_ns),
        total_ms: ms(log_open_ns + rs.snapshot_ns + rs.replay_ns),
    };
    let t = Instant::now();
    let rs = restore(
        open()?,
        &mut FileStorage::new(snap_dir.join("none"), WriteMode::Buffered).map_err(|x| e(&x))?,
        cfg.clone(),
    )
    .map_err(|x| e(&x))?;
    let without = t.elapsed().as_nanos() as u64 + log_open_ns;
    ok &= rs.app.state_hash() == final_hash;

    // Retention: the segments before the snapshot go; a restart scans and replays the rest.
    {
        let (mut log, _) = SegmentLog::open(open()?, LogConfig::default()).map_err(|x| e(&x))?;
        tpx_sequencer::restart::prune_log(&mut log, snap_at).map_err(|x| e(&x))?;
    }
    let t = Instant::now();
    let (log, _) = SegmentLog::open(open()?, LogConfig::default()).map_err(|x| e(&x))?;
    let open_ns = t.elapsed().as_nanos() as u64;
    drop(log);
    let rs = restore(open()?, &mut snaps, cfg.clone()).map_err(|x| e(&x))?;
    ok &= rs.app.applied_seq == records && rs.app.state_hash() == final_hash;
    let restart_after_retention = RestartReport {
        log_open_ms: ms(open_ns),
        snapshot_load_ms: ms(rs.snapshot_ns),
        tail_records: rs.replayed,
        tail_replay_ms: ms(rs.replay_ns),
        total_ms: ms(open_ns + rs.snapshot_ns + rs.replay_ns),
    };

    let replay = rate(records, best);
    Ok(Report {
        records,
        log_bytes,
        segments,
        write: rate(records, write_secs),
        meets_target: replay.records_per_sec >= TARGET_RECORDS_PER_SEC,
        replay,
        replay_median: rate(records, median),
        replay_runs_records_per_sec: runs.iter().map(|s| (records as f64 / s).round()).collect(),
        replay_cold: rate(records, cold),
        replay_records_per_cpu_sec: (records as f64 / best_cpu).round(),
        read_decode_records_per_cpu_sec: read_decode_cpu.round(),
        restart_after_retention,
        read_decode,
        target_records_per_sec: TARGET_RECORDS_PER_SEC,
        snapshot: snap.ok_or("no snapshot taken (tail >= records?)")?,
        restart,
        restart_without_snapshot_ms: ms(without),
        state_hash_ok: ok,
    })
}
