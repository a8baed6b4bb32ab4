//! The node-side market-data publisher of one shard: engine events in, MoldUDP64-like packets
//! out on the A and B feeds, a retransmission ring and server, a snapshot loop and heartbeats.
//!
//! ```text
//! per command (shard thread, hot path, never blocks, never allocates):
//!     md.begin(ts_ns);
//!     engine.process(ts_ns, &cmd, &mut Tee(&mut reports, &mut md));
//!     md.end();                     // one packet per command (more if it passes the MTU)
//! whenever the shard's loop has a moment (bounded work):
//!     md.do_work(now_ns, &engine);  // heartbeats, one step of the snapshot loop
//! ```
//!
//! **Sequence numbers.** Message `i` of the stream has sequence number `i` (from
//! `first_seq`, 1 on a new stream). The number of messages an event gives is fixed
//! ([`crate::encode::event_messages`]) and packets are cut at command boundaries and at
//! `max_packet_len`, so `next_seq` after log entry `k` is a pure function of the log up to `k`
//! (and of `first_seq` and `max_packet_len`): a standby that runs its own publisher in standby
//! mode (`active = false`: it encodes, numbers and fills its ring, but sends nothing) has the
//! same `next_seq`, the same packets byte for byte and the same ring, and continues the stream
//! exactly when promoted ([`MdPublisher::set_active`]). A node restarted from an engine
//! snapshot restores [`MdState`] with it.

use std::sync::Arc;

use tpx_engine::{
    Command, Engine, Event, EventSink, InstrumentId, InstrumentKind as EKind, InstrumentSpec,
};
use tpx_wire::codec::Symbol;
use tpx_wire::enums::{InstrumentKind, TradingState};
use tpx_wire::market_data::{
    InstrumentDirectory, MdMessage, ReferencePrice, SnapshotBegin, SnapshotEnd, SnapshotOrder,
    TradingStatus,
};

use crate::aeron::MdError;
use crate::encode::{event_messages, PacketBuilder, DEFAULT_MAX_PACKET_LEN};
use crate::retransmit::{RetransmitConfig, RetransmitHandle, RetransmitServer};
use crate::ring::RetransmitRing;
use crate::transport::{AeronChannels, AeronTransport, Channel, MdTransport, SendOutcome};

/// An instrument the shard publishes (its snapshot and its directory entry).
#[derive(Clone, Debug)]
pub struct MdInstrument {
    pub spec: InstrumentSpec,
    /// Its symbol; `None`: no `InstrumentDirectory` message is published for it.
    pub symbol: Option<Symbol>,
}

/// The publisher's settings.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// Stream id of the incremental stream (the packets' `stream_id`, MoldUDP64's session).
    pub stream_id: u32,
    /// Stream id of the snapshot stream.
    pub snapshot_stream_id: u32,
    /// OR-ed into order and trade ids (the node's `shard_id << 48`).
    pub id_base: u64,
    /// Sequence number of the stream's first message (1 on a new stream; a restored
    /// [`MdState::next_seq`] otherwise).
    pub first_seq: u64,
    /// Largest packet (bytes): [`DEFAULT_MAX_PACKET_LEN`] fits one Aeron frame.
    pub max_packet_len: usize,
    /// A heartbeat goes out after this long without a packet.
    pub heartbeat_interval_ns: u64,
    /// Messages kept for retransmission (64 bytes each).
    pub ring_capacity: usize,
    /// The retransmission server (its own thread), if any.
    pub retransmit: Option<RetransmitConfig>,
    /// Pause between two snapshot cycles.
    pub snapshot_interval_ns: u64,
    /// Snapshot packets sent per [`MdPublisher::do_work`] call at most.
    pub snapshot_packets_per_work: usize,
    /// The instruments, in the order the snapshot loop visits them.
    pub instruments: Vec<MdInstrument>,
    /// Primary (sends) or standby (encodes and numbers only).
    pub active: bool,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            stream_id: 1,
            snapshot_stream_id: 1001,
            id_base: 0,
            first_seq: 1,
            max_packet_len: DEFAULT_MAX_PACKET_LEN,
            heartbeat_interval_ns: 1_000_000_000,
            ring_capacity: 1 << 20,
            retransmit: None,
            snapshot_interval_ns: 1_000_000_000,
            snapshot_packets_per_work: 8,
            instruments: Vec::new(),
            active: true,
        }
    }
}

