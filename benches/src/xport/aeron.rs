//! The replication [`Transport`] over Aeron UDP unicast, and [`Split`] (some peers over one
//! transport, the rest over another: the standby over Aeron, the witness over TCP).
//!
//! Each process has one media driver (embedded, or external) and, per peer, one exclusive
//! publication to the peer's endpoint and one subscription on its own endpoint. Stream ids
//! name the sender: a node publishes on `stream_base + its id` and subscribes to
//! `stream_base + peer id`, so messages need no sender field and are not copied to add one.
//! Messages are `tpx_sequencer::proto` messages as they are (one Aeron message each, fragmented
//! and reassembled by Aeron when longer than the MTU).
//!
//! What [`TcpTransport`](tpx_sequencer::TcpTransport) reports, mapped onto Aeron:
//!
//! - **connected**: the publication has a subscriber (status messages arrive) *and* the
//!   subscription has an image of the peer's publication. Aeron notices a peer that died only
//!   when these time out (driver defaults: publication connection 5 s, image liveness 10 s),
//!   where TCP on the same host sees the kernel close the socket at once; the replica's own
//!   heartbeat timeout (`timeout_ns`) is what detects a dead peer in both cases.
//! - **a new connection**: TCP gives the replica a new connection after a peer restarts (its
//!   `Hello` handshake runs again). A restarted Aeron peer is a new publication session on the
//!   same stream; the first message of a new session makes `connected` false for one poll and
//!   is held back until the next, so the replica sees the same "gone, then back" a reconnect
//!   gives it (a standby re-sends `Hello`, a primary forgets the standby's position).
//!   Messages still arriving from a replaced session are dropped.
//! - **send**: `offer`; a full window (back-pressure) or a term rotation queues the message in
//!   memory and retries it first on the next send or poll (TCP's unsent bytes, bounded the same
//!   way: past `max_queued_bytes` the queue is dropped and `send` says no connection); no
//!   subscriber: `false`.

use std::collections::VecDeque;

use tpx_md::aeron::rusteron_client::{
    AeronExclusivePublication, AeronFragmentClosureAssembler, AeronHeader, AeronOfferError,
    AeronSubscription,
};
use tpx_md::aeron::{AeronClient, AeronSetup, MdError};
use tpx_sequencer::{PeerId, Transport};

/// One peer reached over Aeron.
#[derive(Clone, Debug)]
pub struct AeronPeer {
    pub id: PeerId,
    /// `host:port` where the peer subscribes (its `listen`).
    pub endpoint: String,
}

/// Settings of an [`AeronReplTransport`].
#[derive(Clone, Debug)]
pub struct AeronReplConfig {
    pub setup: AeronSetup,
    pub node_id: PeerId,
    /// `host:port` this node subscribes on (UDP).
    pub listen: String,
    pub peers: Vec<AeronPeer>,
    /// Stream id of a sender = `stream_base + sender id`.
    pub stream_base: i32,
    /// Fragments read per peer per poll.
    pub fragment_limit: usize,
    /// The most bytes queued for a back-pressured publication before the link counts as lost.
    pub max_queued_bytes: usize,
}

impl AeronReplConfig {
    pub fn new(setup: AeronSetup, node_id: PeerId, listen: &str, peers: Vec<AeronPeer>) -> Self {
        AeronReplConfig {
            setup,
            node_id,
            listen: listen.to_string(),
            peers,
            stream_base: 3000,
            fragment_limit: 256,
            max_queued_bytes: 64 << 20,
        }
    }
}

/// Messages read in one poll: `(session, offset, length)` into `buf`.
#[derive(Default)]
struct Inbox {
    buf: Vec<u8>,
    idx: Vec<(i32, usize, usize)>,
}

impl Inbox {
    fn clear(&mut self) {
        self.buf.clear();
        self.idx.clear();
    }
    fn push(&mut self, session: i32, m: &[u8]) {
        let at = self.buf.len();
        self.buf.extend_from_slice(m);
        self.idx.push((session, at, m.len()));
    }
}

fn on_message(inbox: &mut Inbox, m: &[u8], h: AeronHeader) {
    inbox.push(h.session_id().unwrap_or(0), m);
}

