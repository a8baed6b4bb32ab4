//! rkyv snapshots (validated on load) and restart = snapshot + log tail with a state hash equal
//! to an uninterrupted run; retention after a snapshot.

use tpx_sequencer::apply::{Applier, EngineApplier};
use tpx_sequencer::log::{replay, LogConfig, SegmentLog};
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::restart::{prune_log, prune_snapshots, restore, take_snapshot};
use tpx_sequencer::snapshot::{
    decode_snapshot, encode_snapshot, load_latest, write_snapshot, Snapshot,
};
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::testing::{demo_engine_config, Load};
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
                session: 0,
            },
            input: load.request(seq),
        };
        let len = encode_record(&r, &mut buf).unwrap();
        log.append(&buf[..len]).unwrap();
        app.apply(&r);
        dedup.note(9, &r.input, seq);
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
    assert!(s.engine.risk.is_none());
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
                session: 0,
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

mod risk {
    use tpx_engine::{
        Engine, EngineConfig, InstrumentKind, InstrumentRisk, InstrumentSpec, Outputs, RiskConfig,
    };
    use tpx_sequencer::apply::input_of;
    use tpx_sequencer::log::{replay, LogConfig, SegmentLog};
    use tpx_sequencer::replica::Dedup;
    use tpx_sequencer::snapshot::{
        decode_snapshot, encode_snapshot, Snapshot, SnapshotError, SNAPSHOT_FORMAT,
    };
    use tpx_sequencer::storage::MemStorage;
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::{
        encode_record, ApplyFunding, Deposit, Input, LogRecord, RecordMeta, SetMarkPrice,
    };
    use tpx_wire::order_entry::{CancelOrder, EnterOrder, ReplaceOrder};

    const SPOT: u32 = 1;
    const PERP: u32 = 3;
    const BTC: u32 = 1;
    const USDT: u32 = 2;
    const TRADERS: u64 = 8;

    fn engine_config() -> EngineConfig {
        let spec = |id, kind| InstrumentSpec {
            id,
            kind,
            tick_size: 1,
            lot_size: 1,
            min_price: 1,
            max_price: 1_000,
            min_qty: 1,
            max_qty: 1_000,
            min_notional: 0,
        };
        EngineConfig {
            instruments: vec![
                spec(
                    SPOT,
                    InstrumentKind::Spot {
                        base: BTC,
                        quote: USDT,
                    },
                ),
                spec(PERP, InstrumentKind::LinearPerp { settle: USDT }),
            ],
            max_orders: 4_096,
            max_accounts: 16,
        }
    }

    fn risk_config() -> RiskConfig {
        let mut spot = InstrumentRisk::new(SPOT);
        spot.fees = vec![tpx_engine::FeeRate {
            maker_ppm: -100,
            taker_ppm: 500,
        }];
        let mut perp = InstrumentRisk::new(PERP);
        perp.fees = spot.fees.clone();
        perp.max_position = 200;
        RiskConfig {
            assets: vec![BTC, USDT],
            instruments: vec![spot, perp],
            fee_tiers: 1,
            fee_account: 14,
            liquidation_account: 15,
        }
    }

    fn mix(x: u64) -> u64 {
        let mut z = x
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x1234_5678);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Record `seq` of a deterministic risk-on stream: deposits first, then spot and perpetual
    /// orders, replaces and cancels of 8 accounts, a mark price every 97 records and funding
    /// every 251.
    fn record(seq: u64) -> LogRecord {
        let r = mix(seq);
        let account = 1 + (r % TRADERS) as u32;
        let meta = |account| RecordMeta {
            seq,
            term: 1,
            timestamp_ns: seq * 10,
            origin: 0,
            account,
            session: 0,
        };
        let (account, input) = if seq <= 2 * TRADERS {
            let account = 1 + ((seq - 1) % TRADERS) as u32;
            let asset = if seq <= TRADERS { BTC } else { USDT };
            let amount = if asset == BTC { 5_000 } else { 2_000_000 };
            (
                0,
                Input::Deposit(Deposit {
                    amount,
                    request_id: seq,
                    account,
                    asset,
                }),
            )
        } else if seq % 97 == 0 {
            let price = 480 + (r % 41) as i64;
            (
                0,
                Input::SetMarkPrice(SetMarkPrice {
                    price,
                    instrument: PERP,
                    request_id: seq,
                }),
            )
        } else if seq % 251 == 0 {
            let rate_ppm = (r % 2_001) as i64 - 1_000;
            (
                0,
                Input::ApplyFunding(ApplyFunding {
                    rate_ppm,
                    instrument: PERP,
                    funding_id: seq,
                }),
            )
        } else {
            // An earlier order of the same account (cl_ord_ids are record seqs).
            let earlier = (1..=40u64)
                .map(|k| seq.saturating_sub(k + (r >> 40) % 20))
                .find(|&s| s > 2 * TRADERS && (1 + (mix(s) % TRADERS) as u32) == account);
            let input = match (r >> 8) % 10 {
                0 | 1 if earlier.is_some() => Input::CancelOrder(CancelOrder {
                    cl_ord_id: earlier.unwrap_or(1),
                    remaining_qty: 0,
                }),
                2 | 3 if earlier.is_some() => Input::ReplaceOrder(ReplaceOrder {
                    orig_cl_ord_id: earlier.unwrap_or(1),
                    new_cl_ord_id: earlier.unwrap_or(1),
                    price: 490 + ((r >> 16) % 21) as i64,
                    qty: 1 + (r >> 24) % 8,
                }),
                _ => {
                    let side = if (r >> 12) & 1 == 0 {
                        Side::Buy
                    } else {
                        Side::Sell
                    };
                    let off = ((r >> 16) % 21) as i64 - 10;
                    let price = 500 + if side == Side::Buy { off - 3 } else { off + 3 };
                    Input::EnterOrder(EnterOrder {
                        cl_ord_id: seq,
                        price,
                        qty: 1 + (r >> 24) % 10,
                        instrument: if (r >> 32) & 1 == 0 { SPOT } else { PERP },
                        side,
                        kind: OrderKind::Limit,
                        tif: if (r >> 36) % 5 == 0 {
                            TimeInForce::Ioc
                        } else {
                            TimeInForce::Gtc
                        },
                        stp: StpMode::None,
                        post_only: false,
                        reduce_only: (r >> 44) % 11 == 0 && (r >> 32) & 1 == 1,
                    })
                }
            };
            (account, input)
        };
        LogRecord {
            meta: meta(account),
            input,
        }
    }

