//! Fences: accounts whose request this node refused `Unavailable`, so that no later request of
//! that pipeline overtakes the refused one in the log.
//!
//! Why (issue 17): the replica de-duplicates by the highest `cl_ord_id` per account
//! (`Dedup::duplicate_of`): a re-sent id at or below it is answered "already sequenced". That
//! is a true answer only if the log never holds an id above one the client still waits for.
//! `Unavailable` is no answer (the client fails over and re-sends the request,
//! `client/src/failover.rs`), and the client does not stop sending on the connection before
//! it reads the refusal. So a node that refused id 10 (a standby; or a primary that stepped
//! down with it sequenced and never acknowledged) and then, promoted, sequenced id 11 of the
//! same connection made the client's re-sent 10 "already sequenced" though no log holds it.
//! `failover-bench` lost 40 acknowledged orders that way under heavy host load (ARCHITECTURE.md,
//! "Durable log, roles and failover").
//!
//! The rule: once the stage refuses an account's order or replace `Unavailable` (lowest such
//! id: the floor), it refuses every later order or replace of that account with a higher id
//! `Unavailable` too, until either
//! - a request of the account with an id at or below the floor arrives: the client's re-send
//!   after its next login (it re-sends every unanswered request in `cl_ord_id` order, the
//!   refused one among them); the fence is lifted and the request handled as any; or
//! - the log holds an id of the account at or above the floor (another primary sequenced the
//!   re-sent requests in order, this node learned them by replication): requests pass while
//!   that holds (a cut that removes them brings the fence back).
//!
//! Cancels are not fenced: they are not de-duplicated by id, so one sequenced out of order
//! makes no false "already sequenced".

use rustc_hash::FxHashMap as HashMap;
use tpx_wire::enums::RequestKind;

/// The fences of one stage (see the module docs).
#[derive(Debug, Default)]
pub struct Fences {
    /// `account → lowest id refused`.
    floor: HashMap<u32, u64>,
}

impl Fences {
    /// No account is fenced (the request path skips the lookup).
    pub fn is_empty(&self) -> bool {
        self.floor.is_empty()
    }

    /// The stage refused `subject` (what the reject names, [`crate::msg::Request::reject_subject`])
    /// of `account` `Unavailable`.
    pub fn refused(&mut self, account: u32, subject: Option<(RequestKind, u64)>) {
        let Some((kind, id)) = subject else { return };
        if !matches!(
            kind,
            RequestKind::EnterOrder | RequestKind::EnterOrderExt | RequestKind::ReplaceOrder
        ) {
            return;
        }
        let f = self.floor.entry(account).or_insert(id);
        *f = (*f).min(id);
    }

    /// Whether a request of `account` whose de-duplication id is `id` (`None`: not
    /// de-duplicated) may be sequenced, `high` the highest id the log holds for its origin.
    pub fn admit(&mut self, account: u32, id: Option<u64>, high: impl FnOnce() -> u64) -> bool {
        let (Some(&floor), Some(id)) = (self.floor.get(&account), id) else {
            return true;
        };
        if id <= floor {
            // The client's re-send after its next login: the refused request comes first.
            self.floor.remove(&account);
            return true;
        }
        high() >= floor
    }

    /// The fenced accounts (tests).
    pub fn len(&self) -> usize {
        self.floor.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_id_waits_for_the_refused_one_to_be_sent_again() {
        let mut f = Fences::default();
        assert!(f.admit(1, Some(11), || 0), "nothing fenced");
        f.refused(1, Some((RequestKind::EnterOrder, 10)));
        f.refused(1, Some((RequestKind::ReplaceOrder, 12)));
        f.refused(1, Some((RequestKind::CancelOrder, 3)));
        assert!(
            !f.admit(1, Some(11), || 9),
            "11 would overtake the refused 10"
        );
        assert!(!f.admit(1, Some(13), || 9));
        assert!(f.admit(1, None, || 9), "a cancel is not fenced");
        assert!(f.admit(2, Some(13), || 0), "another account is not fenced");
        // The log holds 10 or later (sequenced elsewhere, replicated here): pass, fence kept.
        assert!(f.admit(1, Some(13), || 10));
        assert_eq!(f.len(), 1);
        // The re-send of 10 lifts it.
        assert!(f.admit(1, Some(10), || 9));
        assert!(f.is_empty());
        assert!(f.admit(1, Some(11), || 10));
    }
}
