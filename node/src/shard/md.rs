//! Market data from the node: each shard runs its sequenced commands through a
//! [`tpx_md::MdPublisher`] (order-by-order ITCH-like packets on Aeron, A and B feeds, a snapshot
//! stream, a retransmission server), through one media driver per node process (embedded unless
//! `[md] aeron_dir` names an external one).
//!
//! - [`MdConfig`]: the `[md]` section of `node.toml` (absent: the node publishes nothing).
//! - [`NodeMd`]: what the node keeps (the embedded driver, per-shard stream ids, retransmission
//!   addresses and counters, the books each shard leaves behind when it stops).
//! - [`ShardMd`]: what a shard owns (the publisher): [`ShardMd::process`] on the hot path (no
//!   allocation, no blocking: a failed offer is counted and the packet stays in the
//!   retransmission ring), [`ShardMd::work`] between commands (heartbeats, the snapshot loop,
//!   standby/primary switching).
//!
//! Stream layout: shard `s` publishes its incremental stream on `channel_a` with Aeron stream id
//! `stream_id + s` (the packets' MoldUDP64 session is the same number), on `channel_b` with
//! `stream_id_b + s` (default `stream_id`: same id, other group/interface), and its snapshots on
//! `snapshot_channel` (default `channel_a`) with `snapshot_stream_id + s`. Order and trade ids
//! carry the shard in their top 16 bits, as on order entry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tpx_engine::{Engine, EngineInput, EventSink, InstrumentId, InstrumentSpec};
use tpx_md::{
    AeronChannels, AeronSetup, AeronTransport, Channel, ChannelConfig, DriverConfig, DriverIdle,
    DriverThreading, DropFilter, EmbeddedDriver, InstrumentState, MdInstrument, MdPublisher,
    MdState, MdTransport, PublisherConfig, RetransmitConfig, SendOutcome, Tee,
};
use tpx_sequencer::snapshot::{MdImage, MdInstrumentImage};
use tpx_wire::{Side, Symbol};

use crate::config::md::{MdConfig, MdDriverIdle, MdThreading};

/// A shard's counters, written by the shard's thread after each piece of work, read by anyone.
#[derive(Debug, Default)]
pub struct ShardMdCounters {
    /// Sequence number of the next message.
    pub next_seq: AtomicU64,
    pub packets: AtomicU64,
    pub messages: AtomicU64,
    /// Offers refused because the publication was back-pressured, feeds A + B.
    pub back_pressured: AtomicU64,
    /// Offers refused for want of a subscriber (or failed), feeds A + B.
    pub not_connected: AtomicU64,
    pub heartbeats: AtomicU64,
    pub snapshot_cycles: AtomicU64,
    /// 1 while the publisher sends (primary), 0 in standby.
    pub active: AtomicU64,
}

/// A shard's stream, as a subscriber needs it.
#[derive(Clone, Debug)]
pub struct ShardStream {
    pub shard: u16,
    pub stream_a: u32,
    pub stream_b: u32,
    pub snapshot_stream: u32,
    /// The retransmission server's bound address.
    pub retransmit: Option<SocketAddr>,
    pub counters: Arc<ShardMdCounters>,
}

/// An order resting in a book, as the engine holds it (order id with the shard's bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookOrder {
    pub order_id: u64,
    pub side: Side,
    pub price: i64,
    pub qty: u64,
}

/// Books by instrument, in queue order (bids best first, then asks best first).
pub type Books = BTreeMap<InstrumentId, Vec<BookOrder>>;

/// The node's market-data side. Drop it after the shards (the driver goes with it).
#[derive(Debug)]
pub struct NodeMd {
    cfg: MdConfig,
    dir: String,
    streams: Vec<ShardStream>,
    final_books: Arc<Mutex<Books>>,
    /// Last field: dropped after everything else.
    driver: Option<EmbeddedDriver>,
}

/// Shard `shard`'s publisher settings from `[md]` (`instruments`: the shard's, with their
/// symbols). The running shard's and the snapshot thread's numbering copy's (which needs the
/// same message count per command, so the same instruments and id base).
pub fn publisher_config(
    cfg: &MdConfig,
    shard: u16,
    instruments: &[(InstrumentSpec, String)],
    retransmit: Option<RetransmitConfig>,
) -> PublisherConfig {
    PublisherConfig {
        stream_id: cfg.stream_a(shard),
        snapshot_stream_id: cfg.snapshot_stream(shard),
        id_base: u64::from(shard) << crate::shard::apply::SHARD_ORDER_ID_SHIFT,
        heartbeat_interval_ns: cfg.heartbeat_interval_ms.max(1) * 1_000_000,
        snapshot_interval_ns: cfg.snapshot_interval_ms.max(1) * 1_000_000,
        snapshot_packets_per_work: 4,
        ring_capacity: cfg.ring_capacity,
        retransmit,
        instruments: instruments
            .iter()
            .map(|(spec, symbol)| MdInstrument {
                spec: *spec,
                symbol: Symbol::new(symbol),
            })
            .collect(),
        ..PublisherConfig::default()
    }
}

