//! The io_uring log ([`UringLog`]): the safety rules of log format 2 hold for it as for the
//! threaded writer. On real files (O_DIRECT | O_DSYNC, the writes go through io_uring): what it
//! reported durable survives a drop with a commit in flight and reopens; a torn tail is cut.
//! Through the storage seam (`MemStorage`, written inline by the same start/finish steps): a
//! commit torn at any sector never takes what was durable before it, a crash keeps exactly
//! what was reported durable, a full disk stops durability and loses nothing.

use std::time::Duration;

use tpx_sequencer::log::{replay, segment_name, LogConfig, SegmentLog};
use tpx_sequencer::storage::{Fault, FileStorage, MemStorage, Storage, WriteMode};
use tpx_sequencer::uring::UringLog;
use tpx_sequencer::writer::LogSink;
use tpx_wire::log_record::{encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::CancelOrder;

fn rec(seq: u64, term: u64) -> Vec<u8> {
    let r = LogRecord {
        meta: RecordMeta {
            seq,
            term,
            timestamp_ns: 1_000 + seq,
            origin: 3,
            account: 4,
            session: 0,
        },
        input: Input::CancelOrder(CancelOrder {
            cl_ord_id: seq,
            remaining_qty: 0,
        }),
    };
    let mut b = vec![0u8; 1024];
    let n = encode_record(&r, &mut b).unwrap();
    b.truncate(n);
    b
}

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        write_buf_bytes: 16 << 10,
        zero_fill: false,
    }
}

fn seqs<S: Storage + Send>(st: S) -> Vec<u64> {
    let mut v = Vec::new();
    replay(st, 1, |r| v.push(r.meta.seq)).unwrap();
    v
}

fn direct(dir: &std::path::Path) -> FileStorage {
    FileStorage::new(dir, WriteMode::DirectSync).unwrap()
}

/// Real files through io_uring, across several segment rolls: every record reads back, and
/// the commits are group commits (fewer than the records).
#[test]
fn uring_log_round_trips_across_segments_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut probe = direct(dir.path());
    let f = probe.open("probe", true).unwrap();
    assert!(
        probe.direct_fd(f).is_some(),
        "O_DIRECT refused here: io_uring is not exercised"
    );
    probe.close(f);
    probe.remove("probe").unwrap();
    let (mut log, _) = UringLog::open(direct(dir.path()), small()).unwrap();
    let n = 3_000u64;
    for s in 1..=n {
        log.append(&rec(s, 1)).unwrap();
        log.poll();
    }
    assert!(log.sync(Duration::from_secs(10)), "{:?}", log.error());
    assert_eq!(log.durable_seq(), n);
    assert!(log.commits() < n, "group commits: {}", log.commits());
    assert!(log.inner().segment_names().len() > 3);
    let mut out = Vec::new();
    log.read(1, 10, &mut out).unwrap();
    assert_eq!(
        out.iter().map(|r| r.meta.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    drop(log);
    assert_eq!(seqs(direct(dir.path())), (1..=n).collect::<Vec<_>>());
}

/// The process stops with a commit in flight (dropped without a sync): everything reported
/// durable before is on disk, the log reopens, and it holds a prefix of what was appended.
#[test]
fn a_drop_with_a_commit_in_flight_keeps_what_was_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = UringLog::open(direct(dir.path()), small()).unwrap();
    let mut durable = 0;
    for s in 1..=500u64 {
        log.append(&rec(s, 1)).unwrap();
        log.poll();
        durable = log.durable_seq();
    }
    drop(log);
    let (log, r) = SegmentLog::open(direct(dir.path()), small()).unwrap();
    assert!(
        r.last_seq >= durable,
        "lost durable records: {r:?} < {durable}"
    );
    assert_eq!(r.torn, None);
    drop(log);
    assert_eq!(
        seqs(direct(dir.path())),
        (1..=r.last_seq).collect::<Vec<_>>()
    );
}