    fn apply(engine: &mut Engine, r: &LogRecord, out: &mut Outputs) {
        if let Some(input) = input_of(r) {
            engine.apply(r.meta.timestamp_ns, &input, out);
        }
    }

    /// A risk-on engine snapshotted mid-stream (deposits, spot and perpetual trading, marks,
    /// funding), written, read back and restored, then fed the log tail, reaches the state hash
    /// of the run that never stopped; the image is validated on restore.
    #[test]
    fn risk_state_round_trips_through_the_image_and_the_log_tail() {
        const TOTAL: u64 = 4_000;
        const AT: u64 = 2_345;
        let mem = MemStorage::new();
        let (mut log, _) = SegmentLog::open(mem.clone(), LogConfig::default()).unwrap();
        let mut buf = vec![0u8; 256];
        let mut run = Engine::with_risk(engine_config(), risk_config()).unwrap();
        let mut out = Outputs::default();
        let mut snap = None;
        for seq in 1..=TOTAL {
            let r = record(seq);
            let len = encode_record(&r, &mut buf).unwrap();
            log.append(&buf[..len]).unwrap();
            apply(&mut run, &r, &mut out);
            if seq == AT {
                run.check_invariants().unwrap();
                snap = Some(Snapshot::of(AT, 1, AT * 10, &run, &Dedup::default()));
            }
        }
        log.commit().unwrap();
        run.check_invariants().unwrap();
        let fills = out
            .0
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    tpx_engine::EngineOutput::Event(tpx_engine::Event::Fill { .. })
                )
            })
            .count();
        assert!(fills > 200, "the stream trades ({fills} fills)");

        let snap = snap.unwrap();
        let risk = snap.engine.risk.as_ref().expect("risk state in the image");
        assert_eq!(risk.perpetuals.len(), 1);
        let perp = &risk.perpetuals[0];
        assert!(perp.mark > 0, "a mark price was set");
        assert!(perp.venue_funding != 0 || perp.positions.iter().any(|p| p.funding != 0));
        assert!(perp.positions.iter().any(|p| p.size != 0 && p.listed));
        assert!(risk.balances.len() >= 2 * TRADERS as usize);

        // Through the file format and back.
        let bytes = encode_snapshot(&snap).unwrap();
        let back = decode_snapshot(&bytes).unwrap();
        assert_eq!(back, snap);
        let mut e = back
            .restore_engine_with_risk(engine_config(), risk_config())
            .unwrap();
        assert_eq!(e.state_hash(), snap.state_hash);
        assert_eq!(e.snapshot(), {
            // The engine at AT, rebuilt by a replay, has the same snapshot.
            let mut a = Engine::with_risk(engine_config(), risk_config()).unwrap();
            for seq in 1..=AT {
                apply(&mut a, &record(seq), &mut Outputs::default());
            }
            a.snapshot()
        });
        // The tail, read from the log.
        let mut tail = 0;
        replay(mem.clone(), AT + 1, |r| {
            if r.meta.seq > AT {
                apply(&mut e, r, &mut Outputs::default());
                tail += 1;
            }
        })
        .unwrap();
        assert_eq!(tail, TOTAL - AT);
        e.check_invariants().unwrap();
        assert_eq!(
            e.state_hash(),
            run.state_hash(),
            "snapshot + tail = uninterrupted"
        );

        // Validation: risk state into a risk-off engine, and the other way round, are refused.
        assert!(matches!(
            back.restore_engine(engine_config()),
            Err(SnapshotError::RiskMismatch {
                image_has_risk: true
            })
        ));
        let mut no_risk = back.clone();
        no_risk.engine.risk = None;
        assert!(matches!(
            no_risk.restore_engine_with_risk(engine_config(), risk_config()),
            Err(SnapshotError::RiskMismatch {
                image_has_risk: false
            })
        ));
        // A balance that no longer adds up to the deposits is refused by the engine's checks
        // (and would be by the recorded hash).
        let mut bad = back.clone();
        bad.engine.risk.as_mut().unwrap().balances[0].available += 1;
        let err = bad
            .restore_engine_with_risk(engine_config(), risk_config())
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Invalid(_)), "{err}");
        // A position moved between accounts breaks the perpetual's sizes.
        let mut bad = back.clone();
        bad.engine.risk.as_mut().unwrap().perpetuals[0].positions[0].size += 1;
        assert!(bad
            .restore_engine_with_risk(engine_config(), risk_config())
            .is_err());
        // An unknown asset.
        let mut bad = back;
        bad.engine.risk.as_mut().unwrap().balances[0].asset = 99;
        assert!(bad
            .restore_engine_with_risk(engine_config(), risk_config())
            .is_err());
    }

    /// Images of another version are refused by number: an older file (the `TPXSNAP1` header,
    /// format 2 or older) and a header naming a version this build does not read.
    #[test]
    fn other_format_versions_are_refused_with_a_typed_error() {
        let run = Engine::with_risk(engine_config(), risk_config()).unwrap();
        let s = Snapshot::of(0, 1, 0, &run, &Dedup::default());
        let bytes = encode_snapshot(&s).unwrap();
        assert_eq!(&bytes[..8], b"TPXSNAP2");
        let mut old = b"TPXSNAP1".to_vec();
        old.extend_from_slice(&bytes[12..]);
        assert!(matches!(
            decode_snapshot(&old),
            Err(SnapshotError::Format { found: 2, expected }) if expected == SNAPSHOT_FORMAT
        ));
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(SNAPSHOT_FORMAT + 1).to_le_bytes());
        assert!(matches!(
            decode_snapshot(&newer),
            Err(SnapshotError::Format { found, .. }) if found == SNAPSHOT_FORMAT + 1
        ));
        assert_eq!(decode_snapshot(&bytes).unwrap(), s);
    }
}

