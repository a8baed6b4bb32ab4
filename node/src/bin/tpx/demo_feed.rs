//! `tpx up --demo`'s market-data subscriber: a feed handler per shard on one parked thread,
//! joined to the node's media driver, keeping the tops it sees for the once-a-second line.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tpx_engine::InstrumentId;
use tpx_feed::{FeedHandler, FeedHandlerConfig};
use tpx_md::{AeronClient, AeronSetup, ChannelConfig};
use tpx_wire::Side;

use tpx_node::appliance::serve::fmt_price;
use tpx_node::config::md::MdConfig;
use tpx_node::runtime::state::PriceQty;
use tpx_node::shard::md::NodeMd;
use tpx_node::{Node, NodeConfig};

/// The best bid and ask of one instrument as the demo's feed handler sees it (price 0: empty).
#[derive(Debug, Default)]
pub struct FeedTop {
    pub bid_px: AtomicI64,
    pub bid_qty: AtomicU64,
    pub ask_px: AtomicI64,
    pub ask_qty: AtomicU64,
}

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

/// A feed handler per shard on one parked thread, inside `tpx up --demo`: joins the node's
/// driver and keeps the tops of every instrument for the once-a-second line.
#[derive(Debug)]
pub struct DemoFeed {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// By instrument, in the order `start` was given them.
    pub tops: Arc<Vec<FeedTop>>,
    /// Next sequence number and gaps seen, summed over the shards' streams.
    pub next_seq: Arc<AtomicU64>,
    pub gaps: Arc<AtomicU64>,
    pub recoveries: Arc<AtomicU64>,
}

impl DemoFeed {
    /// Subscribes to every shard's stream through the node's driver.
    pub fn start(md: &NodeMd, instruments: Vec<InstrumentId>) -> Result<DemoFeed, String> {
        let configs = md
            .streams()
            .iter()
            .map(|st| {
                let mut f = feed_config_of(
                    md.config(),
                    st.shard,
                    AeronSetup::External {
                        dir: md.aeron_dir().to_string(),
                    },
                );
                f.retransmit_server = st.retransmit;
                f
            })
            .collect();
        DemoFeed::start_with(configs, instruments)
    }

    /// Subscribes with these configs (one per shard stream) on one parked thread.
    pub fn start_with(
        configs: Vec<FeedHandlerConfig>,
        instruments: Vec<InstrumentId>,
    ) -> Result<DemoFeed, String> {
        let mut feeds = Vec::new();
        for mut cfg in configs {
            cfg.core.buffer_bytes = 4 << 20;
            feeds.push(FeedHandler::connect(cfg).map_err(|e| format!("demo feed handler: {e}"))?);
        }
        let tops: Arc<Vec<FeedTop>> =
            Arc::new(instruments.iter().map(|_| FeedTop::default()).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let next_seq = Arc::new(AtomicU64::new(0));
        let gaps = Arc::new(AtomicU64::new(0));
        let recoveries = Arc::new(AtomicU64::new(0));
        let thread = {
            let (tops, stop, ids) = (tops.clone(), stop.clone(), instruments);
            let (next_seq, gaps, recoveries) = (next_seq.clone(), gaps.clone(), recoveries.clone());
            std::thread::Builder::new()
                .name("tpx-demo-feed".into())
                .spawn(move || {
                    let mut idle = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let mut work = 0;
                        for f in feeds.iter_mut() {
                            work += f.poll(AeronClient::nano_clock(), &mut ());
                        }
                        if work == 0 {
                            idle = idle.saturating_add(1);
                        } else {
                            idle = 0;
                        }
                        for (k, id) in ids.iter().enumerate() {
                            let book = feeds.iter().find_map(|f| f.books().book(*id));
                            let t = &tops[k];
                            let side = |s| book.and_then(|b| b.best(s)).map(|l| (l.price, l.qty));
                            let (bp, bq) = side(Side::Buy).unwrap_or((0, 0));
                            let (ap, aq) = side(Side::Sell).unwrap_or((0, 0));
                            t.bid_px.store(bp, Ordering::Relaxed);
                            t.bid_qty.store(bq, Ordering::Relaxed);
                            t.ask_px.store(ap, Ordering::Relaxed);
                            t.ask_qty.store(aq, Ordering::Relaxed);
                        }
                        let sum = |g: fn(&FeedHandler) -> u64| feeds.iter().map(g).sum::<u64>();
                        next_seq.store(sum(|f| f.core().next_seq()), Ordering::Relaxed);
                        gaps.store(sum(|f| f.stats().gaps), Ordering::Relaxed);
                        recoveries.store(sum(|f| f.stats().snapshot_recoveries), Ordering::Relaxed);
                        if idle > 16 {
                            // Parked, not spinning: the demo is for looking at.
                            std::thread::sleep(Duration::from_micros(500));
                        }
                    }
                })
                .map_err(|e| format!("demo feed thread: {e}"))?
        };
        Ok(DemoFeed {
            stop,
            thread: Some(thread),
            tops,
            next_seq,
            gaps,
            recoveries,
        })
    }

