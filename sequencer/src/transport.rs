//! The network seam: messages to and from numbered peers.
//!
//! [`MemNet`] connects in-process transports (tests, the simulator) and can cut links;
//! [`TcpTransport`] is the production one: non-blocking TCP, length-prefixed frames, polled
//! (busy-polled when the caller spins), reconnecting with a short backoff.
//!
//! **Connection handshake** ([`Handshake`]). Each side's first frame is a 64-byte hello:
//! magic, version, its peer id, the cluster id, its configuration digest and the cluster's
//! 32-byte shared secret. The dialer sends first; the acceptor checks the hello and answers
//! with its own, which the dialer checks (and that it names the peer it dialed). Nothing is
//! delivered, and nothing sent, on a connection before its peer's hello passed. A hello with
//! another cluster id or secret, or (both digests non-zero) another configuration digest,
//! drops the connection with a logged reason (`CONFIG MISMATCH` for the digest) and a counter.
//! The secret is compared in constant time as plain bytes, not an HMAC challenge: the
//! replication link runs inside the venue, and the secret stops a stray or misconfigured
//! process (another cluster, a test rig, a port scan that claims the witness's id) from
//! speaking; it does not stop someone who can read the link's traffic.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node or witness id.
pub type PeerId = u32;

/// The witness's peer id in every cluster (the nodes' ids must differ from it).
pub const WITNESS_ID: PeerId = 100;

/// Messages to and from peers. Delivery is in order per pair of peers while a connection
/// lasts; a message to a peer with no connection is dropped (`send` says so).
pub trait Transport {
    /// Sends one message; `false` if there is no connection to `to` (the message is dropped).
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool;
    /// Does connection upkeep and hands every message received since the last poll to `f`.
    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8]));
    /// Whether a connection to `to` is up.
    fn connected(&self, to: PeerId) -> bool;
    /// Peers refused so far because their configuration digest differs from ours (see
    /// [`Handshake::config_digest`]); transports without a handshake never refuse one.
    fn config_mismatches(&self) -> u64 {
        0
    }
}

#[derive(Debug, Default)]
struct Hub {
    queues: HashMap<PeerId, VecDeque<(PeerId, Vec<u8>)>>,
    /// Directed links that drop everything.
    cut: HashSet<(PeerId, PeerId)>,
    /// Peers that are down (neither send nor receive).
    down: HashSet<PeerId>,
}

/// An in-process network: every [`MemTransport`] made from it can reach every other.
#[derive(Clone, Debug, Default)]
pub struct MemNet(Arc<Mutex<Hub>>);

impl MemNet {
    pub fn new() -> MemNet {
        MemNet::default()
    }

    pub fn endpoint(&self, id: PeerId) -> MemTransport {
        self.hub().queues.entry(id).or_default();
        MemTransport {
            id,
            net: self.clone(),
        }
    }

    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts (or heals) both directions between `a` and `b`.
    pub fn partition(&self, a: PeerId, b: PeerId, cut: bool) {
        let mut h = self.hub();
        for l in [(a, b), (b, a)] {
            if cut {
                h.cut.insert(l);
            } else {
                h.cut.remove(&l);
            }
        }
    }

    /// Takes a peer off the network (a crash) or puts it back; its queue is emptied.
    pub fn set_down(&self, id: PeerId, down: bool) {
        let mut h = self.hub();
        if down {
            h.down.insert(id);
            h.queues.entry(id).or_default().clear();
        } else {
            h.down.remove(&id);
        }
    }
}

/// One peer's end of a [`MemNet`].
#[derive(Debug)]
pub struct MemTransport {
    id: PeerId,
    net: MemNet,
}

impl Transport for MemTransport {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        let mut h = self.net.hub();
        if h.down.contains(&self.id) || h.down.contains(&to) || h.cut.contains(&(self.id, to)) {
            return false;
        }
        match h.queues.get_mut(&to) {
            Some(q) => {
                q.push_back((self.id, msg.to_vec()));
                true
            }
            None => false,
        }
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        let msgs: Vec<(PeerId, Vec<u8>)> = {
            let mut h = self.net.hub();
            if h.down.contains(&self.id) {
                return;
            }
            h.queues
                .get_mut(&self.id)
                .map(|q| q.drain(..).collect())
                .unwrap_or_default()
        };
        for (from, m) in msgs {
            f(from, &m);
        }
    }

    fn connected(&self, to: PeerId) -> bool {
        let h = self.net.hub();
        !h.down.contains(&self.id)
            && !h.down.contains(&to)
            && !h.cut.contains(&(self.id, to))
            && h.queues.contains_key(&to)
    }
}

