//! End to end over Aeron: a publisher driven by a real engine with a seeded order stream, and
//! feed handlers on feeds A and B, the snapshot stream and the retransmission server.
//!
//! Phases (packets are withheld by the publisher's test drop filter):
//! 1. feed A loses every packet whose first sequence number is a multiple of 10: A/B
//!    arbitration hides it (no request, no snapshot);
//! 2. both feeds lose every multiple of 37: the retransmission server fills the gaps; a second
//!    feed handler joins late and starts from snapshots;
//! 3. both feeds lose 600 messages in a row (more than the handlers' `max_retransmit_gap`):
//!    snapshot recovery;
//! 4. no loss.
//!
//! At the end both handlers' books equal the engine's (`Engine::l3` and `Engine::depth`).
//! `e2e_ipc` runs over `aeron:ipc`; `e2e_multicast_in_netns` re-runs this test binary inside
//! `unshare -rn` (a private network namespace with only a loopback) and runs the same scenario
//! over UDP multicast there, never in the root namespace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tpx_engine::{Engine, Side as ESide};
use tpx_feed::bench::netns;
use tpx_feed::bench::workload::{generate, WorkloadParams};
use tpx_feed::{FeedHandler, FeedHandlerConfig, FeedStats};
use tpx_md::{
    AeronChannels, AeronClient, AeronSetup, Channel, ChannelConfig, DriverConfig, EmbeddedDriver,
    MdInstrument, MdPublisher, MdTransport, NoReports, PublisherConfig, RetransmitConfig,
};
use tpx_wire::{Side, Symbol};

struct Channels {
    a: ChannelConfig,
    b: ChannelConfig,
    snapshot: ChannelConfig,
}

fn ipc() -> Channels {
    Channels {
        a: ChannelConfig::new("aeron:ipc", 10),
        b: ChannelConfig::new("aeron:ipc", 11),
        snapshot: ChannelConfig::new("aeron:ipc", 12),
    }
}

fn multicast() -> Channels {
    let ch =
        |group: &str, port: u16| format!("aeron:udp?endpoint={group}:{port}|interface=127.0.0.1");
    Channels {
        a: ChannelConfig::new(ch("224.0.1.1", 40456), 10),
        b: ChannelConfig::new(ch("224.0.1.3", 40457), 10),
        snapshot: ChannelConfig::new(ch("224.0.1.5", 40458), 12),
    }
}

const STREAM: u32 = 7;
const SNAPSHOT_STREAM: u32 = 8;

fn feed_config(dir: &str, ch: &Channels, server: std::net::SocketAddr) -> FeedHandlerConfig {
    let mut cfg = FeedHandlerConfig::new(
        AeronSetup::External {
            dir: dir.to_string(),
        },
        ch.a.clone(),
    );
    cfg.b = Some(ch.b.clone());
    cfg.snapshot = Some(ch.snapshot.clone());
    cfg.retransmit_server = Some(server);
    cfg.core.stream_id = STREAM;
    cfg.core.snapshot_stream_id = Some(SNAPSHOT_STREAM);
    // Generous timers: a busy 2-core machine can starve the driver or the retransmission
    // thread for tens of milliseconds. A gap both feeds have passed is requested at once anyway.
    cfg.core.arbitration_wait_ns = 50_000_000;
    cfg.core.retransmit_timeout_ns = 100_000_000;
    cfg.core.retransmit_max_tries = 5;
    cfg.core.max_retransmit_gap = 300;
    cfg.core.buffer_bytes = 4 << 20;
    cfg
}

fn assert_books_equal(engine: &Engine, fh: &FeedHandler, md: &MdPublisher, name: &str) {
    fh.books().check().unwrap();
    for st in md.state().instruments {
        let i = st.id;
        let want: Vec<_> = engine
            .l3(i)
            .iter()
            .map(|o| {
                let side = match o.side {
                    ESide::Buy => Side::Buy,
                    ESide::Sell => Side::Sell,
                };
                (o.order_id, side, o.price, o.leaves)
            })
            .collect();
        let got: Vec<_> = fh
            .books()
            .l3(i)
            .iter()
            .map(|o| (o.order_id, o.side, o.price, o.qty))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{name}: instrument {i} L3");
        for (side, eside) in [(Side::Buy, ESide::Buy), (Side::Sell, ESide::Sell)] {
            let want: Vec<_> = engine
                .depth(i, eside, 20)
                .iter()
                .map(|l| (l.price, l.qty, l.orders))
                .collect();
            let b = fh.books().book(i).unwrap();
            let got: Vec<_> = b
                .levels(side, 20)
                .map(|l| (l.price, l.qty, l.orders))
                .collect();
            assert_eq!(got, want, "{name}: instrument {i} {side:?} L2");
        }
        let b = fh.books().book(i).unwrap();
        assert_eq!(
            (b.halted, b.ref_price),
            (st.halted, st.ref_price),
            "{name}: {i}"
        );
    }
}

