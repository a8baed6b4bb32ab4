//! The witness: a tiny third party that decides who is primary of which term.
//!
//! It holds `(term, holder, lease_until_ns, must_have)`. It grants term `t` to node `n` only
//! if `t` is above its term, the current holder's lease has expired (or `n` is the holder) and
//! `n`'s log is at least as up to date as `must_have = (term, seq)` of the last record the
//! holder reported acknowledging without its standby, compared as Raft does: by the term of the
//! last record, then by seq. (Comparing by seq alone would grant a node holding a long
//! unacknowledged tail of an older term, which lacks the holder's acknowledged records.) A primary renews its lease every `lease_ns / 4`; it acknowledges alone (fsync mode,
//! or with its standby gone) only within a lease it holds, and only up to a `solo_upto` the
//! witness has recorded. So a new term exists only after the old primary's lease has run out
//! on the witness's clock, and a primary that lost the witness stops acknowledging alone before
//! that (it counts its lease from when it *sent* the renewal, minus a drift margin).
//!
//! **Incarnations.** Every node process picks a random non-zero `incarnation` at start and
//! sends it in `Promote` and `Renew`; the witness persists it with the grant. Only the process
//! that was granted the term is "the holder": a restarted holder (same node id, another
//! incarnation) counts as any other candidate: it waits for the lease and must hold
//! `must_have`, and it must hold a record of the term it held (see below; not after a witness
//! restart, when `must_have` is unknown and nobody else could be checked). A `Renew` from
//! another incarnation is refused, and the same term is never granted to a second process.
//!
//! **Why a restarted holder is safe to promote.** In every durability mode a primary
//! acknowledges only records that are on its own disk too (in `replicated`,
//! `commit = min(standby received, local durable)`), and its durable point is a prefix. So a
//! restarted holder's disk holds everything it acknowledged; if that disk holds a record of the
//! holder's own term, the durable point passed every record it inherited as well (they precede
//! its term), which the previous primary may have acknowledged. A restarted holder whose log
//! ends in an older term is refused (`MissingAcked`; except after a witness restart, see
//! ARCHITECTURE.md's residual risk): it may lack records the previous primary
//! acknowledged (they were only in its memory); the other node, which has them on its disk,
//! must take over.
//!
//! **`must_have` never goes down.** A `Renew` only raises it: a primary may still be using an
//! older, higher `solo_upto` when its lower report arrives, and a standby that restarts loses
//! what it held only in memory, so a report of "nothing alone" does not make records
//! acknowledged alone before held by the other node. Keeping the maximum refuses only a
//! candidate that lacks a record acknowledged alone. A restarted witness starts with it
//! unknown (`u64::MAX`: only the holder can continue) until the holder's first renewal.
//!
//! The state machine is pure (`on_message(now, from, msg) -> reply`); [`WitnessServer`] runs it
//! over a transport and persists `(term, holder, incarnation)` before answering a grant.

use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::proto::{DenyReason, Msg};
use crate::transport::{PeerId, Transport};
use crate::witness_state::{Grant, WitnessStateError, WitnessStateFile};

/// The shortest lease a witness accepts: a renewal every quarter lease must stay above
/// scheduling noise (`failover-bench` runs 400 µs on one host).
pub const MIN_LEASE_NS: u64 = 100_000;
/// The longest lease a witness accepts (a failover waits for it).
pub const MAX_LEASE_NS: u64 = 60_000_000_000;

/// Checks a witness lease.
pub fn check_lease_ns(lease_ns: u64) -> Result<(), String> {
    if !(MIN_LEASE_NS..=MAX_LEASE_NS).contains(&lease_ns) {
        return Err(format!(
            "lease {} us: must be {} us to {} us",
            lease_ns / 1_000,
            MIN_LEASE_NS / 1_000,
            MAX_LEASE_NS / 1_000
        ));
    }
    Ok(())
}

