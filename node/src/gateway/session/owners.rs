//! Order ownership: which session owns each live order. The owner is the session whose log
//! record placed the order (from the order's `Accepted`, moved by its `Replaced`), the same on
//! every node that applied the log; orders no client session placed are orphans.

use tpx_engine::{AccountId, InstrumentId};

use super::{Owner, SessionTable, ORPHAN};

impl SessionTable {
    /// The session reports about `(account, cl_ord_id)` go to (`None`: an orphan, or an
    /// order this table does not know).
    pub(super) fn owner_slot(&self, account: AccountId, cl_ord_id: u64) -> Option<u32> {
        match self.owners.get(&(account, cl_ord_id)) {
            Some(o) if o.live && o.session != ORPHAN => Some(o.session),
            _ => None,
        }
    }

    /// The order `(account, cl_ord_id)` if session `slot` may cancel or replace it: one it
    /// owns, live or awaiting its answer.
    pub(super) fn owned_by(&self, slot: u32, account: AccountId, cl_ord_id: u64) -> Option<Owner> {
        match self.owners.get(&(account, cl_ord_id)) {
            Some(o) if o.session == slot => Some(*o),
            _ => None,
        }
    }

    /// Records that the log placed `(account, cl_ord_id)` for session `slot` (or [`ORPHAN`]).
    pub(super) fn own(
        &mut self,
        slot: Option<u32>,
        account: AccountId,
        cl_ord_id: u64,
        instrument: InstrumentId,
        shard: Option<u16>,
    ) {
        let shard = shard.unwrap_or_else(|| self.routing.shard_of(instrument));
        self.owners.insert(
            (account, cl_ord_id),
            Owner {
                session: slot.unwrap_or(ORPHAN),
                shard,
                instrument,
                live: true,
            },
        );
    }

    /// Live orders of this core that no client session placed (see [`ORPHAN`]).
    pub fn orphan_orders(&self) -> usize {
        self.owners.values().filter(|o| o.session == ORPHAN).count()
    }
}
