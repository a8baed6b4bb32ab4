//! Settings that leave a node running but unable to serve are refused at start, with the key
//! named. Before, each of these started (`READY`) and then failed every client: a
//! `heartbeat_interval_ms` or `heartbeat_timeout_ms` of 0 logged every session out at once, a
//! `max_connections_per_core` of 0 reset every connection, a `max_orders` of 0 rejected every
//! order.

mod common;

use common::*;
use tpx_node::config::CorePlan;
use tpx_node::Node;

fn refused(edit: impl FnOnce(&mut tpx_node::NodeConfig), key: &str) {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    edit(&mut cfg);
    match Node::start(&cfg, accounts()) {
        Ok(mut node) => {
            node.stop();
            panic!("a node with a bad {key} started");
        }
        Err(e) => assert!(e.contains(key), "{key}: {e}"),
    }
}

#[test]
fn settings_that_cannot_serve_are_refused_at_start() {
    refused(|c| c.heartbeat_interval_ms = 0, "heartbeat_interval_ms");
    refused(|c| c.heartbeat_timeout_ms = 0, "heartbeat_timeout_ms");
    refused(
        |c| {
            c.heartbeat_interval_ms = 1_000;
            c.heartbeat_timeout_ms = 1_000;
        },
        "heartbeat_timeout_ms",
    );
    refused(
        |c| c.max_connections_per_core = 0,
        "max_connections_per_core",
    );
    refused(|c| c.max_orders = 0, "max_orders");
    refused(
        |c| c.max_sessions_per_account = 0,
        "max_sessions_per_account",
    );
}

/// Found by starting `tpx node` with out-of-range values: a `ring_capacity` of 2^40 aborted
/// the start (`memory allocation ... failed`, signal 6); a `journal_capacity` of 2^40 started
/// `READY` and aborted at the first login (a member's login killed the venue); one of 0 kept
/// no reply to replay after a reconnect; `heartbeat_timeout_ms` and `login_timeout_ms` of 2^60
/// wrapped when scaled to nanoseconds (every connection closed at once); a `segment_bytes`
/// of 2^50 started `READY` and then answered no order (`LOGERROR ... File too large`).
#[test]
fn out_of_range_sizes_and_times_are_refused_at_start() {
    refused(|c| c.ring_capacity = 1 << 40, "ring_capacity");
    refused(|c| c.journal_capacity = 1 << 40, "journal_capacity");
    refused(|c| c.journal_capacity = 0, "journal_capacity");
    refused(|c| c.heartbeat_timeout_ms = 1 << 60, "heartbeat_timeout_ms");
    refused(|c| c.login_timeout_ms = 1 << 60, "login_timeout_ms");
    refused(
        |c| {
            if let Some(r) = c.replication.as_mut() {
                r.segment_bytes = Some(1 << 50);
            }
        },
        "segment_bytes",
    );
}

#[test]
fn the_base_config_still_starts() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let cfg = base_config(CorePlan::single(cpu));
    let mut node = Node::start(&cfg, accounts()).expect("the base config starts");
    node.stop();
}
