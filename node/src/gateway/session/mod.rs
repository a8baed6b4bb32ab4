//! The session layer of one gateway core, as pure logic: logins and replay, per-session throttle
//! and client-order-id rules, routing requests to shards, order ownership, and turning shard
//! reports into sequenced, journaled replies. No IO and no clock: the caller passes the time and
//! an [`Outbox`] that owns the connections.
//!
//! A session's reply stream is a function of the log: the replies to the records the session
//! sent (the log record's `session`) and the reports about the orders it owns (the session whose
//! record placed the order), numbered 1, 2, 3, ... in log order. The table is fed the reports of
//! every applied record, on every node (primary, standby, a node replaying its log at start):
//! a session the log names is created when its first report arrives, logged in or not, so
//! every node journals the same replies and a client resumes on any of them. Answers to requests
//! that never reach the log (throttle, back-pressure, the gateway's own checks, the stage's
//! "unavailable" and "already sequenced") are unsequenced: wire `seq` 0, sent to the connection
//! if there is one, never journaled.

use std::ops::Range;

use tpx_engine::{AccountId, ClientOrderId, InstrumentId};
use tpx_wire::codec::Token;
use tpx_wire::enums::{LoginRejectReason, RejectReason, RequestKind};
use tpx_wire::replies::{OrderRejected, ServerMessage};
use tpx_wire::session::Login;

use rustc_hash::FxHashMap as HashMap;

use crate::gateway::accounts::{Accounts, CancelOnDisconnect};
use crate::gateway::journal::{Journal, ReplayError};
use crate::gateway::routing::Routing;
use crate::gateway::throttle::Throttle;
use crate::msg::NO_SESSION;

mod cancel_on_disconnect;
mod drop_copy;
mod frames;
mod image;
mod owners;
mod queries;
mod replies;
mod requests;
#[cfg(test)]
mod tests;

pub use drop_copy::DROP_COPY_SESSION_ID;
pub use frames::{encode_into, request_subject, serving};
pub use queries::query_of;
pub use requests::{admin_input, AdminTarget};

/// The largest reply (`OrderExecuted`, 88 bytes) rounded up: the journal's slot size.
pub const MAX_REPLY_LEN: usize = 96;

/// A connection, as the gateway numbers them.
pub type ConnId = u32;

/// Where the session layer puts bytes for a connection (the gateway's connection table).
pub trait Outbox {
    fn deliver(&mut self, conn: ConnId, bytes: &[u8]);
}

/// Collects deliveries, for tests.
impl Outbox for Vec<(ConnId, Vec<u8>)> {
    fn deliver(&mut self, conn: ConnId, bytes: &[u8]) {
        self.push((conn, bytes.to_vec()));
    }
}

/// The session-layer settings.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub heartbeat_interval_ms: u32,
    pub journal_capacity: usize,
    /// Logical sessions this core may hold (each holds a journal).
    pub max_sessions: usize,
    /// Sessions one account may open by logging in (`max_sessions_per_account`); sessions the
    /// log names are never refused.
    pub max_sessions_per_account: usize,
}

impl SessionSettings {
    /// A node's session settings from its config: a core holds 4 sessions per connection it
    /// may hold.
    pub fn of(cfg: &crate::config::NodeConfig) -> SessionSettings {
        SessionSettings {
            heartbeat_interval_ms: cfg.heartbeat_interval_ms as u32,
            journal_capacity: cfg.journal_capacity,
            max_sessions: cfg.max_connections_per_core.max(1) * 4,
            max_sessions_per_account: cfg.max_sessions_per_account,
        }
    }
}

/// A mass cancel some shards have answered: keyed by its record's seq.
#[derive(Clone, Copy, Debug)]
struct PendingMass {
    seq: u64,
    remaining: u16,
    cancelled: u32,
    instrument: Option<InstrumentId>,
    ts_ns: u64,
}