const UNKNOWN: (u64, u64) = (u64::MAX, u64::MAX);

/// The witness's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub term: u64,
    /// Node holding `term` (0: none yet).
    pub holder: u32,
    /// The holder's process (0: unknown, from an older state file).
    pub holder_incarnation: u64,
    pub lease_until_ns: u64,
    /// A candidate's `(last_term, last_seq)` must be at least `(must_have_term, must_have_seq)`:
    /// the newest record any holder reported acknowledging alone.
    pub must_have_seq: u64,
    pub must_have_term: u64,
    /// The holder was granted cold (a restarted holder after a witness restart): `must_have`
    /// was set to its whole log, which was all on its disk, so a later restart of it needs
    /// that log, not a record of its term (it may have died before writing one).
    pub holder_floor_is_its_disk: bool,
    /// The standby process whose receipts the holder counts (`replicated`; 0: none, or unknown
    /// after a witness restart). Another process of that node is refused a term: what that
    /// receipt acknowledged was only in the old process's memory.
    pub standby_incarnation: u64,
    pub lease_ns: u64,
}

/// What a message did to the witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `(term, holder)` changed: persist it before sending the reply.
    pub granted: bool,
}

impl Witness {
    /// A witness starting with a persisted `(term, holder)` (holder's incarnation unknown).
    pub fn new(lease_ns: u64, now_ns: u64, persisted: Option<(u64, u32)>) -> Witness {
        Witness::restore(
            lease_ns,
            now_ns,
            persisted.map(|(term, holder)| Grant {
                term,
                holder,
                incarnation: 0,
            }),
        )
    }

    /// A witness starting with a persisted grant: it assumes the holder holds a fresh lease
    /// and may have acknowledged anything alone, until the holder renews.
    pub fn restore(lease_ns: u64, now_ns: u64, persisted: Option<Grant>) -> Witness {
        let g = persisted.unwrap_or_default();
        let held = g.holder != 0;
        Witness {
            term: g.term,
            holder: g.holder,
            holder_incarnation: g.incarnation,
            lease_until_ns: if held { now_ns + lease_ns } else { 0 },
            must_have_seq: if held { UNKNOWN.1 } else { 0 },
            must_have_term: if held { UNKNOWN.0 } else { 0 },
            holder_floor_is_its_disk: false,
            standby_incarnation: 0,
            lease_ns,
        }
    }

    /// The grant to persist.
    pub fn grant(&self) -> Grant {
        Grant {
            term: self.term,
            holder: self.holder,
            incarnation: self.holder_incarnation,
        }
    }

