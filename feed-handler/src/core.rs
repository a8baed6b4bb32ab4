//! The feed handler's logic, without IO or clock: packets in (with the caller's `now_ns`),
//! book updates and retransmission requests out. [`crate::FeedHandler`] wraps it with Aeron
//! subscriptions and a UDP socket; tests and benchmarks drive it directly.
//!
//! **Arbitration.** Feeds A and B carry the same packets. Each packet is applied from
//! whichever copy arrives first; a packet entirely below `next_seq` is a duplicate and dropped.
//!
//! **Gaps.** A packet beyond `next_seq` (or a heartbeat announcing a later `next_seq`) opens a
//! gap; later packets are buffered. The gap is real once every configured feed has delivered
//! something past it (each feed is in order) or after `arbitration_wait_ns`; then the handler
//! asks the retransmission server for the missing messages (at most `max_request` per request,
//! re-asked after `retransmit_timeout_ns`, up to `retransmit_max_tries`), applies them and the
//! buffered packets behind them. A gap longer than `max_retransmit_gap`, a refusal, a timeout,
//! a book inconsistency or a buffer overflow switches to snapshot recovery.
//!
//! **Snapshot recovery** (also how a late joiner starts): incrementals are buffered (the
//! oldest dropped when the buffer is full) while the snapshot stream is read; each instrument's
//! snapshot (`SnapshotBegin`, orders, `SnapshotEnd`, preceded by its directory, status and
//! reference price) is kept when complete. Once a whole cycle was seen and every instrument's
//! snapshot is recent enough (`last_seq + 1` at or after the oldest buffered message), each
//! book is replaced by its snapshot and the buffered messages are applied, each only to an
//! instrument whose snapshot is older than it.

use tpx_wire::enums::{RetransmitRefusal, Side, TradingState};
use tpx_wire::market_data::{InstrumentDirectory, MdMessage};
use tpx_wire::mold::{
    decode_packet, decode_packet_header, decode_retransmit_response, PacketHeader,
    RetransmitRequest, RetransmitResponse, PACKET_HEADER_LEN,
};

use crate::book::{BookError, Books};
use crate::buffer::PacketRing;
use crate::listener::{BookEvent, FeedEvent, FeedListener, Update};

/// Where a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    A = 0,
    B = 1,
    /// The retransmission server.
    Retransmit = 2,
}

/// The feed logic's settings.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// The incremental stream's id (packets of other streams are ignored).
    pub stream_id: u32,
    /// The snapshot stream's id (`None`: accept any).
    pub snapshot_stream_id: Option<u32>,
    /// Incremental feeds subscribed (1: A only; 2: A and B).
    pub feeds: usize,
    /// How long a gap may wait for the other feed before it is requested.
    pub arbitration_wait_ns: u64,
    /// Whether a retransmission server is configured.
    pub retransmit: bool,
    pub retransmit_timeout_ns: u64,
    pub retransmit_max_tries: u32,
    /// The most messages per request (the server's limit, 4096 by default, or less).
    pub max_request: u16,
    /// Longer gaps are recovered from snapshots.
    pub max_retransmit_gap: u64,
    /// Whether a snapshot stream is subscribed.
    pub snapshot: bool,
    /// Bytes of buffered packets while recovering.
    pub buffer_bytes: usize,
    /// Expected live orders (initial table sizes).
    pub expected_orders: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            stream_id: 1,
            snapshot_stream_id: None,
            feeds: 2,
            arbitration_wait_ns: 1_000_000,
            retransmit: true,
            retransmit_timeout_ns: 50_000_000,
            retransmit_max_tries: 3,
            max_request: 1024,
            max_retransmit_gap: 50_000,
            snapshot: true,
            buffer_bytes: 16 << 20,
            expected_orders: 1 << 16,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Packets received per source (A, B, retransmission), heartbeats included.
    pub packets: [u64; 3],
    /// Packets that brought new messages first, per source: what arbitration took from each.
    pub first_copies: [u64; 3],
    /// Packets entirely seen before (the other feed's copy, mostly).
    pub duplicates: u64,
    pub heartbeats: u64,
    pub messages: u64,
    pub gaps: u64,
    /// Gaps closed by the other feed before any request.
    pub gaps_filled_by_arbitration: u64,
    /// Gaps closed after a retransmission request.
    pub gaps_filled_by_retransmission: u64,
    pub retransmit_requests: u64,
    pub retransmit_timeouts: u64,
    pub retransmit_refused: u64,
    /// Retransmitted packets that did not start at or before `next_seq` (dropped).
    pub retransmit_unusable: u64,
    pub snapshot_recoveries: u64,
    pub snapshots_applied: u64,
    pub snapshot_packets: u64,
    /// Buffered packets dropped to make room.
    pub buffer_evictions: u64,
    pub decode_errors: u64,
    pub book_errors: u64,
    /// Packets of another stream.
    pub foreign: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing received yet.
    Init,
    Live,
    Snapshot,
}

