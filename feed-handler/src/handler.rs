//! The feed handler with its IO: Aeron subscriptions to feeds A and B and to the snapshot
//! stream, and a UDP socket for retransmission requests and answers. One thread polls it.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};

use rusteron_client::AeronSubscription;
use tpx_md::aeron::{AeronClient, AeronSetup, ChannelConfig, MdError};
use tpx_wire::mold::RetransmitRequest;

use crate::book::Books;
use crate::core::{FeedConfig, FeedCore, FeedStats, Source};
use crate::listener::{FeedEvent, FeedListener};

/// Where the feed handler subscribes.
#[derive(Clone, Debug)]
pub struct FeedHandlerConfig {
    pub setup: AeronSetup,
    /// Incremental feed A.
    pub a: ChannelConfig,
    /// Incremental feed B (optional).
    pub b: Option<ChannelConfig>,
    /// The snapshot stream (optional: without it a late joiner cannot start).
    pub snapshot: Option<ChannelConfig>,
    /// The retransmission server (optional).
    pub retransmit_server: Option<SocketAddr>,
    /// Local address for the retransmission socket (port 0: any).
    pub retransmit_bind: SocketAddr,
    /// Fragments (packets) read per subscription per poll.
    pub fragment_limit: usize,
    /// The feed logic's settings (`feeds`, `retransmit` and `snapshot` are set from the above).
    pub core: FeedConfig,
}

impl FeedHandlerConfig {
    pub fn new(setup: AeronSetup, a: ChannelConfig) -> FeedHandlerConfig {
        FeedHandlerConfig {
            setup,
            a,
            b: None,
            snapshot: None,
            retransmit_server: None,
            retransmit_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            fragment_limit: 64,
            core: FeedConfig::default(),
        }
    }
}

/// The subscriptions of one Aeron client.
struct Subscriptions {
    a: AeronSubscription,
    b: Option<AeronSubscription>,
    snapshot: Option<AeronSubscription>,
}

impl Subscriptions {
    fn add(client: &AeronClient, cfg: &FeedHandlerConfig) -> Result<Subscriptions, MdError> {
        let sub = |c: &ChannelConfig| client.subscription(&c.channel, c.stream_id);
        Ok(Subscriptions {
            a: sub(&cfg.a)?,
            b: cfg.b.as_ref().map(sub).transpose()?,
            snapshot: cfg.snapshot.as_ref().map(sub).transpose()?,
        })
    }
}

/// After a failed reconnection, the next try waits this long.
const RECONNECT_RETRY_NS: u64 = 100_000_000;

/// A feed handler for one stream. Field order is drop order (subscriptions before the client).
pub struct FeedHandler {
    /// `None` only between a dead client and its replacement.
    subs: Option<Subscriptions>,
    socket: Option<UdpSocket>,
    server: Option<SocketAddr>,
    fragment_limit: usize,
    core: FeedCore,
    recv: Box<[u8; 65536]>,
    /// Where to subscribe again after the client died.
    cfg: FeedHandlerConfig,
    next_reconnect_ns: u64,
    client: AeronClient,
}

impl std::fmt::Debug for FeedHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedHandler")
            .field("core", &self.core)
            .field("server", &self.server)
            .finish()
    }
}

impl FeedHandler {
    /// Connects to the driver and subscribes.
    pub fn connect(cfg: FeedHandlerConfig) -> Result<FeedHandler, MdError> {
        let client = AeronClient::connect(&cfg.setup)?;
        let subs = Subscriptions::add(&client, &cfg)?;
        let socket = match cfg.retransmit_server {
            Some(_) => {
                let s = UdpSocket::bind(cfg.retransmit_bind)?;
                s.set_nonblocking(true)?;
                Some(s)
            }
            None => None,
        };
        let mut core_cfg = cfg.core.clone();
        core_cfg.feeds = if cfg.b.is_some() { 2 } else { 1 };
        core_cfg.retransmit = cfg.retransmit_server.is_some();
        core_cfg.snapshot = cfg.snapshot.is_some();
        Ok(FeedHandler {
            subs: Some(subs),
            socket,
            server: cfg.retransmit_server,
            fragment_limit: cfg.fragment_limit.max(1),
            core: FeedCore::new(core_cfg),
            recv: Box::new([0u8; 65536]),
            cfg,
            next_reconnect_ns: 0,
            client,
        })
    }