    fn deny(&self, reason: DenyReason) -> Msg<'static> {
        Msg::Denied {
            term: self.term,
            holder: self.holder,
            reason,
        }
    }

    /// Whether `(node, incarnation)` is the process that was granted the current term.
    fn is_live_holder(&self, node: u32, incarnation: u64) -> bool {
        self.holder != 0 && node == self.holder && incarnation == self.holder_incarnation
    }

    /// Handles one message; returns the reply (if any) and whether the grant changed.
    pub fn on_message(&mut self, now_ns: u64, msg: &Msg<'_>) -> (Option<Msg<'static>>, Outcome) {
        let none = Outcome { granted: false };
        match *msg {
            Msg::Promote {
                node,
                term,
                last_seq,
                last_term,
                incarnation,
            } => {
                let live = self.is_live_holder(node, incarnation);
                if live && term == self.term {
                    self.lease_until_ns = now_ns + self.lease_ns;
                    return (
                        Some(Msg::Granted {
                            term,
                            lease_ns: self.lease_ns,
                        }),
                        none,
                    );
                }
                #[cfg(not(feature = "planted-skip-term-check"))]
                let stale = term <= self.term;
                #[cfg(feature = "planted-skip-term-check")]
                let stale = term < self.term;
                if stale {
                    return (Some(self.deny(DenyReason::StaleTerm)), none);
                }
                if self.holder != 0 && !live {
                    if now_ns < self.lease_until_ns {
                        return (Some(self.deny(DenyReason::LeaseHeld)), none);
                    }
                    let must = (self.must_have_term, self.must_have_seq);
                    let restarted_holder = node == self.holder;
                    // A restarted holder holds what it acknowledged; it holds what it inherited
                    // only if its disk reached its own term (see the module docs), or if it was
                    // granted cold and holds the log it was granted with. After a witness
                    // restart (`must_have` unknown) nobody else can be checked, and it is let
                    // through (the documented residual risk).
                    let behind = if restarted_holder {
                        must != UNKNOWN
                            && ((last_term < self.term && !self.holder_floor_is_its_disk)
                                || (last_term, last_seq) < must)
                    } else {
                        (last_term, last_seq) < must
                            || (self.standby_incarnation != 0
                                && incarnation != self.standby_incarnation)
                    };
                    if behind {
                        return (Some(self.deny(DenyReason::MissingAcked)), none);
                    }
                    let cold = restarted_holder && must == UNKNOWN;
                    if cold {
                        // Its whole log is on its disk (a restarted process) and may hold
                        // anything it acknowledged before: the next candidate needs all of it
                        // (should this process die before it takes up the term, the shorter
                        // node must not win: `tpx-sim` seeds 154, 50, 5321).
                        (self.must_have_term, self.must_have_seq) = (last_term, last_seq);
                    }
                    self.holder_floor_is_its_disk = cold;
                } else if self.holder == 0 {
                    // The first grant of a witness that never granted a term: its holder
                    // inherits nothing anyone acknowledged (every acknowledgement needs a term
                    // from this witness), so its disk, which holds what it acknowledges, is its
                    // floor, and it may come back after a restart with a log that never reached
                    // its term (a primary of an empty log writes no `TermStart`: a single node
                    // restarted before its first request was refused forever).
                    self.holder_floor_is_its_disk = true;
                }
                if !live {
                    // The new holder names its own standby once it counts one.
                    self.standby_incarnation = 0;
                }
                self.term = term;
                self.holder = node;
                self.holder_incarnation = incarnation;
                self.lease_until_ns = now_ns + self.lease_ns;
                // `must_have` stays: the new holder holds it (checked above, or it is the holder
                // that acknowledged it), and if it fails before its first renewal says what it
                // acknowledged alone, the next candidate must hold it too. (Resetting it let a
                // standby lacking the old term's solo-acknowledged records win the term after
                // a holder that stepped down at once: found by `tests/chaos.rs`.)
                (
                    Some(Msg::Granted {
                        term,
                        lease_ns: self.lease_ns,
                    }),
                    Outcome { granted: true },
                )
            }
            Msg::Renew {
                node,
                term,
                solo_upto,
                solo_term,
                incarnation,
                standby_incarnation,
            } => {
                if self.is_live_holder(node, incarnation) && term == self.term {
                    if standby_incarnation != 0 {
                        self.standby_incarnation = standby_incarnation;
                    }
                    self.lease_until_ns = now_ns + self.lease_ns;
                    let reported = if solo_upto == 0 {
                        (0, 0)
                    } else {
                        (solo_term, solo_upto)
                    };
                    let must = (self.must_have_term, self.must_have_seq);
                    let next = if must == UNKNOWN {
                        reported
                    } else {
                        must.max(reported)
                    };
                    (self.must_have_term, self.must_have_seq) = next;
                    (
                        Some(Msg::Lease {
                            term,
                            solo_upto,
                            lease_ns: self.lease_ns,
                            standby_incarnation: self.standby_incarnation,
                        }),
                        none,
                    )
                } else {
                    (Some(self.deny(DenyReason::StaleTerm)), none)
                }
            }
            _ => (None, none),
        }
    }
}