#[derive(Clone, Copy, Debug)]
struct Request {
    first: u64,
    count: u16,
    sent_ns: u64,
    tries: u32,
}

#[derive(Debug)]
struct Staged {
    instrument: u32,
    last_seq: u64,
    timestamp_ns: u64,
    order_count: u32,
    orders: Vec<(u64, Side, i64, u64)>,
    halted: Option<bool>,
    reference: Option<(i64, u32)>,
    directory: Option<InstrumentDirectory>,
}

impl Staged {
    fn empty() -> Staged {
        Staged {
            instrument: 0,
            last_seq: 0,
            timestamp_ns: 0,
            order_count: 0,
            orders: Vec::new(),
            halted: None,
            reference: None,
            directory: None,
        }
    }
}

/// Collects complete per-instrument snapshots from the snapshot stream.
#[derive(Debug)]
struct Assembler {
    expect: u64,
    cur: Option<Staged>,
    spare: Vec<Staged>,
    pre_halted: Option<(u32, bool)>,
    pre_ref: Option<(u32, i64, u32)>,
    pre_dir: Option<InstrumentDirectory>,
    staged: Vec<Staged>,
    /// Instruments whose `SnapshotBegin` was seen in this recovery.
    seen: Vec<u32>,
    cycle_complete: bool,
}

impl Assembler {
    fn new() -> Assembler {
        Assembler {
            expect: 0,
            cur: None,
            spare: Vec::new(),
            pre_halted: None,
            pre_ref: None,
            pre_dir: None,
            staged: Vec::new(),
            seen: Vec::new(),
            cycle_complete: false,
        }
    }

    fn reset(&mut self) {
        self.expect = 0;
        if let Some(c) = self.cur.take() {
            self.spare.push(c);
        }
        self.spare.append(&mut self.staged);
        self.pre_halted = None;
        self.pre_ref = None;
        self.pre_dir = None;
        self.seen.clear();
        self.cycle_complete = false;
    }

    fn take_spare(&mut self) -> Staged {
        let mut s = self.spare.pop().unwrap_or_else(Staged::empty);
        s.orders.clear();
        s
    }

    fn abandon_current(&mut self) {
        if let Some(c) = self.cur.take() {
            self.spare.push(c);
        }
        self.pre_halted = None;
        self.pre_ref = None;
        self.pre_dir = None;
    }

    fn on_message(&mut self, m: &MdMessage) {
        match *m {
            MdMessage::InstrumentDirectory(d) => self.pre_dir = Some(d),
            MdMessage::TradingStatus(t) => {
                self.pre_halted = Some((t.instrument, t.state == TradingState::Halted))
            }
            MdMessage::ReferencePrice(r) => {
                self.pre_ref = Some((r.instrument, r.price, r.band_bps))
            }
            MdMessage::SnapshotBegin(b) => {
                if let Some(c) = self.cur.take() {
                    self.spare.push(c);
                }
                let Some(id) = b.instrument else {
                    // Whole-stream snapshots are not published by tpx-md.
                    return self.abandon_current();
                };
                if self.seen.contains(&id) {
                    self.cycle_complete = true;
                } else {
                    self.seen.push(id);
                }
                let mut s = self.take_spare();
                s.instrument = id;
                s.last_seq = b.last_seq;
                s.timestamp_ns = b.timestamp_ns;
                s.order_count = b.order_count;
                s.halted = self.pre_halted.filter(|p| p.0 == id).map(|p| p.1);
                s.reference = self.pre_ref.filter(|p| p.0 == id).map(|p| (p.1, p.2));
                s.directory = self.pre_dir.filter(|d| d.instrument == id);
                self.pre_halted = None;
                self.pre_ref = None;
                self.pre_dir = None;
                self.cur = Some(s);
            }
            MdMessage::SnapshotOrder(o) => {
                if let Some(c) = self.cur.as_mut() {
                    if c.instrument == o.instrument {
                        c.orders.push((o.order_id, o.side, o.price, o.qty));
                    }
                }
            }
            MdMessage::SnapshotEnd(e) => {
                let Some(c) = self.cur.take() else { return };
                let ok = Some(c.instrument) == e.instrument
                    && c.last_seq == e.last_seq
                    && c.order_count == e.order_count
                    && c.orders.len() == e.order_count as usize;
                if !ok {
                    self.spare.push(c);
                    return;
                }
                match self
                    .staged
                    .iter()
                    .position(|s| s.instrument == c.instrument)
                {
                    Some(i) => {
                        let old = std::mem::replace(&mut self.staged[i], c);
                        self.spare.push(old);
                    }
                    None => self.staged.push(c),
                }
            }
            _ => {}
        }
    }