    /// A dead client ([`AeronClient::is_dead`]) is replaced and subscribed again (retried
    /// every [`RECONNECT_RETRY_NS`] while the driver does not answer). Without this, a handler
    /// frozen past the driver's liveness timeout would read nothing ever again while its books
    /// looked live (found by the fault lab: a 16 s stall of the host).
    fn revive<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) {
        if !self.client.is_dead() && self.subs.is_some() {
            return;
        }
        if now_ns < self.next_reconnect_ns {
            return;
        }
        self.next_reconnect_ns = now_ns + RECONNECT_RETRY_NS;
        self.subs = None;
        if self.client.is_dead() {
            if let Err(e) = self.client.reconnect() {
                tpx_md::warn(format_args!(
                    "tpx-feed: reconnecting to the Aeron driver: {e}"
                ));
                return;
            }
        }
        match Subscriptions::add(&self.client, &self.cfg) {
            Ok(s) => {
                self.subs = Some(s);
                l.on_feed(&FeedEvent::Reconnected {
                    reconnects: self.client.reconnects(),
                });
            }
            Err(e) => tpx_md::warn(format_args!("tpx-feed: subscribing again: {e}")),
        }
    }

    /// Aeron clients made after the first (each after the driver dropped the previous one).
    pub fn reconnects(&self) -> u64 {
        self.client.reconnects()
    }

    /// Reads what arrived (up to `fragment_limit` packets per subscription), applies it, runs
    /// the timers and sends a due retransmission request. `now_ns`: any monotonic clock
    /// (the same one every call). Returns the packets handled (0: idle).
    pub fn poll<L: FeedListener>(&mut self, now_ns: u64, l: &mut L) -> usize {
        self.revive(now_ns, l);
        let mut work = 0;
        let limit = self.fragment_limit;
        let core = &mut self.core;
        if let Some(subs) = &self.subs {
            work += Self::poll_subscriptions(subs, core, now_ns, limit, l);
        }
        if let Some(sock) = &self.socket {
            for _ in 0..limit {
                match sock.recv_from(&mut self.recv[..]) {
                    Ok((n, from)) => {
                        if Some(from) == self.server {
                            core.on_retransmit(&self.recv[..n], now_ns, l);
                            work += 1;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        core.on_timer(now_ns, l);
        if let Some(req) = core.take_request() {
            self.send_request(&req);
        }
        work
    }

    fn poll_subscriptions<L: FeedListener>(
        subs: &Subscriptions,
        core: &mut FeedCore,
        now_ns: u64,
        limit: usize,
        l: &mut L,
    ) -> usize {
        let mut work = subs
            .a
            .poll_fn(|buf, _| core.on_packet(Source::A, buf, now_ns, l), limit)
            .unwrap_or(0)
            .max(0) as usize;
        if let Some(b) = &subs.b {
            work += b
                .poll_fn(|buf, _| core.on_packet(Source::B, buf, now_ns, l), limit)
                .unwrap_or(0)
                .max(0) as usize;
        }
        if let Some(s) = &subs.snapshot {
            // Read it even when not recovering, so that an IPC snapshot publication is never
            // held back by this subscriber; the core ignores it then.
            work += s
                .poll_fn(|buf, _| core.on_snapshot_packet(buf, now_ns, l), limit)
                .unwrap_or(0)
                .max(0) as usize;
        }
        work
    }

    fn send_request(&self, req: &RetransmitRequest) {
        if let (Some(sock), Some(server)) = (&self.socket, self.server) {
            let mut buf = [0u8; RetransmitRequest::SIZE];
            if req.encode(&mut buf).is_ok() {
                let _ = sock.send_to(&buf, server);
            }
        }
    }

    /// The books.
    pub fn books(&self) -> &Books {
        self.core.books()
    }

    /// The counters.
    pub fn stats(&self) -> &FeedStats {
        self.core.stats()
    }

    /// The feed logic (next sequence number, liveness).
    pub fn core(&self) -> &FeedCore {
        &self.core
    }

    /// The Aeron client.
    pub fn client(&self) -> &AeronClient {
        &self.client
    }

    /// Whether feed A's subscription has a publisher (an image).
    pub fn is_connected(&self) -> bool {
        self.subs.as_ref().is_some_and(|s| s.a.is_connected())
    }
}
