//! End to end: a real node (two shards, each publishing its market data on UDP multicast A and
//! B, snapshots and a retransmission server, through the node's embedded media driver) driven
//! by order-entry clients over TCP, and feed handlers subscribed to both shards' streams.
//!
//! It runs inside a private network namespace (`unshare -rn`: this test binary re-executes
//! itself there; multicast never touches the root namespace):
//! 1. feed A loses every packet whose first sequence number is a multiple of 10: A/B
//!    arbitration hides it (no retransmission request, no snapshot);
//! 2. both feeds lose every multiple of 37: the retransmission server fills the gaps; a second
//!    subscriber joins in the middle and starts from snapshots;
//! 3. no loss.
//!
//! At the end (after the node stopped) both subscribers' L3 books (every resting order id,
//! side, price, quantity, in queue order) equal the books the node's engines held.
//! Loss is made by the publisher's test drop filter (`tpx_node::shard::md::set_test_drop_filters`).
//!
//! The MDC tests run the same node on unicast multi-destination-cast, as on AWS where a VPC has
//! no multicast: feeds A and B are two MDC publications (dynamic control mode: subscribers join
//! through the publisher's control address; manual: the node's config lists their endpoints),
//! two subscribers on their own endpoints, A losing every tenth packet; both subscribers' books
//! equal the node's at the end.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::feed::{feed_book, node_feed_config};
use common::*;
use tpx_client::{req, Client};
use tpx_feed::bench::netns;
use tpx_feed::{FeedHandler, FeedStats};
use tpx_md::{AeronClient, AeronSetup, Channel};
use tpx_node::config::md::MdConfig;
use tpx_node::config::{CoreAssignment, CorePlan};
use tpx_node::Node;
use tpx_wire::enums::Side;
use tpx_wire::order_entry::ReplaceOrder;
use tpx_wire::replies::ServerMessage;

fn md_config() -> MdConfig {
    let ch =
        |group: &str, port: u16| format!("aeron:udp?endpoint={group}:{port}|interface=127.0.0.1");
    MdConfig {
        channel_a: ch("224.0.1.1", 40456),
        channel_b: Some(ch("224.0.1.3", 40457)),
        snapshot_channel: Some(ch("224.0.1.5", 40458)),
        retransmit_addr: Some("127.0.0.1:0".parse().unwrap()),
        snapshot_interval_ms: 20,
        heartbeat_interval_ms: 20,
        ring_capacity: 4096,
        term_length: 256 << 10,
        ..MdConfig::default()
    }
}

/// Subscribers to every shard's stream (one feed handler per shard).
fn subscribe(node: &Node) -> Vec<FeedHandler> {
    let md = node.md().unwrap();
    md.streams()
        .iter()
        .map(|s| {
            let mut cfg = node_feed_config(
                md,
                s.shard,
                AeronSetup::External {
                    dir: md.aeron_dir().to_string(),
                },
            )
            .unwrap();
            // Generous timers: a busy 2-core machine can starve the driver or a thread for
            // tens of milliseconds.
            cfg.core.arbitration_wait_ns = 50_000_000;
            cfg.core.retransmit_timeout_ns = 100_000_000;
            cfg.core.retransmit_max_tries = 5;
            cfg.core.max_retransmit_gap = 300;
            cfg.core.buffer_bytes = 4 << 20;
            FeedHandler::connect(cfg).unwrap()
        })
        .collect()
}

fn poll(feeds: &mut [&mut Vec<FeedHandler>]) -> usize {
    let mut work = 0;
    for fs in feeds.iter_mut() {
        for f in fs.iter_mut() {
            work += f.poll(AeronClient::nano_clock(), &mut ());
        }
    }
    work
}

