//! rkyv snapshots (validated on load) and restart = snapshot + log tail with a state hash equal
//! to an uninterrupted run; retention after a snapshot.

use tpx_sequencer::apply::{Applier, EngineApplier};
use tpx_sequencer::log::{replay, LogConfig, SegmentLog};
use tpx_sequencer::node::{demo_engine_config, Load};
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::restart::{prune_log, prune_snapshots, restore, take_snapshot};
use tpx_sequencer::snapshot::{
    decode_snapshot, encode_snapshot, load_latest, write_snapshot, Snapshot,
};
use tpx_sequencer::storage::MemStorage;
use tpx_wire::log_record::{encode_record, LogRecord, RecordMeta};

fn fill_log(mem: &MemStorage, n: u64) -> (u64, EngineApplier, Dedup) {
    fill_log_with(mem, n, LogConfig::default()).0
}

fn fill_log_with(
    mem: &MemStorage,
    n: u64,
    cfg: LogConfig,
) -> ((u64, EngineApplier, Dedup), SegmentLog<MemStorage>) {
    let (mut log, _) = SegmentLog::open(mem.clone(), cfg).unwrap();
    let load = Load::new(9, 1);
    let mut app = EngineApplier::new(demo_engine_config()).unwrap();
    let mut dedup = Dedup::default();
    let mut buf = vec![0u8; 1024];
    for seq in 1..=n {
        let r = LogRecord {
            meta: RecordMeta {
                seq,
                term: 1,
                timestamp_ns: seq * 10,
                origin: 9,
                account: 9,
            },
            input: load.request(seq),
        };
        let len = encode_record(&r, &mut buf).unwrap();
        log.append(&buf[..len]).unwrap();
        app.apply(&r);
        dedup.note(9, &r.input);
    }
    log.commit().unwrap();
    ((app.state_hash(), app, dedup), log)
}

#[test]
fn snapshot_round_trips_and_damage_is_refused() {
    let mem = MemStorage::new();
    let (_, app, dedup) = fill_log(&mem, 2_000);
    let s = Snapshot::of(2_000, 1, 20_000, &app.engine, &dedup);
    assert!(!s.engine.instruments[0].orders.is_empty());
    assert!(s.engine.complete);
    // The image restores an engine with the same state.
    let e = s.restore_engine(demo_engine_config()).unwrap();
    assert_eq!(e.state_hash(), app.state_hash());
    assert_eq!(e.snapshot(), app.engine.snapshot());
    let bytes = encode_snapshot(&s).unwrap();
    assert_eq!(decode_snapshot(&bytes).unwrap(), s);
    // Every single-byte flip and every cut is refused (CRC, then the rkyv validation).
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(decode_snapshot(&b).is_err(), "flip at {i}");
    }
    assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
    // A newer damaged snapshot falls back to the older valid one.
    let mut snaps = MemStorage::new();
    write_snapshot(&mut snaps, &s).unwrap();
    let mut newer = s.clone();
    newer.seq = 3_000;
    let name = write_snapshot(&mut snaps, &newer).unwrap();
    let mut b = snaps.contents(&name).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    snaps.set_contents(&name, b);
    assert_eq!(load_latest(&mut snaps).unwrap().unwrap().seq, 2_000);
}

/// Restart: the latest snapshot's hash is checked against a replay at its seq, and the replay
/// goes on through the log tail to the same hash as the run that never stopped.
#[test]
fn restart_reaches_the_uninterrupted_state_hash() {
    let mem = MemStorage::new();
    let (hash_at_1500, app, dedup) = fill_log(&mem, 1_500);
    let mut snaps = MemStorage::new();
    write_snapshot(&mut snaps, &Snapshot::of(1_500, 1, 0, &app.engine, &dedup)).unwrap();
    // The uninterrupted run goes on.
    let mem2 = MemStorage::new();
    let (hash_full, _, _) = fill_log(&mem2, 3_000);
    let (hash_again, _, _) = fill_log(&MemStorage::new(), 1_500);
    assert_eq!(hash_at_1500, hash_again);
    // "Restart" on the longer log: snapshot + replay.
    let snap = load_latest(&mut snaps).unwrap().unwrap();
    let mut a = EngineApplier::new(demo_engine_config()).unwrap();
    let mut checked = false;
    replay(mem2.clone(), 1, |r| {
        a.apply(r);
        if r.meta.seq == snap.seq {
            assert_eq!(
                a.state_hash(),
                snap.state_hash,
                "snapshot hash = replay hash"
            );
            checked = true;
        }
    })
    .unwrap();
    assert!(checked);
    assert_eq!(a.applied_seq, 3_000);
    assert_eq!(a.state_hash(), hash_full);
}

