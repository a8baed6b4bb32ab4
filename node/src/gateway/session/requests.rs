//! Requests from a session: throttle and client-order-id rules, the checks a request passes
//! before it is routed to its shard(s), and the answers for those that do not pass.

use tpx_engine::{Command, EngineInput, InstrumentId, RiskCommand};
use tpx_wire::enums::{RejectReason, RequestKind};
use tpx_wire::order_entry::{CancelOrder, ClientMessage, EnterOrder, MassCancel, ReplaceOrder};

use super::{emit, rejected, Outbox, Owner, PendingMass, SessionTable};
use crate::msg::{side_from_wire, Request, ALL_SHARDS};

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
            let m = rejected(s, unix_ns, cl_ord_id, RejectReason::Throttled, request);
            emit(s, m, outbox, &mut self.counters);
            return Err(());
        }
        Ok(())
    }

    pub(super) fn reject(
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
}
