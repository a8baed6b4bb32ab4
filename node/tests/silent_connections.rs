//! Connections that never log in cannot lock a member out. A gateway core holds at most
//! `max_connections_per_core` connections; before, connections still waiting for their login
//! counted like sessions, so anything that could reach the order-entry port and held that many
//! open (re-opening them every `login_timeout_ms`) had every market maker's connection reset.
//! Now a connection arriving at a full core takes the place of the oldest one still waiting
//! for its login; only logged-in sessions fill a core for good.

mod common;

use common::*;
use tpx_client::req;
use tpx_node::config::CorePlan;
use tpx_node::Node;
use tpx_wire::enums::Side;
use tpx_wire::replies::ServerMessage;

#[test]
fn a_member_logs_in_past_a_core_full_of_silent_connections() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    cfg.max_connections_per_core = 4;
    cfg.login_timeout_ms = 60_000;
    cfg.stats.prometheus = Some("127.0.0.1:0".parse().unwrap());
    let mut node = Node::start(&cfg, accounts()).unwrap();
    let silent: Vec<std::net::TcpStream> = (0..12)
        .map(|_| std::net::TcpStream::connect(node.addr()).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut c = login(&node, 2);
    c.send(&req::enter(limit(1, 1, Side::Buy, 50_000, 1)))
        .unwrap();
    assert!(matches!(next(&mut c), ServerMessage::OrderAccepted(_)));
    // Operators see it: 12 silent connections and the member's on a core of 4 closed at
    // least 9 waiting ones (the stats thread refreshes every 100 ms).
    let page = || scrape(node.prometheus_addr().unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&page(), "tpx_node_waiting_logins_evicted_total") < 9 {
        assert!(std::time::Instant::now() < deadline, "{}", page());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let p = page();
    assert_eq!(metric(&p, "tpx_node_connections_accepted_total"), 13, "{p}");
    assert_eq!(metric(&p, "tpx_node_logins_total"), 1, "{p}");
    drop(silent);
    node.stop();
}
