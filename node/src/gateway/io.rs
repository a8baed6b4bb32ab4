//! The order-entry gateway of one core: the IO around [`SessionTable`].
//!
//! Non-blocking sockets, busy-polled by the core's duty cycle: accept what is pending, read what
//! every connection has (one `read(2)` each), handle every complete frame, and after the shards'
//! reports are in, write each connection's replies with one `write(2)`.
//!
//! A logical session lives on its account's *home* gateway core (`account % gateways`), which
//! holds its journal and order ownership. Each gateway core accepts on its own `SO_REUSEPORT`
//! listener; a login that arrives on another core's listener is handed, with its socket, to
//! the home core through a small mutex-guarded inbox (logins are off the hot path).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tpx_wire::enums::{LogoutReason, RejectReason, RequestKind};
use tpx_wire::framing::FrameBuffer;
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::{OrderRejected, ServerMessage};
use tpx_wire::session::{
    Login, LoginRejected, Logout, ServerHeartbeat, SessionReject, MAX_ORDER_ENTRY_FRAME,
};

use crate::gateway::accounts::Accounts;
use crate::gateway::merge::ReportMerge;
use crate::gateway::session::{serving, ConnId, LoginOptions, Outbox, SessionTable};
use crate::msg::{home_gateway, Report, Request};
use crate::runtime::doorbell::Doorbell;
use crate::runtime::lines::say;
use crate::runtime::ring::{Consumer, Producer};

/// A connection handed from the core that accepted it to its account's home core.
#[derive(Debug)]
pub struct Handoff {
    pub stream: TcpStream,
    pub login: Login,
    pub options: LoginOptions,
    /// Bytes the client sent after its login, already read.
    pub rest: Vec<u8>,
    pub opened_ns: u64,
}

/// A gateway core's inbox of handed-off connections.
#[derive(Debug, Default)]
pub struct HandoffInbox {
    pending: AtomicBool,
    queue: Mutex<Vec<Handoff>>,
    /// The doorbell of the inbox's core (park mode).
    bell: Option<Arc<Doorbell>>,
}

impl HandoffInbox {
    pub fn new(bell: Option<Arc<Doorbell>>) -> HandoffInbox {
        HandoffInbox {
            bell,
            ..HandoffInbox::default()
        }
    }

    pub fn push(&self, h: Handoff) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(h);
        self.pending.store(true, Ordering::Release);
        if let Some(b) = &self.bell {
            b.ring();
        }
    }

    fn take(&self) -> Vec<Handoff> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Timers and limits of the gateway (nanoseconds).
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    pub heartbeat_interval_ns: u64,
    pub heartbeat_timeout_ns: u64,
    pub login_timeout_ns: u64,
    pub max_connections: usize,
    /// A connection whose unsent replies exceed this is closed (`SlowConsumer`); its session
    /// stays and the client gets the replies by replay after reconnecting.
    pub max_out_bytes: usize,
    /// Bytes of the per-connection read buffer.
    pub read_buffer: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    AwaitLogin,
    Active { slot: u32 },
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    rbuf: FrameBuffer<Box<[u8]>>,
    out: Vec<u8>,
    out_pos: usize,
    state: ConnState,
    opened_ns: u64,
    last_rx_ns: u64,
    last_tx_ns: u64,
    /// Close once `out` is written.
    closing: bool,
    /// Close now (write failed, peer gone).
    dead: bool,
}

impl Conn {
    fn queue(&mut self, msg: &ServerMessage) {
        let len = self.out.len();
        self.out.resize(len + MAX_ORDER_ENTRY_FRAME, 0);
        let n = msg.encode(&mut self.out[len..]).unwrap_or(0);
        self.out.truncate(len + n);
    }
}

struct Conns<'a> {
    conns: &'a mut [Option<Conn>],
}

impl Outbox for Conns<'_> {
    #[inline]
    fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(Some(c)) = self.conns.get_mut(conn as usize) {
            c.out.extend_from_slice(bytes);
        }
    }
}