/// A commit torn on real files (its second block never written, as a power loss can leave
/// it): recovery cuts it and the io_uring log goes on from there.
#[test]
fn a_torn_tail_written_by_uring_is_cut_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = UringLog::open(direct(dir.path()), small()).unwrap();
    for s in 1..=5u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.sync(Duration::from_secs(5)));
    for s in 6..=125u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.sync(Duration::from_secs(5)));
    assert_eq!(log.commits(), 2);
    drop(log);
    let path = dir.path().join(segment_name(1));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096 * 2..4096 * 3].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (mut log, r) = UringLog::open(direct(dir.path()), small()).unwrap();
    assert_eq!(r.last_seq, 5);
    assert_eq!(r.torn.as_ref().map(|t| t.1), Some(4096));
    log.append(&rec(6, 2)).unwrap();
    assert!(log.sync(Duration::from_secs(5)));
    drop(log);
    let (_, r) = SegmentLog::open(direct(dir.path()), small()).unwrap();
    assert_eq!((r.last_seq, r.last_term, r.torn), (6, 2, None));
}

/// Through the storage seam: a commit torn at any sector (the power goes during it) never
/// takes records that were durable before it, and never keeps part of itself.
#[test]
fn a_torn_uring_commit_never_takes_records_that_were_durable_before_it() {
    for (before, torn_records) in [(3u64, 1u64), (40, 90), (60, 5)] {
        for sector in 0..24u32 {
            let mem = MemStorage::new();
            let (mut log, _) = UringLog::open(mem.clone(), small()).unwrap();
            for s in 1..=before {
                log.append(&rec(s, 1)).unwrap();
                if s % 7 == 0 {
                    log.poll();
                }
            }
            assert!(log.sync(Duration::from_secs(5)));
            for s in before + 1..=before + torn_records {
                log.append(&rec(s, 1)).unwrap();
            }
            mem.inject(Fault::Torn { sector }, 1);
            log.poll();
            assert!(log.error().is_some(), "the torn write reports");
            assert_eq!(log.durable_seq(), before);
            drop(log);
            mem.crash();
            let case = format!("{before} durable, torn at sector {sector}");
            let (_, r) = SegmentLog::open(mem.clone(), small())
                .unwrap_or_else(|e| panic!("{case}: open refused: {e}"));
            assert!(r.last_seq >= before, "{case}: lost durable records: {r:?}");
            assert!(
                r.last_seq == before || r.last_seq == before + torn_records,
                "{case}: part of a commit kept: {r:?}"
            );
            assert_eq!(seqs(mem), (1..=r.last_seq).collect::<Vec<_>>(), "{case}");
        }
    }
}

/// A full disk: nothing new becomes durable and the error is said; once space is back the
/// retried commit writes everything, nothing lost, in order.
#[test]
fn a_full_disk_stops_durability_and_loses_nothing() {
    let mem = MemStorage::new();
    let (mut log, _) = UringLog::open(mem.clone(), small()).unwrap();
    for s in 1..=10u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.sync(Duration::from_secs(5)));
    mem.inject(Fault::NoSpace, 3);
    for s in 11..=20u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    log.poll();
    assert_eq!(log.durable_seq(), 10);
    assert!(log.error().is_some());
    assert!(log.sync(Duration::from_secs(5)), "{:?}", log.error());
    assert_eq!((log.durable_seq(), log.error()), (20, None));
    drop(log);
    mem.crash();
    assert_eq!(seqs(mem), (1..=20).collect::<Vec<_>>());
}