/// The order types' state (issue 19) goes through the sequencer's rkyv image: a pending stop,
/// an iceberg's hidden rest, a GTD expiry and the last price the triggers watch. Restored from
/// the image's bytes, the engine has the state hash of the one that took it.
#[test]
fn the_order_types_state_round_trips_through_the_image() {
    use tpx_engine::{
        Engine, NewOrder, OrderExt, OrderKind, Side, StpMode, TimeInForce, Trigger,
        TriggerDirection, TriggerSource,
    };
    use tpx_sequencer::apply::CountingSink;
    use tpx_sequencer::snapshot::EngineImage;
    let cfg = demo_engine_config();
    let mut e = Engine::new(cfg.clone()).unwrap();
    let order = |account, cl, side, price, qty, tif, ext| {
        tpx_engine::Command::NewOrder(NewOrder {
            account,
            cl_ord_id: cl,
            instrument: 1,
            side,
            kind: OrderKind::Limit,
            price,
            qty,
            tif,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
            ext,
        })
    };
    let mut sink = CountingSink::default();
    let plain = OrderExt::NONE;
    let gtc = TimeInForce::Gtc;
    e.process(
        1_000,
        &order(1, 1, Side::Sell, 100, 5, gtc, plain),
        &mut sink,
    );
    e.process(
        2_000,
        &order(2, 1, Side::Buy, 100, 2, gtc, plain),
        &mut sink,
    );
    let stop = OrderExt {
        trigger: Some(Trigger {
            price: 150,
            source: TriggerSource::Last,
            direction: TriggerDirection::RisesTo,
        }),
        ..plain
    };
    e.process(3_000, &order(3, 1, Side::Buy, 160, 4, gtc, stop), &mut sink);
    let iceberg = OrderExt {
        display_qty: 2,
        ..plain
    };
    e.process(
        4_000,
        &order(4, 1, Side::Sell, 120, 10, gtc, iceberg),
        &mut sink,
    );
    let gtd = OrderExt {
        expire_ts_ns: 1_000_000_000,
        ..plain
    };
    let gtd_tif = TimeInForce::Gtd;
    e.process(
        5_000,
        &order(5, 1, Side::Buy, 90, 3, gtd_tif, gtd),
        &mut sink,
    );
    let s = Snapshot::of(5, 1, 5_000, &e, &Dedup::default());
    let i = &s.engine.instruments[0];
    assert_eq!(i.triggers.len(), 1, "{i:?}");
    assert_eq!(i.last_price, 100);
    assert_eq!(
        i.orders.iter().filter(|o| o.ext.is_some()).count(),
        2,
        "{i:?}"
    );
    assert_eq!(s.engine, EngineImage::of(&e));
    let back = decode_snapshot(&encode_snapshot(&s).unwrap()).unwrap();
    let restored = back.restore_engine(cfg).unwrap();
    assert_eq!(restored.state_hash(), e.state_hash());
}