/// Counters a gateway core exposes.
#[derive(Clone, Copy, Debug, Default)]
pub struct GatewayCounters {
    pub accepted: u64,
    pub logins: u64,
    pub login_rejects: u64,
    pub session_rejects: u64,
    pub unroutable_reports: u64,
    /// Connections whose end put cancels into the log (cancel on disconnect).
    pub cancels_on_disconnect: u64,
    /// Connections still waiting for their login closed to make room for a new one at
    /// `max_connections_per_core`.
    pub waiting_logins_evicted: u64,
}

/// One core's gateway.
#[derive(Debug)]
pub struct Gateway {
    /// This gateway's number among the gateway cores.
    index: usize,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    sessions: SessionTable,
    accounts: Arc<Accounts>,
    inbox: Arc<HandoffInbox>,
    /// Every gateway's inbox, by gateway number.
    inboxes: Vec<Arc<HandoffInbox>>,
    to_sequencer: Producer<Request>,
    from_shards: Vec<Consumer<Report>>,
    settings: GatewaySettings,
    heartbeat_interval_ms: u32,
    last_timer_ns: u64,
    last_accept_ns: u64,
    /// The sequencer core's doorbell, when it is another core (park mode).
    wake_sequencer: Option<Arc<Doorbell>>,
    forwarded: bool,
    /// The node's shared state: logins are refused (`NotPrimary`) while it is not active.
    shared: Option<Arc<crate::runtime::state::NodeState>>,
    pub counters: GatewayCounters,
    /// Stage stamps and trace (`crate::observe::trace`); `None`: no stamps taken.
    tracer: Option<crate::observe::trace::Tracer>,
    /// Raw TSC of the last read (the `rx` stamp of the requests in it).
    rx_tsc: u64,
    /// Several shards: their reports, held until released in log order.
    merge: ReportMerge,
    /// Every reply of every record at or below this seq is in the sessions' journals.
    complete_seq: u64,
    /// Cancels on disconnect not yet on the sequencer's ring (it was full), in order.
    cancels: std::collections::VecDeque<Request>,
    /// Scratch for [`SessionTable::cancels_on_disconnect`].
    cancel_scratch: Vec<Request>,
    /// Shutting down: a connection's end cancels nothing.
    stopping: bool,
    /// Whether this node served logins at the last timer tick (`cancel_absent_sessions`).
    was_serving: bool,
    /// When the sessions absent since the node began serving get their cancels.
    absent_deadline_ns: Option<u64>,
    /// When this node last began serving logins (the gateway clock).
    serving_since_ns: u64,
    /// Connections whose sessions were logged out because the node stopped being primary
    /// (`SessionTable::log_out_unless_primary`), to close.
    ended: Vec<ConnId>,
    /// Scratch: the connections asked about in one `read_all`.
    ready: crate::runtime::readiness::Readiness,
}

/// Creates the drop-copy sessions of the drop-copy accounts homed on gateway `index` of
/// `gateways` (the same on every node, and in the snapshot thread's copy of the tables, so
/// their streams are a function of the log). A watched account homed on another gateway cannot
/// be copied here: the returned lines say so (the gateway prints them at start).
pub fn add_drop_copies(
    sessions: &mut SessionTable,
    accounts: &Accounts,
    index: usize,
    gateways: usize,
) -> Vec<String> {
    let mut said = Vec::new();
    let mut dc: Vec<_> = accounts
        .iter()
        .filter(|a| !a.drop_copy_of.is_empty() && home_gateway(a.id, gateways) == index)
        .collect();
    dc.sort_by_key(|a| a.id);
    for a in dc {
        let (here, elsewhere): (Vec<u32>, Vec<u32>) = a
            .drop_copy_of
            .iter()
            .partition(|&&w| home_gateway(w, gateways) == index);
        if !elsewhere.is_empty() {
            said.push(format!(
                "tpx node: DROPCOPY account {} cannot copy accounts {elsewhere:?} (another gateway core's; give them the same account % {gateways})",
                a.id
            ));
        }
        if sessions.add_drop_copy(a.id, &here).is_none() {
            said.push(format!(
                "tpx node: DROPCOPY account {}: no room for its session (max_sessions)",
                a.id
            ));
        }
    }
    said
}