/// Per-channel offer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub sent: u64,
    pub not_connected: u64,
    pub back_pressured: u64,
    pub failed: u64,
    /// Packets the test drop filter withheld.
    pub dropped_by_filter: u64,
}

impl ChannelStats {
    fn count(&mut self, o: SendOutcome) {
        match o {
            SendOutcome::Sent => self.sent += 1,
            SendOutcome::NotConnected => self.not_connected += 1,
            SendOutcome::BackPressured => self.back_pressured += 1,
            SendOutcome::Failed => self.failed += 1,
        }
    }
}

/// The publisher's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdStats {
    /// Incremental packets built (sent or not).
    pub packets: u64,
    pub messages: u64,
    pub a: ChannelStats,
    pub b: ChannelStats,
    pub heartbeats: u64,
    pub snapshot: ChannelStats,
    pub snapshot_cycles: u64,
    pub snapshot_messages: u64,
    /// Messages that could not be encoded (a value the wire rejects); should stay 0.
    pub encode_errors: u64,
    /// Times the transport replaced a client the Aeron driver had dropped.
    pub client_reconnects: u64,
}

/// What a restarted publisher needs besides the engine: a pure function of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdState {
    /// Sequence number of the next message.
    pub next_seq: u64,
    /// Per instrument (config order): halted, reference price, band.
    pub instruments: Vec<InstrumentState>,
}

/// What the snapshot loop says about an instrument besides its orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstrumentState {
    pub id: InstrumentId,
    pub halted: bool,
    /// 0: never set.
    pub ref_price: i64,
    pub band_bps: u32,
}

/// Test hook: return `true` to withhold a packet from a channel (`first_seq`, `count`). Never
/// set in production; documented in `docs/ARCHITECTURE.md` ("Market data").
pub type DropFilter = Box<dyn FnMut(Channel, u64, u16) -> bool + Send>;

#[derive(Debug)]
enum SnapState {
    Idle { next_at_ns: u64 },
    Sending { idx: usize, cursor: usize },
}

/// One shard's market-data publisher. See the module documentation for the call pattern.
pub struct MdPublisher<T: MdTransport = AeronTransport> {
    cfg: PublisherConfig,
    transport: T,
    has_b: bool,
    active: bool,
    ts_ns: u64,
    next_seq: u64,
    pkt: PacketBuilder,
    hb: PacketBuilder,
    ring: Arc<RetransmitRing>,
    states: Vec<InstrumentState>,
    /// Instrument id -> index in `states` (`u32::MAX`: not ours).
    index_of: Vec<u32>,
    sent_since_work: bool,
    last_activity_ns: u64,
    snap: SnapState,
    snap_msgs: Vec<MdMessage>,
    snap_seq: u64,
    snap_pkt: PacketBuilder,
    stats: MdStats,
    drop_filter: Option<DropFilter>,
    retransmit: Option<RetransmitHandle>,
}

impl<T: MdTransport + std::fmt::Debug> std::fmt::Debug for MdPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdPublisher")
            .field("stream_id", &self.cfg.stream_id)
            .field("active", &self.active)
            .field("next_seq", &self.next_seq)
            .field("stats", &self.stats)
            .field("transport", &self.transport)
            .finish()
    }
}

