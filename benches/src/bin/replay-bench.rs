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
//! 2. Replay (`tpx_sequencer::log::replay`: a reader thread reads 1 MiB chunks and checks each
//!    record's frame and CRC; the calling thread decodes in place and applies): records/s of
//!    wall-clock time (best and median of `--runs`, page cache warm, and one run cold after
//!    `posix_fadvise(DONTNEED)` on the segment files), records per CPU second (both threads),
//!    per-chunk rates (64 Ki records); read + CRC + decode without the engine (warm and cold);
//!    and the floor: the engine applying the same records already decoded in memory.
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
use tpx_sequencer::log::{replay, LogConfig, SegmentLog};
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

/// This process's CPU time (ns, all threads: replay's reader thread included): on a shared
/// machine, records per CPU second say what dedicated cores would do; wall-clock rates count
/// the time other processes held the cores.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Serialize)]
struct Report {
    /// `/proc/loadavg`'s 1-minute load at the start and at the end (the machine is shared).
    loadavg_1m_start: f64,
    loadavg_1m_end: f64,
    cpus: usize,
    records: u64,
    log_bytes: u64,
    segments: usize,
    write: Rate,
    /// Read + CRC + decode + apply (wall clock), page cache warm: best and median of the runs.
    records_per_sec: f64,
    replay: Rate,
    replay_median: Rate,
    replay_runs_records_per_sec: Vec<f64>,
    /// The best run's records per second of CPU time (both threads).
    replay_records_per_cpu_sec: f64,
    /// Per-chunk (64 Ki records) replay rate of the best run, records/s.
    replay_chunk_rate: ChunkRates,
    /// The same after dropping the files from the page cache.
    replay_cold: Rate,
    /// Read + CRC + decode only (no engine), warm (best of the runs) and cold.
    read_decode: Rate,
    read_decode_median: Rate,
    read_decode_records_per_cpu_sec: f64,
    read_decode_cold: Rate,
    /// The floor: the engine applying the records already decoded in memory (no log).
    engine_apply_floor: Rate,
    target_records_per_sec: f64,
    meets_target: bool,
    snapshot: SnapshotReport,
    restart: RestartReport,
    restart_without_snapshot_ms: f64,
    /// After retention deleted the segments before the snapshot.
    restart_after_retention: RestartReport,
    state_hash_ok: bool,
}

#[derive(Serialize, Default)]
struct ChunkRates {
    chunks: u64,
    min: u64,
    p1: u64,
    p50: u64,
    p99: u64,
    max: u64,
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
    /// `SegmentLog::open`: the recovery scan of every segment (every record's frame and CRC).
    log_open_ms: f64,
    log_open_records_per_sec: f64,
    /// Snapshot load + CRC + rkyv validation + `Engine::restore` + hash check.
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
            "{} records ({} MiB): replay {:.2} M/s (median {:.2}, cold {:.2}, read+decode {:.2}, \
             engine floor {:.2}); open {:.1} ms; restart from snapshot + {} records {:.1} ms \
             (without snapshot {:.1} ms); hash ok {}",
            rep.records,
            rep.log_bytes >> 20,
            rep.replay.records_per_sec / 1e6,
            rep.replay_median.records_per_sec / 1e6,
            rep.replay_cold.records_per_sec / 1e6,
            rep.read_decode.records_per_sec / 1e6,
            rep.engine_apply_floor.records_per_sec / 1e6,
            rep.restart.log_open_ms,
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
    let load0 = loadavg_1m();
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

    let runs_n = a.runs.max(1);

    // Read + CRC + decode only: cold once, then warm.
    let read_once = || -> Result<(f64, f64), String> {
        let t = Instant::now();
        let c0 = cpu_ns();
        let mut n = 0u64;
        let last = replay(open()?, 1, |r| n += r.meta.timestamp_ns & 1).map_err(|x| e(&x))?;
        std::hint::black_box(n);
        if last != records {
            return Err(format!("read {last} of {records} records"));
        }
        Ok((t.elapsed().as_secs_f64(), (cpu_ns() - c0) as f64 / 1e9))
    };
    drop_cache(log_dir);
    let read_cold = read_once()?.0;
    let mut read_runs = Vec::new();
    let mut read_cpu = f64::INFINITY;
    for _ in 0..runs_n {
        let (w, c) = read_once()?;
        read_runs.push(w);
        read_cpu = read_cpu.min(c);
    }
    read_runs.sort_by(f64::total_cmp);

