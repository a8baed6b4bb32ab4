//! The feed logic without IO: a real engine and publisher (packets captured in memory) feed
//! [`FeedCore`] directly, with packets lost on purpose, a simulated retransmission server and
//! the publisher's snapshot stream. The books must end equal to the engine's.

use tpx_engine::{Engine, Side as ESide};
use tpx_feed::bench::workload::{generate, WorkloadParams};
use tpx_feed::{FeedConfig, FeedCore, FeedEvent, FeedListener, Source};
use tpx_md::{CaptureTransport, MdInstrument, MdPublisher, NoReports, PublisherConfig};
use tpx_wire::mold::decode_packet_header;
use tpx_wire::{Side, Symbol};

struct Run {
    engine: Engine,
    md: MdPublisher<CaptureTransport>,
    now: u64,
}

fn publisher(p: &WorkloadParams) -> Run {
    let ecfg = p.engine_config();
    let cfg = PublisherConfig {
        stream_id: 3,
        snapshot_stream_id: 4,
        instruments: ecfg
            .instruments
            .iter()
            .map(|s| MdInstrument {
                spec: *s,
                symbol: Symbol::new(&format!("I{}", s.id)),
            })
            .collect(),
        snapshot_interval_ns: 1_000,
        snapshot_packets_per_work: 4,
        heartbeat_interval_ns: 10_000,
        ..PublisherConfig::default()
    };
    Run {
        engine: Engine::new(ecfg).unwrap(),
        md: MdPublisher::new(cfg, CaptureTransport::new())
            .unwrap()
            .with_feed_b(true),
        now: 1,
    }
}

impl Run {
    fn step(&mut self, cmd: &tpx_engine::Command) {
        self.now += 100;
        self.md
            .process(&mut self.engine, self.now, cmd, &mut NoReports);
    }

    fn work(&mut self) {
        self.now += 100;
        self.md.do_work(self.now, &self.engine);
    }
}

fn core_cfg(feeds: usize) -> FeedConfig {
    FeedConfig {
        stream_id: 3,
        snapshot_stream_id: Some(4),
        feeds,
        arbitration_wait_ns: 1_000,
        retransmit_timeout_ns: 5_000,
        max_retransmit_gap: 200,
        ..FeedConfig::default()
    }
}