impl MdPublisher<AeronTransport> {
    /// A publisher on Aeron: connects (or starts the embedded driver), adds the publications
    /// and starts the retransmission server if configured.
    /// Packets are cut at the publications' largest unfragmented message if that is below
    /// `max_packet_len` (a subscriber reads one packet per Aeron fragment).
    pub fn connect(mut cfg: PublisherConfig, channels: &AeronChannels) -> Result<Self, MdError> {
        let has_b = channels.b.is_some();
        let transport = AeronTransport::connect(channels)?;
        cfg.max_packet_len = cfg.max_packet_len.min(transport.max_payload());
        let mut p = MdPublisher::new(cfg, transport)?;
        p.has_b = has_b;
        Ok(p)
    }
}

impl<T: MdTransport> MdPublisher<T> {
    /// A publisher on any transport (feed B is used when `has_b` is set with
    /// [`Self::with_feed_b`]; [`MdPublisher::connect`] sets it from the channels).
    pub fn new(cfg: PublisherConfig, transport: T) -> Result<Self, MdError> {
        if cfg.first_seq == 0 {
            return Err(MdError::Config("first_seq must be >= 1".into()));
        }
        let ring = Arc::new(RetransmitRing::new(cfg.ring_capacity));
        ring.reset(cfg.first_seq);
        let retransmit = match &cfg.retransmit {
            Some(r) => {
                Some(RetransmitServer::bind(r.clone(), cfg.stream_id, ring.clone())?.spawn()?)
            }
            None => None,
        };
        let mut index_of = Vec::new();
        let mut states = Vec::with_capacity(cfg.instruments.len());
        for (i, ins) in cfg.instruments.iter().enumerate() {
            let id = ins.spec.id as usize;
            if index_of.len() <= id {
                index_of.resize(id + 1, u32::MAX);
            }
            index_of[id] = i as u32;
            states.push(InstrumentState {
                id: ins.spec.id,
                ..InstrumentState::default()
            });
        }
        let mut pkt = PacketBuilder::new(cfg.stream_id, cfg.max_packet_len);
        pkt.start(cfg.first_seq);
        Ok(MdPublisher {
            has_b: false,
            active: cfg.active,
            ts_ns: 0,
            next_seq: cfg.first_seq,
            pkt,
            hb: PacketBuilder::new(cfg.stream_id, 64 + 120),
            ring,
            states,
            index_of,
            sent_since_work: false,
            last_activity_ns: 0,
            snap: SnapState::Idle { next_at_ns: 0 },
            snap_msgs: Vec::new(),
            snap_seq: 1,
            snap_pkt: PacketBuilder::new(cfg.snapshot_stream_id, cfg.max_packet_len),
            stats: MdStats::default(),
            drop_filter: None,
            retransmit,
            transport,
            cfg,
        })
    }

    /// Sends every packet on feed B too.
    pub fn with_feed_b(mut self, on: bool) -> Self {
        self.has_b = on;
        self
    }

    /// Starts a command: its messages carry `ts_ns` (the sequencer's timestamp).
    #[inline]
    pub fn begin(&mut self, ts_ns: u64) {
        self.ts_ns = ts_ns;
    }

    /// Ends a command: sends the packet holding its messages (if any).
    #[inline]
    pub fn end(&mut self) {
        if !self.pkt.is_empty() {
            self.flush();
        }
    }

    /// `begin`, `engine.process` with the events going to `other` and to this publisher, `end`.
    #[inline]
    pub fn process<S: EventSink>(
        &mut self,
        engine: &mut Engine,
        ts_ns: u64,
        cmd: &Command,
        other: &mut S,
    ) {
        self.begin(ts_ns);
        engine.process(ts_ns, cmd, &mut Tee(other, self));
        self.end();
    }

