//! The subscriber side of the node's market data for tests: feed-handler configs for the node's
//! streams and a feed handler's books in the node's form. (The appliance library does not
//! depend on the feed handler; `tpx up --demo` has its own subscriber in `bin/tpx/demo_feed.rs`.)

use tpx_engine::InstrumentId;
use tpx_feed::{FeedHandler, FeedHandlerConfig};
use tpx_md::{AeronSetup, ChannelConfig};
use tpx_node::config::md::MdConfig;
use tpx_node::shard::md::{BookOrder, NodeMd};

/// The feed-handler config for shard `shard`'s streams of `cfg`, without a retransmission
/// server (for a subscriber that does not know the publishers' recovery ports).
pub fn feed_config_of(cfg: &MdConfig, shard: u16, setup: AeronSetup) -> FeedHandlerConfig {
    let mut f = FeedHandlerConfig::new(
        setup,
        ChannelConfig::new(cfg.channel_a.clone(), cfg.stream_a(shard) as i32),
    );
    f.b = cfg
        .channel_b
        .as_ref()
        .map(|b| ChannelConfig::new(b.clone(), cfg.stream_b(shard) as i32));
    f.snapshot = Some(ChannelConfig::new(
        cfg.snapshot_channel(),
        cfg.snapshot_stream(shard) as i32,
    ));
    f.core.stream_id = cfg.stream_a(shard);
    f.core.snapshot_stream_id = Some(cfg.snapshot_stream(shard));
    f.core.feeds = if f.b.is_some() { 2 } else { 1 };
    f
}

/// A feed-handler config for a running node's shard stream through `setup`: its channels
/// (feeds A and B, snapshots) and its retransmission server.
pub fn node_feed_config(md: &NodeMd, shard: u16, setup: AeronSetup) -> Option<FeedHandlerConfig> {
    let st = md.streams().get(shard as usize)?;
    let mut f = feed_config_of(md.config(), shard, setup);
    f.retransmit_server = st.retransmit;
    Some(f)
}

/// An instrument's book as a feed handler holds it, in the same form.
pub fn feed_book(feed: &FeedHandler, instrument: InstrumentId) -> Vec<BookOrder> {
    feed.books()
        .l3(instrument)
        .iter()
        .map(|o| BookOrder {
            order_id: o.order_id,
            side: o.side,
            price: o.price,
            qty: o.qty,
        })
        .collect()
}