/// The image of a publisher's state (a node snapshot carries one per shard).
pub fn md_image_of(state: &MdState) -> MdImage {
    MdImage {
        next_seq: state.next_seq,
        instruments: state
            .instruments
            .iter()
            .map(|i| MdInstrumentImage {
                id: i.id,
                halted: i.halted,
                ref_price: i.ref_price,
                band_bps: i.band_bps,
            })
            .collect(),
    }
}

/// The publisher state an image holds.
pub fn md_state_of(image: &MdImage) -> MdState {
    MdState {
        next_seq: image.next_seq,
        instruments: image
            .instruments
            .iter()
            .map(|i| InstrumentState {
                id: i.id,
                halted: i.halted,
                ref_price: i.ref_price,
                band_bps: i.band_bps,
            })
            .collect(),
    }
}

/// Test hook: makes the drop filter of shard `s`'s publisher (see [`tpx_md::DropFilter`]).
pub type DropFilterFactory = Box<dyn Fn(u16) -> DropFilter + Send>;

static TEST_DROP_FILTERS: Mutex<Option<DropFilterFactory>> = Mutex::new(None);

/// Test hook: the publishers of the next node started in this process withhold the packets the
/// filters name (a publisher-side stand-in for network loss). Never set in production.
pub fn set_test_drop_filters(f: Option<DropFilterFactory>) {
    *TEST_DROP_FILTERS.lock().unwrap_or_else(|e| e.into_inner()) = f;
}

impl NodeMd {
    /// Starts (or joins) the media driver and builds one publisher per shard; `shards[s]` is
    /// shard `s`'s instruments with their symbols. Returns the node's part and the shards'.
    pub fn start(
        cfg: &MdConfig,
        shards: &[Vec<(InstrumentSpec, String)>],
    ) -> Result<(NodeMd, Vec<ShardMd>), String> {
        cfg.check()?;
        let driver = match &cfg.aeron_dir {
            Some(_) => None,
            None => Some(launch_driver(cfg)?),
        };
        let dir = match (&cfg.aeron_dir, &driver) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d.dir().to_string(),
            (None, None) => unreachable!("embedded driver launched above"),
        };
        let final_books = Arc::new(Mutex::new(Books::new()));
        let mut filters = TEST_DROP_FILTERS.lock().unwrap_or_else(|e| e.into_inner());
        let mut streams = Vec::new();
        let mut parts = Vec::new();
        for (s, instruments) in shards.iter().enumerate() {
            let shard = s as u16;
            let retransmit = cfg.retransmit_addr.map(|mut a| {
                if a.port() != 0 {
                    a.set_port(a.port() + shard);
                }
                RetransmitConfig {
                    addr: a,
                    ..RetransmitConfig::default()
                }
            });
            let pcfg = publisher_config(cfg, shard, instruments, retransmit);
            // Manual MDC destinations belong to the driver's endpoint of a channel, which every
            // shard's stream on that channel shares: shard 0 adds them (once per channel).
            let dests = |list: &Vec<String>| {
                if shard == 0 {
                    list.clone()
                } else {
                    Vec::new()
                }
            };
            let snapshot_dests = if cfg.snapshot_channel() == cfg.channel_a {
                Vec::new()
            } else {
                dests(&cfg.snapshot_destinations)
            };
            let channels = AeronChannels {
                setup: AeronSetup::External { dir: dir.clone() },
                a: ChannelConfig::new(cfg.channel_a.clone(), cfg.stream_a(shard) as i32)
                    .with_destinations(dests(&cfg.destinations_a)),
                b: cfg.channel_b.as_ref().map(|c| {
                    ChannelConfig::new(c.clone(), cfg.stream_b(shard) as i32)
                        .with_destinations(dests(&cfg.destinations_b))
                }),
                snapshot: Some(
                    ChannelConfig::new(cfg.snapshot_channel(), cfg.snapshot_stream(shard) as i32)
                        .with_destinations(snapshot_dests),
                ),
            };
            // As `MdPublisher::connect`: packets cut at the publications' largest
            // unfragmented message.
            let transport = AeronTransport::connect(&channels)
                .map_err(|e| format!("md: shard {shard} publisher: {e}"))?;
            let mut pcfg = pcfg;
            pcfg.max_packet_len = pcfg.max_packet_len.min(transport.max_payload());
            let mut publisher = MdPublisher::new(pcfg, ShardMdOut::Aeron(transport))
                .map_err(|e| format!("md: shard {shard} publisher: {e}"))?
                .with_feed_b(channels.b.is_some());
            if let Some(f) = filters.as_ref() {
                publisher.set_drop_filter(Some(f(shard)));
            }
            let counters = Arc::new(ShardMdCounters::default());
            counters
                .next_seq
                .store(publisher.next_seq(), Ordering::Relaxed);
            counters.active.store(1, Ordering::Relaxed);
            streams.push(ShardStream {
                shard,
                stream_a: cfg.stream_a(shard),
                stream_b: cfg.stream_b(shard),
                snapshot_stream: cfg.snapshot_stream(shard),
                retransmit: publisher.retransmit().map(|h| h.addr()),
                counters: counters.clone(),
            });
            parts.push(ShardMd {
                publisher,
                counters,
                final_books: final_books.clone(),
            });
        }
        filters.take();
        Ok((
            NodeMd {
                cfg: cfg.clone(),
                dir,
                streams,
                final_books,
                driver,
            },
            parts,
        ))
    }

    /// Whether the node embeds its media driver (no `aeron_dir`).
    pub fn embeds_driver(&self) -> bool {
        self.driver.is_some()
    }

    /// The media driver's directory (subscribers in this process or on this host join it).
    pub fn aeron_dir(&self) -> &str {
        &self.dir
    }

    pub fn config(&self) -> &MdConfig {
        &self.cfg
    }

    /// By shard id.
    pub fn streams(&self) -> &[ShardStream] {
        &self.streams
    }

    /// The books each shard held when it stopped (filled when the node stops: compare a
    /// subscriber's books with them).
    pub fn final_books(&self) -> Books {
        self.final_books
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Feed A's packets kept in memory, in the order sent (the owner takes them).
pub type MemoryPackets = Arc<Mutex<Vec<Vec<u8>>>>;

/// Where a shard's packets go: Aeron (the node), or memory (the simulator, `tpx-sim`).
/// Built once per shard and never moved on the hot path: the Aeron variant stays inline (no
/// pointer to chase per packet) although it is much larger than the other.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ShardMdOut {
    Aeron(AeronTransport),
    /// Feed A only, no snapshot subscriber (the snapshot loop idles).
    Memory(MemoryPackets),
    /// Nothing (a numbering-only publisher, which never sends).
    Nowhere,
}

