//! The input log's safety rules (issue 15, items 8 and 9): a truncation keeps what it was told
//! to keep, even records the threaded writer had not taken yet; a torn write never takes
//! records that were durable before it; damage to records a later commit followed is refused
//! at open, a torn last commit is cut.

use std::time::Duration;

use tpx_sequencer::log::{replay, segment_name, LogConfig, LogError, LogReader, SegmentLog};
use tpx_sequencer::storage::{Fault, MemStorage, Storage};
use tpx_sequencer::writer::{IdleMode, LogSink, ThreadedLog};
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

/// Item 8: a standby appends records; the writer is busy with an earlier write, so they wait in
/// its pending buffer; `truncate_after(keep)` with `keep` inside the pending records must keep
/// them (the new primary counts them as held): durable, readable, and `last_seq` is `keep`.
#[test]
fn threaded_truncate_keeps_pending_records_it_was_told_to_keep() {
    let mem = MemStorage::new();
    let (mut log, _) = ThreadedLog::open(mem.clone(), small(), IdleMode::Park).unwrap();
    for s in 1..=5 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.sync(Duration::from_secs(5)));
    // Hold the writer in its next write (record 6) while 7..=20 arrive behind it.
    mem.set_write_delay(Some(Duration::from_millis(300)));
    log.append(&rec(6, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for s in 7..=20 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.durable_seq() < 15, "the writer took the records early");
    log.truncate_after(15).unwrap();
    mem.set_write_delay(None);
    assert_eq!(log.last_seq(), 15, "records up to the cut were dropped");
    assert!(log.sync(Duration::from_secs(5)));
    assert_eq!(log.durable_seq(), 15);
    let mut out = Vec::new();
    log.read(1, 100, &mut out).unwrap();
    assert_eq!(
        out.iter().map(|r| r.meta.seq).collect::<Vec<_>>(),
        (1..=15).collect::<Vec<_>>()
    );
    // The log goes on from the cut, in a new term.
    log.append(&rec(16, 2)).unwrap();
    assert!(log.sync(Duration::from_secs(5)));
    drop(log);
    mem.crash();
    let (_, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!((r.last_seq, r.last_term), (16, 2));
    assert_eq!(seqs(mem), (1..=16).collect::<Vec<_>>());
}

/// Item 8, the same with a cut below everything pending: the pending records are dropped, the
/// durable ones above the cut too.
#[test]
fn threaded_truncate_below_pending_drops_them() {
    let mem = MemStorage::new();
    let (mut log, _) = ThreadedLog::open(mem.clone(), small(), IdleMode::Park).unwrap();
    for s in 1..=10 {
        log.append(&rec(s, 1)).unwrap();
    }
    assert!(log.sync(Duration::from_secs(5)));
    mem.set_write_delay(Some(Duration::from_millis(200)));
    log.append(&rec(11, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for s in 12..=20 {
        log.append(&rec(s, 1)).unwrap();
    }
    log.truncate_after(8).unwrap();
    mem.set_write_delay(None);
    assert_eq!(log.last_seq(), 8);
    assert_eq!(log.durable_seq(), 8);
    log.append(&rec(9, 2)).unwrap();
    assert!(log.sync(Duration::from_secs(5)));
    drop(log);
    mem.crash();
    assert_eq!(seqs(mem), (1..=9).collect::<Vec<_>>());
}

/// Commits `per_commit` records at a time, seqs `from..from + n` (term 1).
fn write_commits<S: Storage>(log: &mut SegmentLog<S>, from: u64, n: u64, per_commit: u64) {
    for s in from..from + n {
        log.append(&rec(s, 1)).unwrap();
        if (s - from + 1) % per_commit == 0 {
            log.commit().unwrap();
        }
    }
    log.commit().unwrap();
}

/// Item 9: the power goes while a commit is written, tearing it at any 512-byte sector (the
/// sectors before reach the disk, that one gets garbage, the later ones keep their old bytes).
/// Whatever was durable before that commit survives, and the log opens. The first case is the
/// old layout's hole: the commit after a small one rewrote the block holding durable records,
/// and garbage in its first sector took them.
#[test]
fn a_torn_commit_never_takes_records_that_were_durable_before_it() {
    for (before, per_commit_before, torn_records) in [(3u64, 3u64, 1u64), (40, 7, 90), (60, 60, 5)]
    {
        for sector in 0..24u32 {
            let mem = MemStorage::new();
            let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
            write_commits(&mut log, 1, before, per_commit_before);
            assert_eq!(log.durable_seq(), before);
            for s in before + 1..=before + torn_records {
                log.append(&rec(s, 1)).unwrap();
            }
            mem.inject(Fault::Torn { sector }, 1);
            assert!(log.commit().is_err(), "the torn write reports");
            assert_eq!(log.durable_seq(), before);
            drop(log);
            mem.crash();
            let case = format!("{before} durable, torn at sector {sector}");
            let (log, r) = match SegmentLog::open(mem.clone(), small()) {
                Ok(x) => x,
                Err(e) => panic!("{case}: open refused: {e}"),
            };
            assert!(r.last_seq >= before, "{case}: lost durable records: {r:?}");
            assert!(
                r.last_seq == before || r.last_seq == before + torn_records,
                "{case}: part of a commit kept: {r:?}"
            );
            assert_eq!(log.durable_seq(), r.last_seq);
            drop(log);
            assert_eq!(seqs(mem), (1..=r.last_seq).collect::<Vec<_>>(), "{case}");
        }
    }
}

/// A torn commit, then the log goes on: the next commit starts where the torn one did and the
/// log reads back whole.
#[test]
fn after_a_torn_commit_the_log_goes_on() {
    let mem = MemStorage::new();
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    write_commits(&mut log, 1, 10, 4);
    for s in 11..=30 {
        log.append(&rec(s, 1)).unwrap();
    }
    mem.inject(Fault::Torn { sector: 1 }, 1);
    assert!(log.commit().is_err());
    drop(log);
    mem.crash();
    let (mut log, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!(r.last_seq, 10);
    assert!(r.torn.is_some(), "{r:?}");
    for s in 11..=12 {
        log.append(&rec(s, 2)).unwrap();
    }
    log.commit().unwrap();
    drop(log);
    mem.crash();
    let (_, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!((r.last_seq, r.last_term, r.torn), (12, 2, None));
    assert_eq!(seqs(mem), (1..=12).collect::<Vec<_>>());
}

/// Offsets of each record and each commit trailer in a segment's bytes (format 2: records,
/// a 32-byte trailer starting `tpxcmt02`, zeros to the next 4 KiB boundary).
fn layout(bytes: &[u8]) -> (Vec<(u64, usize)>, Vec<usize>) {
    let mut recs = Vec::new();
    let mut trailers = Vec::new();
    let mut off = 0;
    while off + 8 <= bytes.len() && bytes[off..off + 8] != [0u8; 8] {
        if &bytes[off..off + 8] == b"tpxcmt02" {
            trailers.push(off);
            off = (off + 32).div_ceil(4096) * 4096;
            continue;
        }
        let (r, len) = tpx_wire::log_record::decode_record(&bytes[off..]).unwrap();
        recs.push((r.meta.seq, off));
        off += len;
    }
    (recs, trailers)
}

/// Damage to a record of a commit that a later complete commit follows is lost acknowledged
/// data (the later commit was written only after it was durable): open refuses, naming it.
/// The same damage in the last commit cannot be told from a torn write: it is cut, and said.
#[test]
fn damage_before_a_complete_commit_refuses_damage_in_the_last_one_is_a_torn_tail() {
    let mem = MemStorage::new();
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    write_commits(&mut log, 1, 15, 5);
    drop(log);
    let name = segment_name(1);
    let good = mem.contents(&name).unwrap();
    let (recs, trailers) = layout(&good);
    assert_eq!(trailers.len(), 3);
    assert!(trailers.iter().all(|t| (t + 32) % 8 == 0));
    let off_of = |seq: u64| recs.iter().find(|r| r.0 == seq).unwrap().1;

    // Record 7 (second commit, complete, followed by the third).
    let mut bad = good.clone();
    bad[off_of(7) + 50] ^= 0x20;
    mem.set_contents(&name, bad);
    match SegmentLog::open(mem.clone(), small()) {
        Err(LogError::Corrupt {
            segment,
            offset,
            seq,
            reason,
        }) => {
            assert_eq!(
                (segment.as_str(), offset, seq),
                (name.as_str(), off_of(7) as u64, 7)
            );
            assert!(reason.contains("complete later commit"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The second commit's trailer.
    let mut bad = good.clone();
    bad[trailers[1] + 9] ^= 1;
    mem.set_contents(&name, bad);
    assert!(matches!(
        SegmentLog::open(mem.clone(), small()),
        Err(LogError::Corrupt { seq: 11, .. })
    ));
    // Record 12, in the last commit: cut back to the end of the second commit.
    let mut bad = good.clone();
    bad[off_of(12) + 50] ^= 0x20;
    mem.set_contents(&name, bad);
    let (_, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!(r.last_seq, 10);
    assert_eq!(
        r.torn.as_ref().map(|t| t.1),
        Some((trailers[1] as u64 + 32).div_ceil(4096) * 4096)
    );
}

/// A torn multi-block commit whose blocks reached the disk out of order (the trailer's block
/// did, one before it did not): a torn tail, not corruption.
#[test]
fn a_commit_torn_out_of_order_is_a_torn_tail() {
    let mem = MemStorage::new();
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    write_commits(&mut log, 1, 5, 5);
    write_commits(&mut log, 6, 120, 120);
    drop(log);
    let name = segment_name(1);
    let mut bytes = mem.contents(&name).unwrap();
    let (_, trailers) = layout(&bytes);
    assert_eq!(trailers.len(), 2);
    assert!(trailers[1] >= 4096 * 3, "the second commit spans blocks");
    // The second commit's second block never reached the disk.
    bytes[4096 * 2..4096 * 3].fill(0);
    mem.set_contents(&name, bytes);
    let (mut log, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!(r.last_seq, 5);
    assert_eq!(r.torn.as_ref().map(|t| t.1), Some(4096));
    // Cut for good: nothing of it is read back, and the log goes on there.
    log.append(&rec(6, 2)).unwrap();
    log.commit().unwrap();
    drop(log);
    let (_, r) = SegmentLog::open(mem.clone(), small()).unwrap();
    assert_eq!((r.last_seq, r.torn), (6, None));
    assert_eq!(seqs(mem), (1..=6).collect::<Vec<_>>());
}

/// Each commit writes whole blocks after the previous commit's: no write ever starts inside
/// or before a block an earlier commit wrote (within a segment).
#[test]
fn commits_never_rewrite_an_earlier_commits_blocks() {
    let mem = MemStorage::new();
    mem.record_writes(true);
    let (mut log, _) = SegmentLog::open(mem.clone(), small()).unwrap();
    for s in 1..=400u64 {
        log.append(&rec(s, 1)).unwrap();
        if s % (1 + s % 5) == 0 {
            log.commit().unwrap();
        }
    }
    log.commit().unwrap();
    let writes = mem.take_writes();
    assert!(writes.len() > 50);
    for w in &writes {
        assert_eq!((w.offset % 4096, w.len % 4096), (0, 0), "{w:?}");
    }
    for w in writes.windows(2) {
        if w[0].name == w[1].name {
            assert_eq!(w[1].offset, w[0].offset + w[0].len as u64, "{w:?}");
        }
    }
    drop(log);
    assert_eq!(seqs(mem), (1..=400).collect::<Vec<_>>());
}

/// A log directory of format 2 (`*.seg2`: the framing of today, but marks, liquidations and
/// fee tiers logged without their request id) is refused with a clear error naming its format,
/// by the log and by a reader, not read as an empty log.
#[test]
fn a_format_2_log_is_refused_clearly() {
    let src = MemStorage::new();
    let (mut log, _) = SegmentLog::open(src.clone(), small()).unwrap();
    for s in 1..=5 {
        log.append(&rec(s, 1)).unwrap();
    }
    log.commit().unwrap();
    drop(log);
    let name = segment_name(1);
    let old = name.replace(".seg3", ".seg2");
    let mem = MemStorage::new();
    mem.set_contents(&old, src.contents(&name).unwrap());
    match SegmentLog::open(mem.clone(), small()) {
        Err(e @ LogError::OldFormat { format: 2, .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("format 2") && msg.contains(&old) && msg.contains("format 3"),
                "{msg}"
            );
        }
        other => panic!("expected OldFormat, got {other:?}"),
    }
    let Err(e) = LogReader::new(mem.clone()) else {
        panic!("a reader must refuse it too");
    };
    assert!(e.to_string().contains("format 2"), "{e}");
}

/// A log directory of the old format (records back to back in `*.seg`) is refused with a
/// clear error, not read as one long torn commit.
#[test]
fn an_old_format_log_is_refused_clearly() {
    let mem = MemStorage::new();
    let mut old = rec(1, 1);
    old.extend_from_slice(&rec(2, 1));
    old.resize(16 << 10, 0);
    mem.set_contents("00000000000000000001.seg", old);
    match SegmentLog::open(mem.clone(), small()) {
        Err(e @ LogError::OldFormat { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("format 1") && msg.contains("00000000000000000001.seg"),
                "{msg}"
            );
        }
        other => panic!("expected OldFormat, got {other:?}"),
    }
}
