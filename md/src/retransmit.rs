//! The retransmission server (MoldUDP64's re-request server): a subscriber that sees a gap
//! sends a `RetransmitRequest` (stream, first sequence number, count) in one UDP datagram; the
//! server answers, by unicast to the requester, with the messages in ordinary packets (same
//! stream id, sequence numbers and bytes as first published), or with one `RetransmitRefused`.
//!
//! It reads the publisher's [`RetransmitRing`] without a lock, on its own thread (parked in
//! `recv_from`, never spinning), so answering never delays matching. Bounded: at most
//! `max_messages_per_request` messages per request (`TooMany` beyond) and
//! `max_requests_per_sec` requests per source address (`Throttled` beyond); anything older than
//! the ring is `TooOld` (with `available_from`: recover older data from a snapshot).

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tpx_wire::enums::RetransmitRefusal;
use tpx_wire::mold::{RetransmitRefused, RetransmitRequest};

use crate::encode::{PacketBuilder, DEFAULT_MAX_PACKET_LEN};
use crate::ring::{RetransmitRing, SLOT_BYTES};

/// The server's settings.
#[derive(Clone, Debug)]
pub struct RetransmitConfig {
    /// Unicast address to bind (port 0: any free port; see [`RetransmitServer::local_addr`]).
    pub addr: SocketAddr,
    /// The most messages one request may ask for.
    pub max_messages_per_request: u16,
    /// The most requests per second per source address.
    pub max_requests_per_sec: u32,
    /// Largest answer packet.
    pub max_packet_len: usize,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_messages_per_request: 4096,
            max_requests_per_sec: 1000,
            max_packet_len: DEFAULT_MAX_PACKET_LEN,
        }
    }
}

/// Counters, readable from any thread.
#[derive(Debug, Default)]
pub struct RetransmitStats {
    pub requests: AtomicU64,
    pub answered: AtomicU64,
    pub messages_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub refused_too_old: AtomicU64,
    pub refused_too_many: AtomicU64,
    pub refused_not_yet_published: AtomicU64,
    pub refused_unknown_stream: AtomicU64,
    pub refused_throttled: AtomicU64,
    /// Datagrams that were not a valid request.
    pub bad_requests: AtomicU64,
    pub send_errors: AtomicU64,
}

const THROTTLE_SLOTS: usize = 64;

/// Requests per source address in the current one-second window (a small fixed table; the
/// least recently used entry makes room).
#[derive(Debug)]
struct Throttle {
    entries: [(Option<SocketAddr>, Instant, u32); THROTTLE_SLOTS],
    limit: u32,
}

impl Throttle {
    fn new(limit: u32) -> Throttle {
        Throttle {
            entries: [(None, Instant::now(), 0); THROTTLE_SLOTS],
            limit,
        }
    }

    /// Counts a request; `false` if over the limit.
    fn admit(&mut self, from: SocketAddr, now: Instant) -> bool {
        let i = match self.entries.iter().position(|e| e.0 == Some(from)) {
            Some(i) => i,
            None => {
                let i = self
                    .entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| (e.0.is_some(), e.1))
                    .map_or(0, |(i, _)| i);
                self.entries[i] = (Some(from), now, 0);
                i
            }
        };
        let e = &mut self.entries[i];
        if now.duration_since(e.1) >= Duration::from_secs(1) {
            e.1 = now;
            e.2 = 0;
        }
        e.2 += 1;
        e.2 <= self.limit
    }
}

/// A retransmission server for one stream.
#[derive(Debug)]
pub struct RetransmitServer {
    socket: UdpSocket,
    ring: Arc<RetransmitRing>,
    stream_id: u32,
    cfg: RetransmitConfig,
    stats: Arc<RetransmitStats>,
    throttle: Throttle,
    pkt: PacketBuilder,
}