/// The ring of a numbering-only publisher (it serves no retransmission).
const NUMBERING_RING_CAPACITY: usize = 64;

impl MdTransport for ShardMdOut {
    #[inline]
    fn send(&mut self, channel: Channel, packet: &[u8]) -> SendOutcome {
        match self {
            ShardMdOut::Aeron(t) => t.send(channel, packet),
            ShardMdOut::Memory(m) if channel == Channel::A => {
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(packet.to_vec());
                SendOutcome::Sent
            }
            ShardMdOut::Memory(_) | ShardMdOut::Nowhere => SendOutcome::NotConnected,
        }
    }

    fn is_connected(&self, channel: Channel) -> bool {
        match self {
            ShardMdOut::Aeron(t) => t.is_connected(channel),
            ShardMdOut::Memory(_) => channel == Channel::A,
            ShardMdOut::Nowhere => false,
        }
    }

    fn maintain(&mut self) -> bool {
        match self {
            ShardMdOut::Aeron(t) => t.maintain(),
            ShardMdOut::Memory(_) | ShardMdOut::Nowhere => false,
        }
    }
}

/// What a shard owns: its publisher and where it reports.
#[derive(Debug)]
pub struct ShardMd {
    publisher: MdPublisher<ShardMdOut>,
    counters: Arc<ShardMdCounters>,
    final_books: Arc<Mutex<Books>>,
}

impl ShardMd {
    /// A shard's publisher whose feed A goes to memory (no media driver, no retransmission
    /// server: `pcfg.retransmit` is ignored): the simulator's. Returns the packets' list.
    pub fn in_memory(mut pcfg: PublisherConfig) -> Result<(ShardMd, MemoryPackets), String> {
        pcfg.retransmit = None;
        let packets = MemoryPackets::default();
        let publisher = MdPublisher::new(pcfg, ShardMdOut::Memory(packets.clone()))
            .map_err(|e| format!("md: publisher: {e}"))?;
        let md = ShardMd {
            publisher,
            counters: Arc::new(ShardMdCounters::default()),
            final_books: Arc::new(Mutex::new(Books::new())),
        };
        Ok((md, packets))
    }

