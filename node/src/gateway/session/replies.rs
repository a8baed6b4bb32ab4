//! Replies: a shard's report becomes a sequenced, journaled reply to its session.

use tpx_wire::replies::{
    BalanceUpdate, MassCancelAck, OrderAccepted, OrderCancelled, OrderExecuted, OrderRejected,
    OrderReplaced, ServerMessage,
};

use tpx_wire::admin::AdminAccepted;
use tpx_wire::enums::RequestKind;

use super::{emit, Outbox, Owner, SessionTable};
use crate::msg::{Report, ReportKind, NO_SESSION};

impl SessionTable {
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
                if matches!(
                    request,
                    RequestKind::EnterOrder
                        | RequestKind::EnterOrderExt
                        | RequestKind::ReplaceOrder
                ) {
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
            // The order types' reports, to the order's owner (see `ReportKind::order_type_reply`).
            ReportKind::Triggered { cl_ord_id, .. }
            | ReportKind::Slid { cl_ord_id, .. }
            | ReportKind::Refilled { cl_ord_id, .. } => {
                let Some(slot) = self.owner_slot(account, cl_ord_id, r.session) else {
                    return false;
                };
                let seq = self.sessions[slot as usize].journal.next_seq();
                let Some(m) = r.kind.order_type_reply(seq, ts) else {
                    return false;
                };
                (slot, m)
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
