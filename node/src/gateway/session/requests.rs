//! Requests from a session: throttle and client-order-id rules, the checks a request passes
//! before it is routed to its shard(s), and the answers for those that do not pass.

use tpx_engine::InstrumentId;
use tpx_wire::enums::{RejectReason, RequestKind};
use tpx_wire::log_record::{self as l, Input};
use tpx_wire::order_entry::{
    CancelOrder, ClientMessage, EnterOrder, EnterOrderExt, MassCancel, ReplaceOrder,
};

use super::{emit_unsequenced, rejected, Outbox, Owner, SessionTable};
use crate::msg::{Request, ALL_SHARDS};

/// Where an admin request goes: a named shard (or 0xFFFF) or its instrument's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminTarget {
    Shard(u16),
    Instrument(InstrumentId),
}

/// The log input, request id and target of an admin request (`None`: not one). Every admin
/// log input carries the request id (a funding's as its `funding_id`), so that its answer
/// names it on every node; for deposits, withdrawals, liquidations and funding it is also the
/// engine's idempotency key.
pub fn admin_input(msg: &ClientMessage) -> Option<(Input, u64, AdminTarget)> {
    Some(match *msg {
        ClientMessage::AdminDeposit(m) => (
            Input::Deposit(l::Deposit {
                amount: m.amount,
                request_id: m.request_id,
                account: m.account,
                asset: m.asset,
            }),
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        ClientMessage::AdminWithdraw(m) => (
            Input::Withdraw(l::Withdraw {
                amount: m.amount,
                request_id: m.request_id,
                account: m.account,
                asset: m.asset,
            }),
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        ClientMessage::AdminSetMarkPrice(m) => (
            Input::SetMarkPrice(l::SetMarkPrice {
                price: m.price,
                instrument: m.instrument,
                request_id: m.request_id,
            }),
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminApplyFunding(m) => (
            Input::ApplyFunding(l::ApplyFunding {
                rate_ppm: m.rate_ppm,
                instrument: m.instrument,
                funding_id: m.request_id,
            }),
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminLiquidate(m) => (
            Input::Liquidate(l::Liquidate {
                cl_ord_id: m.cl_ord_id,
                price: m.price,
                account: m.account,
                instrument: m.instrument,
                request_id: m.request_id,
            }),
            m.request_id,
            AdminTarget::Instrument(m.instrument),
        ),
        ClientMessage::AdminSetFeeTier(m) => (
            Input::SetFeeTier(l::SetFeeTier {
                account: m.account,
                tier: m.tier,
                request_id: m.request_id,
            }),
            m.request_id,
            AdminTarget::Shard(m.shard),
        ),
        _ => return None,
    })
}

impl SessionTable {
    /// Common checks before forwarding: throttle. `Err` = already answered.
    pub(super) fn admit(
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
            let m = rejected(unix_ns, cl_ord_id, RejectReason::Throttled, request);
            emit_unsequenced(s, m, outbox);
            return Err(());
        }
        Ok(())
    }

    /// An unsequenced `OrderRejected` to session `slot`'s connection.
    pub fn reject(
        &mut self,
        slot: u32,
        unix_ns: u64,
        cl_ord_id: u64,
        reason: RejectReason,
        request: RequestKind,
        outbox: &mut impl Outbox,
    ) {
        let m = rejected(unix_ns, cl_ord_id, reason, request);
        emit_unsequenced(&self.sessions[slot as usize], m, outbox);
    }

    /// Offers `req` of session `slot` to the sequencer (`forward`, false: its ring is full);
    /// answers `Backpressure` if it is refused. Returns whether it went.
    fn forward_or_reject(
        &mut self,
        slot: u32,
        req: Request,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) -> bool {
        if forward(req) {
            return true;
        }
        self.counters.rejects_backpressure += 1;
        if let Some((request, cl_ord_id)) = req.reject_subject() {
            self.reject(
                slot,
                unix_ns,
                cl_ord_id,
                RejectReason::Backpressure,
                request,
                outbox,
            );
        }
        false
    }

    /// `EnterOrder` from session `slot`: forwarded as it came. `forward` offers the request to the sequencer and
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
        self.enter(slot, Input::EnterOrder(*m), K, unix_ns, outbox, forward);
    }

    /// `EnterOrderExt` from session `slot`: as `EnterOrder`, after the one check of the order
    /// types' fields that the engine cannot make (a trigger type and a trigger price that
    /// disagree: `InvalidTrigger`); the engine validates the rest against its state, in the log.
    pub fn on_enter_order_ext(
        &mut self,
        slot: u32,
        m: &EnterOrderExt,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        const K: RequestKind = RequestKind::EnterOrderExt;
        if self
            .admit(slot, now_ns, unix_ns, m.cl_ord_id, K, outbox)
            .is_err()
        {
            return;
        }
        if !m.trigger_consistent() {
            return self.reject(
                slot,
                unix_ns,
                m.cl_ord_id,
                RejectReason::InvalidTrigger,
                K,
                outbox,
            );
        }
        self.enter(slot, Input::EnterOrderExt(*m), K, unix_ns, outbox, forward);
    }

    /// A new order (`input`, request kind `k`) that passed the throttle: the client-order-id
    /// rules, then routed to its instrument's shard.
    fn enter(
        &mut self,
        slot: u32,
        input: Input,
        k: RequestKind,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
    ) {
        let Some(o) = input.new_order() else {
            return;
        };
        let (cl_ord_id, instrument) = (o.cl_ord_id, o.instrument);
        let s = &self.sessions[slot as usize];
        let account = s.account;
        if cl_ord_id <= s.last_cl_ord_id {
            return self.reject(
                slot,
                unix_ns,
                cl_ord_id,
                RejectReason::ClOrdIdNotIncreasing,
                k,
                outbox,
            );
        }
        if self
            .owners
            .get(&(account, cl_ord_id))
            .is_some_and(|o| o.live)
        {
            // One of the account's live orders has the id (a record the shard applied, so
            // acknowledgeable: "already sequenced" is true). A pending id (sent to the stage,
            // not answered yet) is not: its request may be in no log (the connection dropped
            // before the answer, and this is the client's re-send), so the stage decides
            // (`tpx-sim` seeds 501846 and 501890, `sim/tests/seeds.rs`).
            return self.reject(
                slot,
                unix_ns,
                cl_ord_id,
                RejectReason::DuplicateClientOrderId,
                k,
                outbox,
            );
        }
        let shard = self.routing.shard_of(instrument);
        let req = Request::new(s.session_id, shard, account, input);
        if !self.forward_or_reject(slot, req, unix_ns, outbox, forward) {
            return;
        }
        self.sessions[slot as usize].last_cl_ord_id = cl_ord_id;
        self.owners.insert(
            (account, cl_ord_id),
            Owner {
                session: slot,
                shard,
                instrument,
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
        if new_id
            && self
                .owners
                .get(&(account, m.new_cl_ord_id))
                .is_some_and(|o| o.live)
        {
            return self.reject(
                slot,
                unix_ns,
                m.new_cl_ord_id,
                RejectReason::DuplicateClientOrderId,
                K,
                outbox,
            );
        }
        let session_id = self.sessions[slot as usize].session_id;
        let req = Request::new(session_id, owner.shard, account, Input::ReplaceOrder(*m));
        if !self.forward_or_reject(slot, req, unix_ns, outbox, forward) {
            return;
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
        let (account, session_id) = {
            let s = &self.sessions[slot as usize];
            (s.account, s.session_id)
        };
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
        let req = Request::new(session_id, owner.shard, account, Input::CancelOrder(*m));
        self.forward_or_reject(slot, req, unix_ns, outbox, forward);
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
        let s = &self.sessions[slot as usize];
        let (account, session_id) = (s.account, s.session_id);
        let shard = match m.instrument {
            Some(i) => self.routing.shard_of(i),
            None => ALL_SHARDS,
        };
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let req = Request {
            tag,
            ..Request::new(session_id, shard, account, Input::MassCancel(*m))
        };
        // Its `MassCancelAck` is made from the shards' reports of the record (`on_report`).
        self.forward_or_reject(slot, req, unix_ns, outbox, forward);
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
        let (account, admin, session_id) = (s.account, s.admin, s.session_id);
        let Some((input, request_id, target)) = admin_input(msg) else {
            return;
        };
        let Some(kind) = crate::msg::admin_kind(&input) else {
            return;
        };
        if self
            .admit(slot, now_ns, unix_ns, request_id, kind, outbox)
            .is_err()
        {
            return;
        }
        let shard = match target {
            AdminTarget::Shard(sh) if sh < self.routing.shard_count => Some(sh),
            AdminTarget::Shard(ALL_SHARDS) if matches!(input, Input::SetFeeTier(_)) => {
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
        let req = Request::new(session_id, shard, account, input);
        self.forward_or_reject(slot, req, unix_ns, outbox, forward);
    }
}