    /// The demo's subscriber for a node that publishes (`None` with a printed reason if it
    /// cannot subscribe, or when the node has no `[md]`).
    pub fn for_node(node: &Node) -> Option<DemoFeed> {
        let md = node.md()?;
        let ids = node.shared().instruments.iter().map(|(i, _)| *i).collect();
        match DemoFeed::start(md, ids) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("tpx up: no market-data subscriber: {e}");
                None
            }
        }
    }

    /// The node's top of book next to the feed handler's, per instrument, and the feed's
    /// sequence number and gaps: `BTC-USDT node 60001x5/60003x2 | feed 60001x5/60003x2`.
    pub fn line(&self, node: &Node, cfg: &NodeConfig) -> String {
        let shared = node.shared();
        let ticks: Vec<u64> = cfg.instruments().iter().map(|i| i.tick_size).collect();
        let mut parts = Vec::new();
        for (k, (_, symbol)) in shared.instruments.iter().enumerate() {
            let tick = ticks.get(k).copied().unwrap_or(1_000_000);
            let side = |s: Option<PriceQty>| {
                s.map_or("-".to_string(), |(p, q)| {
                    format!("{}x{q}", fmt_price(p, tick))
                })
            };
            let (nb, na) = shared.top(k);
            let (fb, fa) = self.top(k);
            parts.push(format!(
                "{symbol} node {}/{} | feed {}/{}",
                side(nb),
                side(na),
                side(fb),
                side(fa)
            ));
        }
        // Both sides are read at slightly different moments: under load the feed may be a few
        // messages behind the node (`behind`), and the tops then differ for that moment.
        let published: u64 = node.md().map_or(0, |md| {
            md.streams()
                .iter()
                .map(|s| s.counters.next_seq.load(Ordering::Relaxed))
                .sum()
        });
        let seen = self.next_seq.load(Ordering::Relaxed);
        format!(
            "{}  md_seq={} behind={} gaps={} snapshot_recoveries={}",
            parts.join("  "),
            seen,
            published.saturating_sub(seen),
            self.gaps.load(Ordering::Relaxed),
            self.recoveries.load(Ordering::Relaxed)
        )
    }

    /// `(bid, ask)` of the instrument at `index` (in `instruments` order) as the feed sees it.
    pub fn top(&self, index: usize) -> (Option<PriceQty>, Option<PriceQty>) {
        let Some(t) = self.tops.get(index) else {
            return (None, None);
        };
        let bid = t.bid_px.load(Ordering::Relaxed);
        let ask = t.ask_px.load(Ordering::Relaxed);
        (
            (bid != 0).then(|| (bid, t.bid_qty.load(Ordering::Relaxed))),
            (ask != 0).then(|| (ask, t.ask_qty.load(Ordering::Relaxed))),
        )
    }

    /// Stops the thread (the feed handlers go with it).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DemoFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