/// A crash keeps exactly what was reported durable or more, never less, and a truncation
/// (a returning old primary) cuts durably with the io_uring log.
#[test]
fn crash_keeps_what_was_reported_durable_and_truncation_cuts() {
    let mem = MemStorage::new();
    let (mut log, _) = UringLog::open(mem.clone(), small()).unwrap();
    for s in 1..=200u64 {
        log.append(&rec(s, 1)).unwrap();
        if s % 3 == 0 {
            log.poll();
        }
    }
    assert!(log.sync(Duration::from_secs(5)));
    log.truncate_after(150).unwrap();
    assert_eq!((log.last_seq(), log.durable_seq()), (150, 150));
    for s in 151..=160u64 {
        log.append(&rec(s, 2)).unwrap();
    }
    log.poll();
    let durable = log.durable_seq();
    drop(log);
    mem.crash();
    let (_, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert!(
        r.last_seq >= durable && r.last_seq <= 160,
        "{r:?} vs {durable}"
    );
    assert_eq!(seqs(mem), (1..=r.last_seq).collect::<Vec<_>>());
}

/// Several commits in flight, the power goes: the later one reached the disk whole, the
/// earlier one not at all (or torn). The later commit's trailer says it was submitted while
/// the earlier one's records were not durable, so this is a torn tail, not lost acknowledged
/// data: recovery cuts back to before the earlier commit and the log goes on there.
#[test]
fn a_later_commit_that_was_in_flight_with_a_torn_one_is_cut_with_it() {
    for torn_sector in [None, Some(0u32), Some(3)] {
        let mem = MemStorage::new();
        let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
        for s in 1..=5u64 {
            log.append(&rec(s, 1)).unwrap();
        }
        log.commit().unwrap();
        for s in 6..=40u64 {
            log.append(&rec(s, 1)).unwrap();
        }
        let w1 = log.start_commit(4).unwrap().unwrap();
        for s in 41..=50u64 {
            log.append(&rec(s, 1)).unwrap();
        }
        let w2 = log.start_commit(4).unwrap().unwrap();
        assert_eq!(log.in_flight(), 2);
        assert!(
            w2.offset >= w1.offset + w1.len as u64,
            "fresh blocks after the first"
        );
        // The later commit completes; the earlier never does (or is torn).
        log.write_in_flight(&w2).unwrap();
        assert_eq!(
            log.finish_commit(w2.id, Ok(())).unwrap(),
            5,
            "not durable past a hole"
        );
        if let Some(sector) = torn_sector {
            mem.inject(Fault::Torn { sector }, 1);
            assert!(log.write_in_flight(&w1).is_err());
        }
        drop(log);
        mem.crash();
        let case = format!("torn {torn_sector:?}");
        let (mut log, r) = SegmentLog::open(mem.clone(), small())
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
        assert_eq!(r.last_seq, 5, "{case}");
        assert_eq!(r.torn.as_ref().map(|t| t.1), Some(w1.offset), "{case}");
        log.append(&rec(6, 2)).unwrap();
        log.commit().unwrap();
        drop(log);
        assert_eq!(seqs(mem), (1..=6).collect::<Vec<_>>(), "{case}");
    }
}

/// The same damage when the later commit was submitted after the earlier one was durable (its
/// trailer counts no unacknowledged record before it): acknowledged records are damaged, and
/// open refuses, as with one commit in flight.
#[test]
fn damage_a_later_commit_proves_durable_is_refused_with_several_in_flight() {
    let mem = MemStorage::new();
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    for s in 1..=20u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    let w1 = log.start_commit(4).unwrap().unwrap();
    log.write_in_flight(&w1).unwrap();
    log.finish_commit(w1.id, Ok(())).unwrap();
    for s in 21..=30u64 {
        log.append(&rec(s, 1)).unwrap();
    }
    let w2 = log.start_commit(4).unwrap().unwrap();
    log.write_in_flight(&w2).unwrap();
    log.finish_commit(w2.id, Ok(())).unwrap();
    assert_eq!(log.durable_seq(), 30);
    drop(log);
    let name = segment_name(1);
    let mut bytes = mem.contents(&name).unwrap();
    bytes[w1.offset as usize + 100] ^= 0x10;
    mem.set_contents(&name, bytes);
    match SegmentLog::open(mem.clone(), small()) {
        Err(tpx_sequencer::LogError::Corrupt { reason, .. }) => {
            assert!(reason.contains("complete later commit"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Completions out of order: the durable seq moves only over commits that completed with all
/// the ones before them.
#[test]
fn durable_moves_only_over_a_completed_prefix() {
    let mem = MemStorage::new();
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    let mut ws = Vec::new();
    for k in 0..3u64 {
        for s in 1 + k * 10..=10 + k * 10 {
            log.append(&rec(s, 1)).unwrap();
        }
        ws.push(log.start_commit(3).unwrap().unwrap());
    }
    log.append(&rec(31, 1)).unwrap();
    assert_eq!(log.start_commit(3).unwrap(), None, "at most 3 in flight");
    for w in [ws[2], ws[1]] {
        log.write_in_flight(&w).unwrap();
        assert_eq!(log.finish_commit(w.id, Ok(())).unwrap(), 0);
    }
    log.write_in_flight(&ws[0]).unwrap();
    assert_eq!(log.finish_commit(ws[0].id, Ok(())).unwrap(), 30);
    assert_eq!((log.in_flight(), log.commits()), (0, 3));
    drop(log);
    mem.crash();
    assert_eq!(seqs(mem), (1..=30).collect::<Vec<_>>());
}

/// On real files with several commits in flight through io_uring (records appended between
/// polls as fast as the loop goes): more than one commit was in flight at a time, and every
/// record reads back after a drop with commits in flight.
#[test]
fn uring_keeps_several_commits_in_flight_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = UringLog::open_with_depth(direct(dir.path()), small(), 4).unwrap();
    let mut most = 0;
    let mut durable = 0;
    for s in 1..=4_000u64 {
        log.append(&rec(s, 1)).unwrap();
        log.poll();
        most = most.max(log.inner().in_flight());
        assert!(log.durable_seq() >= durable);
        durable = log.durable_seq();
    }
    assert!(most > 1, "at most {most} in flight");
    drop(log);
    let (_, r) = SegmentLog::open(direct(dir.path()), small()).unwrap();
    assert!(r.last_seq >= durable, "{r:?} < {durable}");
    assert_eq!(
        seqs(direct(dir.path())),
        (1..=r.last_seq).collect::<Vec<_>>()
    );
}

/// The core's own calls never make a zero-filled segment. With `log_writer = "uring"` the
/// sequencing core commits; a roll with no spare ready (the log's first segment, a node whose
/// preparer is still held, a roll faster than the preparer) made its segment inline:
/// preallocated and zero-filled, 64 MiB written and synced inside the core's `poll`, 20-250 ms
/// with no heartbeat and no read of the peer (a `tpx up` pair with this writer lost its primary
/// at start to the standby's 20 ms timeout in 3 of 3 runs). Now such a roll preallocates only;
/// the zero-filled segments come from the preparer, ahead of later rolls.
#[test]
fn a_roll_in_the_cores_poll_never_zero_fills_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 64 << 20,
        write_buf_bytes: 1 << 20,
        zero_fill: true,
    };
    let slot = std::sync::Arc::new(tpx_sequencer::log::SpareSlot::held());
    let (mut log, _) =
        UringLog::open_trusting(direct(dir.path()), cfg, 4, 0, slot.clone()).unwrap();
    // No spare ready when the roll comes (the one an empty log makes at open is taken back).
    slot.ready
        .store(false, std::sync::atomic::Ordering::Release);
    let t0 = std::time::Instant::now();
    log.append(&rec(1, 1)).unwrap();
    log.poll();
    let first = t0.elapsed();
    assert!(log.sync(Duration::from_secs(10)), "{:?}", log.error());
    assert!(
        first < Duration::from_millis(10),
        "the core's first append and poll took {first:?} (a segment made inline)"
    );
    let size = std::fs::metadata(dir.path().join(segment_name(1)))
        .unwrap()
        .len();
    assert_eq!(size, 64 << 20, "the segment is preallocated whole");
    drop(log);
    assert_eq!(seqs(direct(dir.path())), vec![1]);
}

/// An empty log's first segment is zero-filled all the same: the io_uring log makes it at
/// open (as the spare the first roll takes), not in the core's first poll and not left
/// preallocated only (whose O_DSYNC commits each convert unwritten extents: `log-bench`
/// `commit_unwritten` p50 1.6x a zero-filled segment's).
#[test]
fn an_empty_uring_log_makes_its_first_segment_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 4 << 20,
        write_buf_bytes: 1 << 20,
        zero_fill: true,
    };
    let slot = std::sync::Arc::new(tpx_sequencer::log::SpareSlot::held());
    let (mut log, _) =
        UringLog::open_trusting(direct(dir.path()), cfg, 4, 0, slot.clone()).unwrap();
    assert!(
        slot.ready.load(std::sync::atomic::Ordering::Acquire),
        "a spare is ready at open"
    );
    let spare = dir.path().join(tpx_sequencer::log::SPARE_NAME);
    assert_eq!(std::fs::metadata(&spare).unwrap().len(), 4 << 20);
    log.append(&rec(1, 1)).unwrap();
    log.poll();
    assert!(log.sync(Duration::from_secs(10)), "{:?}", log.error());
    assert!(!spare.exists(), "the first roll took the spare");
    assert!(dir.path().join(segment_name(1)).exists());
    drop(log);
    assert_eq!(seqs(direct(dir.path())), vec![1]);
    // A log that has segments makes none at open.
    let slot = std::sync::Arc::new(tpx_sequencer::log::SpareSlot::held());
    let (log, _) = UringLog::open_trusting(direct(dir.path()), cfg, 4, 0, slot.clone()).unwrap();
    assert!(!slot.ready.load(std::sync::atomic::Ordering::Acquire));
    drop(log);
}