/// Runs a [`Witness`] over a transport, persisting its grant in a file.
#[derive(Debug)]
pub struct WitnessServer<T: Transport, C: Clock> {
    pub witness: Witness,
    net: T,
    clock: C,
    state_file: Option<WitnessStateFile>,
    /// A state file was asked for but could not be opened: grants are never answered.
    unwritable: bool,
    out: Vec<u8>,
}

/// Reads a persisted `(term, holder)`: `Ok(None)` when the file was never created.
pub fn load_witness_state(path: &Path) -> Result<Option<(u64, u32)>, WitnessStateError> {
    Ok(crate::witness_state::load(path)?.map(|g| (g.term, g.holder)))
}

impl<T: Transport, C: Clock> WitnessServer<T, C> {
    /// The production witness: its state file is required; a damaged or unreadable one is an
    /// error (the witness must not start), a missing one a first start.
    pub fn open(
        lease_ns: u64,
        net: T,
        clock: C,
        state_file: &Path,
    ) -> Result<Self, WitnessStateError> {
        let (f, found) = WitnessStateFile::open(state_file)?;
        let witness = Witness::restore(lease_ns, clock.now_ns(), found);
        Ok(WitnessServer {
            witness,
            net,
            clock,
            state_file: Some(f),
            unwritable: false,
            out: Vec::new(),
        })
    }

    /// A witness for tests and the simulator: without a state file it keeps its grant in
    /// memory only; with one that cannot be opened (damaged, unreadable) it never answers a
    /// grant (as a failed write would), so nobody is promoted on state that is not durable.
    pub fn new(lease_ns: u64, net: T, clock: C, state_file: Option<PathBuf>) -> Self {
        let path_given = state_file.is_some();
        let (state_file, persisted) = match state_file.as_deref() {
            None => (None, None),
            Some(p) => match WitnessStateFile::open(p) {
                Ok((f, found)) => (Some(f), found),
                Err(e) => {
                    eprintln!("tpx witness: {e}");
                    (None, None)
                }
            },
        };
        let unwritable = state_file.is_none() && path_given;
        let witness = Witness::restore(lease_ns, clock.now_ns(), persisted);
        WitnessServer {
            witness,
            net,
            clock,
            state_file,
            unwritable,
            out: Vec::new(),
        }
    }

    /// The transport (to wait on it when idle).
    pub fn transport(&self) -> &T {
        &self.net
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.net
    }