    /// Appends one message (numbered `next_seq`), cutting a packet when full.
    #[inline]
    fn push(&mut self, m: MdMessage) {
        let seq = self.next_seq;
        if let Some(bytes) = self.pkt.push(&m) {
            self.ring.write(seq, bytes);
        } else {
            if !self.pkt.is_empty() {
                self.flush();
            }
            match self.pkt.push(&m) {
                Some(bytes) => self.ring.write(seq, bytes),
                None => {
                    self.stats.encode_errors += 1;
                    return;
                }
            }
        }
        self.next_seq = seq + 1;
    }

    /// Finishes the current packet, offers it to A (and B), starts the next one.
    #[inline]
    fn flush(&mut self) {
        let first = self.pkt.first_seq();
        let count = self.pkt.count();
        self.ring.publish(self.next_seq);
        self.stats.packets += 1;
        self.stats.messages += u64::from(count);
        if self.active {
            let bytes = self.pkt.finish();
            let mut send = |ch: Channel, st: &mut ChannelStats| {
                if let Some(f) = self.drop_filter.as_mut() {
                    if f(ch, first, count) {
                        st.dropped_by_filter += 1;
                        return;
                    }
                }
                st.count(self.transport.send(ch, bytes));
            };
            send(Channel::A, &mut self.stats.a);
            if self.has_b {
                send(Channel::B, &mut self.stats.b);
            }
            self.sent_since_work = true;
        }
        self.pkt.start(self.next_seq);
    }

    /// Bounded background work, between commands: a heartbeat when the stream was quiet for
    /// `heartbeat_interval_ns`, and up to `snapshot_packets_per_work` packets of the snapshot
    /// loop (which reads `engine`: call it on the shard's thread). Returns the packets sent.
    pub fn do_work(&mut self, now_ns: u64, engine: &Engine) -> usize {
        // Primary and standby alike: a standby's publications must be alive when it takes over.
        if self.transport.maintain() {
            self.stats.client_reconnects += 1;
        }
        if !self.active {
            return 0;
        }
        let mut work = 0;
        if self.sent_since_work {
            self.sent_since_work = false;
            self.last_activity_ns = now_ns;
        } else if now_ns.saturating_sub(self.last_activity_ns) >= self.cfg.heartbeat_interval_ns {
            self.send_heartbeat();
            self.last_activity_ns = now_ns;
            work += 1;
        }
        work + self.snapshot_work(now_ns, engine)
    }

    /// Sends a heartbeat (a packet without messages announcing `next_seq`) on A and B now.
    pub fn send_heartbeat(&mut self) {
        if !self.active {
            return;
        }
        let bytes = self.hb.heartbeat(self.next_seq);
        self.stats.a.count(self.transport.send(Channel::A, bytes));
        if self.has_b {
            self.stats.b.count(self.transport.send(Channel::B, bytes));
        }
        self.stats.heartbeats += 1;
    }

    /// Starts the next snapshot cycle at the next `do_work` (instead of after the interval).
    pub fn snapshot_now(&mut self) {
        if let SnapState::Idle { next_at_ns } = &mut self.snap {
            *next_at_ns = 0;
        }
    }

