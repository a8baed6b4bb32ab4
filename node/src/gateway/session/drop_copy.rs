//! Drop copy: a read-only session of a drop-copy account (`drop_copy_of = [..]` in the
//! accounts file) that receives a copy (`ExecutionCopy`) of every execution report
//! (accepted, replaced, cancelled, executed) of the accounts it watches.
//!
//! The copies are made from the log like every reply: each gateway creates the drop-copy
//! sessions of the accounts homed on it when it starts (on every node: primary, standby, a
//! node replaying its log), and copies each report of a watched account into their journals as
//! it numbers the report for its owner. So a drop-copy client resumes on any node with its last
//! `seq` + 1 and gets exactly what it missed. A gateway sees only the reports of the accounts
//! homed on it (`account % gateways`): a drop-copy account copies only watched accounts that
//! share its home gateway (the node says which it cannot copy when it starts).

use tpx_engine::AccountId;
use tpx_wire::drop_copy::ExecutionCopy;
use tpx_wire::enums::ExecType;
use tpx_wire::replies::ServerMessage;

use super::{emit, Outbox, SessionTable, ORPHAN};
use crate::msg::{Report, ReportKind};

/// The session id of a drop-copy account's one drop-copy session.
pub const DROP_COPY_SESSION_ID: u32 = 1;

impl SessionTable {
    /// Creates the drop-copy session of `account` (its session [`DROP_COPY_SESSION_ID`]),
    /// watching `watched`. `None`: the table is full.
    pub fn add_drop_copy(&mut self, account: AccountId, watched: &[AccountId]) -> Option<u32> {
        let slot = match self.slot_of(account, DROP_COPY_SESSION_ID) {
            Some(s) => s,
            None => self.add_session(account, DROP_COPY_SESSION_ID)?,
        };
        self.sessions[slot as usize].drop_copy = true;
        for &w in watched {
            let v = self.copies.entry(w).or_default();
            if !v.contains(&slot) {
                v.push(slot);
            }
        }
        Some(slot)
    }

    /// The session id of the session owning `(account, cl_ord_id)` (0: none, an orphan).
    fn owner_session_id(&self, account: AccountId, cl_ord_id: u64) -> u32 {
        match self.owners.get(&(account, cl_ord_id)) {
            Some(o) if o.session != ORPHAN => self.sessions[o.session as usize].session_id,
            _ => 0,
        }
    }

    /// Copies a sequenced report of a watched account to its drop-copy sessions (before the
    /// report updates the order's ownership).
    pub(super) fn copy_report(&mut self, r: &Report, outbox: &mut impl Outbox) {
        let Some(slots) = self.copies.get(&r.account) else {
            return;
        };
        let account = r.account;
        let blank = ExecutionCopy {
            seq: 0,
            timestamp_ns: r.ts_ns,
            cl_ord_id: 0,
            order_id: 0,
            trade_id: 0,
            price: 0,
            qty: 0,
            leaves_qty: 0,
            fee: 0,
            account,
            session_id: 0,
            instrument: 0,
            exec_type: ExecType::Accepted,
            side: 0,
            detail: 0,
        };
        let copy = match r.kind {
            ReportKind::Accepted {
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                qty,
            } => ExecutionCopy {
                cl_ord_id,
                order_id,
                price,
                qty,
                leaves_qty: qty,
                session_id: match r.session {
                    crate::msg::NO_SESSION => 0,
                    s => s,
                },
                instrument,
                side: side.as_u8(),
                ..blank
            },
            ReportKind::Replaced {
                orig_cl_ord_id,
                new_cl_ord_id,
                order_id,
                instrument,
                price,
                qty,
                priority_kept,
            } => ExecutionCopy {
                cl_ord_id: new_cl_ord_id,
                order_id,
                price,
                qty,
                leaves_qty: qty,
                session_id: self.owner_session_id(account, orig_cl_ord_id),
                instrument,
                exec_type: ExecType::Replaced,
                detail: u8::from(priority_kept),
                ..blank
            },
            ReportKind::Cancelled {
                cl_ord_id,
                order_id,
                instrument,
                cancelled_qty,
                leaves_qty,
                reason,
            } => ExecutionCopy {
                cl_ord_id,
                order_id,
                qty: cancelled_qty,
                leaves_qty,
                session_id: self.owner_session_id(account, cl_ord_id),
                instrument,
                exec_type: ExecType::Cancelled,
                detail: reason.as_u8(),
                ..blank
            },
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
            } => ExecutionCopy {
                cl_ord_id,
                order_id,
                trade_id,
                price,
                qty,
                leaves_qty,
                fee,
                session_id: self.owner_session_id(account, cl_ord_id),
                instrument,
                exec_type: ExecType::Executed,
                side: side.as_u8(),
                detail: liquidity.as_u8(),
                ..blank
            },
            _ => return,
        };
        for k in 0..slots.len() {
            let slot = self.copies[&account][k];
            let s = &mut self.sessions[slot as usize];
            let msg = ServerMessage::ExecutionCopy(ExecutionCopy {
                seq: s.journal.next_seq(),
                ..copy
            });
            emit(s, msg, outbox, &mut self.counters);
        }
    }
}