    /// Every instrument of a whole cycle has a snapshot at or after `from - 1`.
    fn ready(&self, from: u64) -> bool {
        self.cycle_complete
            && self.seen.iter().all(|id| {
                self.staged
                    .iter()
                    .any(|s| s.instrument == *id && s.last_seq + 1 >= from)
            })
    }
}

/// The feed handler's state machine for one stream.
#[derive(Debug)]
pub struct FeedCore {
    cfg: FeedConfig,
    books: Books,
    mode: Mode,
    /// Sequence number of the next message to apply.
    next_seq: u64,
    /// Per feed: the end (next sequence number) of the furthest packet it delivered.
    feed_high: [u64; 2],
    /// End of the furthest packet buffered (never buffer below it).
    buffered_end: u64,
    /// When the open gap was first seen (0: none), and where it started.
    gap_since_ns: u64,
    gap_from: u64,
    gap_requested: bool,
    request: Option<Request>,
    outbox: Option<RetransmitRequest>,
    max_request: u16,
    buffer: PacketRing,
    scratch: Vec<u8>,
    snap: Assembler,
    stats: FeedStats,
}

impl FeedCore {
    pub fn new(cfg: FeedConfig) -> FeedCore {
        FeedCore {
            books: Books::new(cfg.expected_orders),
            mode: Mode::Init,
            next_seq: 0,
            feed_high: [0; 2],
            buffered_end: 0,
            gap_since_ns: 0,
            gap_from: 0,
            gap_requested: false,
            request: None,
            outbox: None,
            max_request: cfg.max_request.max(1),
            buffer: PacketRing::new(cfg.buffer_bytes),
            scratch: Vec::with_capacity(usize::from(u16::MAX)),
            snap: Assembler::new(),
            stats: FeedStats::default(),
            cfg,
        }
    }

    /// The books.
    pub fn books(&self) -> &Books {
        &self.books
    }

    /// The counters.
    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// Sequence number of the next message to apply (0 before the first packet).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the books are in step with the stream (no gap open, not recovering).
    pub fn is_live(&self) -> bool {
        self.mode == Mode::Live && self.next_seq >= self.known_end()
    }

    /// Whether a snapshot is being awaited (the snapshot stream is worth reading).
    pub fn wants_snapshot(&self) -> bool {
        self.mode == Mode::Snapshot
    }

    /// The retransmission request to send, if one is due.
    pub fn take_request(&mut self) -> Option<RetransmitRequest> {
        self.outbox.take()
    }

    /// The stream's furthest known end (what the feeds announced).
    fn known_end(&self) -> u64 {
        self.feed_high[0].max(self.feed_high[1])
    }

