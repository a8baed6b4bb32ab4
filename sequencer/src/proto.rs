//! Replication and witness messages (what travels on a [`crate::transport::Transport`]).
//!
//! Little-endian, a kind byte then 7 bytes of zero padding then 8-byte fields; `Append` carries
//! whole `tpx_wire::log_record` records back to back after its fields. These frames only wrap
//! log records between replicas and the witness; the records themselves are the wire format.
//! (They belong in `tpx-wire` once its schema grows a replication channel.)

/// Why the witness refused a promotion or a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DenyReason {
    /// The asked term is not above the witness's: the asker is behind.
    StaleTerm = 1,
    /// The current primary's lease has not expired yet.
    LeaseHeld = 2,
    /// The asker lacks records the primary acknowledged alone (see `Renew::solo_upto`).
    MissingAcked = 3,
}

impl DenyReason {
    fn from_u8(v: u8) -> Option<DenyReason> {
        Some(match v {
            1 => DenyReason::StaleTerm,
            2 => DenyReason::LeaseHeld,
            3 => DenyReason::MissingAcked,
            _ => return None,
        })
    }
}

/// One message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// Standby -> primary, on (re)connecting: where my log ends.
    Hello {
        term: u64,
        last_seq: u64,
        last_term: u64,
        /// The standby's process (see `Promote`): the primary names it to the witness before
        /// its receipts count (see `Renew`).
        incarnation: u64,
        /// The newest entries of the standby's term history, `(term, first_seq)` pairs as
        /// 16 little-endian bytes each, oldest first (see [`term_pairs`]): the primary finds
        /// where the two logs diverge from them.
        terms: &'a [u8],
    },
    /// Primary -> standby, the answer to `Hello`: keep records up to `keep_seq` (drop any after
    /// it), records from `keep_seq + 1` follow.
    Welcome { term: u64, keep_seq: u64 },
    /// Primary -> standby: records (the next ones the standby lacks).
    Append {
        term: u64,
        commit_seq: u64,
        records: &'a [u8],
    },
    /// Primary -> standby when idle.
    Heartbeat {
        term: u64,
        last_seq: u64,
        commit_seq: u64,
    },
    /// Standby -> primary: what I hold (`received_seq`) and what is on my disk.
    Ack {
        term: u64,
        received_seq: u64,
        durable_seq: u64,
    },
    /// Any -> a peer with a lower term: the term moved on; `primary` holds it.
    NewTerm { term: u64, primary: u32 },
    /// Node -> witness: make me primary of `term`; my log ends at `last_seq`, a record of
    /// `last_term`. `incarnation`: a random id the node's process chose at start (non-zero), so
    /// the witness tells a restarted holder from the live one.
    Promote {
        node: u32,
        term: u64,
        last_seq: u64,
        last_term: u64,
        incarnation: u64,
    },
    /// Primary -> witness: extend my lease; records up to `solo_upto` may be acknowledged
    /// without the standby holding them (0: none); `solo_term` is the term of the record at
    /// `solo_upto` (0 with it).
    Renew {
        node: u32,
        term: u64,
        solo_upto: u64,
        solo_term: u64,
        /// The holder's process (see `Promote`): only the process granted the term renews it.
        incarnation: u64,
        /// The standby process whose receipt the primary counts (`replicated`), named once it
        /// holds everything acknowledged so far (0: none yet). The witness refuses any other
        /// process of that node a term; the primary counts that standby's receipts only once a
        /// `Lease` echoed it.
        standby_incarnation: u64,
    },
    /// Witness -> node: you are primary of `term`.
    Granted { term: u64, lease_ns: u64 },
    /// Witness -> primary: lease extended; `solo_upto` recorded.
    Lease {
        term: u64,
        solo_upto: u64,
        lease_ns: u64,
        /// The `standby_incarnation` the witness recorded.
        standby_incarnation: u64,
    },
    /// Witness -> node: refused; the witness's term and who holds it.
    Denied {
        term: u64,
        holder: u32,
        reason: DenyReason,
    },
}

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const APPEND: u8 = 3;
const HEARTBEAT: u8 = 4;
const ACK: u8 = 5;
const NEW_TERM: u8 = 6;
const PROMOTE: u8 = 16;
const RENEW: u8 = 17;
const GRANTED: u8 = 18;
const LEASE: u8 = 19;
const DENIED: u8 = 20;

/// Encodes `(term, first_seq)` pairs for [`Msg::Hello`] into `out` (cleared first).
pub fn encode_terms(terms: &[(u64, u64)], out: &mut Vec<u8>) {
    out.clear();
    for &(t, f) in terms {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&f.to_le_bytes());
    }
}