/// The session options a login message asks for (`None`: not a login).
fn login_of(msg: &ClientMessage) -> Option<(Login, LoginOptions)> {
    match msg {
        ClientMessage::Login(l) => Some((*l, LoginOptions::default())),
        ClientMessage::LoginWithOptions(l) => Some((
            l.login(),
            LoginOptions {
                cancel_on_disconnect: l.cancel_on_disconnect,
                drop_copy: l.drop_copy,
            },
        )),
        _ => None,
    }
}

/// The `cl_ord_id` an `OrderRejected(NotLoggedIn)` names: the request's (a replace's new id, 0
/// for a mass cancel or anything without one).
fn not_logged_in_subject(msg: &ClientMessage) -> u64 {
    match msg {
        ClientMessage::EnterOrder(m) => m.cl_ord_id,
        ClientMessage::CancelOrder(m) => m.cl_ord_id,
        ClientMessage::ReplaceOrder(m) => m.new_cl_ord_id,
        other => crate::gateway::session::query_of(other).map_or(0, |(id, _, _)| id),
    }
}

/// Whether the node is primary (`NodeState::active`; a gateway without shared state, in
/// tests, always is).
fn is_primary(shared: &Option<Arc<crate::runtime::state::NodeState>>) -> bool {
    shared
        .as_ref()
        .is_none_or(|s| s.active.load(Ordering::Acquire))
}