    /// An incremental packet from feed A or B (one Aeron message).
    #[inline]
    pub fn on_packet<L: FeedListener>(
        &mut self,
        src: Source,
        bytes: &[u8],
        now_ns: u64,
        l: &mut L,
    ) {
        let h = match decode_packet_header(bytes) {
            Ok(h) => h,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        if h.stream_id != self.cfg.stream_id {
            self.stats.foreign += 1;
            return;
        }
        self.on_incremental(src, bytes, h, now_ns, l);
    }

    #[inline]
    fn on_incremental<L: FeedListener>(
        &mut self,
        src: Source,
        bytes: &[u8],
        h: PacketHeader,
        now_ns: u64,
        l: &mut L,
    ) {
        self.stats.packets[src as usize] += 1;
        let end = h.first_seq + u64::from(h.message_count);
        if let Some(high) = self.feed_high.get_mut(src as usize) {
            *high = (*high).max(end);
        }
        if h.message_count == 0 {
            self.stats.heartbeats += 1;
        }
        if self.mode == Mode::Init {
            if h.first_seq == 1 {
                self.mode = Mode::Live;
                self.next_seq = 1;
                l.on_feed(&FeedEvent::Live { next_seq: 1 });
            } else {
                self.start_snapshot(now_ns, l);
            }
        }
        match self.mode {
            Mode::Live => {
                if end <= self.next_seq {
                    if h.message_count > 0 {
                        self.stats.duplicates += 1;
                    }
                    return;
                }
                if h.first_seq <= self.next_seq && h.message_count > 0 {
                    self.stats.first_copies[src as usize] += 1;
                    self.apply_packet(bytes, h, l);
                    if !self.buffer.is_empty() {
                        self.drain(l);
                    }
                    if self.gap_since_ns != 0 {
                        self.after_progress(now_ns, l);
                    }
                    return;
                }
                if src == Source::Retransmit {
                    self.stats.retransmit_unusable += 1;
                    return;
                }
                // Beyond next_seq: a gap.
                if h.message_count > 0 {
                    self.buffer_packet(bytes, h, now_ns, l);
                    if self.mode != Mode::Live {
                        return;
                    }
                }
                if self.gap_since_ns == 0 {
                    self.gap_since_ns = now_ns.max(1);
                    self.gap_from = self.next_seq;
                    self.gap_requested = false;
                    self.stats.gaps += 1;
                    l.on_feed(&FeedEvent::Gap {
                        from: self.next_seq,
                        to: h.first_seq,
                    });
                }
                self.maybe_request(now_ns, l);
            }
            Mode::Snapshot => {
                if h.message_count > 0 && src != Source::Retransmit {
                    self.buffer_packet(bytes, h, now_ns, l);
                }
                self.try_finish_snapshot(now_ns, l);
            }
            Mode::Init => {}
        }
    }

    fn buffer_packet<L: FeedListener>(
        &mut self,
        bytes: &[u8],
        h: PacketHeader,
        now_ns: u64,
        l: &mut L,
    ) {
        let end = h.first_seq + u64::from(h.message_count);
        if end <= self.buffered_end.max(self.next_seq) {
            self.stats.duplicates += 1;
            return;
        }
        self.buffered_end = end;
        let dropped = self
            .buffer
            .push_evicting(h.first_seq, h.message_count, bytes);
        if dropped > 0 {
            self.stats.buffer_evictions += dropped as u64;
            if self.mode == Mode::Live {
                self.start_snapshot(now_ns, l);
            }
        }
    }

    /// Applies the buffered packets that continue the stream.
    fn drain<L: FeedListener>(&mut self, l: &mut L) {
        while let Some((first, count)) = self.buffer.front() {
            let end = first + u64::from(count);
            if end <= self.next_seq {
                self.buffer.pop();
                continue;
            }
            if first > self.next_seq || self.mode != Mode::Live {
                break;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(self.buffer.front_bytes().unwrap_or(&[]));
            self.buffer.pop();
            if let Ok(h) = decode_packet_header(&scratch) {
                self.apply_packet(&scratch, h, l);
            }
            self.scratch = scratch;
        }
    }

    /// After `next_seq` moved while a gap was open: close it, or ask for the rest.
    fn after_progress<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) {
        if self.next_seq >= self.known_end() {
            if self.gap_requested {
                self.stats.gaps_filled_by_retransmission += 1;
            } else {
                self.stats.gaps_filled_by_arbitration += 1;
            }
            l.on_feed(&FeedEvent::GapFilled {
                from: self.gap_from,
                to: self.next_seq,
                by_retransmission: self.gap_requested,
            });
            self.gap_since_ns = 0;
            self.request = None;
            return;
        }
        self.maybe_request(now_ns, l);
    }

    /// Decides whether to ask for the open gap now.
    fn maybe_request<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) {
        if self.mode != Mode::Live || self.next_seq >= self.known_end() {
            return;
        }
        let hole_end = self
            .buffer
            .front()
            .map_or(self.known_end(), |(first, _)| first)
            .max(self.next_seq + 1);
        let len = hole_end - self.next_seq;
        if let Some(r) = self.request {
            let done = self.next_seq >= r.first + u64::from(r.count);
            if !done {
                if now_ns.saturating_sub(r.sent_ns) < self.cfg.retransmit_timeout_ns {
                    return;
                }
                self.stats.retransmit_timeouts += 1;
                if r.tries >= self.cfg.retransmit_max_tries {
                    return self.start_snapshot(now_ns, l);
                }
                return self.issue(len, now_ns, r.tries + 1, l);
            }
            return self.issue(len, now_ns, 1, l);
        }
        let passed = self.feed_high[..self.cfg.feeds.clamp(1, 2)]
            .iter()
            .all(|&h| h > self.next_seq);
        if !passed && now_ns.saturating_sub(self.gap_since_ns) < self.cfg.arbitration_wait_ns {
            return;
        }
        if !self.cfg.retransmit || len > self.cfg.max_retransmit_gap {
            return self.start_snapshot(now_ns, l);
        }
        self.issue(len, now_ns, 1, l);
    }

