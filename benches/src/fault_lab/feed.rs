//! The lab's market-data subscriber: a `tpx-feed` feed handler (`FeedHandler`, its own embedded
//! media driver) in the clients' namespace, subscribed to the unicast endpoint both nodes
//! publish shard 0's feed A and snapshots to (only the primary sends). It follows the stream
//! across every fault (a takeover continues the numbering; what it misses it recovers from the
//! snapshots, no retransmission server: the one it would ask may be the dead node) and, once
//! told to stop, polls until it is live and quiet, then returns its books for the checker to
//! compare with the replay's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tpx_feed::{FeedHandler, FeedHandlerConfig};
use tpx_md::{AeronClient, AeronSetup, ChannelConfig, DriverConfig};
use tpx_node::shard::md::{BookOrder, Books};

/// The port of the clients' address the nodes send market data to.
pub const MD_PORT: u16 = 40456;
/// The nodes' `[md]` base stream ids (the defaults): shard 0's.
const STREAM: i32 = 100;
const SNAPSHOT_STREAM: i32 = 200;

/// What the subscriber ended with.
#[derive(Debug, Default)]
pub struct FeedEnd {
    pub books: Books,
    /// Whether it was live (no gap open, not recovering) when it stopped.
    pub live: bool,
    pub next_seq: u64,
    pub snapshot_recoveries: u64,
    pub gaps: u64,
    pub book_errors: u64,
}

/// Runs the subscriber on this thread until `stop`, then until it is live and has seen only
/// heartbeats for `quiet` (at most `settle`).
pub fn subscribe(
    ns: Option<String>,
    endpoint: String,
    instruments: Vec<u32>,
    stop: Arc<AtomicBool>,
    quiet: Duration,
    settle: Duration,
) -> Result<FeedEnd, String> {
    super::topology::enter(ns.as_deref())?;
    let channel = format!("aeron:udp?endpoint={endpoint}");
    let mut cfg = FeedHandlerConfig::new(
        AeronSetup::Embedded(DriverConfig::for_tests()),
        ChannelConfig::new(channel.clone(), STREAM),
    );
    cfg.snapshot = Some(ChannelConfig::new(channel, SNAPSHOT_STREAM));
    cfg.core.stream_id = STREAM as u32;
    cfg.core.snapshot_stream_id = Some(SNAPSHOT_STREAM as u32);
    cfg.core.buffer_bytes = 8 << 20;
    let mut feed = FeedHandler::connect(cfg).map_err(|e| format!("feed handler: {e}"))?;
    let mut idle = 0u32;
    let mut poll = |feed: &mut FeedHandler| {
        if feed.poll(AeronClient::nano_clock(), &mut ()) > 0 {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            std::thread::sleep(Duration::from_micros(u64::from(idle.min(100)) * 10));
        }
    };
    while !stop.load(Ordering::Relaxed) {
        poll(&mut feed);
    }
    let end = Instant::now() + settle;
    let mut last = (feed.stats().messages, Instant::now());
    while Instant::now() < end {
        poll(&mut feed);
        let m = feed.stats().messages;
        if m != last.0 || !feed.core().is_live() {
            last = (m, Instant::now());
        } else if last.1.elapsed() >= quiet {
            break;
        }
    }
    let s = *feed.stats();
    let books = instruments
        .iter()
        .map(|&i| {
            let l3 = feed
                .books()
                .l3(i)
                .iter()
                .map(|o| BookOrder {
                    order_id: o.order_id,
                    side: o.side,
                    price: o.price,
                    qty: o.qty,
                })
                .collect();
            (i, l3)
        })
        .collect();
    Ok(FeedEnd {
        books,
        live: feed.core().is_live(),
        next_seq: feed.core().next_seq(),
        snapshot_recoveries: s.snapshot_recoveries,
        gaps: s.gaps,
        book_errors: s.book_errors,
    })
}