/// Lets heartbeats, retransmissions and snapshots run until every subscriber is live at its
/// shard's `next_seq`.
fn catch_up(node: &Node, feeds: &mut [&mut Vec<FeedHandler>], what: &str) {
    let md = node.md().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let work = poll(feeds);
        let done = feeds.iter().all(|fs| {
            fs.iter().zip(md.streams()).all(|(f, s)| {
                f.core().is_live()
                    && f.core().next_seq() == s.counters.next_seq.load(Ordering::Relaxed)
            })
        });
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not caught up: publishers {:?}, subscribers {:?}",
            md.streams()
                .iter()
                .map(|s| s.counters.next_seq.load(Ordering::Relaxed))
                .collect::<Vec<_>>(),
            feeds
                .iter()
                .map(|fs| fs
                    .iter()
                    .map(|f| (f.core().next_seq(), f.core().is_live(), *f.stats()))
                    .collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
        if work == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Order flow on all four instruments (two per shard): resting orders around a mid, some
/// crossing, cancels and replaces, from four accounts. Deterministic.
struct Flow {
    clients: Vec<Client>,
    next_cl: Vec<u64>,
    live: Vec<Vec<(u64, u32, Side)>>,
    rng: u64,
    sent: u64,
}

impl Flow {
    fn new(node: &Node) -> Flow {
        Flow {
            clients: (1..=4).map(|a| login(node, a)).collect(),
            next_cl: vec![1; 4],
            live: vec![Vec::new(); 4],
            rng: 0x9e37_79b9_7f4a_7c15,
            sent: 0,
        }
    }

    fn rand(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n
    }

    fn step(&mut self) {
        let k = (self.sent % 4) as usize;
        self.sent += 1;
        let r = self.rand(100);
        let cl = self.next_cl[k];
        self.next_cl[k] += 1;
        let msg = if r < 10 && !self.live[k].is_empty() {
            let i = self.rand(self.live[k].len() as u64) as usize;
            let (orig, _, _) = self.live[k].swap_remove(i);
            req::cancel(orig, 0)
        } else if r < 20 && !self.live[k].is_empty() {
            let i = self.rand(self.live[k].len() as u64) as usize;
            let (orig, instrument, side) = self.live[k][i];
            self.live[k][i].0 = cl;
            let price = self.price(instrument, side, false);
            let qty = 1 + self.rand(8);
            req::replace(ReplaceOrder {
                orig_cl_ord_id: orig,
                new_cl_ord_id: cl,
                price,
                qty,
            })
        } else {
            let instrument = 1 + self.rand(4) as u32;
            let side = if self.rand(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = self.price(instrument, side, r >= 85);
            self.live[k].push((cl, instrument, side));
            req::enter(limit(cl, instrument, side, price, 1 + self.rand(10)))
        };
        self.clients[k].send(&msg).unwrap();
        if self.sent % 16 == 0 {
            self.drain();
        }
    }

    fn price(&mut self, instrument: u32, side: Side, cross: bool) -> i64 {
        let mid = if instrument % 2 == 1 { 60_000 } else { 30_000 };
        let off = 1 + self.rand(12) as i64;
        match (side, cross) {
            (Side::Buy, false) | (Side::Sell, true) => mid - off,
            _ => mid + off,
        }
    }

    fn drain(&mut self) {
        for c in self.clients.iter_mut() {
            while let Ok(Some(_)) = c.poll() {}
        }
    }

    /// One more order per client, waited for: every earlier request of the session has been
    /// applied by its shard when it is acknowledged.
    fn sync(&mut self) {
        for k in 0..4 {
            let cl = self.next_cl[k];
            self.next_cl[k] += 1;
            self.live[k].push((cl, 1, Side::Buy));
            let c = &mut self.clients[k];
            c.send(&req::enter(limit(cl, 1, Side::Buy, 59_000, 1)))
                .unwrap();
            until(
                c,
                |m| matches!(m, ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl),
            );
        }
    }
}

fn scenario() {
    let phase = Arc::new(AtomicU64::new(1));
    {
        let phase = phase.clone();
        tpx_node::shard::md::set_test_drop_filters(Some(Box::new(move |_shard| {
            let phase = phase.clone();
            Box::new(
                move |c, first, _count| match phase.load(Ordering::Relaxed) {
                    1 => c == Channel::A && first % 10 == 0,
                    2 => first % 37 == 0,
                    _ => false,
                },
            )
        })));
    }
    let cpu = cpus().first().copied().unwrap_or(0);
    let plan = CorePlan {
        cores: vec![CoreAssignment {
            cpu,
            gateway: true,
            sequencer: true,
            shards: vec![0, 1],
        }],
    };
    let mut cfg = base_config(plan);
    cfg.md = Some(md_config());
    let mut node = Node::start(&cfg, accounts()).unwrap();
    let dir = node.md().unwrap().aeron_dir().to_string();
    assert_eq!(node.md().unwrap().streams().len(), 2);
    let mut f1 = subscribe(&node);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Connected on both feeds: a packet (heartbeats every 20 ms) seen on A and on B of every
    // shard, so phase 1 starts with both publications connected (under load the B image of a
    // shard can connect late, and then B cannot fill A's holes).
    while !f1
        .iter()
        .all(|f| f.is_connected() && f.stats().packets[0] > 0 && f.stats().packets[1] > 0)
    {
        assert!(
            Instant::now() < deadline,
            "subscriptions never connected on A and B"
        );
        poll(&mut [&mut f1]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut flow = Flow::new(&node);

    // Phase 1: A loses packets, B has them.
    for _ in 0..600 {
        flow.step();
        poll(&mut [&mut f1]);
    }
    flow.sync();
    catch_up(&node, &mut [&mut f1], "phase 1");
    let s1: Vec<FeedStats> = f1.iter().map(|f| *f.stats()).collect();

    // Phase 2: both lose packets; a late subscriber joins half way.
    phase.store(2, Ordering::Relaxed);
    let mut f2 = Vec::new();
    for i in 0..600 {
        if i == 300 {
            f2 = subscribe(&node);
        }
        flow.step();
        poll(&mut [&mut f1, &mut f2]);
    }
    flow.sync();
    catch_up(&node, &mut [&mut f1, &mut f2], "phase 2");
    let s2: Vec<FeedStats> = f1.iter().map(|f| *f.stats()).collect();

    // Phase 3: no loss.
    phase.store(3, Ordering::Relaxed);
    for _ in 0..300 {
        flow.step();
        poll(&mut [&mut f1, &mut f2]);
    }
    flow.sync();
    catch_up(&node, &mut [&mut f1, &mut f2], "end");
    flow.drain();

    let counters: Vec<_> = node
        .md()
        .unwrap()
        .streams()
        .iter()
        .map(|s| {
            let c = &s.counters;
            (
                c.next_seq.load(Ordering::Relaxed),
                c.packets.load(Ordering::Relaxed),
                c.back_pressured.load(Ordering::Relaxed),
                c.not_connected.load(Ordering::Relaxed),
            )
        })
        .collect();
    eprintln!("publishers (next_seq, packets, back_pressured, not_connected): {counters:?}");
    eprintln!("subscriber after phase 1: {s1:?}\nafter phase 2: {s2:?}");
    eprintln!(
        "end: {:?}\nlate: {:?}",
        f1.iter().map(|f| *f.stats()).collect::<Vec<_>>(),
        f2.iter().map(|f| *f.stats()).collect::<Vec<_>>()
    );
    for (shard, s) in s1.iter().enumerate() {
        // Phase 1: B filled A's holes, nothing was requested (barring back-pressure on B).
        assert!(s.first_copies[1] > 0, "shard {shard}: {s:?}");
        assert_eq!(s.snapshot_recoveries, 0, "shard {shard}: {s:?}");
        if counters[shard].2 == 0 {
            assert_eq!(s.retransmit_requests, 0, "shard {shard}: {s:?}");
        }
    }
    for (shard, s) in s2.iter().enumerate() {
        assert!(s.retransmit_requests > 0, "shard {shard}: {s:?}");
        assert!(s.gaps_filled_by_retransmission > 0, "shard {shard}: {s:?}");
    }
    for f in &f2 {
        assert!(f.stats().snapshots_applied >= 1, "{:?}", f.stats());
    }
    for f in f1.iter().chain(f2.iter()) {
        assert_eq!(f.stats().book_errors, 0);
        f.books().check().unwrap();
    }

    // Stop the node: its shards leave their books behind.
    node.stop();
    let books = node.md().unwrap().final_books();
    assert_eq!(books.len(), 4);
    let mut resting = 0;
    for (instrument, want) in &books {
        resting += want.len();
        for (name, feeds) in [("subscriber", &f1), ("late subscriber", &f2)] {
            let got: Vec<_> = feeds
                .iter()
                .flat_map(|f| feed_book(f, *instrument))
                .collect();
            assert_eq!(&got, want, "{name}: instrument {instrument} L3");
        }
    }
    assert!(resting > 100, "the books hold {resting} orders");
    drop(f1);
    drop(f2);
    drop(node);
    assert!(
        !std::path::Path::new(&dir).exists(),
        "driver directory {dir} left behind"
    );
}

#[test]
fn node_market_data_over_multicast_in_netns() {
    if netns::in_child() {
        scenario();
        return;
    }
    let probe = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status();
    if !matches!(&probe, Ok(s) if s.success()) {
        eprintln!(
            "SKIPPED node_market_data_over_multicast_in_netns: cannot create a network namespace \
             (`unshare -rn true` failed: {probe:?})"
        );
        return;
    }
    let status = netns::run_self(&[
        "node_market_data_over_multicast_in_netns".into(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ])
    .expect("running unshare");
    assert!(
        status.success(),
        "node market-data scenario in a network namespace failed: {status}"
    );
}

/// How the node's feeds fan out in [`mdc_scenario`].
#[derive(Clone, Copy, Debug)]
enum Mdc {
    Dynamic,
    Manual,
}

/// Subscriber `k`'s (1 or 2) endpoint for feed A (`b` false) or B.
fn mdc_endpoint(k: u16, b: bool) -> String {
    format!("127.0.0.1:{}", 40500 + if b { 10 } else { 0 } + k)
}

const MDC_CONTROL_A: &str = "127.0.0.1:40460";
const MDC_CONTROL_B: &str = "127.0.0.1:40461";

fn mdc_node_config(mode: Mdc) -> MdConfig {
    let control = |c: &str, m: &str| format!("aeron:udp?control={c}|control-mode={m}");
    let (a, b, dests_a, dests_b) = match mode {
        Mdc::Dynamic => (
            control(MDC_CONTROL_A, "dynamic"),
            control(MDC_CONTROL_B, "dynamic"),
            vec![],
            vec![],
        ),
        Mdc::Manual => (
            control(MDC_CONTROL_A, "manual"),
            control(MDC_CONTROL_B, "manual"),
            vec![mdc_endpoint(1, false), mdc_endpoint(2, false)],
            vec![mdc_endpoint(1, true), mdc_endpoint(2, true)],
        ),
    };
    MdConfig {
        channel_a: a,
        channel_b: Some(b),
        destinations_a: dests_a,
        destinations_b: dests_b,
        retransmit_addr: Some("127.0.0.1:0".parse().unwrap()),
        snapshot_interval_ms: 20,
        heartbeat_interval_ms: 20,
        ring_capacity: 4096,
        term_length: 256 << 10,
        ..MdConfig::default()
    }
}

/// Subscriber `k`'s feed handlers (one per shard) on its own unicast endpoints.
fn mdc_subscribe(node: &Node, mode: Mdc, k: u16) -> Vec<FeedHandler> {
    let md = node.md().unwrap();
    let channel = |b: bool| match mode {
        Mdc::Dynamic => format!(
            "aeron:udp?endpoint={}|control={}|control-mode=dynamic",
            mdc_endpoint(k, b),
            if b { MDC_CONTROL_B } else { MDC_CONTROL_A }
        ),
        Mdc::Manual => format!("aeron:udp?endpoint={}", mdc_endpoint(k, b)),
    };
    md.streams()
        .iter()
        .map(|s| {
            let mut cfg = node_feed_config(
                md,
                s.shard,
                AeronSetup::External {
                    dir: md.aeron_dir().to_string(),
                },
            )
            .unwrap();
            cfg.a.channel = channel(false);
            cfg.b.as_mut().unwrap().channel = channel(true);
            // The snapshots travel on channel A (another stream id).
            cfg.snapshot.as_mut().unwrap().channel = channel(false);
            cfg.core.arbitration_wait_ns = 50_000_000;
            cfg.core.retransmit_timeout_ns = 100_000_000;
            cfg.core.retransmit_max_tries = 5;
            cfg.core.max_retransmit_gap = 300;
            cfg.core.buffer_bytes = 4 << 20;
            FeedHandler::connect(cfg).unwrap()
        })
        .collect()
}

fn mdc_scenario(mode: Mdc) {
    tpx_node::shard::md::set_test_drop_filters(Some(Box::new(|_shard| {
        Box::new(|c, first, _count| c == Channel::A && first % 10 == 0)
    })));
    let cpu = cpus().first().copied().unwrap_or(0);
    let plan = CorePlan {
        cores: vec![CoreAssignment {
            cpu,
            gateway: true,
            sequencer: true,
            shards: vec![0, 1],
        }],
    };
    let mut cfg = base_config(plan);
    cfg.md = Some(mdc_node_config(mode));
    let mut node = Node::start(&cfg, accounts()).unwrap();
    let mut s1 = mdc_subscribe(&node, mode, 1);
    let mut s2 = mdc_subscribe(&node, mode, 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s1
        .iter()
        .chain(s2.iter())
        .all(|f| f.is_connected() && f.stats().packets[0] > 0 && f.stats().packets[1] > 0)
    {
        assert!(
            Instant::now() < deadline,
            "{mode:?}: both subscribers never connected on A and B"
        );
        poll(&mut [&mut s1, &mut s2]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut flow = Flow::new(&node);
    for _ in 0..600 {
        flow.step();
        poll(&mut [&mut s1, &mut s2]);
    }
    flow.sync();
    catch_up(&node, &mut [&mut s1, &mut s2], "mdc");
    flow.drain();
    for f in s1.iter().chain(s2.iter()) {
        let s = f.stats();
        eprintln!("{mode:?} subscriber: {s:?}");
        // Each subscriber got its own copy of both feeds, and B filled A's holes.
        assert!(s.packets[0] > 0 && s.packets[1] > 0, "{mode:?}: {s:?}");
        assert!(s.first_copies[1] > 0, "{mode:?}: B filled no hole: {s:?}");
        assert_eq!(s.book_errors, 0);
        f.books().check().unwrap();
    }
    node.stop();
    let books = node.md().unwrap().final_books();
    assert_eq!(books.len(), 4);
    let mut resting = 0;
    for (instrument, want) in &books {
        resting += want.len();
        for (name, feeds) in [("subscriber 1", &s1), ("subscriber 2", &s2)] {
            let got: Vec<_> = feeds
                .iter()
                .flat_map(|f| feed_book(f, *instrument))
                .collect();
            assert_eq!(&got, want, "{mode:?} {name}: instrument {instrument} L3");
        }
    }
    assert!(resting > 50, "the books hold {resting} orders");
}

/// Runs `test` (this file's test of that name) in a new network namespace, or `scenario` when
/// already in it.
fn in_netns(test: &str, scenario: impl FnOnce()) {
    if netns::in_child() {
        scenario();
        return;
    }
    let probe = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status();
    if !matches!(&probe, Ok(s) if s.success()) {
        eprintln!("SKIPPED {test}: cannot create a network namespace ({probe:?})");
        return;
    }
    let status = netns::run_self(&[
        test.into(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ])
    .expect("running unshare");
    assert!(
        status.success(),
        "{test} in a network namespace failed: {status}"
    );
}

#[test]
fn node_market_data_over_dynamic_mdc_in_netns() {
    in_netns("node_market_data_over_dynamic_mdc_in_netns", || {
        mdc_scenario(Mdc::Dynamic)
    });
}

#[test]
fn node_market_data_over_manual_mdc_in_netns() {
    in_netns("node_market_data_over_manual_mdc_in_netns", || {
        mdc_scenario(Mdc::Manual)
    });
}
