//! Cancel on disconnect: what the end of a session's connection puts into the log.
//!
//! When a connection of a session with cancel on disconnect ends (the client closed it, logged
//! out, its heartbeat lapsed, the node closed it as a slow consumer), the gateway makes the
//! cancels as requests of that session and the sequencer logs them like any other: the standby
//! applies the same records, market data shows the deletes, and the answers (`OrderCancelled`,
//! `MassCancelAck`, or `OrderRejected(UnknownOrder)` for an order that ended meanwhile) are
//! the session's sequenced replies, which it reads by replay when it logs in again. Only a node
//! with connections makes them, so only the primary (a standby refuses logins); a node shutting
//! down makes none. A node that begins serving logins (a takeover, a restart) makes them, one
//! heartbeat timeout later, for the sessions of accounts with the accounts-file setting that
//! have not logged in to it ([`SessionTable::cancels_for_absent`]).

use tpx_wire::log_record::Input;
use tpx_wire::order_entry::{CancelOrder, MassCancel};

use super::SessionTable;
use crate::gateway::accounts::{Accounts, CancelOnDisconnect};
use crate::msg::{Request, ALL_SHARDS};

impl SessionTable {
    /// Appends to `out` the requests that cancel what session `slot`'s setting names, now that
    /// its connection ended: `Session`, one `CancelOrder` per order the session owns (live, or
    /// forwarded and not yet answered: the cancel follows it into the log), by `cl_ord_id`;
    /// `Account`, one `MassCancel` of every instrument. Returns how many.
    pub fn cancels_on_disconnect(&mut self, slot: u32, out: &mut Vec<Request>) -> usize {
        let Some(s) = self.sessions.get(slot as usize) else {
            return 0;
        };
        let (account, session_id) = (s.account, s.session_id);
        match s.cancel_on_disconnect {
            CancelOnDisconnect::Off => 0,
            CancelOnDisconnect::Session => {
                let mut mine: Vec<(u64, u16)> = self
                    .owners
                    .iter()
                    .filter(|((a, _), o)| *a == account && o.session == slot)
                    .map(|(&(_, cl_ord_id), o)| (cl_ord_id, o.shard))
                    .collect();
                mine.sort_unstable();
                for &(cl_ord_id, shard) in &mine {
                    let cancel = CancelOrder {
                        cl_ord_id,
                        remaining_qty: 0,
                    };
                    out.push(Request::new(
                        session_id,
                        shard,
                        account,
                        Input::CancelOrder(cancel),
                    ));
                }
                mine.len()
            }
            CancelOnDisconnect::Account => {
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1).max(1);
                let all = MassCancel { instrument: None };
                out.push(Request {
                    tag,
                    ..Request::new(session_id, ALL_SHARDS, account, Input::MassCancel(all))
                });
                1
            }
        }
    }

    /// The cancels for the sessions not connected that have not logged in on this node since
    /// `since_ns` (their connections, if any, were the old primary's or a stopped process's)
    /// whose account has `cancel_on_disconnect` in `accounts`, appended to `out` (an
    /// account-wide setting: one `MassCancel` per account with live orders). Returns how many.
    pub fn cancels_for_absent(
        &mut self,
        accounts: &Accounts,
        since_ns: u64,
        out: &mut Vec<Request>,
    ) -> usize {
        let mut n = 0;
        let mut mass_done: Vec<u32> = Vec::new();
        for slot in 0..self.sessions.len() as u32 {
            let s = &self.sessions[slot as usize];
            if s.conn.is_some() || s.last_login_ns.is_some_and(|t| t >= since_ns) || s.drop_copy {
                continue;
            }
            let Some(entry) = accounts.get(s.account) else {
                continue;
            };
            let scope = entry.cancel_on_disconnect;
            if scope == CancelOnDisconnect::Account {
                let account = s.account;
                if mass_done.contains(&account) || !self.owners.keys().any(|&(a, _)| a == account) {
                    continue;
                }
                mass_done.push(s.account);
            }
            self.sessions[slot as usize].cancel_on_disconnect = scope;
            n += self.cancels_on_disconnect(slot, out);
            self.sessions[slot as usize].cancel_on_disconnect = CancelOnDisconnect::Off;
        }
        n
    }
}