impl RetransmitServer {
    /// Binds the server's socket.
    pub fn bind(
        cfg: RetransmitConfig,
        stream_id: u32,
        ring: Arc<RetransmitRing>,
    ) -> std::io::Result<RetransmitServer> {
        let socket = UdpSocket::bind(cfg.addr)?;
        Ok(RetransmitServer {
            socket,
            ring,
            stream_id,
            throttle: Throttle::new(cfg.max_requests_per_sec),
            pkt: PacketBuilder::new(stream_id, cfg.max_packet_len),
            cfg,
            stats: Arc::new(RetransmitStats::default()),
        })
    }

    /// The bound address (requests go here).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<RetransmitStats> {
        self.stats.clone()
    }

    /// Answers the requests waiting on the socket (at most `max` of them) without blocking;
    /// returns how many it handled.
    pub fn poll_once(&mut self, max: usize) -> std::io::Result<usize> {
        self.socket.set_nonblocking(true)?;
        let mut n = 0;
        let mut buf = [0u8; 256];
        while n < max {
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) => {
                    self.on_datagram(&buf[..len], from, Instant::now());
                    n += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    break
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // ICMP errors from earlier sends (port unreachable) surface here: not ours.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Runs the server on its own thread (blocked in `recv_from`, waking every 50 ms to check
    /// for stop) until the handle is dropped.
    pub fn spawn(self) -> std::io::Result<RetransmitHandle> {
        let addr = self.local_addr()?;
        let stats = self.stats.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let mut me = self;
        me.socket.set_nonblocking(false)?;
        me.socket
            .set_read_timeout(Some(Duration::from_millis(50)))?;
        let thread = std::thread::Builder::new()
            .name(format!("md-retransmit-{}", me.stream_id))
            .spawn(move || {
                let mut buf = [0u8; 256];
                while !stop2.load(Ordering::Acquire) {
                    match me.socket.recv_from(&mut buf) {
                        Ok((len, from)) => me.on_datagram(&buf[..len], from, Instant::now()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                                    | ErrorKind::ConnectionRefused
                            ) => {}
                        Err(e) => {
                            crate::warn(format_args!("md retransmit server: {e}"));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        Ok(RetransmitHandle {
            stop,
            thread: Some(thread),
            stats,
            addr,
        })
    }

    fn refuse(&self, req: &RetransmitRequest, reason: RetransmitRefusal, from: SocketAddr) {
        let counter = match reason {
            RetransmitRefusal::TooOld => &self.stats.refused_too_old,
            RetransmitRefusal::TooMany => &self.stats.refused_too_many,
            RetransmitRefusal::NotYetPublished => &self.stats.refused_not_yet_published,
            RetransmitRefusal::UnknownStream => &self.stats.refused_unknown_stream,
            RetransmitRefusal::Throttled => &self.stats.refused_throttled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let msg = RetransmitRefused {
            stream_id: req.stream_id,
            count: req.count,
            reason,
            first_seq: req.first_seq,
            available_from: self.ring.available_from(),
        };
        let mut buf = [0u8; RetransmitRefused::SIZE];
        if msg.encode(&mut buf).is_ok() && self.socket.send_to(&buf, from).is_err() {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn send_packet(&mut self, from: SocketAddr) {
        let count = u64::from(self.pkt.count());
        let bytes = self.pkt.finish();
        if self.socket.send_to(bytes, from).is_ok() {
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.stats.messages_sent.fetch_add(count, Ordering::Relaxed);
        } else {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Handles one datagram.
    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        let Ok(req) = RetransmitRequest::decode(bytes) else {
            self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if !self.throttle.admit(from, now) {
            return self.refuse(&req, RetransmitRefusal::Throttled, from);
        }
        if req.stream_id != self.stream_id {
            return self.refuse(&req, RetransmitRefusal::UnknownStream, from);
        }
        if req.count > self.cfg.max_messages_per_request {
            return self.refuse(&req, RetransmitRefusal::TooMany, from);
        }
        let last = req.first_seq.saturating_add(u64::from(req.count) - 1);
        if last >= self.ring.next_seq() {
            return self.refuse(&req, RetransmitRefusal::NotYetPublished, from);
        }
        let from_seq = self.ring.available_from();
        if from_seq == 0 || req.first_seq < from_seq {
            return self.refuse(&req, RetransmitRefusal::TooOld, from);
        }
        let mut msg = [0u8; SLOT_BYTES];
        self.pkt.start(req.first_seq);
        for seq in req.first_seq..=last {
            let Some(len) = self.ring.read(seq, &mut msg) else {
                // Overwritten while we copied: what was sent stands, the rest is too old.
                if !self.pkt.is_empty() {
                    self.send_packet(from);
                }
                return self.refuse(&req, RetransmitRefusal::TooOld, from);
            };
            if !self.pkt.push_raw(&msg[..len]) {
                self.send_packet(from);
                self.pkt.start(seq);
                self.pkt.push_raw(&msg[..len]);
            }
        }
        if !self.pkt.is_empty() {
            self.send_packet(from);
        }
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running server; stops and joins its thread on drop.
#[derive(Debug)]
pub struct RetransmitHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<RetransmitStats>,
    addr: SocketAddr,
}

impl RetransmitHandle {
    /// Where requests go.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters.
    pub fn stats(&self) -> &RetransmitStats {
        &self.stats
    }
}

impl Drop for RetransmitHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::market_data::{MdMessage, OrderDelete};
    use tpx_wire::mold::{decode_retransmit_response, RetransmitResponse};

    fn fill(ring: &RetransmitRing, n: u64) {
        let mut b = PacketBuilder::new(5, 1000);
        for seq in 1..=n {
            b.start(seq);
            let bytes = b
                .push(&MdMessage::OrderDelete(OrderDelete {
                    timestamp_ns: seq,
                    order_id: seq,
                    instrument: 1,
                }))
                .unwrap()
                .to_vec();
            ring.write(seq, &bytes);
            ring.publish(seq + 1);
        }
    }

    fn ask(c: &UdpSocket, to: SocketAddr, stream: u32, first: u64, count: u16) {
        let mut buf = [0u8; RetransmitRequest::SIZE];
        RetransmitRequest {
            stream_id: stream,
            count,
            first_seq: first,
        }
        .encode(&mut buf)
        .unwrap();
        c.send_to(&buf, to).unwrap();
    }

    #[test]
    fn answers_and_refuses() {
        let ring = Arc::new(RetransmitRing::new(64));
        fill(&ring, 100);
        let cfg = RetransmitConfig {
            max_messages_per_request: 50,
            max_requests_per_sec: 5,
            max_packet_len: 24 + 32 * 10,
            ..RetransmitConfig::default()
        };
        let server = RetransmitServer::bind(cfg, 5, ring).unwrap();
        let handle = server.spawn().unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2048];
        // 25 messages from 60: three packets of 10, 10, 5.
        ask(&c, handle.addr(), 5, 60, 25);
        let mut seqs = Vec::new();
        while seqs.len() < 25 {
            let n = c.recv(&mut buf).unwrap();
            match decode_retransmit_response(&buf[..n]).unwrap() {
                RetransmitResponse::Packet(p) => seqs.extend(p.messages().map(|(s, _)| s)),
                RetransmitResponse::Refused(r) => panic!("{r:?}"),
            }
        }
        assert_eq!(seqs, (60..85).collect::<Vec<_>>());
        let mut refused = |first, count, stream| {
            ask(&c, handle.addr(), stream, first, count);
            let n = c.recv(&mut buf).unwrap();
            match decode_retransmit_response(&buf[..n]).unwrap() {
                RetransmitResponse::Refused(r) => (r.reason, r.available_from),
                RetransmitResponse::Packet(_) => panic!("packet"),
            }
        };
        assert_eq!(refused(10, 5, 5), (RetransmitRefusal::TooOld, 37));
        assert_eq!(refused(90, 51, 5).0, RetransmitRefusal::TooMany);
        assert_eq!(refused(95, 10, 5).0, RetransmitRefusal::NotYetPublished);
        assert_eq!(refused(95, 1, 6).0, RetransmitRefusal::UnknownStream);
        // The sixth request of this second from this address.
        assert_eq!(refused(95, 1, 5).0, RetransmitRefusal::Throttled);
        assert_eq!(handle.stats().answered.load(Ordering::Relaxed), 1);
    }
}
