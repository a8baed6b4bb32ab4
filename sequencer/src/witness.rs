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
//! The state machine is pure (`on_message(now, from, msg) -> reply`); [`WitnessServer`] runs it
//! over a transport and persists `(term, holder)` before answering a grant.

use std::path::PathBuf;

use crate::clock::Clock;
use crate::proto::{DenyReason, Msg};
use crate::transport::{PeerId, Transport};

/// The witness's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub term: u64,
    /// Node holding `term` (0: none yet).
    pub holder: u32,
    pub lease_until_ns: u64,
    /// A candidate's `(last_term, last_seq)` must be at least `(must_have_term, must_have_seq)`:
    /// the last record the holder acknowledged alone.
    pub must_have_seq: u64,
    pub must_have_term: u64,
    pub lease_ns: u64,
}

/// What a message did to the witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `(term, holder)` changed: persist it before sending the reply.
    pub granted: bool,
}

impl Witness {
    /// A witness starting with a persisted `(term, holder)`: it assumes the holder holds a
    /// fresh lease and may have acknowledged anything alone, until the holder renews.
    pub fn new(lease_ns: u64, now_ns: u64, persisted: Option<(u64, u32)>) -> Witness {
        let (term, holder) = persisted.unwrap_or((0, 0));
        Witness {
            term,
            holder,
            lease_until_ns: if holder != 0 { now_ns + lease_ns } else { 0 },
            must_have_seq: if holder != 0 { u64::MAX } else { 0 },
            must_have_term: if holder != 0 { u64::MAX } else { 0 },
            lease_ns,
        }
    }

    fn deny(&self, reason: DenyReason) -> Msg<'static> {
        Msg::Denied {
            term: self.term,
            holder: self.holder,
            reason,
        }
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
            } => {
                if node == self.holder && term == self.term {
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
                if node != self.holder && self.holder != 0 {
                    if now_ns < self.lease_until_ns {
                        return (Some(self.deny(DenyReason::LeaseHeld)), none);
                    }
                    if (last_term, last_seq) < (self.must_have_term, self.must_have_seq) {
                        return (Some(self.deny(DenyReason::MissingAcked)), none);
                    }
                }
                self.term = term;
                self.holder = node;
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
            } => {
                if node == self.holder && term == self.term {
                    self.lease_until_ns = now_ns + self.lease_ns;
                    self.must_have_seq = solo_upto;
                    self.must_have_term = if solo_upto == 0 { 0 } else { solo_term };
                    (
                        Some(Msg::Lease {
                            term,
                            solo_upto,
                            lease_ns: self.lease_ns,
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

/// Runs a [`Witness`] over a transport, persisting `(term, holder)` in a file.
#[derive(Debug)]
pub struct WitnessServer<T: Transport, C: Clock> {
    pub witness: Witness,
    net: T,
    clock: C,
    state_file: Option<crate::witness_state::WitnessStateFile>,
    /// A state file was asked for but could not be opened: grants are never answered.
    unwritable: bool,
    out: Vec<u8>,
}

/// Reads a persisted `(term, holder)`.
pub fn load_witness_state(path: &std::path::Path) -> Option<(u64, u32)> {
    crate::witness_state::load(path)
}

impl<T: Transport, C: Clock> WitnessServer<T, C> {
    pub fn new(lease_ns: u64, net: T, clock: C, state_file: Option<PathBuf>) -> Self {
        // A state file that cannot be opened: every grant is then refused an answer (as a
        // failed write would be), so the candidate keeps retrying and nobody is promoted on
        // state that cannot be made durable.
        let path_given = state_file.is_some();
        let (state_file, persisted) = match state_file.as_deref() {
            None => (None, None),
            Some(p) => match crate::witness_state::WitnessStateFile::open(p) {
                Ok((f, found)) => (Some(f), found),
                Err(e) => {
                    eprintln!("tpx witness: state file {}: {e}", p.display());
                    (None, load_witness_state(p))
                }
            },
        };
        let unwritable = state_file.is_none() && path_given;
        let witness = Witness::new(lease_ns, clock.now_ns(), persisted);
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
                let stored = !self.unwritable
                    && self
                        .state_file
                        .as_mut()
                        .is_none_or(|f| f.store(self.witness.term, self.witness.holder).is_ok());
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
        let mut w = Witness::new(L, 0, Some((3, 1)));
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
}