/// Publishes nothing new; lets heartbeats, snapshots and retransmissions run until every
/// handler is live at the publisher's `next_seq`.
fn catch_up(md: &mut MdPublisher, engine: &Engine, feeds: &mut [&mut FeedHandler], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        md.do_work(AeronClient::nano_clock(), engine);
        let mut work = 0;
        for f in feeds.iter_mut() {
            work += f.poll(AeronClient::nano_clock(), &mut ());
        }
        if feeds
            .iter()
            .all(|f| f.core().is_live() && f.core().next_seq() == md.next_seq())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not caught up: publisher next_seq {}, {:?}",
            md.next_seq(),
            feeds
                .iter()
                .map(|f| (f.core().next_seq(), f.core().is_live(), *f.stats()))
                .collect::<Vec<_>>()
        );
        if work == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn scenario(ch: Channels) {
    // Small terms (256 KiB, sparse): big enough that a driver starved of CPU for tens of
    // milliseconds on a busy 2-core machine does not back-pressure the publisher.
    let driver = EmbeddedDriver::launch(&DriverConfig {
        term_length: 256 << 10,
        ipc_term_length: 256 << 10,
        ..DriverConfig::for_tests()
    })
    .unwrap();
    let dir = driver.dir().to_string();
    let p = WorkloadParams::default();
    let cmds = generate(&p, 11, 6_000);
    let mut engine = Engine::new(p.engine_config()).unwrap();
    let cfg = PublisherConfig {
        stream_id: STREAM,
        snapshot_stream_id: SNAPSHOT_STREAM,
        instruments: p
            .engine_config()
            .instruments
            .iter()
            .map(|s| MdInstrument {
                spec: *s,
                symbol: Symbol::new(&format!("SYM-{}", s.id)),
            })
            .collect(),
        heartbeat_interval_ns: 20_000_000,
        snapshot_interval_ns: 20_000_000,
        snapshot_packets_per_work: 4,
        ring_capacity: 4096,
        retransmit: Some(RetransmitConfig::default()),
        ..PublisherConfig::default()
    };
    let mut md = MdPublisher::connect(
        cfg,
        &AeronChannels {
            setup: AeronSetup::External { dir: dir.clone() },
            a: ch.a.clone(),
            b: Some(ch.b.clone()),
            snapshot: Some(ch.snapshot.clone()),
        },
    )
    .unwrap();
    // Phase and the start of phase 3's window, read by the drop filter.
    let phase = Arc::new(AtomicU64::new(1));
    let window = Arc::new(AtomicU64::new(u64::MAX));
    {
        let (phase, window) = (phase.clone(), window.clone());
        md.set_drop_filter(Some(Box::new(move |c, first, _count| {
            match phase.load(Ordering::Relaxed) {
                1 => c == Channel::A && first % 10 == 0,
                2 => first % 37 == 0,
                3 => {
                    let w = window.load(Ordering::Relaxed);
                    first >= w && first < w + 600
                }
                _ => false,
            }
        })));
    }
    let server = md.retransmit().unwrap().addr();
    let mut f1 = FeedHandler::connect(feed_config(&dir, &ch, server)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(md.transport().is_connected(Channel::A)
        && md.transport().is_connected(Channel::B)
        && md.transport().is_connected(Channel::Snapshot)
        && f1.is_connected())
    {
        assert!(Instant::now() < deadline, "publications never connected");
        f1.poll(AeronClient::nano_clock(), &mut ());
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut f2: Option<FeedHandler> = None;
    let mut stats: Vec<FeedStats> = Vec::new();
    let mut md_stats = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        match i {
            1500 => {
                catch_up(&mut md, &engine, &mut [&mut f1], "phase 1");
                stats.push(*f1.stats());
                md_stats.push(*md.stats());
                phase.store(2, Ordering::Relaxed);
            }
            2200 => f2 = Some(FeedHandler::connect(feed_config(&dir, &ch, server)).unwrap()),
            3000 => {
                let mut fs: Vec<&mut FeedHandler> = vec![&mut f1];
                fs.extend(f2.as_mut());
                catch_up(&mut md, &engine, &mut fs, "phase 2");
                stats.push(*f1.stats());
                md_stats.push(*md.stats());
                window.store(md.next_seq() + 50, Ordering::Relaxed);
                phase.store(3, Ordering::Relaxed);
            }
            4500 => {
                let mut fs: Vec<&mut FeedHandler> = vec![&mut f1];
                fs.extend(f2.as_mut());
                catch_up(&mut md, &engine, &mut fs, "phase 3");
                stats.push(*f1.stats());
                phase.store(4, Ordering::Relaxed);
            }
            _ => {}
        }
        md.process(&mut engine, AeronClient::nano_clock(), c, &mut NoReports);
        md.do_work(AeronClient::nano_clock(), &engine);
        f1.poll(AeronClient::nano_clock(), &mut ());
        if let Some(f) = f2.as_mut() {
            f.poll(AeronClient::nano_clock(), &mut ());
        }
        if i % 16 == 0 {
            // Let the driver (backing off, parked up to 1 ms) keep up with 64 KiB terms.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut f2 = f2.unwrap();
    catch_up(&mut md, &engine, &mut [&mut f1, &mut f2], "end");
    let ms = *md.stats();
    let (s1, s2, s3, s) = (stats[0], stats[1], stats[2], *f1.stats());
    let late = *f2.stats();
    eprintln!(
        "publisher after phases 1, 2, end:\n{:?}\n{:?}\n{ms:?}",
        md_stats[0], md_stats[1]
    );
    eprintln!("feed 1 after phases 1, 2, 3, end:\n{s1:?}\n{s2:?}\n{s3:?}\n{s:?}");
    eprintln!("late joiner {late:?}");
    assert_eq!(ms.a.not_connected + ms.b.not_connected, 0, "{ms:?}");
    // Phase 1: A lost packets, B filled them, nothing was asked for (unless the publisher was
    // back-pressured on both feeds at once: then those packets were lost on both).
    let m1 = md_stats[0];
    assert!(m1.a.dropped_by_filter > 0);
    assert!(s1.first_copies[1] > 0, "{s1:?}");
    assert!(
        s1.retransmit_requests <= m1.b.back_pressured,
        "{s1:?}\n{m1:?}"
    );
    assert_eq!(s1.snapshot_recoveries, 0, "{s1:?}");
    // Phase 2: both lost packets; retransmission filled them.
    assert!(s2.retransmit_requests > 0, "{s2:?}");
    assert!(s2.gaps_filled_by_retransmission > 0, "{s2:?}");
    assert_eq!(s2.snapshot_recoveries, 0, "{s2:?}\n{:?}", md_stats[1]);
    assert!(
        md.retransmit()
            .unwrap()
            .stats()
            .answered
            .load(Ordering::Relaxed)
            > 0
    );
    // The late joiner started from snapshots.
    assert!(late.snapshots_applied >= 1, "{late:?}");
    // Phase 3: too far behind, snapshot recovery.
    assert_eq!(s3.snapshot_recoveries, 1, "{s3:?}");
    assert!(s3.snapshots_applied >= 1, "{s3:?}");
    assert_eq!(s.book_errors + late.book_errors, 0);
    assert_books_equal(&engine, &f1, &md, "feed 1");
    assert_books_equal(&engine, &f2, &md, "late joiner");
    drop(f1);
    drop(f2);
    drop(md);
    drop(driver);
    assert!(
        !std::path::Path::new(&dir).exists(),
        "driver directory {dir} left behind"
    );
}

#[test]
fn e2e_ipc() {
    scenario(ipc());
}

#[test]
fn e2e_multicast_in_netns() {
    if netns::in_child() {
        scenario(multicast());
        return;
    }
    let status = netns::run_self(&[
        "e2e_multicast_in_netns".into(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ])
    .expect("cannot run unshare: the multicast test needs a private network namespace");
    assert!(
        status.success(),
        "multicast scenario in a network namespace failed: {status}"
    );
}
