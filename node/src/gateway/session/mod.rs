//! The session layer of one gateway core, as pure logic: logins and replay, per-session throttle
//! and client-order-id rules, routing requests to shards, order ownership, and turning shard
//! reports into sequenced, journaled replies. No IO and no clock: the caller passes the time and
//! an [`Outbox`] that owns the connections.

use std::ops::Range;

use tpx_engine::{AccountId, ClientOrderId, Command, EngineInput, InstrumentId, RiskCommand};
use tpx_wire::admin::AdminAccepted;
use tpx_wire::codec::Token;
use tpx_wire::enums::{LoginRejectReason, RejectReason, RequestKind};
use tpx_wire::order_entry::{CancelOrder, ClientMessage, EnterOrder, MassCancel, ReplaceOrder};
use tpx_wire::replies::{
    BalanceUpdate, MassCancelAck, OrderAccepted, OrderCancelled, OrderExecuted, OrderRejected,
    OrderReplaced, ServerMessage,
};
use tpx_wire::session::Login;

use rustc_hash::FxHashMap as HashMap;

use crate::gateway::accounts::Accounts;
use crate::gateway::journal::{Journal, ReplayError};
use crate::msg::{Report, ReportKind, Request, ALL_SHARDS, NO_SESSION};
use crate::msg::side_from_wire;
use crate::gateway::throttle::Throttle;

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

/// Where an admin request goes: a named shard (or 0xFFFF) or its instrument's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminTarget {
    Shard(u16),
    Instrument(InstrumentId),
}