fn assert_books_equal(engine: &Engine, core: &FeedCore, instruments: u32) {
    core.books().check().unwrap();
    for i in 1..=instruments {
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
        let got: Vec<_> = core
            .books()
            .l3(i)
            .iter()
            .map(|o| (o.order_id, o.side, o.price, o.qty))
            .collect();
        assert_eq!(got, want, "instrument {i}");
        for (side, eside) in [(Side::Buy, ESide::Buy), (Side::Sell, ESide::Sell)] {
            let want: Vec<_> = engine
                .depth(i, eside, 10)
                .iter()
                .map(|l| (l.price, l.qty, l.orders))
                .collect();
            let got: Vec<_> = core
                .books()
                .book(i)
                .map(|b| {
                    b.levels(side, 10)
                        .map(|l| (l.price, l.qty, l.orders))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(got, want, "instrument {i} {side:?} depth");
        }
    }
}

#[derive(Default)]
struct Events(Vec<FeedEvent>);

impl FeedListener for Events {
    fn on_feed(&mut self, e: &FeedEvent) {
        self.0.push(*e);
    }
}

/// Answers a request from the captured packets (what the retransmission server would send:
/// here whole packets, which the core trims).
fn answer(run: &Run, core: &mut FeedCore, l: &mut Events, now: u64) {
    while let Some(req) = core.take_request() {
        let end = req.first_seq + u64::from(req.count);
        for p in &run.md.transport().a {
            let h = decode_packet_header(p).unwrap();
            let pend = h.first_seq + u64::from(h.message_count);
            if h.message_count > 0 && pend > req.first_seq && h.first_seq < end {
                core.on_retransmit(p, now, l);
            }
        }
    }
}

#[test]
fn in_order_stream_builds_the_engines_books() {
    let p = WorkloadParams::default();
    let mut run = publisher(&p);
    for c in generate(&p, 1, 20_000) {
        run.step(&c);
    }
    let mut core = FeedCore::new(core_cfg(1));
    let mut ev = Events::default();
    for pkt in &run.md.transport().a {
        core.on_packet(Source::A, pkt, 0, &mut ev);
    }
    assert_eq!(core.next_seq(), run.md.next_seq());
    assert!(core.is_live());
    assert_eq!(core.stats().book_errors, 0);
    assert_books_equal(&run.engine, &core, p.instruments);
    // Halts and reference prices reached the books too.
    for s in run.md.state().instruments {
        let b = core.books().book(s.id).unwrap();
        assert_eq!((b.halted, b.ref_price), (s.halted, s.ref_price));
    }
}

#[test]
fn arbitration_hides_single_feed_losses_and_retransmission_fills_the_rest() {
    let p = WorkloadParams::default();
    let mut run = publisher(&p);
    for c in generate(&p, 2, 10_000) {
        run.step(&c);
    }
    let (a, b) = (run.md.transport().a.clone(), run.md.transport().b.clone());
    let mut core = FeedCore::new(core_cfg(2));
    let mut ev = Events::default();
    let mut now = 0;
    // A loses every 7th packet and B every 11th; both lose every 77th. B runs 3 packets behind.
    for i in 0..a.len() + 3 {
        now += 10;
        if i < a.len() && i % 7 != 3 {
            core.on_packet(Source::A, &a[i], now, &mut ev);
        }
        if i >= 3 && (i - 3) % 11 != 3 {
            core.on_packet(Source::B, &b[i - 3], now, &mut ev);
        }
        answer(&run, &mut core, &mut ev, now);
    }
    for _ in 0..10 {
        now += 10_000;
        core.on_timer(now, &mut ev);
        answer(&run, &mut core, &mut ev, now);
    }
    let s = *core.stats();
    assert_eq!(core.next_seq(), run.md.next_seq(), "{s:?}");
    assert!(core.is_live());
    assert!(s.gaps_filled_by_arbitration > 0, "{s:?}");
    assert!(s.gaps_filled_by_retransmission > 0, "{s:?}");
    assert_eq!(s.snapshot_recoveries, 0, "{s:?}");
    assert!(s.first_copies[1] > 0, "{s:?}");
    assert_books_equal(&run.engine, &core, p.instruments);
}

#[test]
fn a_late_joiner_and_a_long_gap_recover_from_snapshots() {
    let p = WorkloadParams::default();
    let mut run = publisher(&p);
    let cmds = generate(&p, 3, 30_000);
    let mut late = FeedCore::new(core_cfg(1));
    let mut early = FeedCore::new(core_cfg(1));
    let mut ev = Events::default();
    let (mut seen_a, mut seen_s) = (0, 0);
    let mut feed = |run: &mut Run, late: &mut FeedCore, early: &mut FeedCore, i: usize| {
        let a = &run.md.transport().a;
        for (k, pkt) in a.iter().enumerate().skip(seen_a) {
            // The early subscriber misses 500 consecutive packets in the middle.
            if !(12_000..12_500).contains(&k) {
                early.on_packet(Source::A, pkt, i as u64, &mut ev);
            }
            if i >= 5_000 {
                late.on_packet(Source::A, pkt, i as u64, &mut ev);
            }
        }
        seen_a = a.len();
        let s = &run.md.transport().snapshot;
        for pkt in s.iter().skip(seen_s) {
            early.on_snapshot_packet(pkt, i as u64, &mut ev);
            if i >= 5_000 {
                late.on_snapshot_packet(pkt, i as u64, &mut ev);
            }
        }
        seen_s = s.len();
        while early.take_request().is_some() {}
        while late.take_request().is_some() {}
    };
    for (i, c) in cmds.iter().enumerate() {
        run.step(c);
        if i % 3 == 0 {
            run.work();
        }
        feed(&mut run, &mut late, &mut early, i);
    }
    // Let the snapshot loop finish a cycle and the heartbeat announce the end.
    for _ in 0..200 {
        run.work();
        feed(&mut run, &mut late, &mut early, cmds.len());
        if late.is_live() && early.is_live() {
            break;
        }
    }
    for (name, core) in [("late", &late), ("early", &early)] {
        let s = core.stats();
        assert!(core.is_live(), "{name}: {s:?}");
        assert_eq!(core.next_seq(), run.md.next_seq(), "{name}: {s:?}");
        assert!(s.snapshots_applied >= 1, "{name}: {s:?}");
        assert_eq!(s.book_errors, 0, "{name}: {s:?}");
        assert_books_equal(&run.engine, core, p.instruments);
        for st in run.md.state().instruments {
            let b = core.books().book(st.id).unwrap();
            assert_eq!((b.halted, b.ref_price), (st.halted, st.ref_price), "{name}");
            assert_eq!(b.symbol(), Some(format!("I{}", st.id).as_str()), "{name}");
        }
    }
    assert!(ev
        .0
        .iter()
        .any(|e| matches!(e, FeedEvent::SnapshotRecovered { .. })));
}

#[test]
fn a_heartbeat_reveals_a_lost_tail() {
    let p = WorkloadParams::default();
    let mut run = publisher(&p);
    for c in generate(&p, 4, 300) {
        run.step(&c);
    }
    let a = run.md.transport().a.clone();
    let mut core = FeedCore::new(core_cfg(1));
    let mut ev = Events::default();
    // The last two packets are lost; nothing else is coming.
    for pkt in &a[..a.len() - 2] {
        core.on_packet(Source::A, pkt, 1, &mut ev);
    }
    assert!(core.is_live());
    assert!(core.next_seq() < run.md.next_seq());
    // The publisher goes quiet: one heartbeat interval later do_work sends a heartbeat
    // announcing next_seq.
    run.work();
    assert_eq!(run.md.stats().heartbeats, 0);
    run.now += 1_000_000;
    run.md.do_work(run.now, &run.engine);
    assert_eq!(run.md.stats().heartbeats, 1);
    let hb = run.md.transport().a.last().unwrap().clone();
    core.on_packet(Source::A, &hb, 2, &mut ev);
    assert!(!core.is_live());
    let req = core.take_request().expect("a request for the tail");
    assert_eq!(req.first_seq, core.next_seq());
    assert_eq!(req.first_seq + u64::from(req.count), run.md.next_seq());
    core.on_retransmit(&a[a.len() - 2], 3, &mut ev);
    core.on_retransmit(&a[a.len() - 1], 3, &mut ev);
    assert!(core.is_live());
    assert_eq!(core.next_seq(), run.md.next_seq());
    assert_eq!(core.stats().gaps_filled_by_retransmission, 1);
    assert_books_equal(&run.engine, &core, p.instruments);
}

#[test]
fn a_promoted_standby_continues_the_stream_exactly() {
    let p = WorkloadParams::default();
    let cmds = generate(&p, 5, 6_000);
    let mut primary = publisher(&p);
    let mut standby = publisher(&p);
    standby.md.set_active(false);
    let mut core = FeedCore::new(core_cfg(1));
    let mut ev = Events::default();
    for c in &cmds[..3_000] {
        primary.step(c);
        standby.step(c);
    }
    assert_eq!(standby.md.next_seq(), primary.md.next_seq());
    assert!(standby.md.transport().a.is_empty());
    for pkt in &primary.md.transport().a {
        core.on_packet(Source::A, pkt, 1, &mut ev);
    }
    // The primary stops; the standby is promoted (it announces next_seq at once) and goes on.
    standby.md.set_active(true);
    for c in &cmds[3_000..] {
        primary.step(c);
        standby.step(c);
    }
    let before = primary.md.transport().a.len() - standby.md.transport().a.len() + 1;
    // Byte for byte the same packets as the old primary would have sent (after the heartbeat).
    assert_eq!(
        &standby.md.transport().a[1..],
        &primary.md.transport().a[before..]
    );
    for pkt in &standby.md.transport().a {
        core.on_packet(Source::A, pkt, 2, &mut ev);
    }
    assert!(core.is_live());
    assert_eq!(core.stats().gaps, 0);
    assert_eq!(core.next_seq(), primary.md.next_seq());
    assert_books_equal(&standby.engine, &core, p.instruments);
    // The standby's ring holds what the old primary published, for retransmission.
    let mut buf = [0u8; tpx_md::ring::SLOT_BYTES];
    assert!(standby.md.ring().read(5, &mut buf).is_some());
}