/// What a TCP connection must prove before any message passes (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// Both ends must name the same cluster.
    pub cluster_id: u64,
    /// Both ends must hold the same secret (all zeros: none configured).
    pub secret: [u8; 32],
    /// A digest of the configuration both nodes must share (0: not checked, e.g. the
    /// witness, which runs no shards). Two non-zero digests that differ refuse to pair.
    pub config_digest: u64,
    /// The prefix of logged lines (`tpx node`, `tpx witness`).
    pub who: &'static str,
}

/// Reads a shared secret file: 64 hexadecimal digits (32 bytes), surrounding whitespace
/// ignored; all zeros is refused (it means "no secret").
pub fn read_secret_file(path: &std::path::Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("secret file {}: {e}", path.display()))?;
    let hex = text.trim();
    let bad = || {
        format!(
            "secret file {}: expected 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`",
            path.display()
        )
    };
    if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    if out == [0u8; 32] {
        return Err(bad());
    }
    Ok(out)
}

const HELLO_MAGIC: u32 = 0x4858_5054; // "TPXH"
const HELLO_VERSION: u32 = 1;
/// The length of a hello, the first frame of every connection.
pub const HELLO_BYTES: usize = 64;

fn encode_hello(id: PeerId, h: &Handshake) -> [u8; HELLO_BYTES] {
    let mut b = [0u8; HELLO_BYTES];
    b[0..4].copy_from_slice(&HELLO_MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&HELLO_VERSION.to_le_bytes());
    b[8..12].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&h.cluster_id.to_le_bytes());
    b[24..32].copy_from_slice(&h.config_digest.to_le_bytes());
    b[32..64].copy_from_slice(&h.secret);
    b
}

/// Constant-time equality of two secrets.
fn same_secret(a: &[u8], b: &[u8; 32]) -> bool {
    a.len() == 32 && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a peer's hello was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloError {
    Malformed,
    ClusterId {
        ours: u64,
        theirs: u64,
    },
    Secret,
    ConfigMismatch {
        peer: PeerId,
        ours: u64,
        theirs: u64,
    },
    UnexpectedPeer {
        expected: PeerId,
        got: PeerId,
    },
    /// An accepted connection sent no hello within the transport's hello timeout.
    NoHello,
    /// [`MAX_UNVERIFIED`] accepted connections were already waiting for their hello.
    TooManyPending,
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            HelloError::Malformed => write!(f, "not a tpx replication hello (or another version)"),
            HelloError::ClusterId { ours, theirs } => {
                write!(f, "cluster id {theirs}, this one is {ours}")
            }
            HelloError::Secret => write!(f, "wrong shared secret"),
            HelloError::ConfigMismatch { peer, ours, theirs } => write!(
                f,
                "CONFIG MISMATCH with peer {peer}: its config digest {theirs:016x}, ours \
                 {ours:016x} (shards, instrument -> shard map, risk parameters or version \
                 differ); refusing to pair"
            ),
            HelloError::UnexpectedPeer { expected, got } => {
                write!(f, "dialed peer {expected} but it says it is {got}")
            }
            HelloError::NoHello => write!(f, "no hello within the handshake timeout"),
            HelloError::TooManyPending => write!(
                f,
                "{MAX_UNVERIFIED} connections already wait for their hello"
            ),
        }
    }
}

/// A frame's length prefix said more than the reader takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTooLong {
    pub len: usize,
    pub max: usize,
}