    fn snapshot_work(&mut self, now_ns: u64, engine: &Engine) -> usize {
        let mut budget = self.cfg.snapshot_packets_per_work;
        let mut work = 0;
        loop {
            match self.snap {
                SnapState::Idle { next_at_ns } => {
                    if now_ns < next_at_ns || self.cfg.instruments.is_empty() {
                        return work;
                    }
                    if !self.transport.is_connected(Channel::Snapshot) {
                        self.snap = SnapState::Idle {
                            next_at_ns: now_ns + self.cfg.snapshot_interval_ns,
                        };
                        return work;
                    }
                    self.capture(0, engine);
                    self.snap = SnapState::Sending { idx: 0, cursor: 0 };
                }
                SnapState::Sending { idx, cursor } => {
                    if cursor >= self.snap_msgs.len() {
                        if idx + 1 < self.cfg.instruments.len() {
                            self.capture(idx + 1, engine);
                            self.snap = SnapState::Sending {
                                idx: idx + 1,
                                cursor: 0,
                            };
                            continue;
                        }
                        self.stats.snapshot_cycles += 1;
                        self.snap = SnapState::Idle {
                            next_at_ns: now_ns + self.cfg.snapshot_interval_ns,
                        };
                        return work;
                    }
                    if budget == 0 {
                        return work;
                    }
                    self.snap_pkt.start(self.snap_seq);
                    let mut k = 0;
                    for m in &self.snap_msgs[cursor..] {
                        if self.snap_pkt.push(m).is_none() {
                            break;
                        }
                        k += 1;
                    }
                    if k == 0 {
                        // Cannot happen (a packet holds the largest message); skip it.
                        self.stats.encode_errors += 1;
                        self.snap = SnapState::Sending {
                            idx,
                            cursor: cursor + 1,
                        };
                        continue;
                    }
                    let outcome = self
                        .transport
                        .send(Channel::Snapshot, self.snap_pkt.finish());
                    self.stats.snapshot.count(outcome);
                    match outcome {
                        SendOutcome::Sent => {
                            self.snap_seq += k as u64;
                            self.stats.snapshot_messages += k as u64;
                            self.snap = SnapState::Sending {
                                idx,
                                cursor: cursor + k,
                            };
                            budget -= 1;
                            work += 1;
                        }
                        // Try the same packet again next time.
                        SendOutcome::BackPressured => return work,
                        SendOutcome::NotConnected | SendOutcome::Failed => {
                            self.snap = SnapState::Idle {
                                next_at_ns: now_ns + self.cfg.snapshot_interval_ns,
                            };
                            return work;
                        }
                    }
                }
            }
        }
    }

    /// Copies instrument `idx`'s book (as of `next_seq - 1`) into the snapshot messages.
    fn capture(&mut self, idx: usize, engine: &Engine) {
        self.snap_msgs.clear();
        let ins = &self.cfg.instruments[idx];
        let st = self.states[idx];
        let ts = self.ts_ns;
        let id = ins.spec.id;
        if let Some(symbol) = ins.symbol {
            if let Some(d) = directory(ts, &ins.spec, symbol) {
                self.snap_msgs.push(MdMessage::InstrumentDirectory(d));
            }
        }
        self.snap_msgs.push(MdMessage::TradingStatus(TradingStatus {
            timestamp_ns: ts,
            instrument: id,
            state: if st.halted {
                TradingState::Halted
            } else {
                TradingState::Trading
            },
        }));
        if st.ref_price > 0 {
            self.snap_msgs
                .push(MdMessage::ReferencePrice(ReferencePrice {
                    timestamp_ns: ts,
                    price: st.ref_price,
                    instrument: id,
                    band_bps: st.band_bps,
                }));
        }
        let orders = engine.l3(id);
        let last_seq = self.next_seq - 1;
        let order_count = orders.len() as u32;
        self.snap_msgs.push(MdMessage::SnapshotBegin(SnapshotBegin {
            timestamp_ns: ts,
            last_seq,
            instrument: Some(id),
            order_count,
        }));
        let base = self.cfg.id_base;
        self.snap_msgs.extend(orders.iter().map(|o| {
            MdMessage::SnapshotOrder(SnapshotOrder {
                timestamp_ns: ts,
                order_id: base | o.order_id,
                price: o.price,
                qty: o.leaves,
                instrument: id,
                side: o.side.into(),
            })
        }));
        self.snap_msgs.push(MdMessage::SnapshotEnd(SnapshotEnd {
            timestamp_ns: ts,
            last_seq,
            instrument: Some(id),
            order_count,
        }));
    }

