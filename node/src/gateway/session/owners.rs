//! Order ownership: which session owns each live order, the orders learned from the log that
//! no session here owns yet (orphans), and their adoption.

use tpx_engine::{AccountId, ClientOrderId};

use super::{Owner, SessionTable, ORPHAN};
use crate::msg::{Report, ReportKind, NO_SESSION};
use rustc_hash::FxHashMap as HashMap;

impl SessionTable {
    /// The account's connected session with the lowest slot, if any.
    pub(super) fn connected_slot(&self, account: AccountId) -> Option<u32> {
        self.by_account
            .get(&account)?
            .iter()
            .copied()
            .find(|&slot| self.sessions[slot as usize].conn.is_some())
    }

    /// The session a report about `(account, cl_ord_id)` belongs to. An orphan order is adopted
    /// by the account's connected session (the lowest slot), if it has one.
    pub(super) fn owner_slot(
        &mut self,
        account: AccountId,
        cl_ord_id: u64,
        fallback: u32,
    ) -> Option<u32> {
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
    pub(super) fn owned_by(
        &mut self,
        slot: u32,
        account: AccountId,
        cl_ord_id: u64,
    ) -> Option<Owner> {
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
    pub(super) fn learn(&mut self, r: &Report) -> bool {
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
            // The order types' reports: like an execution, without a quantity that ends the
            // order (an adopted order gets them once a session of its account is connected).
            ReportKind::Triggered { cl_ord_id, .. }
            | ReportKind::Slid { cl_ord_id, .. }
            | ReportKind::Refilled { cl_ord_id, .. } => {
                orphan_or_none(&self.owners, cl_ord_id)
                    && !self
                        .sessions
                        .iter()
                        .any(|s| s.account == r.account && s.conn.is_some())
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
}