/// How often the listener is polled.
const ACCEPT_POLL_NS: u64 = 100_000;

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        listener: TcpListener,
        sessions: SessionTable,
        accounts: Arc<Accounts>,
        inboxes: Vec<Arc<HandoffInbox>>,
        to_sequencer: Producer<Request>,
        from_shards: Vec<Consumer<Report>>,
        settings: GatewaySettings,
        heartbeat_interval_ms: u32,
    ) -> io::Result<Gateway> {
        listener.set_nonblocking(true)?;
        let mut sessions = sessions;
        for line in add_drop_copies(&mut sessions, &accounts, index, inboxes.len()) {
            say(format_args!("{line}"));
        }
        Ok(Gateway {
            index,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            sessions,
            accounts,
            inbox: inboxes[index].clone(),
            inboxes,
            to_sequencer,
            from_shards,
            settings,
            heartbeat_interval_ms,
            last_timer_ns: 0,
            last_accept_ns: 0,
            wake_sequencer: None,
            forwarded: false,
            shared: None,
            counters: GatewayCounters::default(),
            tracer: None,
            rx_tsc: 0,
            merge: ReportMerge::default(),
            complete_seq: 0,
            cancels: std::collections::VecDeque::new(),
            cancel_scratch: Vec::new(),
            stopping: false,
            was_serving: false,
            absent_deadline_ns: None,
            serving_since_ns: 0,
            ended: Vec::new(),
            ready: Default::default(),
        })
    }

    /// The sequencer core's doorbell (`None`: same core, or spin mode).
    pub fn with_wake(mut self, wake_sequencer: Option<Arc<Doorbell>>) -> Self {
        self.wake_sequencer = wake_sequencer;
        self
    }

    /// The node's shared state (a standby refuses logins until it is promoted).
    pub fn with_shared(mut self, shared: Arc<crate::runtime::state::NodeState>) -> Self {
        let shards = shared.marks.applied.len();
        if shards > 1 {
            self.merge = ReportMerge::new(shards, 4096);
        }
        self.shared = Some(shared);
        self
    }

    /// The shard rings among `from_shards` (the first ones; the sequencing stage's answers
    /// follow) when the reports need merging into log order, else 0.
    fn merged_rings(&self) -> usize {
        match self.shared.as_ref().map_or(0, |s| s.marks.applied.len()) {
            0 | 1 => 0,
            n => n.min(self.from_shards.len()),
        }
    }

    /// What a parked core waits on: the listener and every open connection (readable, or
    /// writable while output is pending).
    /// Stage stamps and per-order trace into this core's stats block.
    pub fn with_tracer(mut self, tracer: Option<crate::observe::trace::Tracer>) -> Self {
        self.tracer = tracer;
        self
    }

    pub fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        out.push(libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for c in self.conns.iter().flatten() {
            if c.dead || c.closing && c.out.len() == c.out_pos {
                continue;
            }
            let mut events = if c.closing { 0 } else { libc::POLLIN };
            if c.out_pos < c.out.len() {
                events |= libc::POLLOUT;
            }
            out.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn connections(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// Takes a new connection. At `max_connections` it takes the place of the oldest one
    /// still waiting for its login (closed); only logged-in sessions fill a core for good, so
    /// connections that never log in cannot lock members out (`tests/silent_connections.rs`).
    /// `None`: every connection is a session (the new one is refused).
    fn add_conn(&mut self, stream: TcpStream, now_ns: u64) -> Option<u32> {
        if self.conns.len() - self.free.len() >= self.settings.max_connections {
            let oldest_waiting = self
                .conns
                .iter()
                .enumerate()
                .filter_map(|(id, c)| {
                    let c = c.as_ref()?;
                    matches!(c.state, ConnState::AwaitLogin).then_some((c.opened_ns, id))
                })
                .min()?;
            self.close(oldest_waiting.1 as u32);
            self.counters.waiting_logins_evicted += 1;
        }
        let conn = Conn {
            stream,
            rbuf: FrameBuffer::new(
                vec![0u8; self.settings.read_buffer].into_boxed_slice(),
                MAX_ORDER_ENTRY_FRAME,
            ),
            out: Vec::with_capacity(4096),
            out_pos: 0,
            state: ConnState::AwaitLogin,
            opened_ns: now_ns,
            last_rx_ns: now_ns,
            last_tx_ns: now_ns,
            closing: false,
            dead: false,
        };
        Some(match self.free.pop() {
            Some(id) => {
                self.conns[id as usize] = Some(conn);
                id
            }
            None => {
                self.conns.push(Some(conn));
                (self.conns.len() - 1) as u32
            }
        })
    }

    fn close(&mut self, id: u32) {
        if let Some(c) = self.conns[id as usize].take() {
            if let ConnState::Active { slot } = c.state {
                if !self.stopping
                    && self.sessions.session(slot).conn == Some(id)
                    && self
                        .sessions
                        .cancels_on_disconnect(slot, &mut self.cancel_scratch)
                        > 0
                {
                    self.cancels.extend(self.cancel_scratch.drain(..));
                    self.counters.cancels_on_disconnect += 1;
                }
                self.sessions.disconnect(slot, id);
            }
            self.free.push(id);
        }
    }

    /// Offers the queued cancels on disconnect to the sequencer, in order, as far as its ring
    /// takes them (the rest wait for the next cycle). Returns how many went.
    fn push_cancels(&mut self) -> usize {
        let mut n = 0;
        while let Some(&r) = self.cancels.front() {
            if self.to_sequencer.try_push(r).is_err() {
                break;
            }
            self.cancels.pop_front();
            n += 1;
        }
        if n > 0 {
            self.forwarded = true;
        }
        n
    }

    /// Cancels on disconnect made and not yet on the sequencer's ring.
    pub fn cancels_queued(&self) -> usize {
        self.cancels.len()
    }

    /// Accepts pending connections and takes handed-off ones. Returns the work done. The
    /// listener is polled at most every 100 µs (an `accept(2)` that finds nothing costs as much
    /// as a read, and connection setup is not the hot path).
    pub fn accept(&mut self, now_ns: u64) -> usize {
        let mut work = 0;
        let mut due = now_ns.saturating_sub(self.last_accept_ns) >= ACCEPT_POLL_NS;
        if due {
            self.last_accept_ns = now_ns;
            // An `accept` that finds nothing still builds and frees a socket in the kernel
            // (5% of an idle parked core in `perf`); a zero-wait `poll` asks first.
            due = tpx_sequencer::transport::fd_ready(&self.listener, libc::POLLIN);
        }
        for _ in 0..if due { 16 } else { 0 } {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    work += 1;
                    self.counters.accepted += 1;
                    if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                        continue;
                    }
                    // Over the connection limit: dropped (closed) at once.
                    let _ = self.add_conn(stream, now_ns);
                }
                Err(_) => break,
            }
        }
        for h in self.inbox.take() {
            work += 1;
            if let Some(id) = self.add_conn(h.stream, h.opened_ns) {
                self.on_login(id, &h.login, h.options, now_ns);
                if let Some(c) = self.conns[id as usize].as_mut() {
                    c.rbuf.extend(&h.rest);
                }
                self.rx_tsc = 0;
                self.handle_frames(id, now_ns, crate::runtime::clock::unix_ns());
            }
        }
        work
    }

    /// Whether this node serves logins: as primary, once the replies of everything it applied
    /// before (its replayed log, a standby's records) are in the journals and acknowledgeable
    /// in its term (`gateway::session::serving`).
    fn serving(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| {
            serving(
                s.active.load(Ordering::Acquire),
                self.complete_seq,
                s.marks.login_floor.load(Ordering::Acquire),
                s.acked_seq.load(Ordering::Acquire),
            )
        })
    }

    /// Cancel on disconnect across a takeover or a restart: one heartbeat timeout after this
    /// node starts serving logins, the sessions of accounts with `cancel_on_disconnect` in
    /// the accounts file that have not logged in here get their cancels, as if their
    /// connections had ended (a login's own option is not known here: it was the old
    /// process's).
    fn cancel_absent_sessions(&mut self, now_ns: u64) {
        let serving = self.serving();
        if serving && !self.was_serving {
            self.serving_since_ns = now_ns;
            self.absent_deadline_ns =
                Some(now_ns.saturating_add(self.settings.heartbeat_timeout_ns));
        }
        self.was_serving = serving;
        match self.absent_deadline_ns {
            Some(t) if now_ns >= t && serving => {
                self.absent_deadline_ns = None;
                let n = self.sessions.cancels_for_absent(
                    &self.accounts,
                    self.serving_since_ns,
                    &mut self.cancel_scratch,
                );
                if n > 0 {
                    say(format_args!(
                        "tpx node: CANCELONDISCONNECT {n} cancels for sessions absent since this node began serving"
                    ));
                    self.cancels.extend(self.cancel_scratch.drain(..));
                    self.push_cancels();
                }
            }
            _ => {}
        }
    }

    fn on_login(&mut self, id: u32, login: &Login, options: LoginOptions, now_ns: u64) {
        let serving = self.serving();
        let c = self.conns[id as usize].as_mut().expect("live connection");
        let result = self.sessions.login_answer(
            &self.accounts,
            login,
            options,
            id,
            now_ns,
            serving,
            self.heartbeat_interval_ms,
            &mut c.out,
        );
        match result {
            Ok(slot) => {
                self.counters.logins += 1;
                c.state = ConnState::Active { slot };
            }
            Err(_) => {
                self.counters.login_rejects += 1;
                c.closing = true;
            }
        }
    }

    /// Reads every connection and handles its complete frames. Returns the work done.
    pub fn read_all(&mut self, now_ns: u64, unix_ns: u64) -> usize {
        let mut work = self.log_out_unless_primary();
        if !self.cancels.is_empty() {
            work += self.push_cancels();
        }
        // Only the connections with something to read (one `poll` for all: see `Readiness`).
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        for (id, c) in self.conns.iter().enumerate() {
            if let Some(c) = c.as_ref().filter(|c| !c.closing && !c.dead) {
                ready.push(id as u32, c.stream.as_raw_fd());
            }
        }
        for &id in ready.poll() {
            let Some(c) = self.conns[id as usize].as_mut() else {
                continue;
            };
            if c.closing || c.dead {
                continue;
            }
            // Complete frames are always handled before the next read, so at most one partial
            // frame (< 256 bytes) is left and the spare room is never empty.
            match c.stream.read(c.rbuf.spare_mut()) {
                Ok(0) => {
                    c.dead = true;
                    continue;
                }
                Ok(n) => {
                    c.rbuf.commit(n);
                    c.last_rx_ns = now_ns;
                    work += 1;
                    if self.tracer.is_some() {
                        self.rx_tsc = crate::runtime::clock::tsc();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    continue;
                }
            }
            work += self.handle_frames(id, now_ns, unix_ns);
        }
        self.ready = ready;
        if std::mem::take(&mut self.forwarded) {
            if let Some(b) = &self.wake_sequencer {
                b.ring();
            }
        }
        work
    }

    /// Handles the buffered complete frames of one connection.
    fn handle_frames(&mut self, id: u32, now_ns: u64, unix_ns: u64) -> usize {
        let mut n = 0;
        loop {
            let Some(c) = self.conns[id as usize].as_mut() else {
                return n;
            };
            if c.closing {
                return n;
            }
            let state = c.state;
            let decoded = match c.rbuf.next_frame() {
                Ok(Some(frame)) => ClientMessage::decode(frame),
                Ok(None) => return n,
                Err(_) => {
                    // An impossible length: the stream cannot be resynchronised.
                    c.queue(&ServerMessage::Logout(Logout {
                        reason: LogoutReason::MalformedFrame,
                    }));
                    c.closing = true;
                    return n;
                }
            };
            n += 1;
            let msg = match decoded {
                Ok(m) => m,
                Err(e) if state == ConnState::AwaitLogin => {
                    // Before login nothing goes on without a valid `Login`: a login of a version
                    // this node does not speak is `LoginRejected(UnsupportedVersion)`, any other
                    // frame that does not decode a `SessionReject`; then the connection closes.
                    self.counters.login_rejects += 1;
                    if matches!(e, tpx_wire::DecodeError::UnsupportedVersion { .. }) {
                        c.queue(&ServerMessage::LoginRejected(LoginRejected {
                            reason: tpx_wire::enums::LoginRejectReason::UnsupportedVersion,
                        }));
                    } else {
                        c.queue(&ServerMessage::SessionReject(SessionReject::from_error(&e)));
                    }
                    c.closing = true;
                    return n;
                }
                Err(e) => {
                    self.counters.session_rejects += 1;
                    c.queue(&ServerMessage::SessionReject(SessionReject::from_error(&e)));
                    continue;
                }
            };
            match state {
                ConnState::AwaitLogin => self.on_frame_before_login(id, msg, now_ns),
                ConnState::Active { slot } => self.on_frame(id, slot, msg, now_ns, unix_ns),
            }
        }
    }

    fn on_frame_before_login(&mut self, id: u32, msg: ClientMessage, now_ns: u64) {
        let gateways = self.inboxes.len();
        if let Some((login, options)) = login_of(&msg) {
            let home = home_gateway(login.account, gateways);
            if home == self.index {
                return self.on_login(id, &login, options, now_ns);
            }
            // Hand the socket and what follows the login to the home core.
            let Some(mut c) = self.conns[id as usize].take() else {
                return;
            };
            self.free.push(id);
            let mut rest = Vec::new();
            while let Ok(Some(f)) = c.rbuf.next_frame() {
                rest.extend_from_slice(f);
            }
            self.inboxes[home].push(Handoff {
                stream: c.stream,
                login,
                options,
                rest,
                opened_ns: c.opened_ns,
            });
            return;
        }
        // Any other frame before login: a request gets `OrderRejected(NotLoggedIn)` with seq 0,
        // anything else no answer; then the connection closes (PROTOCOL.md, "Sessions").
        let c = self.conns[id as usize].as_mut().expect("live connection");
        match msg {
            ClientMessage::Login(_)
            | ClientMessage::LoginWithOptions(_)
            | ClientMessage::Heartbeat(_)
            | ClientMessage::LogoutRequest(_) => c.closing = true,
            other => {
                let request = match other {
                    ClientMessage::ReplaceOrder(_) => RequestKind::ReplaceOrder,
                    ClientMessage::CancelOrder(_) => RequestKind::CancelOrder,
                    ClientMessage::MassCancel(_) => RequestKind::MassCancel,
                    ClientMessage::EnterOrderExt(_) => RequestKind::EnterOrderExt,
                    other => crate::gateway::session::query_of(&other)
                        .map_or(RequestKind::EnterOrder, |(_, _, k)| k),
                };
                c.queue(&ServerMessage::OrderRejected(OrderRejected {
                    seq: 0,
                    timestamp_ns: crate::runtime::clock::unix_ns(),
                    cl_ord_id: not_logged_in_subject(&other),
                    reason: RejectReason::NotLoggedIn,
                    request,
                }));
                c.closing = true;
            }
        }
    }

    fn on_frame(&mut self, id: u32, slot: u32, msg: ClientMessage, now_ns: u64, unix_ns: u64) {
        let Gateway {
            conns,
            sessions,
            to_sequencer,
            forwarded,
            tracer,
            rx_tsc,
            shared,
            cancels,
            ..
        } = self;
        let mut out = Conns { conns };
        // Cancels on disconnect still waiting for the ring go first: a request is refused
        // (`Backpressure`) until they are on it, so none overtakes them into the log.
        let cancels_waiting = !cancels.is_empty();
        let fwd = |mut r: Request| {
            r.stamps.rx = *rx_tsc;
            let ok = !cancels_waiting && to_sequencer.try_push(r).is_ok();
            *forwarded |= ok;
            if let (true, Some(t)) = (ok, tracer.as_mut()) {
                t.on_request();
            }
            ok
        };
        let inboxes = shared.as_ref().map(|s| &s.queries);
        let ask = |shard: u16, q| {
            inboxes
                .and_then(|i| i.get(usize::from(shard)))
                .is_some_and(|i| i.push(q))
        };
        if let Some(reason) = sessions.on_message(slot, &msg, now_ns, unix_ns, &mut out, fwd, ask) {
            let c = conns[id as usize].as_mut().expect("live connection");
            c.queue(&ServerMessage::Logout(Logout { reason }));
            c.closing = true;
        }
    }

    /// Turns the shards' reports into replies, in log order. Returns the work done.
    pub fn deliver(&mut self) -> usize {
        let merged = self.merged_rings();
        // Loaded before the rings are read: every report at or below it is on them now.
        let through = self.shared.as_ref().map(|s| s.marks.complete_through());
        let Gateway {
            conns,
            sessions,
            from_shards,
            counters,
            tracer,
            merge,
            complete_seq,
            shared,
            ended,
            ..
        } = self;
        let mut out = Conns { conns };
        let mut n = 0;
        let mut drained = true;
        // Read after the report left its ring (see `SessionTable::deliver_report`).
        let primary = || is_primary(shared);
        let mut report = |r: &Report, out: &mut Conns<'_>| {
            if !sessions.deliver_report(r, primary, out, ended) {
                counters.unroutable_reports += 1;
            }
            if let Some(t) = tracer.as_mut() {
                t.on_report(r);
            }
        };
        for (i, ring) in from_shards.iter_mut().enumerate() {
            let mut k = 0;
            while k < 4096 {
                // Read in place: a report is 120 bytes, and copying it out of the slot first
                // showed in the replay's profile.
                let Some(r) = ring.peek_ref() else { break };
                if i < merged {
                    merge.hold(i, *r);
                } else {
                    report(r, &mut out);
                }
                ring.advance();
                k += 1;
            }
            n += k;
            drained &= k < 4096;
        }
        if merged > 0 {
            let w = through.unwrap_or(u64::MAX);
            while let Some(r) = merge.pop(w) {
                report(&r, &mut out);
                n += 1;
            }
            if !merge.is_empty() {
                // Held for a shard that has not finished an earlier record: it may push nothing
                // to this gateway (no doorbell), so keep cycling instead of parking until it has.
                n += 1;
            }
        }
        if let (true, Some(w)) = (drained, through) {
            *complete_seq = (*complete_seq).max(w);
        }
        n + self.close_ended()
    }

    /// A node that stopped being primary (deposed: the witness granted the peer a newer term)
    /// logs every session out (`Logout(Failover)`) and closes their connections, so no reply
    /// of what it applies as standby reaches a client (`SessionTable::log_out_unless_primary`).
    /// Returns the work done.
    fn log_out_unless_primary(&mut self) -> usize {
        let Gateway {
            conns,
            sessions,
            shared,
            ended,
            ..
        } = self;
        sessions.log_out_unless_primary(|| is_primary(shared), &mut Conns { conns }, ended);
        self.close_ended()
    }

    /// Marks the connections of logged-out sessions closing (their `Logout` is queued): they
    /// read nothing more and close once it is written.
    fn close_ended(&mut self) -> usize {
        let n = self.ended.len();
        for id in self.ended.drain(..) {
            if let Some(Some(c)) = self.conns.get_mut(id as usize) {
                c.closing = true;
            }
        }
        if n > 0 {
            say(format_args!(
                "tpx node: LOGOUT {n} sessions (Failover): this node is no longer primary"
            ));
        }
        n
    }

    /// Heartbeats and timeouts, at most once a millisecond.
    pub fn timers(&mut self, now_ns: u64) {
        if now_ns.saturating_sub(self.last_timer_ns) < 1_000_000 {
            return;
        }
        self.last_timer_ns = now_ns;
        self.cancel_absent_sessions(now_ns);
        if let Some(r) = self
            .shared
            .as_ref()
            .and_then(|s| s.gateways.get(self.index))
        {
            r.serving.store(self.was_serving, Ordering::Release);
            let c = &self.sessions.counters;
            r.throttled.store(c.rejects_throttled, Ordering::Relaxed);
            r.backpressure
                .store(c.rejects_backpressure, Ordering::Relaxed);
            let g = &self.counters;
            r.accepted.store(g.accepted, Ordering::Relaxed);
            r.logins.store(g.logins, Ordering::Relaxed);
            r.login_rejects.store(g.login_rejects, Ordering::Relaxed);
            r.waiting_logins_evicted
                .store(g.waiting_logins_evicted, Ordering::Relaxed);
            r.cancels_on_disconnect
                .store(g.cancels_on_disconnect, Ordering::Relaxed);
        }
        let s = self.settings.clone();
        for c in self.conns.iter_mut().flatten() {
            if c.dead {
                continue;
            }
            if c.closing {
                // Ending, but its last bytes cannot be written (the peer reads nothing): dropped
                // once the peer has been silent a heartbeat interval past the timeout, so the
                // session ends (and cancels on disconnect) instead of waiting for TCP to give up.
                let silent_ns = now_ns.saturating_sub(c.last_rx_ns);
                if silent_ns
                    > s.heartbeat_timeout_ns
                        .saturating_add(s.heartbeat_interval_ns)
                {
                    c.dead = true;
                }
                continue;
            }
            match c.state {
                ConnState::AwaitLogin => {
                    if now_ns.saturating_sub(c.opened_ns) > s.login_timeout_ns {
                        c.dead = true;
                    }
                }
                ConnState::Active { slot } => {
                    if now_ns.saturating_sub(c.last_rx_ns) > s.heartbeat_timeout_ns {
                        c.queue(&ServerMessage::Logout(Logout {
                            reason: LogoutReason::HeartbeatTimeout,
                        }));
                        c.closing = true;
                    } else if now_ns.saturating_sub(c.last_tx_ns) >= s.heartbeat_interval_ns
                        && c.out.len() == c.out_pos
                    {
                        c.queue(&ServerMessage::Heartbeat(ServerHeartbeat {
                            next_seq: self.sessions.next_seq(slot),
                        }));
                    }
                }
            }
        }
    }

    /// One `write(2)` per connection with something to send; closes finished and dead ones.
    /// Returns the work done.
    pub fn flush(&mut self, now_ns: u64) -> usize {
        let mut work = 0;
        if let Some(t) = self.tracer.as_mut() {
            t.before_writes();
        }
        for id in 0..self.conns.len() as u32 {
            let Some(c) = self.conns[id as usize].as_mut() else {
                continue;
            };
            if !c.dead && c.out_pos < c.out.len() {
                match c.stream.write(&c.out[c.out_pos..]) {
                    Ok(n) => {
                        c.out_pos += n;
                        c.last_tx_ns = now_ns;
                        work += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => c.dead = true,
                }
                if c.out_pos == c.out.len() {
                    c.out.clear();
                    c.out_pos = 0;
                } else if c.out.len() - c.out_pos > self.settings.max_out_bytes {
                    c.dead = true;
                }
            }
            if c.dead || (c.closing && c.out.is_empty()) {
                self.close(id);
            }
        }
        if !self.cancels.is_empty() && self.push_cancels() > 0 {
            work += 1;
            self.forwarded = false;
            if let Some(b) = &self.wake_sequencer {
                b.ring();
            }
        }
        if let Some(t) = self.tracer.as_mut() {
            t.on_flushed(work as u64);
        }
        work
    }

    /// Says goodbye to every connection (`Logout(AdminShutdown)`), best effort.
    pub fn shutdown(&mut self, now_ns: u64) {
        self.stopping = true;
        for c in self.conns.iter_mut().flatten() {
            if matches!(c.state, ConnState::Active { .. }) && !c.closing {
                c.queue(&ServerMessage::Logout(Logout {
                    reason: LogoutReason::AdminShutdown,
                }));
            }
            c.closing = true;
        }
        self.flush(now_ns);
    }
}