    /// Primary (`true`: sends) or standby (`false`: encodes, numbers and keeps the ring only).
    /// Promotion sends a heartbeat at once so that subscribers learn `next_seq`.
    pub fn set_active(&mut self, active: bool) {
        let was = self.active;
        self.active = active;
        if active && !was {
            self.send_heartbeat();
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Sequence number of the next message.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The state to carry across a restart (with the engine's snapshot).
    pub fn state(&self) -> MdState {
        MdState {
            next_seq: self.next_seq,
            instruments: self.states.clone(),
        }
    }

    /// Restores [`Self::state`] (before the first command).
    pub fn restore(&mut self, state: &MdState) {
        self.next_seq = state.next_seq.max(1);
        self.ring.reset(self.next_seq);
        self.pkt.start(self.next_seq);
        for s in &state.instruments {
            if let Some(&i) = self.index_of.get(s.id as usize) {
                if let Some(slot) = self.states.get_mut(i as usize) {
                    *slot = *s;
                }
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &MdStats {
        &self.stats
    }

    /// The retransmission ring (e.g. to serve it from another server).
    pub fn ring(&self) -> Arc<RetransmitRing> {
        self.ring.clone()
    }

    /// The running retransmission server, if configured.
    pub fn retransmit(&self) -> Option<&RetransmitHandle> {
        self.retransmit.as_ref()
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Test hook: withhold packets (see [`DropFilter`]).
    pub fn set_drop_filter(&mut self, f: Option<DropFilter>) {
        self.drop_filter = f;
    }

    #[inline]
    fn state_of(&mut self, instrument: InstrumentId) -> Option<&mut InstrumentState> {
        let i = *self.index_of.get(instrument as usize)?;
        self.states.get_mut(i as usize)
    }
}

impl<T: MdTransport> EventSink for MdPublisher<T> {
    #[inline]
    fn emit(&mut self, event: Event) {
        match event {
            Event::TradingStatus { instrument, halted } => {
                if let Some(s) = self.state_of(instrument) {
                    s.halted = halted;
                }
            }
            Event::ReferencePrice {
                instrument,
                price,
                band_bps,
            } => {
                if let Some(s) = self.state_of(instrument) {
                    s.ref_price = price;
                    s.band_bps = band_bps;
                }
            }
            _ => {}
        }
        let ts = self.ts_ns;
        let base = self.cfg.id_base;
        event_messages(ts, &event, base, |m| self.push(m));
    }
}

/// An [`EventSink`] that gives every event (and risk event) to two sinks, in order.
#[derive(Debug)]
pub struct Tee<'a, A, B>(pub &'a mut A, pub &'a mut B);

impl<A: EventSink, B: EventSink> EventSink for Tee<'_, A, B> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.0.emit(event);
        self.1.emit(event);
    }

    /// Risk events (balances, fees, positions) go to both too (the publisher ignores them).
    #[inline]
    fn emit_risk(&mut self, event: tpx_engine::RiskEvent) {
        self.0.emit_risk(event);
        self.1.emit_risk(event);
    }
}

/// An [`EventSink`] that drops everything (for `process` without execution reports).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReports;

impl EventSink for NoReports {
    #[inline]
    fn emit(&mut self, _event: Event) {}
}

/// The directory entry of an instrument.
pub fn directory(ts_ns: u64, spec: &InstrumentSpec, symbol: Symbol) -> Option<InstrumentDirectory> {
    let (kind, base_asset, quote_asset, settle_asset) = match spec.kind {
        EKind::Spot { base, quote } => (InstrumentKind::Spot, base, quote, 0),
        EKind::LinearPerp { settle } => (InstrumentKind::LinearPerp, 0, settle, settle),
    };
    (spec.tick_size > 0 && spec.lot_size > 0).then_some(InstrumentDirectory {
        timestamp_ns: ts_ns,
        instrument: spec.id,
        kind,
        base_asset,
        quote_asset,
        settle_asset,
        tick_size: spec.tick_size,
        lot_size: spec.lot_size,
        min_price: spec.min_price,
        max_price: spec.max_price,
        min_qty: spec.min_qty,
        max_qty: spec.max_qty,
        min_notional: spec.min_notional,
        symbol,
    })
}