/// The length-prefixed frame (`u32` little-endian length, then that many bytes) at the start
/// of `rest`: `Ok(Some((frame, bytes used)))`, `Ok(None)` while it is incomplete, an error for
/// a length above `max` (said as soon as the prefix is in).
pub fn split_frame(rest: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameTooLong> {
    let Some(prefix) = rest.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > max {
        return Err(FrameTooLong { len, max });
    }
    Ok(rest.get(4..4 + len).map(|f| (f, 4 + len)))
}

/// Checks a peer's hello (the first frame of every connection); returns its id.
pub fn check_hello(b: &[u8], h: &Handshake) -> Result<PeerId, HelloError> {
    if b.len() != HELLO_BYTES {
        return Err(HelloError::Malformed);
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    if u32_at(0) != HELLO_MAGIC || u32_at(4) != HELLO_VERSION {
        return Err(HelloError::Malformed);
    }
    let peer = u32_at(8);
    let (cluster, digest) = (u64_at(16), u64_at(24));
    if cluster != h.cluster_id {
        return Err(HelloError::ClusterId {
            ours: h.cluster_id,
            theirs: cluster,
        });
    }
    if !same_secret(&b[32..64], &h.secret) {
        return Err(HelloError::Secret);
    }
    if h.config_digest != 0 && digest != 0 && digest != h.config_digest {
        return Err(HelloError::ConfigMismatch {
            peer,
            ours: h.config_digest,
            theirs: digest,
        });
    }
    Ok(peer)
}

/// Connections refused at the handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeStats {
    /// Every refused hello.
    pub refused: u64,
    /// Of them: another configuration digest.
    pub config_mismatches: u64,
}

/// The most bytes a TCP connection may have queued for sending before it is dropped.
const MAX_WBUF: usize = 64 << 20;
/// The most bytes read from one connection in one poll.
const READ_PER_POLL: usize = 1 << 20;
/// The most bytes one `read` call takes (the size of the transport's scratch buffer).
const READ_CHUNK: usize = 64 << 10;
/// The largest frame accepted.
pub const MAX_FRAME: usize = 16 << 20;
/// Accepted connections waiting for their hello at most; one more is closed as it is
/// accepted. A node has two peers (its peer and, at the witness, two nodes), so a handful is
/// all a reconnecting cluster needs; anything that can reach the port could open thousands.
pub const MAX_UNVERIFIED: usize = 16;
/// How long an accepted connection may take to send its hello (the default).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// When it was accepted or dialed (an accepted one must say hello within the timeout).
    opened: Instant,
    /// Known once its first frame (the peer id) arrived, or at once for dialed connections.
    peer: Option<PeerId>,
    /// The peer's hello passed (see [`Handshake`]): only then do messages pass.
    verified: bool,
    dialed: bool,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    dead: bool,
}

