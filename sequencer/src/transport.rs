//! The network seam: messages to and from numbered peers.
//!
//! [`MemNet`] connects in-process transports (tests, the simulator) and can cut links;
//! [`TcpTransport`] is the production one: non-blocking TCP, length-prefixed frames, polled
//! (busy-polled when the caller spins), reconnecting with a short backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node or witness id.
pub type PeerId = u32;

/// Messages to and from peers. Delivery is in order per pair of peers while a connection
/// lasts; a message to a peer with no connection is dropped (`send` says so).
pub trait Transport {
    /// Sends one message; `false` if there is no connection to `to` (the message is dropped).
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool;
    /// Does connection upkeep and hands every message received since the last poll to `f`.
    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8]));
    /// Whether a connection to `to` is up.
    fn connected(&self, to: PeerId) -> bool;
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

/// The most bytes a TCP connection may have queued for sending before it is dropped.
const MAX_WBUF: usize = 64 << 20;
/// The most bytes read from one connection in one poll.
const READ_PER_POLL: usize = 1 << 20;
/// The largest frame accepted.
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Known once its first frame (the peer id) arrived, or at once for dialed connections.
    peer: Option<PeerId>,
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
            peer,
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

    fn read(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        let mut tmp = [0u8; 64 << 10];
        let mut got = 0;
        // Bounded work per duty cycle: at most READ_PER_POLL bytes from one connection.
        while got < READ_PER_POLL {
            match self.stream.read(&mut tmp) {
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
            if rest.len() < 4 {
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > MAX_FRAME {
                self.dead = true;
                break;
            }
            if rest.len() < 4 + len {
                break;
            }
            let frame = &rest[4..4 + len];
            match self.peer {
                None => {
                    // The first frame names the peer.
                    if frame.len() == 4 {
                        self.peer =
                            Some(u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]));
                    } else {
                        self.dead = true;
                    }
                }
                Some(p) => f(p, frame),
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

/// Non-blocking TCP: listens on one address (if any) and dials the peers it is given; sends
/// on the connection it dialed to a peer, else on one the peer dialed; receives on all.
#[derive(Debug)]
pub struct TcpTransport {
    id: PeerId,
    listener: Option<TcpListener>,
    dial: Vec<(PeerId, SocketAddr)>,
    next_dial: HashMap<PeerId, Instant>,
    conns: Vec<Conn>,
    retry: Duration,
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
            listener,
            dial,
            next_dial: HashMap::new(),
            conns: Vec::new(),
            retry: Duration::from_millis(2),
        })
    }

    /// The address actually bound (for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Appends the listener's and every connection's descriptor (`POLLIN`) to `out`: for a
    /// caller that sleeps in its own `poll(2)` set (a parked node core) and must wake when
    /// replication traffic arrives.
    pub fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        use std::os::fd::AsRawFd;
        let listener = self.listener.as_ref().map(|l| l.as_raw_fd());
        let conns = self.conns.iter().map(|c| c.stream.as_raw_fd());
        out.extend(listener.into_iter().chain(conns).map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
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
            while let Ok((s, _)) = l.accept() {
                if let Ok(c) = Conn::new(s, None, false) {
                    self.conns.push(c);
                }
            }
        }
        let now = Instant::now();
        for i in 0..self.dial.len() {
            let (peer, addr) = self.dial[i];
            if self.conns.iter().any(|c| c.dialed && c.peer == Some(peer)) {
                continue;
            }
            if self.next_dial.get(&peer).is_some_and(|t| now < *t) {
                continue;
            }
            self.next_dial.insert(peer, now + self.retry);
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(20)) {
                // With nobody listening on a loopback port of the ephemeral range, a connect
                // can pick that very port as its source and connect to itself (TCP
                // simultaneous open). Kept, it looks like a live peer (this node would talk
                // to itself: a standby's acks never reach the primary) and it holds the port
                // the restarting peer needs to listen on (`failover-bench` hit both).
                if is_self_connection(&s) {
                    continue;
                }
                if let Ok(mut c) = Conn::new(s, Some(peer), true) {
                    c.queue(&self.id.to_le_bytes());
                    c.flush();
                    self.conns.push(c);
                }
            }
        }
    }
}

/// Whether a connected socket is connected to itself (see `TcpTransport::upkeep`).
pub fn is_self_connection(s: &TcpStream) -> bool {
    matches!((s.local_addr(), s.peer_addr()), (Ok(l), Ok(p)) if l == p)
}

impl Transport for TcpTransport {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        let idx = self
            .conns
            .iter()
            .position(|c| c.dialed && c.peer == Some(to) && !c.dead)
            .or_else(|| {
                self.conns
                    .iter()
                    .position(|c| c.peer == Some(to) && !c.dead)
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
            c.read(f);
            c.flush();
        }
        self.conns.retain(|c| !c.dead);
    }

    fn connected(&self, to: PeerId) -> bool {
        self.conns.iter().any(|c| c.peer == Some(to) && !c.dead)
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

    #[test]
    fn a_connection_to_itself_is_recognised() {
        let s = self_connected();
        assert!(is_self_connection(&s));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(!is_self_connection(&c));
    }
}
