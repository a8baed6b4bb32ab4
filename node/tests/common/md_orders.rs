//! Orders placed while a feed handler follows the node's market data (tests that include this
//! file with `#[path]` also have `mod procs`).

use tpx_feed::FeedHandler;

/// Sends orders `ids` (`procs::order`) on `c` and waits for every ack, polling the feed handler
/// meanwhile (so that its Aeron image keeps up).
pub fn place(
    c: &mut tpx_client::Client,
    ids: std::ops::RangeInclusive<u64>,
    feed: &mut FeedHandler,
) {
    use std::time::{Duration, Instant};
    use tpx_wire::replies::ServerMessage;
    let n = ids.clone().count();
    for cl in ids {
        c.send(&tpx_client::req::enter(crate::procs::order(cl)))
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + crate::procs::WAIT;
    while acked < n {
        assert!(Instant::now() < deadline, "acks missing: {acked} of {n}");
        feed.poll(tpx_md::AeronClient::nano_clock(), &mut ());
        match c.recv(Duration::from_millis(1)) {
            Ok(ServerMessage::OrderAccepted(_)) => acked += 1,
            Ok(ServerMessage::Heartbeat(_)) | Err(tpx_client::ClientError::Timeout) => {}
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Polls the feed handler until its book holds `orders` orders and it is live.
pub fn feed_until(feed: &mut FeedHandler, orders: usize, what: &str) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + crate::procs::WAIT;
    while feed.core().books().live_orders() != orders || !feed.core().is_live() {
        assert!(
            Instant::now() < deadline,
            "{what}: the feed handler holds {} orders, not {orders}: next_seq {} stats {:?}",
            feed.core().books().live_orders(),
            feed.core().next_seq(),
            feed.stats()
        );
        if feed.poll(tpx_md::AeronClient::nano_clock(), &mut ()) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Polls the feed handler until it has heard a heartbeat of the publisher (its image is
/// connected: orders placed from now on reach it as they are published).
pub fn until_heartbeat(feed: &mut FeedHandler) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + crate::procs::WAIT;
    while feed.stats().heartbeats == 0 {
        assert!(
            Instant::now() < deadline,
            "no heartbeat: {:?}",
            feed.stats()
        );
        if feed.poll(tpx_md::AeronClient::nano_clock(), &mut ()) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