    fn issue<L: FeedListener>(&mut self, len: u64, now_ns: u64, tries: u32, l: &mut L) {
        let count = len.min(u64::from(self.max_request)) as u16;
        let first = self.next_seq;
        self.request = Some(Request {
            first,
            count,
            sent_ns: now_ns,
            tries,
        });
        self.outbox = Some(RetransmitRequest {
            stream_id: self.cfg.stream_id,
            count,
            first_seq: first,
        });
        self.gap_requested = true;
        self.stats.retransmit_requests += 1;
        l.on_feed(&FeedEvent::RetransmitRequested { first, count });
    }

    /// Timers: the arbitration wait and retransmission timeouts. Call every poll.
    #[inline]
    pub fn on_timer<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) {
        if self.gap_since_ns != 0 && self.mode == Mode::Live {
            self.maybe_request(now_ns, l);
        }
    }

    /// A datagram from the retransmission server.
    pub fn on_retransmit<L: FeedListener>(&mut self, bytes: &[u8], now_ns: u64, l: &mut L) {
        match decode_retransmit_response(bytes) {
            Ok(RetransmitResponse::Packet(p)) => {
                if p.header.stream_id == self.cfg.stream_id && self.mode == Mode::Live {
                    self.on_incremental(Source::Retransmit, bytes, p.header, now_ns, l);
                } else {
                    self.stats.packets[Source::Retransmit as usize] += 1;
                }
            }
            Ok(RetransmitResponse::Refused(r)) => {
                self.stats.retransmit_refused += 1;
                if self.mode != Mode::Live || self.request.is_none() {
                    return;
                }
                match r.reason {
                    // Ask again after the timeout.
                    RetransmitRefusal::Throttled | RetransmitRefusal::NotYetPublished => {}
                    RetransmitRefusal::TooMany => {
                        self.max_request = (self.max_request / 2).max(1);
                        if let Some(req) = self.request.as_mut() {
                            req.sent_ns = 0;
                        }
                        self.maybe_request(now_ns, l);
                    }
                    RetransmitRefusal::TooOld | RetransmitRefusal::UnknownStream => {
                        self.start_snapshot(now_ns, l)
                    }
                }
            }
            Err(_) => self.stats.decode_errors += 1,
        }
    }

    /// A packet of the snapshot stream.
    pub fn on_snapshot_packet<L: FeedListener>(&mut self, bytes: &[u8], now_ns: u64, l: &mut L) {
        if self.mode != Mode::Snapshot {
            return;
        }
        let Ok(p) = decode_packet(bytes) else {
            self.stats.decode_errors += 1;
            return;
        };
        if self
            .cfg
            .snapshot_stream_id
            .is_some_and(|s| s != p.header.stream_id)
        {
            self.stats.foreign += 1;
            return;
        }
        self.stats.snapshot_packets += 1;
        if p.header.first_seq != self.snap.expect && self.snap.expect != 0 {
            self.snap.abandon_current();
        }
        self.snap.expect = p.next_seq();
        for (_, m) in p.messages() {
            self.snap.on_message(&m);
        }
        self.try_finish_snapshot(now_ns, l);
    }

    /// Enters snapshot recovery (keeps the buffered packets).
    fn start_snapshot<L: FeedListener>(&mut self, _now_ns: u64, l: &mut L) {
        if self.mode == Mode::Snapshot {
            return;
        }
        self.mode = Mode::Snapshot;
        self.request = None;
        self.outbox = None;
        self.gap_since_ns = 0;
        self.snap.reset();
        self.stats.snapshot_recoveries += 1;
        l.on_feed(&FeedEvent::SnapshotRecoveryStarted {
            next_seq: self.next_seq,
        });
    }

    fn try_finish_snapshot<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) {
        if self.mode != Mode::Snapshot || !self.snap.cycle_complete {
            return;
        }
        let from = self
            .buffer
            .front()
            .map_or(self.known_end(), |(first, _)| first);
        if from == 0 || !self.snap.ready(from) {
            return;
        }
        let staged = std::mem::take(&mut self.snap.staged);
        for s in &staged {
            let bi = self.books.book_index(s.instrument);
            self.books.clear_book(bi);
            for &(order_id, side, price, qty) in &s.orders {
                if self.books.add(bi, order_id, side, price, qty).is_err() {
                    self.stats.book_errors += 1;
                }
            }
            let b = self.books.at_mut(bi);
            if let Some(h) = s.halted {
                b.halted = h;
            }
            if let Some((p, band)) = s.reference {
                b.ref_price = p;
                b.band_bps = band;
            }
            if s.directory.is_some() {
                b.directory = s.directory;
            }
            b.applied_through = s.last_seq;
            b.last_seq = s.last_seq;
            l.on_book(
                &BookEvent {
                    seq: s.last_seq,
                    timestamp_ns: s.timestamp_ns,
                    instrument: s.instrument,
                    update: Update::Snapshot {
                        orders: s.orders.len() as u32,
                    },
                },
                &self.books,
            );
        }
        let instruments = staged.len() as u32;
        self.snap.staged = staged;
        self.snap.reset();
        self.stats.snapshots_applied += 1;
        self.mode = Mode::Live;
        self.next_seq = from;
        self.request = None;
        self.gap_since_ns = 0;
        self.drain(l);
        if self.next_seq < self.known_end() {
            self.gap_since_ns = now_ns.max(1);
            self.gap_from = self.next_seq;
            self.gap_requested = false;
            self.stats.gaps += 1;
            self.maybe_request(now_ns, l);
        }
        l.on_feed(&FeedEvent::SnapshotRecovered {
            next_seq: self.next_seq,
            instruments,
        });
    }

    /// Applies the messages of a validated-header packet from `next_seq` on.
    #[inline]
    fn apply_packet<L: FeedListener>(&mut self, bytes: &[u8], h: PacketHeader, l: &mut L) {
        let mut rest = bytes.get(PACKET_HEADER_LEN..).unwrap_or(&[]);
        for seq in h.first_seq..h.first_seq + u64::from(h.message_count) {
            let len = match rest.first_chunk::<2>() {
                Some(b) => usize::from(u16::from_le_bytes(*b)),
                None => 0,
            };
            if len < 8 || len > rest.len() {
                self.stats.decode_errors += 1;
                return;
            }
            let (block, tail) = rest.split_at(len);
            rest = tail;
            if seq >= self.next_seq {
                match MdMessage::decode(block) {
                    Ok(m) => {
                        self.next_seq = seq + 1;
                        self.apply(seq, &m, l);
                        if self.mode != Mode::Live {
                            return;
                        }
                    }
                    Err(_) => {
                        // Leave next_seq here: the rest comes back as a gap.
                        self.stats.decode_errors += 1;
                        return;
                    }
                }
            }
        }
    }

    /// Applies one message to its instrument's book and tells the listener.
    #[inline]
    fn apply<L: FeedListener>(&mut self, seq: u64, m: &MdMessage, l: &mut L) {
        let (instrument, ts) = match *m {
            MdMessage::AddOrder(a) => (a.instrument, a.timestamp_ns),
            MdMessage::OrderExecuted(e) => (e.instrument, e.timestamp_ns),
            MdMessage::OrderReduce(r) => (r.instrument, r.timestamp_ns),
            MdMessage::OrderDelete(d) => (d.instrument, d.timestamp_ns),
            MdMessage::OrderReplace(r) => (r.instrument, r.timestamp_ns),
            MdMessage::Trade(t) => (t.instrument, t.timestamp_ns),
            MdMessage::InstrumentDirectory(d) => (d.instrument, d.timestamp_ns),
            MdMessage::TradingStatus(t) => (t.instrument, t.timestamp_ns),
            MdMessage::ReferencePrice(r) => (r.instrument, r.timestamp_ns),
            // Snapshot messages do not belong on the incremental stream.
            _ => return,
        };
        let bi = self.books.book_index(instrument);
        {
            let b = self.books.at_mut(bi);
            if seq <= b.applied_through {
                return;
            }
            b.last_seq = seq;
        }
        self.stats.messages += 1;
        let update = match *m {
            MdMessage::AddOrder(a) => {
                self.books
                    .add(bi, a.order_id, a.side, a.price, a.qty)
                    .map(|()| Update::Add {
                        order_id: a.order_id,
                        side: a.side,
                        price: a.price,
                        qty: a.qty,
                    })
            }
            MdMessage::OrderExecuted(e) => {
                self.books
                    .reduce(e.order_id, e.qty)
                    .map(|t| Update::Execute {
                        order_id: e.order_id,
                        side: t.side,
                        price: t.price,
                        qty: e.qty,
                        leaves: t.leaves,
                        trade_id: e.trade_id,
                    })
            }
            MdMessage::OrderReduce(r) => {
                self.books
                    .reduce(r.order_id, r.qty)
                    .map(|t| Update::Reduce {
                        order_id: r.order_id,
                        side: t.side,
                        price: t.price,
                        qty: r.qty,
                        leaves: t.leaves,
                    })
            }
            MdMessage::OrderDelete(d) => self.books.delete(d.order_id).map(|t| Update::Delete {
                order_id: d.order_id,
                side: t.side,
                price: t.price,
            }),
            MdMessage::OrderReplace(r) => {
                self.books
                    .replace(r.order_id, r.price, r.qty)
                    .map(|t| Update::Replace {
                        order_id: r.order_id,
                        side: t.side,
                        old_price: t.price,
                        price: r.price,
                        qty: r.qty,
                    })
            }
            MdMessage::Trade(t) => {
                let b = self.books.at_mut(bi);
                b.last_trade = Some((t.trade_id, t.price, t.qty, t.aggressor_side));
                b.trades += 1;
                b.volume = b.volume.wrapping_add(t.qty);
                Ok(Update::Trade {
                    trade_id: t.trade_id,
                    price: t.price,
                    qty: t.qty,
                    aggressor: t.aggressor_side,
                })
            }
            MdMessage::TradingStatus(t) => {
                let halted = t.state == TradingState::Halted;
                self.books.at_mut(bi).halted = halted;
                Ok(Update::Status { halted })
            }
            MdMessage::ReferencePrice(r) => {
                let b = self.books.at_mut(bi);
                b.ref_price = r.price;
                b.band_bps = r.band_bps;
                Ok(Update::ReferencePrice {
                    price: r.price,
                    band_bps: r.band_bps,
                })
            }
            MdMessage::InstrumentDirectory(d) => {
                self.books.at_mut(bi).directory = Some(d);
                Ok(Update::Directory)
            }
            _ => return,
        };
        match update {
            Ok(update) => l.on_book(
                &BookEvent {
                    seq,
                    timestamp_ns: ts,
                    instrument,
                    update,
                },
                &self.books,
            ),
            Err(e) => self.on_book_error(seq, e, l),
        }
    }

    #[cold]
    fn on_book_error<L: FeedListener>(&mut self, seq: u64, _e: BookError, l: &mut L) {
        self.stats.book_errors += 1;
        l.on_feed(&FeedEvent::BookError { seq });
        if self.cfg.snapshot {
            self.start_snapshot(0, l);
        }
    }
}