    // Full replay into a fresh engine, with per-chunk rates.
    const CHUNK_RECORDS: u64 = 1 << 16;
    let mut ok = true;
    let mut replay_once = || -> Result<(f64, f64, Vec<u64>), String> {
        let mut app = EngineApplier::new(cfg.clone()).map_err(|x| format!("{x:?}"))?;
        let mut chunk_rates = Vec::with_capacity((records / CHUNK_RECORDS + 1) as usize);
        let t = Instant::now();
        let c0 = cpu_ns();
        let mut mark = Instant::now();
        let last = replay(open()?, 1, |r| {
            app.apply(r);
            if r.meta.seq % CHUNK_RECORDS == 0 {
                let now = Instant::now();
                let ns = now.duration_since(mark).as_nanos().max(1) as u64;
                chunk_rates.push(CHUNK_RECORDS * 1_000_000_000 / ns);
                mark = now;
            }
        })
        .map_err(|x| e(&x))?;
        let secs = t.elapsed().as_secs_f64();
        let cpu_secs = (cpu_ns() - c0) as f64 / 1e9;
        ok &= last == records && app.state_hash() == final_hash;
        Ok((secs, cpu_secs, chunk_rates))
    };
    drop_cache(log_dir);
    let cold = replay_once()?.0;
    let mut runs = Vec::new();
    let mut best_cpu = f64::INFINITY;
    let mut best_chunks = Vec::new();
    for _ in 0..runs_n {
        let (w, c, ch) = replay_once()?;
        if runs.iter().all(|&b| w < b) {
            best_chunks = ch;
        }
        runs.push(w);
        best_cpu = best_cpu.min(c);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let best = sorted[0];
    let median = sorted[sorted.len() / 2];
    let replay_chunk_rate = chunk_stats(&best_chunks);

    // The floor: the engine on the same records, decoded in memory beforehand.
    let engine_apply_floor = {
        let mut recs = Vec::with_capacity(records as usize);
        replay(open()?, 1, |r| recs.push(*r)).map_err(|x| e(&x))?;
        let mut best = f64::INFINITY;
        for _ in 0..runs_n {
            let mut app = EngineApplier::new(cfg.clone()).map_err(|x| format!("{x:?}"))?;
            let t = Instant::now();
            for r in &recs {
                app.apply(r);
            }
            best = best.min(t.elapsed().as_secs_f64());
            ok &= app.state_hash() == final_hash;
        }
        rate(records, best)
    };

    // Restart: recovery scan + snapshot + tail.
    let t = Instant::now();
    let (log, _) = SegmentLog::open(open()?, LogConfig::default()).map_err(|x| e(&x))?;
    let log_open_ns = t.elapsed().as_nanos() as u64;
    drop(log);
    let rs = restore(open()?, &mut snaps, cfg.clone()).map_err(|x| e(&x))?;
    ok &= rs.app.applied_seq == records && rs.app.state_hash() == final_hash;
    ok &= rs.snapshot_seq == Some(snap_at);
    let restart = restart_report(log_open_ns, records, &rs);
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
    let (log, rec) = SegmentLog::open(open()?, LogConfig::default()).map_err(|x| e(&x))?;
    let open_ns = t.elapsed().as_nanos() as u64;
    drop(log);
    let rs = restore(open()?, &mut snaps, cfg.clone()).map_err(|x| e(&x))?;
    ok &= rs.app.applied_seq == records && rs.app.state_hash() == final_hash;
    let restart_after_retention = restart_report(open_ns, rec.last_seq + 1 - rec.first_seq, &rs);

    let replay = rate(records, best);
    Ok(Report {
        loadavg_1m_start: load0,
        loadavg_1m_end: loadavg_1m(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        records,
        log_bytes,
        segments,
        write: rate(records, write_secs),
        meets_target: replay.records_per_sec >= TARGET_RECORDS_PER_SEC,
        records_per_sec: replay.records_per_sec,
        replay,
        replay_median: rate(records, median),
        replay_runs_records_per_sec: runs.iter().map(|s| (records as f64 / s).round()).collect(),
        replay_cold: rate(records, cold),
        replay_records_per_cpu_sec: (records as f64 / best_cpu).round(),
        replay_chunk_rate,
        read_decode: rate(records, read_runs[0]),
        read_decode_median: rate(records, read_runs[read_runs.len() / 2]),
        read_decode_records_per_cpu_sec: (records as f64 / read_cpu).round(),
        read_decode_cold: rate(records, read_cold),
        engine_apply_floor,
        restart_after_retention,
        target_records_per_sec: TARGET_RECORDS_PER_SEC,
        snapshot: snap.ok_or("no snapshot taken (tail >= records?)")?,
        restart,
        restart_without_snapshot_ms: ms(without),
        state_hash_ok: ok,
    })
}

fn restart_report(
    open_ns: u64,
    log_records: u64,
    rs: &tpx_sequencer::restart::Restored,
) -> RestartReport {
    RestartReport {
        log_open_ms: ms(open_ns),
        log_open_records_per_sec: (log_records as f64 * 1e9 / open_ns.max(1) as f64).round(),
        snapshot_load_ms: ms(rs.snapshot_ns),
        tail_records: rs.replayed,
        tail_replay_ms: ms(rs.replay_ns),
        total_ms: ms(open_ns + rs.snapshot_ns + rs.replay_ns),
    }
}

/// Percentiles of per-chunk rates (records/s).
fn chunk_stats(rates: &[u64]) -> ChunkRates {
    let Ok(mut h) = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3) else {
        return ChunkRates::default();
    };
    for &r in rates {
        let _ = h.record(r.max(1));
    }
    ChunkRates {
        chunks: h.len(),
        min: h.min(),
        p1: h.value_at_quantile(0.01),
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1.0)
}