/// The risk command, request id and target of an admin request (`None`: not one).
pub fn admin_command(msg: &ClientMessage) -> Option<(RiskCommand, u64, AdminTarget)> {
    Some(match *msg {
        ClientMessage::AdminDeposit(m) => (
            RiskCommand::Deposit {
                account: m.account,
                asset: m.asset,
                amount: m.amount,
                request_id: m.request_id,
            },
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        ClientMessage::AdminWithdraw(m) => (
            RiskCommand::Withdraw {
                account: m.account,
                asset: m.asset,
                amount: m.amount,
                request_id: m.request_id,
            },
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        ClientMessage::AdminSetMarkPrice(m) => (
            RiskCommand::SetMarkPrice {
                instrument: m.instrument,
                price: m.price,
            },
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminApplyFunding(m) => (
            RiskCommand::ApplyFunding {
                instrument: m.instrument,
                rate_ppm: m.rate_ppm,
                funding_id: m.request_id,
            },
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminLiquidate(m) => (
            RiskCommand::Liquidate {
                account: m.account,
                instrument: m.instrument,
                cl_ord_id: m.cl_ord_id,
                price: m.price,
            },
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminSetFeeTier(m) => (
            RiskCommand::SetFeeTier {
                account: m.account,
                tier: m.tier,
            },
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        _ => return None,
    })
}

/// Static routing: which shard owns which instrument.
#[derive(Clone, Debug)]
pub struct Routing {
    /// Indexed by instrument id; `u16::MAX` = unknown instrument.
    shard_of: Vec<u16>,
    pub shard_count: u16,
}

impl Routing {
    pub fn new(instrument_shards: &[(InstrumentId, u16)], shard_count: u16) -> Routing {
        let len = instrument_shards
            .iter()
            .map(|(i, _)| *i as usize + 1)
            .max()
            .unwrap_or(0);
        let mut shard_of = vec![u16::MAX; len];
        for &(i, s) in instrument_shards {
            shard_of[i as usize] = s;
        }
        Routing {
            shard_of,
            shard_count,
        }
    }

    /// The shard of an instrument; unknown instruments go to shard 0, whose engine rejects them
    /// (so that every reject but the gateway's own comes from the sequenced path).
    #[inline]
    pub fn shard_of(&self, instrument: InstrumentId) -> u16 {
        match self.shard_of.get(instrument as usize) {
            Some(&s) if s != u16::MAX => s,
            _ => 0,
        }
    }
}

/// The session-layer settings.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub heartbeat_interval_ms: u32,
    pub journal_capacity: usize,
    /// Logical sessions this core may hold (each holds a journal).
    pub max_sessions: usize,
}

#[derive(Clone, Copy, Debug)]
struct PendingMass {
    tag: u32,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    /// The owning session's slot, or [`ORPHAN`].
    session: u32,
    shard: u16,
    instrument: InstrumentId,
    /// False while the order (or a replace's new id) awaits the engine's answer.
    live: bool,
}

/// `Owner::session` of a live order no session of this core owns: one this node learned from
/// the applied log without having taken its request (a standby's, one placed before a failover,
/// one replayed at start). The account's first session to cancel or replace it by `cl_ord_id`
/// adopts it, and so does the account's connected session when an unsolicited report about it
/// (a fill, an expiry) arrives; until then its reports are tracked but not delivered.
const ORPHAN: u32 = NO_SESSION;

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
    /// Balance updates for an account with no connected session here (not journaled: a
    /// session that logs in later does not get them; its balances are in the node's state).
    pub balance_updates_dropped: u64,
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
    next_tag: u32,
    pub counters: SessionCounters,
}

/// Encodes `msg` (whose `seq` is already set), journals it and delivers it if connected.
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
    session.journal.append(&buf[..n]);
    counters.replies += 1;
    if let Some(conn) = session.conn {
        outbox.deliver(conn, &buf[..n]);
    }
}

fn rejected(
    session: &mut Session,
    ts_ns: u64,
    cl_ord_id: u64,
    reason: RejectReason,
    request: RequestKind,
) -> ServerMessage {
    ServerMessage::OrderRejected(OrderRejected {
        seq: session.journal.next_seq(),
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
            next_tag: 1,
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
        let token: &Token = &login.token;
        let entry = accounts
            .authenticate(login.account, &token.0)
            .map_err(|_| LoginRejectReason::NotAuthorized)?;
        let key = (login.account, login.session_id);
        let slot = match self.by_key.get(&key) {
            Some(&s) => s,
            None => {
                if login.requested_next_seq > 1 {
                    return Err(LoginRejectReason::SequenceAhead);
                }
                if self.sessions.len() >= self.settings.max_sessions {
                    return Err(LoginRejectReason::UnknownSession);
                }
                let slot = self.sessions.len() as u32;
                self.sessions.push(Session {
                    account: login.account,
                    session_id: login.session_id,
                    journal: Journal::new(self.settings.journal_capacity, MAX_REPLY_LEN),
                    throttle: Throttle::new(entry.rate_limit_per_sec, entry.burst(), now_ns),
                    last_cl_ord_id: 0,
                    conn: None,
                    pending_mass: Vec::new(),
                    admin: entry.admin,
                });
                self.by_key.insert(key, slot);
                self.by_account.entry(login.account).or_default().push(slot);
                slot
            }
        };
        let s = &mut self.sessions[slot as usize];
        if s.conn.is_some() {
            return Err(LoginRejectReason::SessionInUse);
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
        Ok(LoginOk { slot, replay })
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
            }
        }
    }

    /// The next reply sequence number of a session (for heartbeats).
    pub fn next_seq(&self, slot: u32) -> u64 {
        self.sessions[slot as usize].journal.next_seq()
    }

    /// Common checks before forwarding: throttle. `Err` = already answered.
    fn admit(
        &mut self,
        slot: u32,
        now_ns: u64,
        unix_ns: u64,
        cl_ord_id: u64,
        request: RequestKind,
        outbox: &mut impl Outbox,
    ) -> Result<(), ()> {
        self.counters.requests += 1;
        let s = &mut self.sessions[slot as usize];
        if !s.throttle.try_take(now_ns) {
            self.counters.rejects_throttled += 1;
            let m = rejected(s, unix_ns, cl_ord_id, RejectReason::Throttled, request);
            emit(s, m, outbox, &mut self.counters);
            return Err(());
        }
        Ok(())
    }

    fn reject(
        &mut self,
        slot: u32,
        unix_ns: u64,
        cl_ord_id: u64,
        reason: RejectReason,
        request: RequestKind,
        outbox: &mut impl Outbox,
    ) {
        let s = &mut self.sessions[slot as usize];
        let m = rejected(s, unix_ns, cl_ord_id, reason, request);
        emit(s, m, outbox, &mut self.counters);
    }

    /// `EnterOrder` from session `slot`. `forward` offers the request to the sequencer and
    /// returns false if its ring is full (then the client gets `Backpressure`).
    pub fn on_enter_order(
        &mut self,
        slot: u32,
        m: &EnterOrder,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        const K: RequestKind = RequestKind::EnterOrder;
        if self
            .admit(slot, now_ns, unix_ns, m.cl_ord_id, K, outbox)
            .is_err()
        {
            return;
        }
        let s = &self.sessions[slot as usize];
        let account = s.account;
        if m.cl_ord_id <= s.last_cl_ord_id {
            return self.reject(
                slot,
                unix_ns,
                m.cl_ord_id,
                RejectReason::ClOrdIdNotIncreasing,
                K,
                outbox,
            );
        }
        if self.owners.contains_key(&(account, m.cl_ord_id)) {
            // Another session of the account uses the id for a live order.
            return self.reject(
                slot,
                unix_ns,
                m.cl_ord_id,
                RejectReason::DuplicateClientOrderId,
                K,
                outbox,
            );
        }
        let shard = self.routing.shard_of(m.instrument);
        let req = Request::order(
            slot,
            shard,
            0,
            Command::NewOrder(tpx_engine::NewOrder {
                account,
                cl_ord_id: m.cl_ord_id,
                instrument: m.instrument,
                side: side_from_wire(m.side),
                kind: match m.kind {
                    tpx_wire::enums::OrderKind::Limit => tpx_engine::OrderKind::Limit,
                    tpx_wire::enums::OrderKind::Market => tpx_engine::OrderKind::Market,
                },
                price: m.price,
                qty: m.qty,
                tif: match m.tif {
                    tpx_wire::enums::TimeInForce::Gtc => tpx_engine::TimeInForce::Gtc,
                    tpx_wire::enums::TimeInForce::Ioc => tpx_engine::TimeInForce::Ioc,
                    tpx_wire::enums::TimeInForce::Fok => tpx_engine::TimeInForce::Fok,
                },
                post_only: m.post_only,
                reduce_only: m.reduce_only,
                stp: match m.stp {
                    tpx_wire::enums::StpMode::None => tpx_engine::StpMode::None,
                    tpx_wire::enums::StpMode::ExpireTaker => tpx_engine::StpMode::ExpireTaker,
                    tpx_wire::enums::StpMode::ExpireMaker => tpx_engine::StpMode::ExpireMaker,
                    tpx_wire::enums::StpMode::ExpireBoth => tpx_engine::StpMode::ExpireBoth,
                    tpx_wire::enums::StpMode::DecrementAndCancel => {
                        tpx_engine::StpMode::DecrementAndCancel
                    }
                },
            }),
        );
        if !forward(req) {
            self.counters.rejects_backpressure += 1;
            return self.reject(
                slot,
                unix_ns,
                m.cl_ord_id,
                RejectReason::Backpressure,
                K,
                outbox,
            );
        }
        self.sessions[slot as usize].last_cl_ord_id = m.cl_ord_id;
        self.owners.insert(
            (account, m.cl_ord_id),
            Owner {
                session: slot,
                shard,
                instrument: m.instrument,
                live: false,
            },
        );
    }

    /// `ReplaceOrder` from session `slot`.
    pub fn on_replace_order(
        &mut self,
        slot: u32,
        m: &ReplaceOrder,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        const K: RequestKind = RequestKind::ReplaceOrder;
        if self
            .admit(slot, now_ns, unix_ns, m.new_cl_ord_id, K, outbox)
            .is_err()
        {
            return;
        }
        let s = &self.sessions[slot as usize];
        let account = s.account;
        let new_id = m.new_cl_ord_id != m.orig_cl_ord_id;
        if new_id && m.new_cl_ord_id <= s.last_cl_ord_id {
            return self.reject(
                slot,
                unix_ns,
                m.new_cl_ord_id,
                RejectReason::ClOrdIdNotIncreasing,
                K,
                outbox,
            );
        }
        let owner = match self.owned_by(slot, account, m.orig_cl_ord_id) {
            Some(o) => o,
            // Not an order of this session (another session's, another account's, or none).
            None => {
                return self.reject(
                    slot,
                    unix_ns,
                    m.new_cl_ord_id,
                    RejectReason::UnknownOrder,
                    K,
                    outbox,
                )
            }
        };
        if new_id && self.owners.contains_key(&(account, m.new_cl_ord_id)) {
            return self.reject(
                slot,
                unix_ns,
                m.new_cl_ord_id,
                RejectReason::DuplicateClientOrderId,
                K,
                outbox,
            );
        }
        let req = Request::order(
            slot,
            owner.shard,
            0,
            Command::Replace(tpx_engine::Replace {
                account,
                orig_cl_ord_id: m.orig_cl_ord_id,
                new_cl_ord_id: m.new_cl_ord_id,
                price: m.price,
                qty: m.qty,
            }),
        );
        if !forward(req) {
            self.counters.rejects_backpressure += 1;
            return self.reject(
                slot,
                unix_ns,
                m.new_cl_ord_id,
                RejectReason::Backpressure,
                K,
                outbox,
            );
        }
        if new_id {
            self.sessions[slot as usize].last_cl_ord_id = m.new_cl_ord_id;
            self.owners.insert(
                (account, m.new_cl_ord_id),
                Owner {
                    live: false,
                    ..owner
                },
            );
        }
    }

    /// `CancelOrder` from session `slot`.
    pub fn on_cancel_order(
        &mut self,
        slot: u32,
        m: &CancelOrder,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        const K: RequestKind = RequestKind::CancelOrder;
        if self
            .admit(slot, now_ns, unix_ns, m.cl_ord_id, K, outbox)
            .is_err()
        {
            return;
        }
        let account = self.sessions[slot as usize].account;
        let owner = match self.owned_by(slot, account, m.cl_ord_id) {
            Some(o) => o,
            None => {
                return self.reject(
                    slot,
                    unix_ns,
                    m.cl_ord_id,
                    RejectReason::UnknownOrder,
                    K,
                    outbox,
                )
            }
        };
        let req = Request::order(
            slot,
            owner.shard,
            0,
            Command::Cancel(tpx_engine::Cancel {
                account,
                cl_ord_id: m.cl_ord_id,
                remaining_qty: m.remaining_qty,
            }),
        );
        if !forward(req) {
            self.counters.rejects_backpressure += 1;
            self.reject(
                slot,
                unix_ns,
                m.cl_ord_id,
                RejectReason::Backpressure,
                K,
                outbox,
            );
        }
    }

    /// `MassCancel` from session `slot`: to the instrument's shard, or to every shard.
    pub fn on_mass_cancel(
        &mut self,
        slot: u32,
        m: &MassCancel,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        const K: RequestKind = RequestKind::MassCancel;
        if self.admit(slot, now_ns, unix_ns, 0, K, outbox).is_err() {
            return;
        }
        let account = self.sessions[slot as usize].account;
        let (shard, remaining) = match m.instrument {
            Some(i) => (self.routing.shard_of(i), 1),
            None => (ALL_SHARDS, self.routing.shard_count),
        };
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let req = Request::order(
            slot,
            shard,
            tag,
            Command::MassCancel(tpx_engine::MassCancel {
                account,
                instrument: m.instrument,
            }),
        );
        if !forward(req) {
            self.counters.rejects_backpressure += 1;
            return self.reject(slot, unix_ns, 0, RejectReason::Backpressure, K, outbox);
        }
        self.sessions[slot as usize].pending_mass.push(PendingMass {
            tag,
            remaining,
            cancelled: 0,
            instrument: m.instrument,
            ts_ns: 0,
        });
    }

    /// An admin request (`AdminDeposit` .. `AdminSetFeeTier`) from session `slot`: refused
    /// (`NotAuthorized`) unless the account is an admin, or names a shard this node lacks;
    /// else forwarded to its shard (deposit, withdrawal, fee tier: the named one, fee tier
    /// 0xFFFF every shard; mark, funding, liquidation: the perpetual's, an unknown instrument
    /// going to shard 0, whose engine rejects it). Other messages are ignored.
    pub fn on_admin(
        &mut self,
        slot: u32,
        msg: &ClientMessage,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        let s = &self.sessions[slot as usize];
        let (account, admin) = (s.account, s.admin);
        let Some((cmd, request_id, target)) = admin_command(msg) else {
            return;
        };
        let kind = crate::msg::admin_kind(&cmd);
        if self
            .admit(slot, now_ns, unix_ns, request_id, kind, outbox)
            .is_err()
        {
            return;
        }
        let shard = match target {
            AdminTarget::Shard(sh) if sh < self.routing.shard_count => Some(sh),
            AdminTarget::Shard(ALL_SHARDS) if matches!(cmd, RiskCommand::SetFeeTier { .. }) => {
                Some(ALL_SHARDS)
            }
            AdminTarget::Shard(_) => None,
            AdminTarget::Instrument(i) => Some(self.routing.shard_of(i)),
        };
        let (true, Some(shard)) = (admin, shard) else {
            return self.reject(
                slot,
                unix_ns,
                request_id,
                RejectReason::NotAuthorized,
                kind,
                outbox,
            );
        };
        let req = Request {
            session: slot,
            shard,
            tag: 0,
            account,
            request_id,
            input: EngineInput::Risk(cmd),
            stamps: Default::default(),
        };
        if !forward(req) {
            self.counters.rejects_backpressure += 1;
            self.reject(
                slot,
                unix_ns,
                request_id,
                RejectReason::Backpressure,
                kind,
                outbox,
            );
        }
    }

    /// The account's connected session with the lowest slot, if any.
    fn connected_slot(&self, account: AccountId) -> Option<u32> {
        self.by_account
            .get(&account)?
            .iter()
            .copied()
            .find(|&slot| self.sessions[slot as usize].conn.is_some())
    }

    /// The session a report about `(account, cl_ord_id)` belongs to. An orphan order is adopted
    /// by the account's connected session (the lowest slot), if it has one.
    fn owner_slot(&mut self, account: AccountId, cl_ord_id: u64, fallback: u32) -> Option<u32> {
        match self.owners.get(&(account, cl_ord_id)).map(|o| o.session) {
            Some(ORPHAN) => {
                let slot = self.connected_slot(account)?;
                if let Some(o) = self.owners.get_mut(&(account, cl_ord_id)) {
                    o.session = slot;
                }
                Some(slot)
            }
            Some(session) => Some(session),
            None if fallback != NO_SESSION => Some(fallback),
            None => None,
        }
    }

    /// The order `(account, cl_ord_id)` if session `slot` may cancel or replace it: its own, or
    /// an orphan of the session's account, which the session then adopts.
    fn owned_by(&mut self, slot: u32, account: AccountId, cl_ord_id: u64) -> Option<Owner> {
        match self.owners.get_mut(&(account, cl_ord_id)) {
            Some(o) if o.session == slot => Some(*o),
            Some(o) if o.session == ORPHAN => {
                o.session = slot;
                Some(*o)
            }
            _ => None,
        }
    }

    /// Live orders of this core that no session owns yet (see [`ORPHAN`]).
    pub fn orphan_orders(&self) -> usize {
        self.owners.values().filter(|o| o.session == ORPHAN).count()
    }

    /// A report with no requesting session about an order no session here owns (from a record
    /// this node did not take: a standby's, a replayed one): keeps the order map in step with the
    /// engine so that the order can be adopted later. Returns true if the report is consumed
    /// (nothing to deliver).
    fn learn(&mut self, r: &Report) -> bool {
        let orphan_or_none = |owners: &HashMap<(AccountId, ClientOrderId), Owner>, id| {
            owners
                .get(&(r.account, id))
                .is_none_or(|o| o.session == ORPHAN)
        };
        match r.kind {
            ReportKind::Accepted {
                cl_ord_id,
                instrument,
                ..
            } if orphan_or_none(&self.owners, cl_ord_id) => {
                self.owners.insert(
                    (r.account, cl_ord_id),
                    Owner {
                        session: ORPHAN,
                        shard: self.routing.shard_of(instrument),
                        instrument,
                        live: true,
                    },
                );
                true
            }
            ReportKind::Replaced {
                orig_cl_ord_id,
                new_cl_ord_id,
                instrument,
                ..
            } if orphan_or_none(&self.owners, orig_cl_ord_id) => {
                if new_cl_ord_id != orig_cl_ord_id {
                    let shard = self
                        .owners
                        .remove(&(r.account, orig_cl_ord_id))
                        .map_or_else(|| self.routing.shard_of(instrument), |o| o.shard);
                    self.owners.insert(
                        (r.account, new_cl_ord_id),
                        Owner {
                            session: ORPHAN,
                            shard,
                            instrument,
                            live: true,
                        },
                    );
                }
                true
            }
            // Another node's session was answered.
            ReportKind::Rejected { cl_ord_id, .. } => orphan_or_none(&self.owners, cl_ord_id),
            ReportKind::Executed {
                cl_ord_id,
                leaves_qty,
                ..
            }
            | ReportKind::Cancelled {
                cl_ord_id,
                leaves_qty,
                ..
            } => {
                if !orphan_or_none(&self.owners, cl_ord_id) {
                    // A session here owns it (the common case: one lookup, no scan).
                    return false;
                }
                if self
                    .sessions
                    .iter()
                    .any(|s| s.account == r.account && s.conn.is_some())
                {
                    // An orphan (or unknown) order with a connected session to adopt it.
                    return false;
                }
                if leaves_qty == 0 {
                    self.owners.remove(&(r.account, cl_ord_id));
                }
                true
            }
            // A mass cancel another node's session asked for.
            ReportKind::MassCancelDone { .. } => true,
            // Never sent without a session (the shard drops those).
            ReportKind::AdminAccepted { .. } => true,
            // To the account's connected session (see `on_report`).
            ReportKind::BalanceUpdate { .. } => false,
            // About an order a session here owns: delivered as usual.
            ReportKind::Accepted { .. } | ReportKind::Replaced { .. } => false,
        }
    }

    /// A report from a shard: update ownership, sequence, journal, deliver. Returns false if no
    /// session could be found for it (a bug; counted by the caller).
    pub fn on_report(&mut self, r: &Report, outbox: &mut impl Outbox) -> bool {
        if r.session == NO_SESSION && self.learn(r) {
            return true;
        }
        let account = r.account;
        let ts = r.ts_ns;
        let (slot, msg) = match r.kind {
            ReportKind::Accepted {
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                qty,
            } => {
                let Some(slot) = self.owner_slot(account, cl_ord_id, r.session) else {
                    return false;
                };
                if let Some(o) = self.owners.get_mut(&(account, cl_ord_id)) {
                    o.live = true;
                }
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::OrderAccepted(OrderAccepted {
                        seq,
                        timestamp_ns: ts,
                        cl_ord_id,
                        order_id,
                        price,
                        qty,
                        instrument,
                        side,
                    }),
                )
            }
            ReportKind::Rejected {
                cl_ord_id,
                reason,
                request,
            } => {
                let slot = if r.session != NO_SESSION {
                    r.session
                } else {
                    match self.owner_slot(account, cl_ord_id, NO_SESSION) {
                        Some(s) => s,
                        None => return false,
                    }
                };
                if matches!(request, RequestKind::EnterOrder | RequestKind::ReplaceOrder) {
                    // Drop the pending id the gateway recorded for this request (a live order
                    // keeps its entry: a replace keeping its id, or a duplicate id).
                    if let Some(o) = self.owners.get(&(account, cl_ord_id)) {
                        if !o.live && o.session == slot {
                            self.owners.remove(&(account, cl_ord_id));
                        }
                    }
                }
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::OrderRejected(OrderRejected {
                        seq,
                        timestamp_ns: ts,
                        cl_ord_id,
                        reason,
                        request,
                    }),
                )
            }
            ReportKind::Executed {
                cl_ord_id,
                order_id,
                trade_id,
                instrument,
                side,
                liquidity,
                price,
                qty,
                leaves_qty,
                fee,
            } => {
                let Some(slot) = self.owner_slot(account, cl_ord_id, r.session) else {
                    return false;
                };
                if leaves_qty == 0 {
                    self.owners.remove(&(account, cl_ord_id));
                }
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::OrderExecuted(OrderExecuted {
                        seq,
                        timestamp_ns: ts,
                        cl_ord_id,
                        order_id,
                        trade_id,
                        price,
                        qty,
                        leaves_qty,
                        fee,
                        instrument,
                        side,
                        liquidity,
                    }),
                )
            }
            ReportKind::Cancelled {
                cl_ord_id,
                order_id,
                instrument,
                cancelled_qty,
                leaves_qty,
                reason,
            } => {
                let Some(slot) = self.owner_slot(account, cl_ord_id, r.session) else {
                    return false;
                };
                if leaves_qty == 0 {
                    self.owners.remove(&(account, cl_ord_id));
                }
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::OrderCancelled(OrderCancelled {
                        seq,
                        timestamp_ns: ts,
                        cl_ord_id,
                        order_id,
                        cancelled_qty,
                        leaves_qty,
                        instrument,
                        reason,
                    }),
                )
            }
            ReportKind::Replaced {
                orig_cl_ord_id,
                new_cl_ord_id,
                order_id,
                instrument,
                price,
                qty,
                priority_kept,
            } => {
                let Some(slot) = self.owner_slot(account, orig_cl_ord_id, r.session) else {
                    return false;
                };
                if new_cl_ord_id != orig_cl_ord_id {
                    let old = self.owners.remove(&(account, orig_cl_ord_id));
                    let entry = self
                        .owners
                        .entry((account, new_cl_ord_id))
                        .or_insert(Owner {
                            session: slot,
                            shard: old.map_or(0, |o| o.shard),
                            instrument,
                            live: true,
                        });
                    entry.live = true;
                }
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::OrderReplaced(OrderReplaced {
                        seq,
                        timestamp_ns: ts,
                        orig_cl_ord_id,
                        new_cl_ord_id,
                        order_id,
                        price,
                        qty,
                        instrument,
                        priority_kept,
                    }),
                )
            }
            ReportKind::AdminAccepted {
                request_id,
                available,
                held,
                target,
                shard,
                request,
            } => {
                let slot = r.session;
                let Some(s) = self.sessions.get(slot as usize) else {
                    return false;
                };
                (
                    slot,
                    ServerMessage::AdminAccepted(AdminAccepted {
                        seq: s.journal.next_seq(),
                        timestamp_ns: ts,
                        request_id,
                        available,
                        held,
                        account: target,
                        shard,
                        request,
                    }),
                )
            }
            ReportKind::BalanceUpdate {
                delta,
                available,
                held,
                asset,
                shard,
                reason,
            } => {
                let slot = if r.session != NO_SESSION {
                    r.session
                } else {
                    match self.connected_slot(account) {
                        Some(i) => i,
                        None => {
                            // No session of the account is connected here: dropped (the
                            // balance is in the shard's state, not in a journal).
                            self.counters.balance_updates_dropped += 1;
                            return true;
                        }
                    }
                };
                (
                    slot,
                    ServerMessage::BalanceUpdate(BalanceUpdate {
                        seq: self.sessions[slot as usize].journal.next_seq(),
                        timestamp_ns: ts,
                        delta,
                        available,
                        held,
                        asset,
                        shard,
                        reason,
                    }),
                )
            }
            ReportKind::MassCancelDone { tag, cancelled, .. } => {
                let slot = r.session;
                let Some(s) = self.sessions.get_mut(slot as usize) else {
                    return false;
                };
                let Some(i) = s.pending_mass.iter().position(|p| p.tag == tag) else {
                    return false;
                };
                let p = &mut s.pending_mass[i];
                p.remaining = p.remaining.saturating_sub(1);
                p.cancelled += cancelled;
                p.ts_ns = p.ts_ns.max(ts);
                if p.remaining > 0 {
                    return true;
                }
                let p = s.pending_mass.remove(i);
                let seq = s.journal.next_seq();
                (
                    slot,
                    ServerMessage::MassCancelAck(MassCancelAck {
                        seq,
                        timestamp_ns: p.ts_ns,
                        instrument: p.instrument,
                        cancelled_count: p.cancelled,
                    }),
                )
            }
        };
        let s = &mut self.sessions[slot as usize];
        emit(s, msg, outbox, &mut self.counters);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::accounts::{demo_accounts, demo_accounts_file};
    use crate::msg::Sequenced;
    use crate::shard::apply::Shard;
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};

    fn accounts() -> Accounts {
        let mut f = demo_accounts_file(&demo_accounts(3), 1_000);
        f.account[2].rate_limit_per_sec = 2;
        f.account[2].burst = Some(2);
        Accounts::from_file(f).unwrap()
    }

    fn token(id: u32) -> Token {
        crate::gateway::accounts::token_of(&format!("demo-token-{id}"))
    }

    fn login(account: u32, session_id: u32, next: u64) -> Login {
        Login {
            account,
            session_id,
            requested_next_seq: next,
            token: token(account),
        }
    }

    fn table() -> SessionTable {
        SessionTable::new(
            SessionSettings {
                heartbeat_interval_ms: 1000,
                journal_capacity: 8,
                max_sessions: 4,
            },
            Routing::new(&[(1, 0)], 1),
        )
    }

    fn order(cl: u64, side: Side, price: i64, qty: u64) -> EnterOrder {
        EnterOrder {
            cl_ord_id: cl,
            price,
            qty,
            instrument: 1,
            side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        }
    }

    fn decode(out: &[(ConnId, Vec<u8>)]) -> Vec<(ConnId, ServerMessage)> {
        out.iter()
            .map(|(c, b)| (*c, ServerMessage::decode(b).unwrap()))
            .collect()
    }

    fn shard() -> Shard {
        let specs = vec![crate::config::builtin_instruments()[0].spec().unwrap()];
        Shard::new(
            0,
            tpx_engine::EngineConfig {
                instruments: specs,
                max_orders: 64,
                max_accounts: 16,
            },
            None,
        )
        .unwrap()
    }

    /// Runs forwarded requests through a shard and feeds the reports back.
    fn pump(
        t: &mut SessionTable,
        sh: &mut Shard,
        reqs: &mut Vec<Request>,
        out: &mut Vec<(ConnId, Vec<u8>)>,
    ) {
        for (i, req) in reqs.drain(..).enumerate() {
            let e = Sequenced {
                seq: i as u64 + 1,
                ts_ns: 7,
                req,
            };
            let mut reports = Vec::new();
            sh.apply(&e, |r| reports.push(r));
            for r in reports {
                assert!(t.on_report(&r, out));
            }
        }
    }

    #[test]
    fn login_rules() {
        let a = accounts();
        let mut t = table();
        assert_eq!(
            t.login(
                &a,
                &Login {
                    token: token(2),
                    ..login(1, 1, 1)
                },
                1,
                0
            )
            .unwrap_err(),
            LoginRejectReason::NotAuthorized
        );
        assert_eq!(
            t.login(&a, &login(1, 1, 5), 1, 0).unwrap_err(),
            LoginRejectReason::SequenceAhead
        );
        let ok = t.login(&a, &login(1, 1, 1), 1, 0).unwrap();
        assert_eq!(ok.replay, 1..1);
        assert_eq!(
            t.login(&a, &login(1, 1, 1), 2, 0).unwrap_err(),
            LoginRejectReason::SessionInUse
        );
        t.disconnect(ok.slot, 1);
        assert!(t.login(&a, &login(1, 1, 1), 2, 0).is_ok());
    }

    #[test]
    fn order_fill_cancel_replace_and_replay() {
        let a = accounts();
        let mut t = table();
        let mut sh = shard();
        let s1 = t.login(&a, &login(1, 1, 1), 10, 0).unwrap().slot;
        let s2 = t.login(&a, &login(2, 1, 1), 20, 0).unwrap().slot;
        let mut out = Vec::new();
        let mut reqs = Vec::new();
        t.on_enter_order(s1, &order(1, Side::Sell, 50_000, 10), 0, 0, &mut out, |r| {
            reqs.push(r);
            true
        });
        t.on_enter_order(s2, &order(1, Side::Buy, 50_000, 4), 0, 0, &mut out, |r| {
            reqs.push(r);
            true
        });
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        let got = decode(&out);
        assert!(matches!(got[0], (10, ServerMessage::OrderAccepted(m)) if m.seq == 1));
        assert!(matches!(got[1], (20, ServerMessage::OrderAccepted(m)) if m.seq == 1));
        assert!(
            matches!(got[2], (10, ServerMessage::OrderExecuted(m)) if m.seq == 2 && m.leaves_qty == 6)
        );
        assert!(
            matches!(got[3], (20, ServerMessage::OrderExecuted(m)) if m.seq == 2 && m.leaves_qty == 0)
        );
        out.clear();
        // Account 2 cannot cancel account 1's order 1 (its own order 1 is filled).
        t.on_cancel_order(
            s2,
            &CancelOrder {
                cl_ord_id: 1,
                remaining_qty: 0,
            },
            0,
            0,
            &mut out,
            |_| panic!("forwarded"),
        );
        assert!(
            matches!(decode(&out)[0], (20, ServerMessage::OrderRejected(m)) if m.reason == RejectReason::UnknownOrder)
        );
        out.clear();
        // Replace with a new id, then cancel by the new id.
        t.on_replace_order(
            s1,
            &ReplaceOrder {
                orig_cl_ord_id: 1,
                new_cl_ord_id: 2,
                price: 50_001,
                qty: 6,
            },
            0,
            0,
            &mut out,
            |r| {
                reqs.push(r);
                true
            },
        );
        t.on_cancel_order(
            s1,
            &CancelOrder {
                cl_ord_id: 2,
                remaining_qty: 0,
            },
            0,
            0,
            &mut out,
            |r| {
                reqs.push(r);
                true
            },
        );
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        let got = decode(&out);
        assert!(
            matches!(got[0], (10, ServerMessage::OrderReplaced(m)) if m.new_cl_ord_id == 2 && m.seq == 3)
        );
        assert!(
            matches!(got[1], (10, ServerMessage::OrderCancelled(m)) if m.cl_ord_id == 2 && m.leaves_qty == 0)
        );
        assert_eq!(t.tracked_orders(), 0);
        // Reconnect with replay from 2.
        t.disconnect(s1, 10);
        let ok = t.login(&a, &login(1, 1, 2), 11, 0).unwrap();
        let replayed: Vec<u64> = t
            .replay(ok.slot, ok.replay)
            .map(|b| ServerMessage::decode(b).unwrap().seq().unwrap())
            .collect();
        assert_eq!(replayed, vec![2, 3, 4]);
    }

    /// A request taken by another node (a record this node applies without a session).
    fn foreign(cmd: Command) -> Request {
        Request::order(NO_SESSION, 0, 0, cmd)
    }

    fn new_order(account: u32, o: EnterOrder) -> Command {
        Command::NewOrder(tpx_engine::NewOrder {
            account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: side_from_wire(o.side),
            kind: tpx_engine::OrderKind::Limit,
            price: o.price,
            qty: o.qty,
            tif: tpx_engine::TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            stp: tpx_engine::StpMode::None,
        })
    }

    #[test]
    fn orders_learned_from_the_log_are_adopted_after_a_failover() {
        let a = accounts();
        let mut t = table();
        let mut sh = shard();
        let mut out = Vec::new();
        // As a standby: the old primary's records, applied without a session.
        let mut reqs = vec![
            foreign(new_order(1, order(1, Side::Sell, 50_000, 10))),
            foreign(new_order(1, order(2, Side::Sell, 50_010, 5))),
            foreign(new_order(1, order(4, Side::Sell, 50_030, 1))),
            foreign(Command::Replace(tpx_engine::Replace {
                account: 1,
                orig_cl_ord_id: 2,
                new_cl_ord_id: 3,
                price: 50_020,
                qty: 5,
            })),
            foreign(Command::Cancel(tpx_engine::Cancel {
                account: 1,
                cl_ord_id: 4,
                remaining_qty: 0,
            })),
        ];
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        assert!(out.is_empty(), "nothing is delivered on a standby");
        assert_eq!(t.orphan_orders(), 2, "orders 1 and 3 rest");
        // Promoted: account 1 logs in on a fresh session and cancels order 1 by its id.
        let s1 = t.login(&a, &login(1, 1, 1), 10, 0).unwrap().slot;
        let s2 = t.login(&a, &login(2, 1, 1), 20, 0).unwrap().slot;
        fn fwd(reqs: &mut Vec<Request>) -> impl FnOnce(Request) -> bool + '_ {
            move |r| {
                reqs.push(r);
                true
            }
        }
        let cancel = |cl| CancelOrder {
            cl_ord_id: cl,
            remaining_qty: 0,
        };
        // Another account cannot name it.
        t.on_cancel_order(s2, &cancel(1), 0, 0, &mut out, |_| panic!("forwarded"));
        assert!(
            matches!(decode(&out)[0], (20, ServerMessage::OrderRejected(m)) if m.reason == RejectReason::UnknownOrder)
        );
        out.clear();
        t.on_cancel_order(s1, &cancel(1), 0, 0, &mut out, fwd(&mut reqs));
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].session, reqs[0].shard), (s1, 0));
        // A new order may not reuse a live order's id.
        t.on_enter_order(s1, &order(3, Side::Sell, 50_100, 1), 0, 0, &mut out, |_| {
            panic!("forwarded")
        });
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        let got = decode(&out);
        assert!(
            matches!(got[0], (10, ServerMessage::OrderRejected(m)) if m.reason == RejectReason::DuplicateClientOrderId && m.cl_ord_id == 3)
        );
        assert!(
            matches!(got[1], (10, ServerMessage::OrderCancelled(m)) if m.cl_ord_id == 1 && m.cancelled_qty == 10 && m.leaves_qty == 0)
        );
        out.clear();
        // A fill of the replaced order (its new id) reaches account 1's connected session.
        t.on_enter_order(
            s2,
            &order(1, Side::Buy, 50_020, 2),
            0,
            0,
            &mut out,
            fwd(&mut reqs),
        );
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        let got = decode(&out);
        assert!(got.iter().any(
            |(c, m)| matches!((c, m), (10, ServerMessage::OrderExecuted(e)) if e.cl_ord_id == 3 && e.leaves_qty == 3)
        ));
        assert_eq!(t.orphan_orders(), 0);
        out.clear();
        // Adopted: replace by the id, then cancel by the new id.
        t.on_replace_order(
            s1,
            &ReplaceOrder {
                orig_cl_ord_id: 3,
                new_cl_ord_id: 9,
                price: 50_050,
                qty: 3,
            },
            0,
            0,
            &mut out,
            fwd(&mut reqs),
        );
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        t.on_cancel_order(s1, &cancel(9), 0, 0, &mut out, fwd(&mut reqs));
        pump(&mut t, &mut sh, &mut reqs, &mut out);
        let got = decode(&out);
        assert!(
            matches!(got[0], (10, ServerMessage::OrderReplaced(m)) if m.orig_cl_ord_id == 3 && m.new_cl_ord_id == 9)
        );
        assert!(
            matches!(got[1], (10, ServerMessage::OrderCancelled(m)) if m.cl_ord_id == 9 && m.leaves_qty == 0)
        );
        assert_eq!(t.tracked_orders(), 0);
    }

    #[test]
    fn throttle_backpressure_and_id_rules() {
        let a = accounts();
        let mut t = table();
        let s = t.login(&a, &login(3, 1, 1), 1, 0).unwrap().slot;
        let mut out = Vec::new();
        t.on_enter_order(s, &order(5, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| {
            false
        });
        t.on_enter_order(s, &order(5, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| true);
        t.on_enter_order(s, &order(6, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| true);
        let got = decode(&out);
        assert!(
            matches!(got[0].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::Backpressure && m.seq == 1)
        );
        assert!(
            matches!(got[1].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::Throttled && m.seq == 2)
        );
        assert_eq!(got.len(), 2);
        // A second later the bucket has refilled; an old id is refused.
        out.clear();
        t.on_enter_order(
            s,
            &order(5, Side::Buy, 50_000, 1),
            1_000_000_000,
            0,
            &mut out,
            |_| true,
        );
        t.on_enter_order(
            s,
            &order(4, Side::Buy, 50_000, 1),
            1_000_000_000,
            0,
            &mut out,
            |_| true,
        );
        let got = decode(&out);
        assert!(
            matches!(got[0].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::ClOrdIdNotIncreasing)
        );
    }

    #[test]
    fn mass_cancel_acks_after_every_shard() {
        let a = accounts();
        let mut t = SessionTable::new(
            SessionSettings {
                heartbeat_interval_ms: 1000,
                journal_capacity: 8,
                max_sessions: 4,
            },
            Routing::new(&[(1, 0), (2, 1)], 2),
        );
        let s = t.login(&a, &login(1, 1, 1), 1, 0).unwrap().slot;
        let mut out = Vec::new();
        let mut fwd = None;
        t.on_mass_cancel(s, &MassCancel { instrument: None }, 0, 0, &mut out, |r| {
            fwd = Some(r);
            true
        });
        let req = fwd.unwrap();
        assert_eq!(req.shard, ALL_SHARDS);
        let done = |cancelled| Report {
            stamps: Default::default(),
            account: 1,
            session: s,
            ts_ns: 9,
            kind: ReportKind::MassCancelDone {
                tag: req.tag,
                instrument: None,
                cancelled,
            },
        };
        assert!(t.on_report(&done(2), &mut out));
        assert!(out.is_empty());
        assert!(t.on_report(&done(3), &mut out));
        assert!(
            matches!(decode(&out)[0].1, ServerMessage::MassCancelAck(m) if m.cancelled_count == 5)
        );
    }
}