/// One logical session: `(account, session_id)`, its sequence numbers and journal. Survives its
/// connections.
#[derive(Debug)]
pub struct Session {
    pub account: AccountId,
    pub session_id: u32,
    pub journal: Journal,
    throttle: Throttle,
    last_cl_ord_id: ClientOrderId,
    pub conn: Option<ConnId>,
    pending_mass: Vec<PendingMass>,
    /// The account may send admin requests (`admin = true` in the accounts file).
    pub admin: bool,
    /// A login on this node set the throttle and the admin flag from the accounts file (a
    /// session created from the log has neither until then).
    authenticated: bool,
    /// What the end of the current connection cancels (set at each login: the login's option
    /// or the account's setting, whichever reaches further).
    pub cancel_on_disconnect: CancelOnDisconnect,
    /// A read-only drop-copy session (`drop_copy.rs`): it gets copies, may send no request.
    pub drop_copy: bool,
    /// The gateway clock's time of the last login to this session on this node (`None`: none).
    pub last_login_ns: Option<u64>,
}

impl Session {
    fn new(account: AccountId, session_id: u32, journal_capacity: usize) -> Session {
        Session {
            account,
            session_id,
            journal: Journal::new(journal_capacity, MAX_REPLY_LEN),
            throttle: Throttle::new(1, 1, 0),
            last_cl_ord_id: 0,
            conn: None,
            pending_mass: Vec::new(),
            admin: false,
            authenticated: false,
            cancel_on_disconnect: CancelOnDisconnect::Off,
            drop_copy: false,
            last_login_ns: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    /// The owning session's slot, or [`ORPHAN`].
    session: u32,
    shard: u16,
    instrument: InstrumentId,
    /// False while the order (or a replace's new id) awaits the engine's answer: an entry this
    /// gateway made when it forwarded the request (for its own checks only; the replies follow
    /// the log's entries, made from `Accepted` and `Replaced`).
    live: bool,
}

/// `Owner::session` of a live order no client session placed (a liquidation's closing order,
/// a record of a log written before records named their session): its reports go to no one,
/// and no session may cancel or replace it by `cl_ord_id` (mass cancel reaches it).
const ORPHAN: u32 = NO_SESSION;

/// What a `LoginWithOptions` asked for (a plain `Login`: nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginOptions {
    /// Cancel the session's orders when this connection ends.
    pub cancel_on_disconnect: bool,
    /// A read-only drop-copy session.
    pub drop_copy: bool,
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginOk {
    pub slot: u32,
    pub replay: Range<u64>,
}

/// Counters the gateway reads for its stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    pub requests: u64,
    pub rejects_throttled: u64,
    pub rejects_backpressure: u64,
    pub replies: u64,
    /// Balance updates for an account with no connected session here (unsequenced, not
    /// journaled: its balances are in the node's state).
    pub balance_updates_dropped: u64,
    /// Reports about orders no client session placed (see [`ORPHAN`]), not delivered.
    pub orphan_reports: u64,
    /// Sessions the log named beyond `max_sessions`: their replies are lost (raise it).
    pub sessions_refused: u64,
}

/// Every logical session homed on one gateway core.
#[derive(Debug)]
pub struct SessionTable {
    settings: SessionSettings,
    routing: Routing,
    sessions: Vec<Session>,
    by_key: HashMap<(AccountId, u32), u32>,
    /// Each account's session slots, ascending (sessions are never removed): the lookup of an
    /// account's connected session for unsolicited reports reads these, not every session.
    by_account: HashMap<AccountId, Vec<u32>>,
    owners: HashMap<(AccountId, ClientOrderId), Owner>,
    /// Watched account → the drop-copy sessions copying its reports (`drop_copy.rs`).
    copies: HashMap<AccountId, Vec<u32>>,
    /// Queries asked of the shards and not yet ended, by tag (`queries.rs`).
    queries: HashMap<u32, queries::PendingQuery>,
    next_tag: u32,
    /// Sessions bound to a connection now.
    connected: usize,
    pub counters: SessionCounters,
}

/// Sends an unsequenced answer (`seq` 0) to the session's connection, if it has one; it is
/// not journaled, so never replayed.
fn emit_unsequenced(session: &Session, msg: ServerMessage, outbox: &mut impl Outbox) {
    let mut buf = [0u8; MAX_REPLY_LEN];
    let Ok(n) = msg.encode(&mut buf) else {
        debug_assert!(false, "reply failed to encode: {msg:?}");
        return;
    };
    if let Some(conn) = session.conn {
        outbox.deliver(conn, &buf[..n]);
    }
}

/// Encodes `msg` (whose `seq` is already set), journals it and delivers it if connected.
/// Inlined into each reply's arm, so the message is encoded from its fields as built (a
/// replay's profile showed the copy of the whole message into a call's frame and its read
/// back by the encoder).
#[inline(always)]
fn emit(
    session: &mut Session,
    msg: ServerMessage,
    outbox: &mut impl Outbox,
    counters: &mut SessionCounters,
) {
    let mut buf = [0u8; MAX_REPLY_LEN];
    let Ok(n) = msg.encode(&mut buf) else {
        debug_assert!(false, "reply failed to encode: {msg:?}");
        return;
    };
    // Planted bug (`tpx-sim`'s planted tests only): a fill while the session has no connection
    // is dropped, as issue 18 found the old gateway did.
    #[cfg(feature = "planted-fill-not-journaled-while-away")]
    if session.conn.is_none() && matches!(msg, ServerMessage::OrderExecuted(_)) {
        return;
    }
    session.journal.append(&buf[..n]);
    counters.replies += 1;
    if let Some(conn) = session.conn {
        outbox.deliver(conn, &buf[..n]);
    }
}

/// An unsequenced reject (`seq` 0): the answer to a request that did not enter the log.
fn rejected(
    ts_ns: u64,
    cl_ord_id: u64,
    reason: RejectReason,
    request: RequestKind,
) -> ServerMessage {
    ServerMessage::OrderRejected(OrderRejected {
        seq: 0,
        timestamp_ns: ts_ns,
        cl_ord_id,
        reason,
        request,
    })
}

impl SessionTable {
    pub fn new(settings: SessionSettings, routing: Routing) -> SessionTable {
        SessionTable {
            settings,
            routing,
            sessions: Vec::new(),
            by_key: HashMap::default(),
            by_account: HashMap::default(),
            owners: HashMap::default(),
            queries: HashMap::default(),
            copies: HashMap::default(),
            next_tag: 1,
            connected: 0,
            counters: SessionCounters::default(),
        }
    }

