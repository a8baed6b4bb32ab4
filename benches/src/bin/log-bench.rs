//! `log-bench`: what one durable commit of the input log costs on this disk, next to the disk's
//! own floor, in one run. Single-threaded, so the numbers are the disk's and the log's, not the
//! scheduler's (unlike `e2e-bench`, which needs two idle cores).
//!
//! - `floor`: a 4 KiB O_DIRECT | O_DSYNC overwrite at the start of a preallocated file in the
//!   log's directory (what one commit cannot beat).
//! - `commit_spare`: append one order record and commit it, over enough records to roll
//!   segments, with the spare segment made between commits (untimed: the threaded writer's
//!   preparer thread makes it beside the writer, `log::make_spare`).
//! - `commit_no_spare`: the same without the spare: each roll preallocates and zero-fills its
//!   segment inside the commit that needs it (the log before the spare).
//! - `commit_unwritten`: the same with each segment preallocated only, never zero-filled (what
//!   a roll with no spare ready makes where the committing thread is the sequencing core,
//!   `SegmentLog::zero_fill_inline(false)`, the io_uring log): each O_DSYNC commit converts
//!   unwritten extents.
//! - `roll_commits_*_us`: the commits that rolled a segment, one by one (the logs take turns
//!   commit by commit, so all meet the same disk).
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin log-bench -- --json
//! ```

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use tpx_sequencer::log::{make_spare, parse_segment_name, LogConfig, SegmentLog, SpareSlot};
use tpx_sequencer::storage::{AlignedBuf, FileStorage, WriteMode, BLOCK};
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::{encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::EnterOrder;

#[derive(Parser, Debug)]
#[command(
    name = "log-bench",
    about = "input-log commit latency vs the disk floor"
)]
struct Args {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Directory on the log's filesystem (default: the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Segment size in MiB (the node's default is 64).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Commits per log run (one record each; a commit takes a 4 KiB block, so
    /// `segment_mib * 256` commits fill a segment).
    #[arg(long, default_value_t = 40_000)]
    commits: u64,
    /// Floor samples.
    #[arg(long, default_value_t = 20_000)]
    floor_samples: u64,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn stats(h: &Histogram<u64>) -> serde_json::Value {
    let us = |ns: u64| ns as f64 / 1_000.0;
    serde_json::json!({
        "samples": h.len(),
        "p50_us": us(h.value_at_quantile(0.5)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
    })
}

/// 4 KiB O_DIRECT | O_DSYNC overwrites of one block of a preallocated file.
fn disk_floor(dir: &Path, samples: u64) -> Histogram<u64> {
    let path = dir.join("floor.bin");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(&path)
        .expect("open the floor file (O_DIRECT needs a filesystem that has it)");
    let mut buf = AlignedBuf::new(BLOCK);
    buf[0] = 1;
    f.write_all_at(&buf[..BLOCK], 0).expect("first write");
    let mut h = hist();
    for i in 0..samples {
        buf[1] = i as u8;
        let t = Instant::now();
        f.write_all_at(&buf[..BLOCK], 0).expect("floor write");
        h.record(t.elapsed().as_nanos() as u64).expect("record");
    }
    let _ = std::fs::remove_file(path);
    h
}

fn record(seq: u64) -> Vec<u8> {
    let rec = LogRecord {
        meta: RecordMeta {
            seq,
            term: 1,
            timestamp_ns: seq,
            origin: 1,
            account: 1,
            session: 0,
        },
        input: Input::EnterOrder(EnterOrder {
            cl_ord_id: seq,
            price: 50_000,
            qty: 1,
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            tif: TimeInForce::Ioc,
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        }),
    };
    let mut b = vec![0u8; 256];
    let n = encode_record(&rec, &mut b).expect("encode");
    b.truncate(n);
    b
}

/// A fresh log in `dir` (O_DIRECT | O_DSYNC, zero-filled segments, as the node runs it).
fn open_log(dir: &Path, a: &Args) -> SegmentLog<FileStorage> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("log dir");
    let st = FileStorage::new(dir, WriteMode::DirectSync).expect("storage");
    SegmentLog::open(st, cfg(a)).expect("open log").0
}

fn cfg(a: &Args) -> LogConfig {
    LogConfig {
        segment_bytes: a.segment_mib << 20,
        zero_fill: true,
        ..LogConfig::default()
    }
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| parse_segment_name(&e.file_name().to_string_lossy()).is_some())
            .count()
    })
}

/// Appends and commits one record; returns the ns it took and whether it rolled a segment.
fn commit_one(log: &mut SegmentLog<FileStorage>, dir: &Path, seq: u64) -> (u64, bool) {
    let before = segments(dir);
    let r = record(seq);
    let t = Instant::now();
    log.append(&r).expect("append");
    log.commit().expect("commit");
    let ns = t.elapsed().as_nanos() as u64;
    (ns, segments(dir) > before)
}

fn main() {
    let a = Args::parse();
    let base = a
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("tpx-log-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("bench dir");
    let floor = disk_floor(&base, a.floor_samples);
    // The logs take turns, commit by commit, so all meet the same disk (its speed drifts by
    // 10x on a shared VM).
    let (dir_s, dir_p, dir_u) = (
        base.join("spare"),
        base.join("plain"),
        base.join("unwritten"),
    );
    let (mut with, mut without) = (open_log(&dir_s, &a), open_log(&dir_p, &a));
    let mut unwritten = open_log(&dir_u, &a);
    unwritten.zero_fill_inline(false);
    let slot = Arc::new(SpareSlot::default());
    with.use_spares(slot.clone());
    let mut spare_st = FileStorage::new(&dir_s, WriteMode::DirectSync).expect("storage");
    let no_stop = AtomicBool::new(false);
    let (mut spare, mut plain, mut unzeroed) = (hist(), hist(), hist());
    // The commits that rolled a segment, µs each.
    let (mut rolls_spare, mut rolls_plain) = (Vec::new(), Vec::new());
    for seq in 1..=a.commits {
        if !slot.ready.load(Ordering::Acquire) {
            make_spare(&mut spare_st, &cfg(&a), &no_stop).expect("spare");
            slot.ready.store(true, Ordering::Release);
        }
        let (ns, rolled) = commit_one(&mut with, &dir_s, seq);
        spare.record(ns).expect("record");
        if rolled {
            rolls_spare.push(ns / 1_000);
        }
        let (ns, rolled) = commit_one(&mut without, &dir_p, seq);
        plain.record(ns).expect("record");
        if rolled {
            rolls_plain.push(ns / 1_000);
        }
        let (ns, _) = commit_one(&mut unwritten, &dir_u, seq);
        unzeroed.record(ns).expect("record");
    }
    drop((with, without, unwritten));
    let _ = std::fs::remove_dir_all(&base);
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64;
    let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99) as f64;
    let out = serde_json::json!({
        "floor": stats(&floor),
        "commit_spare": stats(&spare),
        "commit_no_spare": stats(&plain),
        "commit_unwritten": stats(&unzeroed),
        "roll_commits_spare_us": rolls_spare,
        "roll_commits_no_spare_us": rolls_plain,
        "ratio_spare_p50": p50(&spare) / p50(&floor),
        "ratio_spare_p99": p99(&spare) / p99(&floor),
        "ratio_unwritten_over_spare_p50": p50(&unzeroed) / p50(&spare),
        "max_ratio_no_spare_over_spare": plain.max() as f64 / spare.max() as f64,
    });
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    }
}