/// Restart from the snapshot + the tail (not the whole log) reaches the uninterrupted hash;
/// after retention deletes the segments before the snapshot, restart still works; a damaged
/// newest snapshot falls back to an older one, and none at all to a full replay.
#[test]
fn restart_from_snapshot_and_tail_after_retention() {
    let small = LogConfig {
        segment_bytes: 64 << 10,
        ..LogConfig::default()
    };
    // The uninterrupted run.
    let ((hash_full, _, _), _) = fill_log_with(&MemStorage::new(), 6_000, small);
    // The node: a snapshot at 4_000, then more records.
    let log_st = MemStorage::new();
    let ((_, app, dedup), _) = fill_log_with(&log_st, 4_000, small);
    let mut snaps = MemStorage::new();
    take_snapshot(&mut snaps, &app, 1, 0, &dedup).unwrap();
    let (mut log, _) = SegmentLog::open(log_st.clone(), small).unwrap();
    let load = Load::new(9, 1);
    let mut buf = vec![0u8; 1024];
    for seq in 4_001..=6_000u64 {
        let r = LogRecord {
            meta: RecordMeta {
                seq,
                term: 1,
                timestamp_ns: seq * 10,
                origin: 9,
                account: 9,
            },
            input: load.request(seq),
        };
        let len = encode_record(&r, &mut buf).unwrap();
        log.append(&buf[..len]).unwrap();
    }
    log.commit().unwrap();

    let r = restore(log_st.clone(), &mut snaps, demo_engine_config()).unwrap();
    assert_eq!(r.snapshot_seq, Some(4_000));
    assert_eq!(r.replayed, 2_000, "only the tail is replayed");
    assert_eq!(r.app.applied_seq, 6_000);
    assert_eq!(r.app.state_hash(), hash_full);

    // Retention: segments wholly before the snapshot go; restart still reaches the hash.
    let before = log.segment_names().len();
    let removed = prune_log(&mut log, 4_000).unwrap();
    assert!(removed > 0 && log.segment_names().len() == before - removed);
    assert!(log.first_seq() > 1 && log.first_seq() <= 4_001);
    let r = restore(log_st.clone(), &mut snaps, demo_engine_config()).unwrap();
    assert_eq!((r.app.applied_seq, r.app.state_hash()), (6_000, hash_full));

    // Snapshots kept: the newest few.
    take_snapshot(&mut snaps, &r.app, 1, 0, &dedup).unwrap();
    assert_eq!(prune_snapshots(&mut snaps, 1).unwrap(), 1);
    assert_eq!(load_latest(&mut snaps).unwrap().unwrap().seq, 6_000);

    // A damaged snapshot is not used: with the log pruned, restart must refuse to invent a
    // state (the log starts after seq 1), so it falls back to a full replay that fails.
    let name = tpx_sequencer::Storage::list(&mut snaps)
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".snap"))
        .unwrap();
    let mut b = snaps.contents(&name).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    snaps.set_contents(&name, b);
    assert!(restore(log_st.clone(), &mut snaps, demo_engine_config()).is_err());

    // On an unpruned log, no snapshot at all means a full replay to the same hash.
    let full_st = MemStorage::new();
    let _ = fill_log_with(&full_st, 6_000, small);
    let r = restore(full_st, &mut MemStorage::new(), demo_engine_config()).unwrap();
    assert_eq!(r.snapshot_seq, None);
    assert_eq!(r.replayed, 6_000);
    assert_eq!((r.app.applied_seq, r.app.state_hash()), (6_000, hash_full));
}
