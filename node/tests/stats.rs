//! The latency lab inside the node: every answered request leaves a trace record in the stats
//! file with its stage stamps in order, the stage histograms count them, a request that fails
//! the gateway's checks leaves none, and `[stats] enabled = false` takes no stamps.

mod common;

use common::*;
use tpx_client::req;
use tpx_node::config::CorePlan;
use tpx_node::observe::stats::{counter, Stage, StatsMap};
use tpx_node::observe::trace::{TraceKind, TraceReader};
use tpx_node::Node;
use tpx_wire::enums::Side;
use tpx_wire::order_entry::ReplaceOrder;
use tpx_wire::replies::ServerMessage;

fn node_with_stats(path: &std::path::Path, enabled: bool) -> Node {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    cfg.stats.path = Some(path.to_path_buf());
    cfg.stats.enabled = enabled;
    Node::start(&cfg, accounts()).unwrap()
}

#[test]
fn answers_are_stamped_through_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.stats");
    let node = node_with_stats(&path, true);
    assert_eq!(node.stats_path(), Some(path.as_path()));
    let mut c = login(&node, 2);
    c.send(&req::enter(limit(7, 1, Side::Buy, 50_000, 3)))
        .unwrap();
    assert!(matches!(next(&mut c), ServerMessage::OrderAccepted(_)));
    c.send(&req::replace(ReplaceOrder {
        orig_cl_ord_id: 7,
        new_cl_ord_id: 8,
        price: 50_001,
        qty: 3,
    }))
    .unwrap();
    assert!(matches!(next(&mut c), ServerMessage::OrderReplaced(_)));
    // A duplicate cl_ord_id is rejected by the gateway itself: no trip through the stages.
    c.send(&req::enter(limit(8, 1, Side::Buy, 50_000, 3)))
        .unwrap();
    assert!(matches!(next(&mut c), ServerMessage::OrderRejected(_)));
    c.send(&req::cancel(8, 0)).unwrap();
    until(&mut c, |m| matches!(m, ServerMessage::OrderCancelled(_)));

    let map = StatsMap::open(&path).unwrap();
    assert!(map.tsc_hz() > 1e6);
    // The gateway writes a cycle's trace records right after that cycle's `write(2)`s: the
    // client can read the last reply a moment before.
    let mut reader = TraceReader::new(&map, 0);
    let mut recs = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while recs.len() < 3 && std::time::Instant::now() < deadline {
        recs.extend(reader.poll(&map));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let keys: Vec<(u32, TraceKind, u64)> = recs
        .iter()
        .map(|r| (r.account, r.kind, r.cl_ord_id))
        .collect();
    assert_eq!(
        keys,
        vec![
            (2, TraceKind::Enter, 7),
            (2, TraceKind::Replace, 8),
            (2, TraceKind::Cancel, 8)
        ]
    );
    for r in &recs {
        let s = r.stamps;
        // The node's log is durable (fsync): every stage is stamped, in order.
        assert!(s.rx > 0 && s.durable > 0, "{r:?}");
        assert!(
            s.rx <= s.seq && s.seq <= s.durable && s.durable <= s.matched && s.matched <= r.written,
            "{r:?}"
        );
    }
    assert_eq!(map.counter(0, counter::STAMPED), 3);
    assert_eq!(map.counter(0, counter::REQUESTS), 3);
    let total = |st: Stage| map.histogram(0, st as usize).iter().sum::<u64>();
    assert_eq!(total(Stage::RxToWritten), 3);
    assert_eq!(total(Stage::SequencedToDurable), 3);
    let snap = map.snapshot();
    assert_eq!(snap.cores.len(), 1);
    assert!(snap.cores[0].stages[Stage::RxToWritten as usize].p50_ns > 0);
    drop(node);
    assert!(
        !path.exists(),
        "the node removes its stats file when it stops"
    );
}

#[test]
fn disabled_stats_take_no_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("off.stats");
    let node = node_with_stats(&path, false);
    assert_eq!(node.stats_path(), None);
    let mut c = login(&node, 1);
    c.send(&req::enter(limit(1, 1, Side::Sell, 50_000, 1)))
        .unwrap();
    assert!(matches!(next(&mut c), ServerMessage::OrderAccepted(_)));
    assert!(!path.exists());
}