/// The `(term, first_seq)` pairs of a [`Msg::Hello`].
pub fn term_pairs(b: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    b.chunks_exact(16).map(|c| {
        let mut t = [0u8; 8];
        let mut f = [0u8; 8];
        t.copy_from_slice(&c[..8]);
        f.copy_from_slice(&c[8..]);
        (u64::from_le_bytes(t), u64::from_le_bytes(f))
    })
}

fn head(out: &mut Vec<u8>, kind: u8) {
    out.clear();
    out.push(kind);
    out.extend_from_slice(&[0; 7]);
}

fn w(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn r(b: &[u8], i: usize) -> Option<u64> {
    let s = b.get(8 + 8 * i..16 + 8 * i)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

impl<'a> Msg<'a> {
    /// Encodes into `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Msg::Hello {
                term,
                last_seq,
                last_term,
                incarnation,
                terms,
            } => {
                head(out, HELLO);
                w(out, term);
                w(out, last_seq);
                w(out, last_term);
                w(out, incarnation);
                out.extend_from_slice(terms);
            }
            Msg::Welcome { term, keep_seq } => {
                head(out, WELCOME);
                w(out, term);
                w(out, keep_seq);
            }
            Msg::Append {
                term,
                commit_seq,
                records,
            } => {
                head(out, APPEND);
                w(out, term);
                w(out, commit_seq);
                out.extend_from_slice(records);
            }
            Msg::Heartbeat {
                term,
                last_seq,
                commit_seq,
            } => {
                head(out, HEARTBEAT);
                w(out, term);
                w(out, last_seq);
                w(out, commit_seq);
            }
            Msg::Ack {
                term,
                received_seq,
                durable_seq,
            } => {
                head(out, ACK);
                w(out, term);
                w(out, received_seq);
                w(out, durable_seq);
            }
            Msg::NewTerm { term, primary } => {
                head(out, NEW_TERM);
                w(out, term);
                w(out, u64::from(primary));
            }
            Msg::Promote {
                node,
                term,
                last_seq,
                last_term,
                incarnation,
            } => {
                head(out, PROMOTE);
                w(out, u64::from(node));
                w(out, term);
                w(out, last_seq);
                w(out, last_term);
                w(out, incarnation);
            }
            Msg::Renew {
                node,
                term,
                solo_upto,
                solo_term,
                incarnation,
                standby_incarnation,
            } => {
                head(out, RENEW);
                w(out, u64::from(node));
                w(out, term);
                w(out, solo_upto);
                w(out, solo_term);
                w(out, incarnation);
                w(out, standby_incarnation);
            }
            Msg::Granted { term, lease_ns } => {
                head(out, GRANTED);
                w(out, term);
                w(out, lease_ns);
            }
            Msg::Lease {
                term,
                solo_upto,
                lease_ns,
                standby_incarnation,
            } => {
                head(out, LEASE);
                w(out, term);
                w(out, solo_upto);
                w(out, lease_ns);
                w(out, standby_incarnation);
            }
            Msg::Denied {
                term,
                holder,
                reason,
            } => {
                head(out, DENIED);
                w(out, term);
                w(out, u64::from(holder));
                w(out, reason as u64);
            }
        }
    }

    /// Decodes one message; `None` for anything malformed.
    pub fn decode(b: &'a [u8]) -> Option<Msg<'a>> {
        let kind = *b.first()?;
        let n32 = |i| r(b, i).and_then(|v| u32::try_from(v).ok());
        Some(match kind {
            HELLO => Msg::Hello {
                term: r(b, 0)?,
                last_seq: r(b, 1)?,
                last_term: r(b, 2)?,
                incarnation: r(b, 3)?,
                terms: b.get(40..).filter(|t| t.len() % 16 == 0)?,
            },
            WELCOME => Msg::Welcome {
                term: r(b, 0)?,
                keep_seq: r(b, 1)?,
            },
            APPEND => Msg::Append {
                term: r(b, 0)?,
                commit_seq: r(b, 1)?,
                records: b.get(24..)?,
            },
            HEARTBEAT => Msg::Heartbeat {
                term: r(b, 0)?,
                last_seq: r(b, 1)?,
                commit_seq: r(b, 2)?,
            },
            ACK => Msg::Ack {
                term: r(b, 0)?,
                received_seq: r(b, 1)?,
                durable_seq: r(b, 2)?,
            },
            NEW_TERM => Msg::NewTerm {
                term: r(b, 0)?,
                primary: n32(1)?,
            },
            PROMOTE => Msg::Promote {
                node: n32(0)?,
                term: r(b, 1)?,
                last_seq: r(b, 2)?,
                last_term: r(b, 3)?,
                incarnation: r(b, 4)?,
            },
            RENEW => Msg::Renew {
                node: n32(0)?,
                term: r(b, 1)?,
                solo_upto: r(b, 2)?,
                solo_term: r(b, 3)?,
                incarnation: r(b, 4)?,
                standby_incarnation: r(b, 5)?,
            },
            GRANTED => Msg::Granted {
                term: r(b, 0)?,
                lease_ns: r(b, 1)?,
            },
            LEASE => Msg::Lease {
                term: r(b, 0)?,
                solo_upto: r(b, 1)?,
                lease_ns: r(b, 2)?,
                standby_incarnation: r(b, 3)?,
            },
            DENIED => Msg::Denied {
                term: r(b, 0)?,
                holder: n32(1)?,
                reason: DenyReason::from_u8(u8::try_from(r(b, 2)?).ok()?)?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let recs = [1u8, 2, 3];
        let mut hello_terms = Vec::new();
        encode_terms(&[(1, 1), (3, 40)], &mut hello_terms);
        assert_eq!(
            term_pairs(&hello_terms).collect::<Vec<_>>(),
            [(1, 1), (3, 40)]
        );
        let all = [
            Msg::Hello {
                term: 1,
                last_seq: 2,
                last_term: 3,
                incarnation: 12,
                terms: &hello_terms,
            },
            Msg::Welcome {
                term: 4,
                keep_seq: 5,
            },
            Msg::Append {
                term: 1,
                commit_seq: 9,
                records: &recs,
            },
            Msg::Heartbeat {
                term: 1,
                last_seq: 2,
                commit_seq: 1,
            },
            Msg::Ack {
                term: 1,
                received_seq: 7,
                durable_seq: 6,
            },
            Msg::NewTerm {
                term: 3,
                primary: 2,
            },
            Msg::Promote {
                node: 2,
                term: 3,
                last_seq: 10,
                last_term: 2,
                incarnation: 77,
            },
            Msg::Renew {
                node: 1,
                term: 2,
                solo_upto: 7,
                solo_term: 1,
                incarnation: 78,
                standby_incarnation: 79,
            },
            Msg::Granted {
                term: 3,
                lease_ns: 5,
            },
            Msg::Lease {
                term: 3,
                solo_upto: 4,
                lease_ns: 5,
                standby_incarnation: 79,
            },
            Msg::Denied {
                term: 3,
                holder: 1,
                reason: DenyReason::LeaseHeld,
            },
        ];
        let mut buf = Vec::new();
        for m in all {
            m.encode(&mut buf);
            assert_eq!(Msg::decode(&buf), Some(m));
        }
        assert_eq!(Msg::decode(&[99]), None);
        assert_eq!(Msg::decode(&[1, 0, 0]), None);
        // A Hello whose term history is not whole pairs is refused.
        Msg::Hello {
            term: 1,
            last_seq: 2,
            last_term: 3,
            incarnation: 12,
            terms: &hello_terms,
        }
        .encode(&mut buf);
        buf.push(0);
        assert_eq!(Msg::decode(&buf), None);
    }

    /// Bytes from a peer: every cut and every single-byte change of every message decodes to
    /// `None` or to a message that re-encodes to the same bytes, without panicking.
    #[test]
    fn damaged_frames_never_panic() {
        let mut terms = Vec::new();
        encode_terms(&[(1, 1), (2, 9)], &mut terms);
        let msgs = [
            Msg::Hello {
                term: 1,
                last_seq: 2,
                last_term: 3,
                incarnation: 12,
                terms: &terms,
            },
            Msg::Append {
                term: 1,
                commit_seq: 9,
                records: &[7; 20],
            },
            Msg::Denied {
                term: 3,
                holder: 1,
                reason: DenyReason::MissingAcked,
            },
            Msg::Promote {
                node: 2,
                term: 3,
                last_seq: 10,
                last_term: 2,
                incarnation: 77,
            },
        ];
        let (mut buf, mut again) = (Vec::new(), Vec::new());
        for m in msgs {
            m.encode(&mut buf);
            let mut cases: Vec<Vec<u8>> = (0..buf.len()).map(|n| buf[..n].to_vec()).collect();
            for i in 0..buf.len() {
                for x in [0x01u8, 0x80, 0xFF] {
                    let mut b = buf.clone();
                    b[i] ^= x;
                    cases.push(b);
                }
            }
            for b in &cases {
                if let Some(d) = Msg::decode(b) {
                    d.encode(&mut again);
                    assert_eq!(Msg::decode(&again), Some(d));
                }
            }
        }
    }
}
