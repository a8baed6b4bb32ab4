//! `tpx-client`: the order-entry client library market makers link (login, sequenced replies,
//! replay on reconnect, heartbeats), used by the demo, the benches and the tests.
//!
//! One [`Client`] is one TCP connection to one logical session `(account, session_id)`. The
//! socket is always non-blocking; the API offers three ways to wait:
//!
//! - [`Client::poll`]: never blocks; returns a reply if one is there.
//! - [`Client::recv`]: blocks in `poll(2)` up to a timeout (parks the thread; no spinning).
//! - [`Client::recv_spin`]: busy-polls up to a deadline (lowest latency; burns the core).
//!
//! Sending is buffered: [`Client::send`] encodes into the write buffer and tries one `write(2)`;
//! [`Client::queue`] only encodes, so that many requests leave in one `write` at [`Client::flush`].
//!
//! Sequenced replies carry the session's `seq`; the client tracks the next one it expects, so
//! [`Client::reconnect`] logs in again asking for exactly the replies it missed.
//!
//! ```no_run
//! use tpx_client::{req, Client, ClientConfig, token_from_str};
//! use tpx_wire::order_entry::EnterOrder;
//! use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
//! let cfg = ClientConfig::new("127.0.0.1:9100".parse().unwrap(), 1, 1, token_from_str("demo-token-1"));
//! let mut c = Client::connect(cfg).unwrap();
//! c.send(&req::enter(EnterOrder { cl_ord_id: 1, price: 50_000, qty: 1, instrument: 1, side: Side::Buy,
//!     kind: OrderKind::Limit, tif: TimeInForce::Gtc, stp: StpMode::None, post_only: false,
//!     reduce_only: false })).unwrap();
//! let reply = c.recv(std::time::Duration::from_secs(1)).unwrap();
//! ```

pub mod admin;
pub mod failover;
pub mod order;
pub mod query;
pub use failover::{Event, FailoverClient};
pub use order::{Order, PriceSource};
pub use query::QueryAnswer;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tpx_wire::enums::{LoginRejectReason, LogoutReason};
use tpx_wire::framing::{FrameBuffer, FrameError};
use tpx_wire::order_entry::{CancelOrder, ClientMessage, EnterOrder, MassCancel, ReplaceOrder};
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::{
    ClientHeartbeat, Login, LoginWithOptions, LogoutRequest, DEFAULT_HEARTBEAT_INTERVAL_MS,
    MAX_ORDER_ENTRY_FRAME,
};
use tpx_wire::{DecodeError, Token};

/// The 32-byte token for a text token: its UTF-8 bytes, zero-padded (longer texts are cut at
/// 32 bytes). The node's accounts file holds the SHA-256 of these 32 bytes.
pub fn token_from_str(text: &str) -> Token {
    let mut t = [0u8; 32];
    for (d, s) in t.iter_mut().zip(text.as_bytes()) {
        *d = *s;
    }
    Token(t)
}

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub addr: SocketAddr,
    pub account: u32,
    /// Non-zero; the unit of sequence numbers and replay.
    pub session_id: u32,
    pub token: Token,
    /// How long `connect` waits for the TCP connection, then for the login answer.
    pub login_timeout: Duration,
    /// Read buffer size (bytes); a pipelining client wants more.
    pub read_buffer: usize,
    /// Ask the node to cancel the session's orders when a connection ends
    /// (`LoginWithOptions`).
    pub cancel_on_disconnect: bool,
    /// Log in as a read-only drop-copy session (`LoginWithOptions`).
    pub drop_copy: bool,
}

impl ClientConfig {
    pub fn new(addr: SocketAddr, account: u32, session_id: u32, token: Token) -> ClientConfig {
        ClientConfig {
            addr,
            account,
            session_id,
            token,
            login_timeout: Duration::from_secs(5),
            read_buffer: 1 << 16,
            cancel_on_disconnect: false,
            drop_copy: false,
        }
    }
}