impl Conn {
    fn new(stream: TcpStream, peer: Option<PeerId>, dialed: bool) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            opened: Instant::now(),
            peer,
            verified: false,
            dialed,
            rbuf: Vec::with_capacity(1 << 16),
            rpos: 0,
            wbuf: Vec::with_capacity(1 << 16),
            dead: false,
        })
    }

    fn queue(&mut self, msg: &[u8]) {
        if self.wbuf.len() + msg.len() > MAX_WBUF {
            self.dead = true;
            return;
        }
        self.wbuf
            .extend_from_slice(&(msg.len() as u32).to_le_bytes());
        self.wbuf.extend_from_slice(msg);
    }

    fn flush(&mut self) {
        while !self.wbuf.is_empty() && !self.dead {
            match self.stream.write(&self.wbuf) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }

    fn read(
        &mut self,
        tmp: &mut [u8],
        h: &Handshake,
        my_id: PeerId,
        refused: &mut Vec<HelloError>,
        f: &mut dyn FnMut(PeerId, &[u8]),
    ) {
        let mut got = 0;
        // Bounded work per duty cycle: at most READ_PER_POLL bytes from one connection.
        while got < READ_PER_POLL {
            match self.stream.read(tmp) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => {
                    got += n;
                    self.rbuf.extend_from_slice(&tmp[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        loop {
            let rest = &self.rbuf[self.rpos..];
            // Until its hello is checked a connection is anyone's: its first frame is a hello
            // or nothing, never up to `MAX_FRAME` buffered.
            let max = if self.verified {
                MAX_FRAME
            } else {
                HELLO_BYTES
            };
            let (frame, used) = match split_frame(rest, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(FrameTooLong { .. }) => {
                    if !self.verified {
                        refused.push(HelloError::Malformed);
                    }
                    self.dead = true;
                    break;
                }
            };
            let len = used - 4;
            if !self.verified {
                // The first frame is the peer's hello.
                match check_hello(frame, h) {
                    Ok(p) if self.dialed && Some(p) != self.peer => {
                        refused.push(HelloError::UnexpectedPeer {
                            expected: self.peer.unwrap_or(0),
                            got: p,
                        });
                        self.dead = true;
                        break;
                    }
                    Ok(p) => {
                        self.verified = true;
                        if !self.dialed {
                            self.peer = Some(p);
                            let hello = encode_hello(my_id, h);
                            self.rpos += 4 + len;
                            self.queue(&hello);
                            continue;
                        }
                    }
                    Err(e) => {
                        refused.push(e);
                        self.dead = true;
                        break;
                    }
                }
                self.rpos += 4 + len;
                continue;
            }
            if let Some(p) = self.peer {
                f(p, frame);
            }
            self.rpos += 4 + len;
        }
        if self.rpos > 0 && self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > (1 << 20) {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
    }
}

#[derive(Debug, Default)]
struct Auth {
    handshake: Handshake,
    stats: HandshakeStats,
    refused: Vec<HelloError>,
    last_refusal_log: Option<Instant>,
    unlogged: u64,
}

/// Non-blocking TCP: listens on one address (if any) and dials the peers it is given; sends
/// on the connection it dialed to a peer, else on one the peer dialed; receives on all.
#[derive(Debug)]
pub struct TcpTransport {
    id: PeerId,
    /// Boxed: kept off the transport's hot fields (and small in an enum of transports).
    auth: Box<Auth>,
    listener: Option<TcpListener>,
    dial: Vec<(PeerId, SocketAddr)>,
    next_dial: HashMap<PeerId, Instant>,
    /// Dials whose connect has not finished.
    dialing: Vec<Dialing>,
    conns: Vec<Conn>,
    /// Where reads land before they join a connection's buffer: allocated (and zeroed) once.
    /// It was a 64 KiB array on the stack of every poll of every connection, and zeroing it
    /// was a quarter of a busy primary's sequencing core (perf, `make bench` at 100 k/s).
    scratch: Box<[u8]>,
    retry: Duration,
    /// How long an accepted connection may take to say hello ([`HELLO_TIMEOUT`]).
    hello_timeout: Duration,
}

impl TcpTransport {
    /// `listen`: where peers reach this one (`None`: only dials). `dial`: peers to keep a
    /// connection to.
    pub fn new(
        id: PeerId,
        listen: Option<SocketAddr>,
        dial: Vec<(PeerId, SocketAddr)>,
    ) -> io::Result<TcpTransport> {
        let listener = match listen {
            Some(a) => {
                let l = TcpListener::bind(a)?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        Ok(TcpTransport {
            id,
            auth: Box::default(),
            listener,
            dial,
            next_dial: HashMap::new(),
            dialing: Vec::new(),
            conns: Vec::new(),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            retry: Duration::from_millis(2),
            hello_timeout: HELLO_TIMEOUT,
        })
    }

    /// Sets what connections must prove (see [`Handshake`]); the default: cluster 0, no
    /// secret, no configuration digest.
    /// Sets how long an accepted connection may take to send its hello (default
    /// [`HELLO_TIMEOUT`]).
    pub fn with_hello_timeout(mut self, t: Duration) -> TcpTransport {
        self.hello_timeout = t;
        self
    }

    pub fn with_handshake(mut self, h: Handshake) -> TcpTransport {
        self.auth.handshake = h;
        self
    }

    /// Connections refused at the handshake so far.
    pub fn handshake_stats(&self) -> HandshakeStats {
        self.auth.stats
    }

    /// Counts and logs refused hellos (at most one line a second, with how many were not
    /// logged; a configuration mismatch is always counted as one).
    fn note_refusals(&mut self) {
        let a = &mut *self.auth;
        if a.refused.is_empty() {
            return;
        }
        let now = Instant::now();
        for e in std::mem::take(&mut a.refused) {
            a.stats.refused += 1;
            if matches!(e, HelloError::ConfigMismatch { .. }) {
                a.stats.config_mismatches += 1;
            }
            let due = a
                .last_refusal_log
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
            if due {
                let who = if a.handshake.who.is_empty() {
                    "tpx"
                } else {
                    a.handshake.who
                };
                let more = if a.unlogged > 0 {
                    format!(" ({} more refused since the last line)", a.unlogged)
                } else {
                    String::new()
                };
                match e {
                    HelloError::ConfigMismatch { .. } => eprintln!("{who}: {e}{more}"),
                    _ => eprintln!("{who}: replication connection dropped: {e}{more}"),
                }
                a.last_refusal_log = Some(now);
                a.unlogged = 0;
            } else {
                a.unlogged += 1;
            }
        }
    }

    /// The address actually bound (for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Appends the listener's and every connection's descriptor (`POLLIN`), and each dial in
    /// flight (`POLLOUT`), to `out`: for a caller that sleeps in its own `poll(2)` set (a
    /// parked node core) and must wake when replication traffic arrives.
    pub fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        use std::os::fd::AsRawFd;
        let listener = self.listener.as_ref().map(|l| l.as_raw_fd());
        let conns = self.conns.iter().map(|c| c.stream.as_raw_fd());
        out.extend(listener.into_iter().chain(conns).map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }));
        // A dial in flight wakes it when the connect finishes.
        out.extend(self.dialing.iter().map(|d| libc::pollfd {
            fd: d.stream.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        }));
    }

    /// Blocks until a connection (or the listener) has something to read, or `timeout_us`
    /// passes (`poll(2)`): how a parked process (the witness) waits without a sleep loop, so a
    /// request is answered as soon as it arrives instead of after the next sleep. Returns
    /// whether anything is readable.
    pub fn wait_readable(&self, timeout_us: u64) -> bool {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        if let Some(l) = &self.listener {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for c in &self.conns {
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ts = libc::timespec {
            tv_sec: (timeout_us / 1_000_000) as libc::time_t,
            tv_nsec: ((timeout_us % 1_000_000) * 1_000) as libc::c_long,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        n > 0
    }

    fn upkeep(&mut self) {
        if let Some(l) = &self.listener {
            // `accept` on an empty queue is not cheap (the kernel builds and frees a socket
            // before it finds nothing: a third of an idle sequencing core's time in `perf`),
            // so it runs only when the listener is readable.
            if fd_ready(l, libc::POLLIN) {
                let mut pending = self
                    .conns
                    .iter()
                    .filter(|c| !c.dialed && !c.verified && !c.dead)
                    .count();
                while let Ok((s, _)) = l.accept() {
                    if pending >= MAX_UNVERIFIED {
                        // Closed as it is dropped.
                        self.auth.refused.push(HelloError::TooManyPending);
                        continue;
                    }
                    if let Ok(c) = Conn::new(s, None, false) {
                        self.conns.push(c);
                        pending += 1;
                    }
                }
            }
        }
        let now = Instant::now();
        for c in &mut self.conns {
            if !c.dialed && !c.verified && !c.dead && now - c.opened >= self.hello_timeout {
                c.dead = true;
                self.auth.refused.push(HelloError::NoHello);
            }
        }
        self.finish_dials(now);
        for i in 0..self.dial.len() {
            let (peer, addr) = self.dial[i];
            if self.conns.iter().any(|c| c.dialed && c.peer == Some(peer))
                || self.dialing.iter().any(|d| d.peer == peer)
            {
                continue;
            }
            if self.next_dial.get(&peer).is_some_and(|t| now < *t) {
                continue;
            }
            self.next_dial.insert(peer, now + self.retry);
            if let Ok(stream) = start_connect(addr) {
                self.dialing.push(Dialing {
                    peer,
                    stream,
                    since: now,
                });
            }
        }
    }

    /// Moves each dial whose connect finished into `conns` (hello queued), and drops those
    /// that failed or took longer than [`CONNECT_TIMEOUT`] (the next retry dials afresh).
    fn finish_dials(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.dialing.len() {
            let d = &self.dialing[i];
            if !fd_ready(&d.stream, libc::POLLOUT) {
                if now.duration_since(d.since) < CONNECT_TIMEOUT {
                    i += 1;
                    continue;
                }
                self.dialing.swap_remove(i);
                continue;
            }
            let Dialing { peer, stream, .. } = self.dialing.swap_remove(i);
            let connected = matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok();
            // With nobody listening on a loopback port of the ephemeral range, a connect can
            // pick that very port as its source and connect to itself (TCP simultaneous
            // open). Kept, it looks like a live peer (this node would talk to itself: a
            // standby's acks never reach the primary) and it holds the port the restarting
            // peer needs to listen on (`failover-bench` hit both).
            if !connected || is_self_connection(&stream) {
                continue;
            }
            if let Ok(mut c) = Conn::new(stream, Some(peer), true) {
                c.queue(&encode_hello(self.id, &self.auth.handshake));
                c.flush();
                self.conns.push(c);
            }
        }
    }
}

/// How long a dial may wait for the peer's answer before it is dropped (and retried).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(20);

/// A connect in flight (non-blocking: the dial never holds up a duty cycle).
#[derive(Debug)]
struct Dialing {
    peer: PeerId,
    stream: TcpStream,
    since: Instant,
}

/// Starts a non-blocking connect to `addr`: the socket, with the connect in flight (or
/// already done, as loopback may).
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_nonblocking(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(s.into())
}

/// Whether `fd` has any of `events` (or an error or hang-up) now: `poll(2)` with no wait.
pub fn fd_ready(fd: &impl std::os::fd::AsRawFd, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Whether a connected socket is connected to itself (see `TcpTransport::upkeep`).
pub fn is_self_connection(s: &TcpStream) -> bool {
    matches!((s.local_addr(), s.peer_addr()), (Ok(l), Ok(p)) if l == p)
}

impl Transport for TcpTransport {
    fn config_mismatches(&self) -> u64 {
        self.auth.stats.config_mismatches
    }

    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        let idx = self
            .conns
            .iter()
            .position(|c| c.dialed && c.verified && c.peer == Some(to) && !c.dead)
            .or_else(|| {
                self.conns
                    .iter()
                    .position(|c| c.verified && c.peer == Some(to) && !c.dead)
            });
        match idx {
            Some(i) => {
                let c = &mut self.conns[i];
                c.queue(msg);
                c.flush();
                !c.dead
            }
            None => false,
        }
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        self.upkeep();
        for c in &mut self.conns {
            let a = &mut *self.auth;
            c.read(&mut self.scratch, &a.handshake, self.id, &mut a.refused, f);
            c.flush();
        }
        self.conns.retain(|c| !c.dead);
        self.note_refusals();
    }

    fn connected(&self, to: PeerId) -> bool {
        self.conns
            .iter()
            .any(|c| c.verified && c.peer == Some(to) && !c.dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A socket bound to a loopback port and connected to that same port: what a dial to a
    /// port nobody listens on can become (the kernel picks the port as the source).
    fn self_connected() -> TcpStream {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // SAFETY: plain socket calls on a descriptor this function owns; `sockaddr_in` is
        // fully initialised and its size is passed.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut a: libc::sockaddr_in = std::mem::zeroed();
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = port.to_be();
            a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let ap = &a as *const libc::sockaddr_in as *const libc::sockaddr;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, ap, len), 0);
            assert_eq!(
                libc::connect(fd, ap, len),
                0,
                "{}",
                io::Error::last_os_error()
            );
            TcpStream::from_raw_fd(fd)
        }
    }

    /// A peer whose host does not answer (its SYNs dropped; here: a listener whose accept
    /// queue is full) must not stall the caller: `poll` is one duty cycle of a sequencing
    /// core. The dial was a blocking `connect_timeout(20 ms)` every 2 ms retry, so a primary
    /// whose standby's host went dark spent most of its time blocked in `connect`.
    #[test]
    fn dialing_a_peer_that_does_not_answer_never_blocks_a_poll() {
        let dark = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        dark.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        dark.listen(0).expect("listen");
        let addr = dark.local_addr().unwrap().as_socket().unwrap();
        // Backlog 0 holds one finished handshake; every SYN after it is dropped.
        let _queued = TcpStream::connect(addr).expect("the one queued connection");
        let mut t = TcpTransport::new(1, None, vec![(2, addr)]).unwrap();
        let mut worst = Duration::ZERO;
        let mut polls = 0;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(200) {
            let s = Instant::now();
            t.poll(&mut |_, _| {});
            worst = worst.max(s.elapsed());
            polls += 1;
        }
        assert!(!t.connected(2));
        assert!(
            worst < Duration::from_millis(5),
            "a poll took {worst:?} ({polls} polls)"
        );
    }

    /// Before its hello is checked, a connection is anyone's (the replication and witness
    /// ports are reachable by whatever can reach the host): its first frame must be a hello
    /// (64 bytes). A first frame that says it is longer is refused as soon as its length
    /// arrives; before, the transport buffered up to `MAX_FRAME` (16 MiB) of it per
    /// connection, waiting for the rest, before it looked at it.
    #[test]
    fn a_first_frame_longer_than_a_hello_is_refused_at_its_length() {
        use std::io::Write;
        let mut t = TcpTransport::new(1, Some("127.0.0.1:0".parse().unwrap()), vec![]).unwrap();
        let addr = t.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        let mut bytes = (1u32 << 20).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0x5a; 4096]);
        c.write_all(&bytes).unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(500) && t.handshake_stats().refused == 0 {
            t.poll(&mut |_, _| panic!("a frame passed before a hello"));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(t.handshake_stats().refused, 1, "{:?}", t.handshake_stats());
    }

    /// Connections that never say hello (anything that can reach the port: a scanner, a
    /// stuck client) are not kept: at most `MAX_UNVERIFIED` wait for their hello at a time
    /// (more are closed as they are accepted) and each waits `hello_timeout` at most. Before,
    /// every one was kept, with 128 KiB of buffers, and read every duty cycle of the
    /// sequencing core, for as long as it stayed open. A real peer still connects after.
    #[test]
    fn connections_that_say_no_hello_are_capped_and_timed_out() {
        use std::io::Read;
        let mut t = TcpTransport::new(1, Some("127.0.0.1:0".parse().unwrap()), vec![])
            .unwrap()
            .with_hello_timeout(Duration::from_millis(300));
        let addr = t.local_addr().unwrap();
        let mut silent: Vec<TcpStream> = (0..3 * MAX_UNVERIFIED)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        for s in &silent {
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        }
        // Takes out (and counts) the sockets the transport closed: EOF or reset; an open one
        // times out its read.
        let closed = |silent: &mut Vec<TcpStream>| {
            let before = silent.len();
            silent.retain_mut(|s| match s.read(&mut [0u8; 8]) {
                Ok(0) => false,
                Err(e) => !matches!(e.kind(), io::ErrorKind::ConnectionReset),
                Ok(_) => panic!("the transport sent something before a hello"),
            });
            before - silent.len()
        };
        let total = silent.len();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(100) {
            t.poll(&mut |_, _| panic!("a frame passed before a hello"));
            std::thread::sleep(Duration::from_millis(1));
        }
        let early = closed(&mut silent);
        assert!(
            early >= 2 * MAX_UNVERIFIED,
            "{early} of {total} closed before the timeout"
        );
        while t0.elapsed() < Duration::from_millis(700) {
            t.poll(&mut |_, _| panic!("a frame passed before a hello"));
            std::thread::sleep(Duration::from_millis(1));
        }
        let all = early + closed(&mut silent);
        assert_eq!(
            all, total,
            "every silent connection closed after the timeout"
        );
        // A real peer connects and talks.
        let mut b = TcpTransport::new(2, None, vec![(1, addr)]).unwrap();
        let mut got = Vec::new();
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs(5) && got.is_empty() {
            b.poll(&mut |_, _| {});
            t.poll(&mut |p, m| got.push((p, m.to_vec())));
            if b.connected(1) {
                b.send(1, b"hi");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(got.first(), Some(&(2, b"hi".to_vec())));
    }

    /// The dial is asynchronous now: a peer that listens is still connected, verified and
    /// talked to (both ways), with nothing but `poll` driving the dial.
    #[test]
    fn a_dialed_peer_connects_without_blocking() {
        let mut a = TcpTransport::new(1, Some("127.0.0.1:0".parse().unwrap()), vec![]).unwrap();
        let addr = a.local_addr().unwrap();
        let mut b = TcpTransport::new(2, None, vec![(1, addr)]).unwrap();
        let mut got_a = Vec::new();
        let mut got_b = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) && (got_a.is_empty() || got_b.is_empty()) {
            b.poll(&mut |p, m| got_b.push((p, m.to_vec())));
            a.poll(&mut |p, m| got_a.push((p, m.to_vec())));
            if b.connected(1) && got_a.is_empty() {
                b.send(1, b"from 2");
            }
            if a.connected(2) && got_b.is_empty() {
                a.send(2, b"from 1");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(got_a.first(), Some(&(2, b"from 2".to_vec())));
        assert_eq!(got_b.first(), Some(&(1, b"from 1".to_vec())));
    }

    #[test]
    fn a_connection_to_itself_is_recognised() {
        let s = self_connected();
        assert!(is_self_connection(&s));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(!is_self_connection(&c));
    }
}