/// Messages waiting for a back-pressured publication: length-prefixed frames.
#[derive(Default)]
struct Backlog {
    buf: Vec<u8>,
    pos: usize,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn push(&mut self, m: &[u8]) {
        self.buf.extend_from_slice(&(m.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(m);
    }
    fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

enum Offer {
    Sent,
    Later,
    NotConnected,
}

fn offer(p: &AeronExclusivePublication, m: &[u8]) -> Offer {
    match p.offer(m) {
        Ok(_) => Offer::Sent,
        Err(AeronOfferError::BackPressured) | Err(AeronOfferError::AdminAction) => Offer::Later,
        Err(_) => Offer::NotConnected,
    }
}

/// One peer: field order is drop order (publication and subscription before the client).
struct Link {
    peer: PeerId,
    publ: AeronExclusivePublication,
    sub: AeronSubscription,
    asm: AeronFragmentClosureAssembler,
    max_message: usize,
    /// The peer's publication session messages are taken from.
    session: Option<i32>,
    /// Sessions replaced by a newer one (a restarted peer): their messages are dropped.
    retired: VecDeque<i32>,
    /// A new session was seen in the last poll: not connected until the next one.
    fresh: bool,
    /// Messages of the new session, handed over on the next poll.
    held: Inbox,
    backlog: Backlog,
}

impl Link {
    /// Offers the backlog; false if the link is lost.
    fn flush(&mut self) -> bool {
        while !self.backlog.is_empty() {
            let b = &self.backlog.buf[self.backlog.pos..];
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            match offer(&self.publ, &b[4..4 + len]) {
                Offer::Sent => self.backlog.pos += 4 + len,
                Offer::Later => break,
                Offer::NotConnected => {
                    self.backlog.clear();
                    return false;
                }
            }
        }
        if self.backlog.is_empty() {
            self.backlog.clear();
        }
        true
    }
}

/// Replication over Aeron UDP unicast (see the module docs).
pub struct AeronReplTransport {
    links: Vec<Link>,
    inbox: Inbox,
    max_queued_bytes: usize,
    fragment_limit: usize,
    /// Declared last: dropped after the publications and subscriptions.
    client: AeronClient,
}

impl std::fmt::Debug for AeronReplTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeronReplTransport")
            .field(
                "peers",
                &self.links.iter().map(|l| l.peer).collect::<Vec<_>>(),
            )
            .field("client", &self.client)
            .finish()
    }
}

impl AeronReplTransport {
    /// Connects to (or starts) the media driver and adds a publication and a subscription per
    /// peer. Does not wait for the peers.
    pub fn connect(cfg: &AeronReplConfig) -> Result<AeronReplTransport, MdError> {
        let client = AeronClient::connect(&cfg.setup)?;
        let mut links = Vec::with_capacity(cfg.peers.len());
        for p in &cfg.peers {
            let publ = client.exclusive_publication(
                &format!("aeron:udp?endpoint={}", p.endpoint),
                cfg.stream_base + cfg.node_id as i32,
            )?;
            let sub = client.subscription(
                &format!("aeron:udp?endpoint={}", cfg.listen),
                cfg.stream_base + p.id as i32,
            )?;
            let max_message = publ
                .get_constants()
                .map(|c| c.max_message_length())
                .unwrap_or(1 << 20);
            let asm = AeronFragmentClosureAssembler::new()
                .map_err(|e| MdError::Aeron(format!("fragment assembler: {e}")))?;
            links.push(Link {
                peer: p.id,
                publ,
                sub,
                asm,
                max_message,
                session: None,
                retired: VecDeque::new(),
                fresh: false,
                held: Inbox::default(),
                backlog: Backlog::default(),
            });
        }
        Ok(AeronReplTransport {
            links,
            inbox: Inbox::default(),
            max_queued_bytes: cfg.max_queued_bytes,
            fragment_limit: cfg.fragment_limit,
            client,
        })
    }

    /// The Aeron client (its error count, its embedded driver's directory).
    pub fn client(&self) -> &AeronClient {
        &self.client
    }

    /// The largest message a peer can be sent (Aeron: an eighth of the term length).
    pub fn max_message(&self, to: PeerId) -> Option<usize> {
        self.links
            .iter()
            .find(|l| l.peer == to)
            .map(|l| l.max_message)
    }
}

impl Transport for AeronReplTransport {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        let max_q = self.max_queued_bytes;
        let Some(l) = self.links.iter_mut().find(|l| l.peer == to) else {
            return false;
        };
        if msg.len() > l.max_message || !l.flush() {
            return false;
        }
        if l.backlog.is_empty() {
            match offer(&l.publ, msg) {
                Offer::Sent => return true,
                Offer::NotConnected => return false,
                Offer::Later => {}
            }
        }
        if l.backlog.len() + msg.len() > max_q {
            l.backlog.clear();
            return false;
        }
        l.backlog.push(msg);
        true
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        let limit = self.fragment_limit;
        for l in &mut self.links {
            l.flush();
            if l.fresh {
                l.fresh = false;
                for &(_, at, len) in &l.held.idx {
                    f(l.peer, &l.held.buf[at..at + len]);
                }
                l.held.clear();
            }
            self.inbox.clear();
            // A poll error leaves nothing in the inbox; the link's state tells the replica.
            let _ = l.asm.poll(&l.sub, &mut self.inbox, on_message, limit);
            for &(s, at, len) in &self.inbox.idx {
                let m = &self.inbox.buf[at..at + len];
                match l.session {
                    Some(cur) if cur == s => {
                        if l.fresh {
                            l.held.push(s, m);
                        } else {
                            f(l.peer, m);
                        }
                    }
                    None => {
                        l.session = Some(s);
                        f(l.peer, m);
                    }
                    Some(cur) => {
                        if l.retired.contains(&s) {
                            continue;
                        }
                        // A new publication of the peer (it restarted): a new connection.
                        l.retired.push_back(cur);
                        if l.retired.len() > 8 {
                            l.retired.pop_front();
                        }
                        l.session = Some(s);
                        l.fresh = true;
                        l.held.clear();
                        l.held.push(s, m);
                    }
                }
            }
        }
    }

    fn connected(&self, to: PeerId) -> bool {
        self.links
            .iter()
            .find(|l| l.peer == to)
            .is_some_and(|l| !l.fresh && l.publ.is_connected() && l.sub.is_connected())
    }
}

/// Peers in `first` over `a`, every other peer over `b`.
#[derive(Debug)]
pub struct Split<A: Transport, B: Transport> {
    pub first: Vec<PeerId>,
    pub a: A,
    pub b: B,
}

impl<A: Transport, B: Transport> Transport for Split<A, B> {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        if self.first.contains(&to) {
            self.a.send(to, msg)
        } else {
            self.b.send(to, msg)
        }
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        self.a.poll(f);
        self.b.poll(f);
    }

    fn connected(&self, to: PeerId) -> bool {
        if self.first.contains(&to) {
            self.a.connected(to)
        } else {
            self.b.connected(to)
        }
    }
}