    pub fn session(&self, slot: u32) -> &Session {
        &self.sessions[slot as usize]
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Live orders this core tracks (for tests and stats).
    pub fn tracked_orders(&self) -> usize {
        self.owners.len()
    }

    /// Handles a `Login` on connection `conn`. On success the session is bound to `conn` and the
    /// caller sends `LoginAccepted { next_seq: replay.start }` followed by the journal's replies
    /// in `replay` (see [`SessionTable::replay`]).
    pub fn login(
        &mut self,
        accounts: &Accounts,
        login: &Login,
        conn: ConnId,
        now_ns: u64,
    ) -> Result<LoginOk, LoginRejectReason> {
        self.login_with(accounts, login, LoginOptions::default(), conn, now_ns)
    }

    /// [`SessionTable::login`] with the options of a `LoginWithOptions`.
    pub fn login_with(
        &mut self,
        accounts: &Accounts,
        login: &Login,
        options: LoginOptions,
        conn: ConnId,
        now_ns: u64,
    ) -> Result<LoginOk, LoginRejectReason> {
        let token: &Token = &login.token;
        let entry = accounts
            .authenticate(login.account, &token.0)
            .map_err(|_| LoginRejectReason::NotAuthorized)?;
        // A drop-copy account logs in only to its drop-copy session, and says so; no other
        // account may ask for one.
        let drop_copy_account = !entry.drop_copy_of.is_empty();
        if options.drop_copy != drop_copy_account
            || (drop_copy_account && login.session_id != DROP_COPY_SESSION_ID)
        {
            return Err(LoginRejectReason::NotAuthorized);
        }
        let key = (login.account, login.session_id);
        let slot = match self.by_key.get(&key) {
            Some(&s) => s,
            // A drop-copy account's session is made at start, never by a login.
            None if drop_copy_account => return Err(LoginRejectReason::NotAuthorized),
            None => {
                if login.requested_next_seq > 1 {
                    return Err(LoginRejectReason::SequenceAhead);
                }
                // One account's logins must not fill the core's table for everyone
                // (`max_sessions_per_account`; sessions the log names are not refused).
                let held = self.by_account.get(&login.account).map_or(0, Vec::len);
                if held >= self.settings.max_sessions_per_account {
                    return Err(LoginRejectReason::UnknownSession);
                }
                self.add_session(login.account, login.session_id)
                    .ok_or(LoginRejectReason::UnknownSession)?
            }
        };
        let s = &mut self.sessions[slot as usize];
        if s.conn.is_some() {
            return Err(LoginRejectReason::SessionInUse);
        }
        if !s.authenticated {
            s.authenticated = true;
            s.throttle = Throttle::new(entry.rate_limit_per_sec, entry.burst(), now_ns);
            s.admin = entry.admin;
        }
        let replay = if login.requested_next_seq == 0 {
            s.journal.next_seq()..s.journal.next_seq()
        } else {
            s.journal
                .replay_range(login.requested_next_seq)
                .map_err(|e| match e {
                    ReplayError::TooOld { .. } => LoginRejectReason::SequenceUnavailable,
                    ReplayError::Future { .. } => LoginRejectReason::SequenceAhead,
                })?
        };
        s.conn = Some(conn);
        self.connected += 1;
        s.last_login_ns = Some(now_ns);
        s.cancel_on_disconnect = match entry.cancel_on_disconnect {
            CancelOnDisconnect::Off if options.cancel_on_disconnect => CancelOnDisconnect::Session,
            setting => setting,
        };
        Ok(LoginOk { slot, replay })
    }

    /// A new session `(account, session_id)` (from a login, or named by the log); `None` when
    /// the table is full.
    fn add_session(&mut self, account: AccountId, session_id: u32) -> Option<u32> {
        if self.sessions.len() >= self.settings.max_sessions {
            return None;
        }
        let slot = self.sessions.len() as u32;
        self.sessions.push(Session::new(
            account,
            session_id,
            self.settings.journal_capacity,
        ));
        self.by_key.insert((account, session_id), slot);
        self.by_account.entry(account).or_default().push(slot);
        Some(slot)
    }

    /// The slot of the client session `session_id` of `account` that a log record names,
    /// created if this node has not seen it (`None`: no session, or the table is full).
    pub(super) fn log_session(&mut self, account: AccountId, session_id: u32) -> Option<u32> {
        if session_id == NO_SESSION {
            return None;
        }
        match self.by_key.get(&(account, session_id)) {
            Some(&s) => Some(s),
            None => {
                let slot = self.add_session(account, session_id);
                if slot.is_none() {
                    self.counters.sessions_refused += 1;
                }
                slot
            }
        }
    }

    /// The slot of `(account, session_id)`, if this table has it.
    pub fn slot_of(&self, account: AccountId, session_id: u32) -> Option<u32> {
        self.by_key.get(&(account, session_id)).copied()
    }

    /// The journaled replies in `range` of session `slot`, in order.
    pub fn replay(&self, slot: u32, range: Range<u64>) -> impl Iterator<Item = &[u8]> + '_ {
        let j = &self.sessions[slot as usize].journal;
        range.filter_map(move |seq| j.get(seq))
    }

    /// The connection of `slot` closed (or logged out): the session stays, unbound.
    pub fn disconnect(&mut self, slot: u32, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(slot as usize) {
            if s.conn == Some(conn) {
                s.conn = None;
                self.connected -= 1;
            }
        }
    }

    /// Sessions bound to a connection now.
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// The next reply sequence number of a session (for heartbeats).
    pub fn next_seq(&self, slot: u32) -> u64 {
        self.sessions[slot as usize].journal.next_seq()
    }
}