    /// Handles everything received; returns the messages handled.
    pub fn poll(&mut self) -> usize {
        let mut inbox: Vec<(PeerId, Vec<u8>)> = Vec::new();
        self.net.poll(&mut |from, m| inbox.push((from, m.to_vec())));
        let n = inbox.len();
        for (from, m) in inbox {
            let Some(msg) = Msg::decode(&m) else { continue };
            let now = self.clock.now_ns();
            let before = self.witness.clone();
            let (reply, outcome) = self.witness.on_message(now, &msg);
            if outcome.granted {
                let g = self.witness.grant();
                let stored = !self.unwritable
                    && self
                        .state_file
                        .as_mut()
                        .is_none_or(|f| f.store(g.term, g.holder, g.incarnation).is_ok());
                if !stored {
                    // Cannot persist: forget the grant and do not answer. (Kept in memory, a
                    // retry of the same Promote would be answered from memory by the holder
                    // check without ever being written, and a restarted witness could then
                    // grant that term again.) The candidate retries.
                    self.witness = before;
                    continue;
                }
            }
            if let Some(r) = reply {
                r.encode(&mut self.out);
                self.net.send(from, &self.out);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_that_cannot_be_persisted_is_neither_answered_nor_kept() {
        use crate::clock::ManualClock;
        use crate::transport::MemNet;
        let net = MemNet::new();
        let bad = std::path::PathBuf::from("/nonexistent-tpx-dir/witness.state");
        let mut w = WitnessServer::new(L, net.endpoint(9), ManualClock::new(0), Some(bad));
        let mut cand = net.endpoint(1);
        let mut ask = Vec::new();
        Msg::Promote {
            node: 1,
            term: 1,
            last_seq: 0,
            last_term: 0,
            incarnation: 1,
        }
        .encode(&mut ask);
        for _ in 0..2 {
            assert!(cand.send(9, &ask));
            assert_eq!(w.poll(), 1);
            let mut answers = 0;
            cand.poll(&mut |_, _| answers += 1);
            assert_eq!(answers, 0, "no grant is answered without being durable");
            assert_eq!(
                (w.witness.term, w.witness.holder),
                (0, 0),
                "nor kept in memory"
            );
        }
    }

    const L: u64 = 1_000;
    const INC: u64 = 7;

    fn promote(w: &mut Witness, now: u64, node: u32, term: u64, last: u64) -> Msg<'static> {
        promote_t(w, now, node, term, last, term - 1)
    }

    fn promote_t(
        w: &mut Witness,
        now: u64,
        node: u32,
        term: u64,
        last: u64,
        last_term: u64,
    ) -> Msg<'static> {
        w.on_message(
            now,
            &Msg::Promote {
                node,
                term,
                last_seq: last,
                last_term,
                incarnation: INC,
            },
        )
        .0
        .unwrap()
    }

    #[test]
    fn grants_only_after_the_lease_and_with_the_acked_records() {
        let mut w = Witness::new(L, 0, None);
        assert!(matches!(
            promote(&mut w, 0, 1, 1, 0),
            Msg::Granted { term: 1, .. }
        ));
        // Node 2 asks while 1's lease runs.
        assert!(matches!(
            promote(&mut w, 500, 2, 2, 0),
            Msg::Denied {
                reason: DenyReason::LeaseHeld,
                ..
            }
        ));
        // 1 renews, reporting it acknowledged up to 40 alone.
        let r = w.on_message(
            900,
            &Msg::Renew {
                node: 1,
                term: 1,
                solo_upto: 40,
                solo_term: 1,
                incarnation: INC,
                standby_incarnation: 0,
            },
        );
        assert!(matches!(
            r.0,
            Some(Msg::Lease {
                term: 1,
                solo_upto: 40,
                ..
            })
        ));
        assert!(matches!(
            promote(&mut w, 1_500, 2, 2, 30),
            Msg::Denied {
                reason: DenyReason::LeaseHeld,
                ..
            }
        ));
        // Lease over, but 2 lacks records 31..=40.
        assert!(matches!(
            promote(&mut w, 2_000, 2, 2, 30),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        assert!(matches!(
            promote(&mut w, 2_000, 2, 2, 40),
            Msg::Granted { term: 2, .. }
        ));
        // The old primary is fenced.
        let r = w.on_message(
            2_001,
            &Msg::Renew {
                node: 1,
                term: 1,
                solo_upto: 0,
                solo_term: 0,
                incarnation: INC,
                standby_incarnation: 0,
            },
        );
        assert!(matches!(
            r.0,
            Some(Msg::Denied {
                term: 2,
                holder: 2,
                reason: DenyReason::StaleTerm
            })
        ));
        // A stale promotion is refused with the current term.
        assert!(matches!(
            promote(&mut w, 9_000, 1, 2, 100),
            Msg::Denied {
                term: 2,
                holder: 2,
                reason: DenyReason::StaleTerm
            }
        ));
    }

    #[test]
    fn restarted_witness_waits_for_the_holder() {
        let mut w = Witness::restore(
            L,
            0,
            Some(Grant {
                term: 3,
                holder: 1,
                incarnation: INC,
            }),
        );
        assert!(matches!(
            promote(&mut w, 2 * L, 2, 4, 1_000_000),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        w.on_message(
            2 * L,
            &Msg::Renew {
                node: 1,
                term: 3,
                solo_upto: 0,
                solo_term: 0,
                incarnation: INC,
                standby_incarnation: 0,
            },
        );
        assert!(matches!(
            promote(&mut w, 4 * L, 2, 4, 5),
            Msg::Granted { term: 4, .. }
        ));
    }

    #[test]
    fn a_longer_tail_of_an_older_term_does_not_win() {
        let mut w = Witness::new(L, 0, None);
        // Node 1 held term 1 and wrote (unacknowledged) up to 100; node 2 got term 2 from 50.
        assert!(matches!(
            promote_t(&mut w, 0, 2, 2, 50, 1),
            Msg::Granted { term: 2, .. }
        ));
        // Node 2 acknowledges alone up to 60 (records of term 2).
        w.on_message(
            100,
            &Msg::Renew {
                node: 2,
                term: 2,
                solo_upto: 60,
                solo_term: 2,
                incarnation: INC,
                standby_incarnation: 0,
            },
        );
        // Node 1 returns with its longer term-1 tail: it lacks 51..=60 of term 2.
        assert!(matches!(
            promote_t(&mut w, 5 * L, 1, 3, 100, 1),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        // A log holding term 2 up to 60 is up to date.
        assert!(matches!(
            promote_t(&mut w, 5 * L, 1, 3, 60, 2),
            Msg::Granted { term: 3, .. }
        ));
    }

    #[test]
    fn solo_records_of_an_older_term_are_held_by_any_longer_log_of_that_term() {
        let mut w = Witness::new(L, 0, None);
        promote_t(&mut w, 0, 2, 2, 50, 1);
        // Node 2 acknowledged alone up to 40, a record of term 1 it inherited.
        w.on_message(
            100,
            &Msg::Renew {
                node: 2,
                term: 2,
                solo_upto: 40,
                solo_term: 1,
                incarnation: INC,
                standby_incarnation: 0,
            },
        );
        assert!(matches!(
            promote_t(&mut w, 5 * L, 1, 3, 39, 1),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        assert!(matches!(
            promote_t(&mut w, 5 * L, 1, 3, 45, 1),
            Msg::Granted { term: 3, .. }
        ));
    }

    fn promote_inc(
        w: &mut Witness,
        now: u64,
        node: u32,
        term: u64,
        last: (u64, u64),
        inc: u64,
    ) -> Msg<'static> {
        w.on_message(
            now,
            &Msg::Promote {
                node,
                term,
                last_seq: last.1,
                last_term: last.0,
                incarnation: inc,
            },
        )
        .0
        .unwrap()
    }

    /// Item 3: a restarted holder (another incarnation) is any other candidate: it waits for
    /// the lease, and it must hold a record of the term it held (else it may lack records the
    /// previous primary acknowledged while they were only in its memory). The live process
    /// keeps its re-grant; the same term never goes to a second process.
    #[test]
    fn a_restarted_holder_waits_for_the_lease_and_needs_a_record_of_its_term() {
        let mut w = Witness::new(L, 0, None);
        assert!(matches!(
            promote_inc(&mut w, 0, 1, 1, (0, 0), 11),
            Msg::Granted { term: 1, .. }
        ));
        // Node 2 takes term 2 (node 1's lease ran out); it inherits term 1 up to 50.
        assert!(matches!(
            promote_inc(&mut w, 2 * L, 2, 2, (1, 50), 21),
            Msg::Granted { term: 2, .. }
        ));
        // The live process's retry is answered again; another process of node 2 is not.
        assert!(matches!(
            promote_inc(&mut w, 2 * L + 1, 2, 2, (1, 50), 21),
            Msg::Granted { term: 2, .. }
        ));
        assert!(matches!(
            promote_inc(&mut w, 2 * L + 1, 2, 2, (1, 50), 22),
            Msg::Denied {
                reason: DenyReason::StaleTerm,
                ..
            }
        ));
        // Node 2 restarts (incarnation 22) at once: the old process's lease still runs.
        assert!(matches!(
            promote_inc(&mut w, 2 * L + 10, 2, 3, (1, 50), 22),
            Msg::Denied {
                reason: DenyReason::LeaseHeld,
                ..
            }
        ));
        // After the lease: its disk never reached term 2, so it may lack term-1 records node 1
        // acknowledged (they were in its memory only): refused.
        assert!(matches!(
            promote_inc(&mut w, 4 * L, 2, 3, (1, 40), 22),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        // Node 1 (which holds them on its disk) may take over; node 2's renewal is refused.
        let r = w.on_message(
            4 * L,
            &Msg::Renew {
                node: 2,
                term: 2,
                solo_upto: 0,
                solo_term: 0,
                incarnation: 22,
                standby_incarnation: 0,
            },
        );
        assert!(matches!(
            r.0,
            Some(Msg::Denied {
                reason: DenyReason::StaleTerm,
                ..
            })
        ));
        assert!(matches!(
            promote_inc(&mut w, 4 * L, 1, 3, (1, 50), 12),
            Msg::Granted { term: 3, .. }
        ));
        // A restarted holder whose disk holds a record of its term may continue (it holds all
        // it acknowledged: acknowledgements wait for its own disk).
        assert!(matches!(
            promote_inc(&mut w, 6 * L, 1, 4, (3, 60), 13),
            Msg::Granted { term: 4, .. }
        ));
    }

    /// A restarted witness (must_have unknown) with a restarted holder (a cold restart of
    /// everything): the holder continues; the other node still may not.
    #[test]
    fn a_restarted_witness_and_holder_continue_from_the_holder_disk() {
        let g = Grant {
            term: 5,
            holder: 1,
            incarnation: 9,
        };
        let mut w = Witness::restore(L, 0, Some(g));
        assert!(matches!(
            promote_inc(&mut w, 2 * L, 2, 6, (5, 1_000), 20),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        // The restarted holder continues (its disk holds all it acknowledged; whether it
        // reached its own term cannot be checked against anyone now).
        assert!(matches!(
            promote_inc(&mut w, 2 * L, 1, 6, (4, 900), 10),
            Msg::Granted { term: 6, .. }
        ));
        assert_eq!(w.grant().incarnation, 10);
    }

    /// Hole found by `tpx-sim` (seeds 154, 50, 5321): the restarted holder re-granted after a
    /// witness restart sets the floor to its whole log (it is all on its disk), not to
    /// "nothing". Should it fail to take up the term (storing the term failed), the shorter
    /// node still may not win; the holder, restarted again with the same disk, may continue
    /// although it never wrote a record of the term it was re-granted.
    #[test]
    fn a_cold_regrant_binds_the_next_candidate_to_the_holder_disk() {
        let g = Grant {
            term: 2,
            holder: 2,
            incarnation: 9,
        };
        let mut w = Witness::restore(L, 0, Some(g));
        assert!(matches!(
            promote_inc(&mut w, 2 * L, 2, 3, (2, 750), 10),
            Msg::Granted { term: 3, .. }
        ));
        // Incarnation 10 never takes up term 3 (it dies storing it). Node 1 lacks seq 750,
        // which node 2 may have acknowledged in term 2: refused even after the lease.
        assert!(matches!(
            promote_inc(&mut w, 4 * L, 1, 4, (2, 749), 30),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
        // Node 2 comes back with the same disk: its log is the floor, so it continues.
        assert!(matches!(
            promote_inc(&mut w, 4 * L, 2, 4, (2, 750), 11),
            Msg::Granted { term: 4, .. }
        ));
        // Once node 1 holds what node 2's disk held, it may take over as usual.
        assert!(matches!(
            promote_inc(&mut w, 6 * L, 1, 5, (4, 800), 30),
            Msg::Granted { term: 5, .. }
        ));
        // A holder granted the usual way still needs a record of its term on a restart.
        assert!(matches!(
            promote_inc(&mut w, 8 * L, 1, 6, (4, 900), 31),
            Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            }
        ));
    }
}
