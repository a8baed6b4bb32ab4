//! Regression (found by `sequencer/tests/chaos.rs`): the witness forgot what the old term
//! acknowledged alone when it granted a new term, so a standby lacking those records won the
//! term after next when the new holder stepped down before its first renewal.

use tpx_sequencer::proto::{DenyReason, Msg};
use tpx_sequencer::witness::Witness;

const LEASE_NS: u64 = 1_000;

#[test]
fn a_new_term_keeps_what_the_old_one_acknowledged_alone() {
    let mut w = Witness::new(LEASE_NS, 0, None);
    let promote = |node, term, last_term, last_seq| Msg::Promote {
        node,
        term,
        last_seq,
        last_term,
        incarnation: 1,
    };
    // Node 1 holds term 19 and acknowledges up to 17,000 alone (its standby is gone).
    assert!(w.on_message(0, &promote(1, 19, 18, 16_000)).1.granted);
    let renew = Msg::Renew {
        node: 1,
        term: 19,
        solo_upto: 17_000,
        solo_term: 19,
        incarnation: 1,
        standby_incarnation: 0,
    };
    assert!(matches!(
        w.on_message(10, &renew).0,
        Some(Msg::Lease { .. })
    ));
    // Node 1 (restarted, holding all of it) takes term 20, then fails before renewing.
    assert!(w.on_message(5_000, &promote(1, 20, 19, 17_080)).1.granted);
    // Node 2 stopped at 16,631 of term 19: it must not get term 21.
    let (reply, out) = w.on_message(10_000, &promote(2, 21, 19, 16_631));
    assert!(!out.granted, "granted a node lacking acknowledged records");
    assert!(
        matches!(
            reply,
            Some(Msg::Denied {
                reason: DenyReason::MissingAcked,
                ..
            })
        ),
        "{reply:?}"
    );
    // A node holding them may.
    assert!(w.on_message(10_000, &promote(2, 21, 19, 17_000)).1.granted);
}