    /// A publisher that only numbers (standby mode for good, nothing sent, a small ring, no
    /// retransmission server): the snapshot thread's copy of a shard, whose images carry the
    /// numbering ([`ShardMd::state`]).
    pub fn numbering_only(mut pcfg: PublisherConfig) -> Result<ShardMd, String> {
        pcfg.retransmit = None;
        pcfg.ring_capacity = NUMBERING_RING_CAPACITY;
        pcfg.active = false;
        let publisher = MdPublisher::new(pcfg, ShardMdOut::Nowhere)
            .map_err(|e| format!("md: numbering publisher: {e}"))?;
        Ok(ShardMd {
            publisher,
            counters: Arc::new(ShardMdCounters::default()),
            final_books: Arc::new(Mutex::new(Books::new())),
        })
    }

    /// What a restart from an image needs to go on with the stream (see [`md_image_of`]).
    pub fn state(&self) -> MdState {
        self.publisher.state()
    }

    /// Goes on from `state` (an image's), before the first command.
    pub fn restore(&mut self, state: &MdState) {
        self.publisher.restore(state);
        self.counters
            .next_seq
            .store(self.publisher.next_seq(), Ordering::Relaxed);
    }

    /// One command through the engine, its events to `reports` and to the publisher; the
    /// command's messages leave in one packet (A, then B) before this returns. Never blocks:
    /// `offer` either takes the packet or says why not (counted; the ring keeps it).
    #[inline]
    pub fn process<S: EventSink>(
        &mut self,
        engine: &mut Engine,
        ts_ns: u64,
        input: &EngineInput,
        reports: &mut S,
    ) {
        let md = &mut self.publisher;
        md.begin(ts_ns);
        engine.apply(ts_ns, input, &mut Tee(reports, md));
        md.end();
    }

    /// Between commands: follows the node's role (`active`: primary sends; standby only
    /// numbers), sends a due heartbeat and a bounded step of the snapshot loop, updates the
    /// counters. Returns the packets sent.
    /// Sends (primary) or only numbers and rings (standby) from the next packet on.
    #[inline]
    pub fn set_active(&mut self, active: bool) {
        if self.publisher.is_active() != active {
            self.publisher.set_active(active);
            self.counters
                .active
                .store(u64::from(active), Ordering::Relaxed);
        }
    }

    pub fn work(&mut self, now_ns: u64, active: bool, engine: &Engine) -> usize {
        self.set_active(active);
        let n = self.publisher.do_work(now_ns, engine);
        let s = self.publisher.stats();
        let c = &self.counters;
        c.next_seq
            .store(self.publisher.next_seq(), Ordering::Relaxed);
        c.packets.store(s.packets, Ordering::Relaxed);
        c.messages.store(s.messages, Ordering::Relaxed);
        c.back_pressured
            .store(s.a.back_pressured + s.b.back_pressured, Ordering::Relaxed);
        c.not_connected.store(
            s.a.not_connected + s.b.not_connected + s.a.failed + s.b.failed,
            Ordering::Relaxed,
        );
        c.heartbeats.store(s.heartbeats, Ordering::Relaxed);
        c.snapshot_cycles
            .store(s.snapshot_cycles, Ordering::Relaxed);
        n
    }

    /// The publisher (counters, state, `next_seq`, its retransmission ring).
    pub fn publisher(&self) -> &MdPublisher<ShardMdOut> {
        &self.publisher
    }

    /// Records the engine's books (called when the shard stops).
    pub fn record_books(&self, engine: &Engine, instruments: &[InstrumentId], id_base: u64) {
        let mut books = self.final_books.lock().unwrap_or_else(|e| e.into_inner());
        for &i in instruments {
            books.insert(i, engine_book(engine, i, id_base));
        }
    }
}

/// An instrument's book as the engine holds it, in queue order, with the shard's id bits.
pub fn engine_book(engine: &Engine, instrument: InstrumentId, id_base: u64) -> Vec<BookOrder> {
    engine
        .l3(instrument)
        .iter()
        .map(|o| BookOrder {
            order_id: id_base | o.order_id,
            side: o.side.into(),
            price: o.price,
            qty: o.leaves,
        })
        .collect()
}

/// Launches the embedded media driver `[md]` describes (threading, idle, term lengths).
pub fn launch_driver(cfg: &MdConfig) -> Result<EmbeddedDriver, String> {
    EmbeddedDriver::launch(&DriverConfig {
        dir: None,
        threading: match cfg.threading {
            MdThreading::Shared => DriverThreading::Shared,
            MdThreading::SharedNetwork => DriverThreading::SharedNetwork,
            MdThreading::Dedicated => DriverThreading::Dedicated,
        },
        idle: match cfg.driver_idle {
            MdDriverIdle::Backoff => DriverIdle::Backoff,
            MdDriverIdle::Spin => DriverIdle::Spin,
        },
        term_length: cfg.term_length,
        ipc_term_length: cfg.term_length,
        client_liveness_timeout_ns: None,
        sparse_terms: true,
    })
    .map_err(|e| format!("md: media driver: {e}"))
}
