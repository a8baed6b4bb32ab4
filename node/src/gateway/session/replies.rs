//! Replies: a shard's report becomes a sequenced, journaled reply to its session, in the order
//! the gateway is given them (log order, see `gateway::merge`).
//!
//! Which session a report belongs to is read from the log, never from this process's state:
//! an answer to a record goes to the session the record names (created here if this node has
//! not seen it: a standby, a node replaying its log, a new primary after a failover); a report
//! about an order (a fill, a cancel) goes to the session whose record placed it. A report for no
//! client session (a liquidation's order, a log written before records named their session) is
//! not delivered. A balance change is not a reply to a session's record: it goes, unsequenced,
//! to the account's connected sessions.

use tpx_wire::replies::{
    BalanceUpdate, MassCancelAck, OrderAccepted, OrderCancelled, OrderExecuted, OrderRejected,
    OrderReplaced, ServerMessage,
};

use tpx_wire::admin::AdminAccepted;
use tpx_wire::enums::{RejectReason, RequestKind};

use super::{emit, emit_unsequenced, Outbox, PendingMass, SessionTable};
use crate::msg::{Report, ReportKind, UNSEQUENCED};

impl SessionTable {
    /// A report: update ownership, sequence, journal, deliver. Reports must come in log order
    /// (`Report::seq`, then shard, then the order a shard emitted them). Returns false if the
    /// report names a session this table cannot hold or answers nothing it knows (counted by
    /// the caller).
    pub fn on_report(&mut self, r: &Report, outbox: &mut impl Outbox) -> bool {
        if r.seq == UNSEQUENCED {
            return self.on_unsequenced(r, outbox);
        }
        if !self.copies.is_empty() {
            self.copy_report(r, outbox);
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
                let slot = self.log_session(account, r.session);
                let shard = self.owners.get(&(account, cl_ord_id)).map(|o| o.shard);
                self.own(slot, account, cl_ord_id, instrument, shard);
                let Some(slot) = slot else {
                    self.counters.orphan_reports += 1;
                    return true;
                };
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
                let Some(slot) = self.log_session(account, r.session) else {
                    // A liquidation's closing order: no client session.
                    self.counters.orphan_reports += 1;
                    return true;
                };
                if matches!(
                    request,
                    RequestKind::EnterOrder
                        | RequestKind::EnterOrderExt
                        | RequestKind::ReplaceOrder
                ) {
                    self.drop_pending(slot, account, cl_ord_id);
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
                let slot = self.owner_slot(account, cl_ord_id);
                if leaves_qty == 0 {
                    self.owners.remove(&(account, cl_ord_id));
                }
                let Some(slot) = slot else {
                    self.counters.orphan_reports += 1;
                    return true;
                };
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
                let slot = self.owner_slot(account, cl_ord_id);
                if leaves_qty == 0 {
                    self.owners.remove(&(account, cl_ord_id));
                }
                let Some(slot) = slot else {
                    self.counters.orphan_reports += 1;
                    return true;
                };
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
                let slot = self
                    .log_session(account, r.session)
                    .or_else(|| self.owner_slot(account, orig_cl_ord_id));
                if new_cl_ord_id != orig_cl_ord_id {
                    let old = self.owners.remove(&(account, orig_cl_ord_id));
                    self.own(
                        slot,
                        account,
                        new_cl_ord_id,
                        instrument,
                        old.map(|o| o.shard),
                    );
                }
                let Some(slot) = slot else {
                    self.counters.orphan_reports += 1;
                    return true;
                };
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
                let Some(slot) = self.log_session(account, r.session) else {
                    return false;
                };
                let seq = self.sessions[slot as usize].journal.next_seq();
                (
                    slot,
                    ServerMessage::AdminAccepted(AdminAccepted {
                        seq,
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
            // Query answers are unsequenced (`on_unsequenced`); one with a seq is not one.
            ReportKind::QueryOrder { .. }
            | ReportKind::QueryBalance { .. }
            | ReportKind::QueryPosition { .. }
            | ReportKind::QueryDone { .. } => return false,
            ReportKind::BalanceUpdate {
                delta,
                available,
                held,
                asset,
                shard,
                reason,
            } => {
                return self.balance_update(r, delta, available, held, asset, shard, reason, outbox)
            }
            // The order types' reports, to the order's owner (see `ReportKind::order_type_reply`).
            ReportKind::Triggered { cl_ord_id, .. }
            | ReportKind::Slid { cl_ord_id, .. }
            | ReportKind::Refilled { cl_ord_id, .. } => {
                let Some(slot) = self.owner_slot(account, cl_ord_id) else {
                    self.counters.orphan_reports += 1;
                    return true;
                };
                let seq = self.sessions[slot as usize].journal.next_seq();
                let Some(m) = r.kind.order_type_reply(seq, ts) else {
                    return false;
                };
                (slot, m)
            }
            ReportKind::MassCancelDone {
                instrument,
                cancelled,
                ..
            } => {
                let shards = self.routing.shard_count.max(1);
                let Some(slot) = self.log_session(account, r.session) else {
                    return false;
                };
                let s = &mut self.sessions[slot as usize];
                let i = match s.pending_mass.iter().position(|p| p.seq == r.seq) {
                    Some(i) => i,
                    None => {
                        // The record's first shard to answer: one shard for an instrument,
                        // every shard for "all".
                        s.pending_mass.push(PendingMass {
                            seq: r.seq,
                            remaining: if instrument.is_some() { 1 } else { shards },
                            cancelled: 0,
                            instrument,
                            ts_ns: 0,
                        });
                        s.pending_mass.len() - 1
                    }
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

    /// The sequencing stage's own answer to a request that is not (known to be) in the log:
    /// `seq` 0, to the session's connection only.
    fn on_unsequenced(&mut self, r: &Report, outbox: &mut impl Outbox) -> bool {
        if let Some(known) = self.on_query_answer(r, outbox) {
            return known;
        }
        let ReportKind::Rejected {
            cl_ord_id,
            reason,
            request,
        } = r.kind
        else {
            return false;
        };
        let Some(slot) = self.slot_of(r.account, r.session) else {
            return false;
        };
        if matches!(request, RequestKind::EnterOrder | RequestKind::ReplaceOrder) {
            // The pending id the gateway recorded for this request (a re-send may use it).
            self.drop_pending(slot, r.account, cl_ord_id);
        }
        if reason == RejectReason::Unavailable
            && matches!(
                request,
                RequestKind::EnterOrder | RequestKind::EnterOrderExt | RequestKind::ReplaceOrder
            )
        {
            // No answer: the client re-sends it after its next login, perhaps here, and the
            // re-send must reach the stage (which lifts its fence on it, `sequencing/fence.rs`).
            let s = &mut self.sessions[slot as usize];
            s.last_cl_ord_id = s.last_cl_ord_id.min(cl_ord_id.saturating_sub(1));
        }
        let msg = ServerMessage::OrderRejected(OrderRejected {
            seq: 0,
            timestamp_ns: r.ts_ns,
            cl_ord_id,
            reason,
            request,
        });
        emit_unsequenced(&self.sessions[slot as usize], msg, outbox);
        true
    }

    /// A balance change: unsequenced (`seq` 0) to every connected session of the account; not
    /// journaled (balances are state, not a reply to a session's record, and which sessions are
    /// connected differs between nodes).
    #[allow(clippy::too_many_arguments)]
    fn balance_update(
        &mut self,
        r: &Report,
        delta: i64,
        available: i64,
        held: i64,
        asset: u32,
        shard: u16,
        reason: tpx_wire::enums::BalanceReason,
        outbox: &mut impl Outbox,
    ) -> bool {
        let msg = ServerMessage::BalanceUpdate(BalanceUpdate {
            seq: 0,
            timestamp_ns: r.ts_ns,
            delta,
            available,
            held,
            asset,
            shard,
            reason,
        });
        let mut sent = false;
        for &slot in self.by_account.get(&r.account).into_iter().flatten() {
            let s = &self.sessions[slot as usize];
            if s.conn.is_some() {
                emit_unsequenced(s, msg, outbox);
                sent = true;
            }
        }
        if !sent {
            self.counters.balance_updates_dropped += 1;
        }
        true
    }

    /// Drops the pending id the gateway recorded when it forwarded a request of `slot` that was
    /// refused (a live order keeps its entry: a replace keeping its id, or a duplicate id).
    fn drop_pending(&mut self, slot: u32, account: u32, cl_ord_id: u64) {
        if let Some(o) = self.owners.get(&(account, cl_ord_id)) {
            if !o.live && o.session == slot {
                self.owners.remove(&(account, cl_ord_id));
            }
        }
    }
}