#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// The server refused the login.
    LoginRejected(LoginRejectReason),
    /// The server sent a frame that does not decode.
    Decode(DecodeError),
    /// The server sent an impossible frame length.
    Frame(FrameError),
    /// The server ended the session (`Some`: it said why with a `Logout`).
    Closed(Option<LogoutReason>),
    Timeout,
    /// The login was answered by something other than a login reply.
    Protocol(&'static str),
    /// A sequenced reply whose `seq` is not the one expected (a gap or a duplicate): the
    /// protocol's remedy is [`Client::reconnect`], which asks for `expected` again.
    SequenceGap {
        expected: u64,
        got: u64,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "io: {e}"),
            ClientError::LoginRejected(r) => write!(f, "login rejected: {r:?}"),
            ClientError::Decode(e) => write!(f, "decode: {e}"),
            ClientError::Frame(e) => write!(f, "framing: {e}"),
            ClientError::Closed(r) => write!(f, "session closed ({r:?})"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Protocol(s) => write!(f, "protocol: {s}"),
            ClientError::SequenceGap { expected, got } => {
                write!(f, "reply seq {got}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One logged-in order-entry connection.
pub struct Client {
    cfg: ClientConfig,
    stream: TcpStream,
    rbuf: FrameBuffer<Box<[u8]>>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// The sequence number of the next sequenced reply expected.
    next_seq: u64,
    heartbeat_interval: Duration,
    last_tx: Instant,
    last_rx: Instant,
    closed: Option<Option<LogoutReason>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.cfg.addr)
            .field("account", &self.cfg.account)
            .field("session_id", &self.cfg.session_id)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

fn wait_fd(fd: i32, events: i16, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

impl Client {
    /// Connects and logs in to a fresh or existing session asking for every reply from seq 1
    /// (a fresh session has none; an existing one replays them all, if the node still has them).
    pub fn connect(cfg: ClientConfig) -> Result<Client> {
        Client::connect_at(cfg, 1)
    }

    /// Connects and logs in asking for replies from `requested_next_seq` on (0: no replay, start
    /// at the session's current end).
    pub fn connect_at(cfg: ClientConfig, requested_next_seq: u64) -> Result<Client> {
        // Bounded: to a dark host (powered off, partitioned) a plain `connect` waits out the
        // kernel's SYN retries, about two minutes, before a `FailoverClient` may try the next
        // node (`tests/dark_endpoint.rs`).
        let stream =
            TcpStream::connect_timeout(&cfg.addr, cfg.login_timeout.max(Duration::from_millis(1)))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let storage = vec![0u8; cfg.read_buffer.max(MAX_ORDER_ENTRY_FRAME * 2)].into_boxed_slice();
        let now = Instant::now();
        let mut c = Client {
            rbuf: FrameBuffer::new(storage, MAX_ORDER_ENTRY_FRAME),
            cfg,
            stream,
            wbuf: Vec::with_capacity(1 << 16),
            wpos: 0,
            next_seq: requested_next_seq,
            heartbeat_interval: Duration::from_millis(u64::from(DEFAULT_HEARTBEAT_INTERVAL_MS)),
            last_tx: now,
            last_rx: now,
            closed: None,
        };
        c.login(requested_next_seq)?;
        Ok(c)
    }

    fn login(&mut self, requested_next_seq: u64) -> Result<()> {
        let login = Login {
            account: self.cfg.account,
            session_id: self.cfg.session_id,
            requested_next_seq,
            token: self.cfg.token,
        };
        let msg = if self.cfg.cancel_on_disconnect || self.cfg.drop_copy {
            ClientMessage::LoginWithOptions(LoginWithOptions {
                account: login.account,
                session_id: login.session_id,
                requested_next_seq,
                token: login.token,
                cancel_on_disconnect: self.cfg.cancel_on_disconnect,
                drop_copy: self.cfg.drop_copy,
            })
        } else {
            ClientMessage::Login(login)
        };
        self.send(&msg)?;
        self.flush_blocking(self.cfg.login_timeout)?;
        let deadline = Instant::now() + self.cfg.login_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            match self.read_frame(Some(left))? {
                Some(ServerMessage::LoginAccepted(a)) => {
                    self.next_seq = a.next_seq;
                    self.heartbeat_interval =
                        Duration::from_millis(u64::from(a.heartbeat_interval_ms));
                    return Ok(());
                }
                Some(ServerMessage::LoginRejected(r)) => {
                    return Err(ClientError::LoginRejected(r.reason))
                }
                Some(ServerMessage::Logout(l)) => return Err(ClientError::Closed(Some(l.reason))),
                Some(ServerMessage::Heartbeat(_)) | None => {}
                Some(_) => return Err(ClientError::Protocol("reply before login accepted")),
            }
        }
    }

    /// Drops the connection and logs in again on a new one, asking for every reply after the
    /// last one received (the node replays exactly those, then goes on). While the node has not
    /// yet seen the old connection close it answers `SessionInUse`; that is retried (1 ms apart)
    /// for up to the login timeout.
    pub fn reconnect(&mut self) -> Result<()> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let deadline = Instant::now() + self.cfg.login_timeout;
        loop {
            match Client::connect_at(self.cfg.clone(), self.next_seq) {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(ClientError::LoginRejected(LoginRejectReason::SessionInUse))
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The sequence number of the next sequenced reply expected.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// The raw socket, e.g. to pin its IRQ or read its options.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Whether the server closed the session (`Some(reason)` if it sent a `Logout`).
    pub fn closed(&self) -> Option<Option<LogoutReason>> {
        self.closed
    }

    /// Encodes a message into the write buffer (no syscall).
    #[inline]
    pub fn queue(&mut self, msg: &ClientMessage) {
        let mut buf = [0u8; MAX_ORDER_ENTRY_FRAME];
        if let Ok(n) = msg.encode(&mut buf) {
            self.wbuf.extend_from_slice(&buf[..n]);
        }
    }

    /// Queues raw bytes (tests use it to send malformed frames).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// Queues a message and tries to write everything queued (one `write(2)`).
    #[inline]
    pub fn send(&mut self, msg: &ClientMessage) -> Result<()> {
        self.queue(msg);
        self.flush().map(|_| ())
    }

    /// One `write(2)` of what is queued; `Ok(true)` when the buffer is empty afterwards.
    #[inline]
    pub fn flush(&mut self) -> Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(ClientError::Closed(None)),
                Ok(n) => {
                    self.wpos += n;
                    self.last_tx = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Writes everything queued, waiting (parked in `poll(2)`) up to `timeout`.
    pub fn flush_blocking(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.flush()? {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            wait_fd(self.stream.as_raw_fd(), libc::POLLOUT, left)?;
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Sends a heartbeat if nothing was sent for a heartbeat interval.
    pub fn maintain(&mut self) -> Result<()> {
        if self.last_tx.elapsed() >= self.heartbeat_interval && self.wbuf.is_empty() {
            self.send(&ClientMessage::Heartbeat(ClientHeartbeat {}))?;
        }
        Ok(())
    }

    /// Reads what the socket has into the buffer; `Ok(false)` if nothing was there.
    fn fill(&mut self) -> Result<bool> {
        let spare = self.rbuf.spare_mut();
        if spare.is_empty() {
            return Ok(false);
        }
        match self.stream.read(spare) {
            Ok(0) => {
                self.closed.get_or_insert(None);
                Err(ClientError::Closed(None))
            }
            Ok(n) => {
                self.rbuf.commit(n);
                self.last_rx = Instant::now();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The next buffered frame, decoded, with sequence tracking.
    fn take_frame(&mut self) -> Result<Option<ServerMessage>> {
        let frame = match self.rbuf.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e) => return Err(ClientError::Frame(e)),
        };
        let msg = ServerMessage::decode(frame).map_err(ClientError::Decode)?;
        // `seq` 0: an unsequenced answer (throttle, back-pressure, a request that did not
        // enter the log): outside the numbered stream, never replayed.
        if let Some(seq) = msg.seq().filter(|&s| s != 0) {
            if seq != self.next_seq {
                return Err(ClientError::SequenceGap {
                    expected: self.next_seq,
                    got: seq,
                });
            }
            self.next_seq = seq + 1;
        }
        if let ServerMessage::Logout(l) = msg {
            self.closed = Some(Some(l.reason));
        }
        Ok(Some(msg))
    }

    /// One frame: buffered, or read now, or (with a timeout) after waiting in `poll(2)`.
    fn read_frame(&mut self, wait: Option<Duration>) -> Result<Option<ServerMessage>> {
        if let Some(m) = self.take_frame()? {
            return Ok(Some(m));
        }
        if !self.fill()? {
            match wait {
                Some(t) if !t.is_zero() => {
                    if !wait_fd(self.stream.as_raw_fd(), libc::POLLIN, t)? {
                        return Ok(None);
                    }
                    self.fill()?;
                }
                _ => return Ok(None),
            }
        }
        self.take_frame()
    }

    /// Never blocks: the next reply if one has arrived (server heartbeats are consumed here).
    #[inline]
    pub fn poll(&mut self) -> Result<Option<ServerMessage>> {
        loop {
            match self.read_frame(None)? {
                Some(ServerMessage::Heartbeat(_)) => continue,
                other => return Ok(other),
            }
        }
    }

    /// Never blocks: one `read(2)` at most, then every complete reply buffered is handed to `f`
    /// (heartbeats included). Returns how many. The cheapest way to drain a pipelined session.
    #[inline]
    pub fn poll_batch(&mut self, mut f: impl FnMut(&ServerMessage)) -> Result<usize> {
        let mut n = 0;
        while let Some(m) = self.take_frame()? {
            f(&m);
            n += 1;
        }
        if self.fill()? {
            while let Some(m) = self.take_frame()? {
                f(&m);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Blocks (parked in `poll(2)`) up to `timeout` for the next reply; heartbeats are sent and
    /// consumed on the way.
    pub fn recv(&mut self, timeout: Duration) -> Result<ServerMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            self.flush()?;
            self.maintain()?;
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(self.heartbeat_interval);
            match self.read_frame(Some(step))? {
                Some(ServerMessage::Heartbeat(_)) => {}
                Some(m) => return Ok(m),
                None if left.is_zero() => return Err(ClientError::Timeout),
                None => {}
            }
        }
    }

    /// Busy-polls up to `deadline` for the next reply (for latency measurement on a dedicated
    /// core).
    #[inline]
    pub fn recv_spin(&mut self, deadline: Instant) -> Result<ServerMessage> {
        let mut n = 0u32;
        loop {
            if let Some(m) = self.poll()? {
                return Ok(m);
            }
            n = n.wrapping_add(1);
            if n % 1024 == 0 && Instant::now() >= deadline {
                return Err(ClientError::Timeout);
            }
            std::hint::spin_loop();
        }
    }

    /// Sends a `LogoutRequest` and waits for the server's `Logout`.
    pub fn logout(&mut self, timeout: Duration) -> Result<()> {
        self.send(&ClientMessage::LogoutRequest(LogoutRequest {}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(ServerMessage::Logout(_)) | Err(ClientError::Closed(_)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Shorthands for building requests.
pub mod req {
    use super::*;

    pub fn enter(m: EnterOrder) -> ClientMessage {
        ClientMessage::EnterOrder(m)
    }
    /// A new order with the order types (see [`crate::order::Order`]).
    pub fn order(o: crate::order::Order) -> ClientMessage {
        o.message()
    }
    pub fn replace(m: ReplaceOrder) -> ClientMessage {
        ClientMessage::ReplaceOrder(m)
    }
    pub fn cancel(cl_ord_id: u64, remaining_qty: u64) -> ClientMessage {
        ClientMessage::CancelOrder(CancelOrder {
            cl_ord_id,
            remaining_qty,
        })
    }
    pub fn mass_cancel(instrument: Option<u32>) -> ClientMessage {
        ClientMessage::MassCancel(MassCancel { instrument })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_pads() {
        let t = token_from_str("ab");
        assert_eq!(&t.0[..3], b"ab\0");
        assert_eq!(token_from_str(&"x".repeat(40)).0, [b'x'; 32]);
    }
}
