use super::*;
use crate::gateway::accounts::{demo_accounts, demo_accounts_file, CancelOnDisconnect};
use crate::gateway::routing::Routing;
use crate::msg::Sequenced;
use crate::msg::{Report, ReportKind, Request, ALL_SHARDS};
use crate::shard::apply::Shard;
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::Input;
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::order_entry::{CancelOrder, EnterOrder, MassCancel, ReplaceOrder};

fn accounts() -> Accounts {
    let mut f = demo_accounts_file(&demo_accounts(3), 1_000);
    f.account[2].rate_limit_per_sec = 2;
    f.account[2].burst = Some(2);
    Accounts::from_file(f).unwrap()
}

fn token(id: u32) -> Token {
    crate::gateway::accounts::token_of(&format!("demo-token-{id}"))
}

fn login(account: u32, session_id: u32, next: u64) -> Login {
    Login {
        account,
        session_id,
        requested_next_seq: next,
        token: token(account),
    }
}

/// The tests' session settings: journals of 8, 4 sessions a core, `per_account` an account.
fn settings(per_account: usize) -> SessionSettings {
    SessionSettings {
        heartbeat_interval_ms: 1000,
        journal_capacity: 8,
        max_sessions: 4,
        max_sessions_per_account: per_account,
    }
}

fn table() -> SessionTable {
    SessionTable::new(settings(64), Routing::new(&[(1, 0)], 1))
}

fn order(cl: u64, side: Side, price: i64, qty: u64) -> EnterOrder {
    EnterOrder {
        cl_ord_id: cl,
        price,
        qty,
        instrument: 1,
        side,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
    }
}

fn decode(out: &[(ConnId, Vec<u8>)]) -> Vec<(ConnId, ServerMessage)> {
    out.iter()
        .map(|(c, b)| (*c, ServerMessage::decode(b).unwrap()))
        .collect()
}

fn shard() -> Shard {
    let specs = vec![crate::config::builtin_instruments()[0].spec().unwrap()];
    Shard::new(
        0,
        tpx_engine::EngineConfig {
            instruments: specs,
            max_orders: 64,
            max_accounts: 16,
        },
        None,
    )
    .unwrap()
}

/// Runs forwarded requests through a shard and feeds the reports back.
fn pump(
    t: &mut SessionTable,
    sh: &mut Shard,
    reqs: &mut Vec<Request>,
    out: &mut Vec<(ConnId, Vec<u8>)>,
) {
    for (i, req) in reqs.drain(..).enumerate() {
        let e = Sequenced {
            seq: i as u64 + 1,
            ts_ns: 7,
            req,
        };
        let mut reports = Vec::new();
        sh.apply(&e, |r| reports.push(r));
        for r in reports {
            assert!(t.on_report(&r, out));
        }
    }
}

#[test]
fn login_rules() {
    let a = accounts();
    let mut t = table();
    assert_eq!(
        t.login(
            &a,
            &Login {
                token: token(2),
                ..login(1, 1, 1)
            },
            1,
            0
        )
        .unwrap_err(),
        LoginRejectReason::NotAuthorized
    );
    assert_eq!(
        t.login(&a, &login(1, 1, 5), 1, 0).unwrap_err(),
        LoginRejectReason::SequenceAhead
    );
    let ok = t.login(&a, &login(1, 1, 1), 1, 0).unwrap();
    assert_eq!(ok.replay, 1..1);
    assert_eq!(
        t.login(&a, &login(1, 1, 1), 2, 0).unwrap_err(),
        LoginRejectReason::SessionInUse
    );
    t.disconnect(ok.slot, 1);
    assert!(t.login(&a, &login(1, 1, 1), 2, 0).is_ok());
}

#[test]
fn order_fill_cancel_replace_and_replay() {
    let a = accounts();
    let mut t = table();
    let mut sh = shard();
    let s1 = t.login(&a, &login(1, 1, 1), 10, 0).unwrap().slot;
    let s2 = t.login(&a, &login(2, 1, 1), 20, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut reqs = Vec::new();
    t.on_enter_order(s1, &order(1, Side::Sell, 50_000, 10), 0, 0, &mut out, |r| {
        reqs.push(r);
        true
    });
    t.on_enter_order(s2, &order(1, Side::Buy, 50_000, 4), 0, 0, &mut out, |r| {
        reqs.push(r);
        true
    });
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    let got = decode(&out);
    assert!(matches!(got[0], (10, ServerMessage::OrderAccepted(m)) if m.seq == 1));
    assert!(matches!(got[1], (20, ServerMessage::OrderAccepted(m)) if m.seq == 1));
    assert!(
        matches!(got[2], (10, ServerMessage::OrderExecuted(m)) if m.seq == 2 && m.leaves_qty == 6)
    );
    assert!(
        matches!(got[3], (20, ServerMessage::OrderExecuted(m)) if m.seq == 2 && m.leaves_qty == 0)
    );
    out.clear();
    // Account 2 cannot cancel account 1's order 1 (its own order 1 is filled).
    t.on_cancel_order(
        s2,
        &CancelOrder {
            cl_ord_id: 1,
            remaining_qty: 0,
        },
        0,
        0,
        &mut out,
        |_| panic!("forwarded"),
    );
    assert!(
        matches!(decode(&out)[0], (20, ServerMessage::OrderRejected(m)) if m.reason == RejectReason::UnknownOrder)
    );
    out.clear();
    // Replace with a new id, then cancel by the new id.
    t.on_replace_order(
        s1,
        &ReplaceOrder {
            orig_cl_ord_id: 1,
            new_cl_ord_id: 2,
            price: 50_001,
            qty: 6,
        },
        0,
        0,
        &mut out,
        |r| {
            reqs.push(r);
            true
        },
    );
    t.on_cancel_order(
        s1,
        &CancelOrder {
            cl_ord_id: 2,
            remaining_qty: 0,
        },
        0,
        0,
        &mut out,
        |r| {
            reqs.push(r);
            true
        },
    );
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    let got = decode(&out);
    assert!(
        matches!(got[0], (10, ServerMessage::OrderReplaced(m)) if m.new_cl_ord_id == 2 && m.seq == 3)
    );
    assert!(
        matches!(got[1], (10, ServerMessage::OrderCancelled(m)) if m.cl_ord_id == 2 && m.leaves_qty == 0)
    );
    assert_eq!(t.tracked_orders(), 0);
    // Reconnect with replay from 2.
    t.disconnect(s1, 10);
    let ok = t.login(&a, &login(1, 1, 2), 11, 0).unwrap();
    let replayed: Vec<u64> = t
        .replay(ok.slot, ok.replay)
        .map(|b| ServerMessage::decode(b).unwrap().seq().unwrap())
        .collect();
    assert_eq!(replayed, vec![2, 3, 4]);
}

/// A request of session `session` of `account` taken by another node: the record this node
/// applies names the session, but this node has no connection for it.
fn foreign(account: u32, session: u32, input: Input) -> Request {
    Request::new(session, 0, account, input)
}

/// The replies of a session are a function of the log: a standby (or a node replaying its log)
/// journals them for the session the records name, numbered as the primary numbered them; after
/// a failover that session logs in with its last seq and gets exactly what it missed, fills of
/// its resting orders included; another session of the account neither receives them nor may
/// cancel those orders.
#[test]
fn a_sessions_replies_follow_the_log_on_a_node_that_did_not_take_its_requests() {
    let a = accounts();
    let mut t = table();
    let mut sh = shard();
    let mut out = Vec::new();
    // As a standby: the old primary's records of account 1, session 7.
    let mut reqs = vec![
        foreign(1, 7, Input::EnterOrder(order(1, Side::Sell, 50_000, 10))),
        foreign(1, 7, Input::EnterOrder(order(2, Side::Sell, 50_010, 5))),
        foreign(
            1,
            7,
            Input::ReplaceOrder(ReplaceOrder {
                orig_cl_ord_id: 2,
                new_cl_ord_id: 3,
                price: 50_020,
                qty: 5,
            }),
        ),
        // A record no client session sent (the log's session 0): its order is an orphan.
        foreign(
            1,
            NO_SESSION,
            Input::EnterOrder(order(4, Side::Sell, 50_030, 1)),
        ),
    ];
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    assert!(out.is_empty(), "nothing is delivered on a standby");
    assert_eq!(t.len(), 1, "the log named session 7");
    assert_eq!(t.orphan_orders(), 1, "order 4");
    // Promoted. The client had read reply 1; session 8 of the same account is new.
    let s7 = t.login(&a, &login(1, 7, 2), 10, 0).unwrap();
    let seqs: Vec<u64> = t
        .replay(s7.slot, s7.replay.clone())
        .map(|b| ServerMessage::decode(b).unwrap().seq().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3], "order 2's accept and its replace");
    t.disconnect(s7.slot, 10);
    let s8 = t.login(&a, &login(1, 8, 1), 11, 0).unwrap().slot;
    let s2 = t.login(&a, &login(2, 1, 1), 20, 0).unwrap().slot;
    fn fwd(reqs: &mut Vec<Request>) -> impl FnOnce(Request) -> bool + '_ {
        move |r| {
            reqs.push(r);
            true
        }
    }
    let cancel = |cl| CancelOrder {
        cl_ord_id: cl,
        remaining_qty: 0,
    };
    // Neither another account nor another session of the account can name session 7's
    // orders, nor the orphan; the answers are unsequenced.
    t.on_cancel_order(s2, &cancel(1), 0, 0, &mut out, |_| panic!("forwarded"));
    t.on_cancel_order(s8, &cancel(1), 0, 0, &mut out, |_| panic!("forwarded"));
    t.on_cancel_order(s8, &cancel(4), 0, 0, &mut out, |_| panic!("forwarded"));
    let got = decode(&out);
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|(_, m)| matches!(m, ServerMessage::OrderRejected(m)
        if m.reason == RejectReason::UnknownOrder && m.seq == 0)));
    out.clear();
    // Account 2 trades against order 1 (session 7's) while session 7 is away: journaled for
    // session 7 as its reply 4, not sent to session 8.
    t.on_enter_order(
        s2,
        &order(1, Side::Buy, 50_020, 2),
        0,
        0,
        &mut out,
        fwd(&mut reqs),
    );
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    let got = decode(&out);
    assert!(
        got.iter().all(|(c, _)| *c == 20),
        "only account 2's replies: {got:?}"
    );
    out.clear();
    let s7 = t.login(&a, &login(1, 7, 4), 12, 0).unwrap();
    let missed: Vec<ServerMessage> = t
        .replay(s7.slot, s7.replay.clone())
        .map(|b| ServerMessage::decode(b).unwrap())
        .collect();
    assert!(
        matches!(missed[..], [ServerMessage::OrderExecuted(e)] if e.seq == 4 && e.cl_ord_id == 1 && e.leaves_qty == 8)
    );
    // Session 7 still owns its orders: cancel by id.
    t.on_cancel_order(s7.slot, &cancel(3), 0, 0, &mut out, fwd(&mut reqs));
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    let got = decode(&out);
    assert!(
        matches!(got[0], (12, ServerMessage::OrderCancelled(m)) if m.cl_ord_id == 3 && m.leaves_qty == 0 && m.seq == 5)
    );
    // A new order of session 8 may not reuse a live order's id (the gateway's check).
    out.clear();
    t.on_enter_order(s8, &order(1, Side::Sell, 50_100, 1), 0, 0, &mut out, |_| {
        panic!("forwarded")
    });
    assert!(
        matches!(decode(&out)[0], (11, ServerMessage::OrderRejected(m)) if m.reason == RejectReason::DuplicateClientOrderId && m.seq == 0)
    );
}

#[test]
fn throttle_backpressure_and_id_rules() {
    let a = accounts();
    let mut t = table();
    let s = t.login(&a, &login(3, 1, 1), 1, 0).unwrap().slot;
    let mut out = Vec::new();
    t.on_enter_order(s, &order(5, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| {
        false
    });
    t.on_enter_order(s, &order(5, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| true);
    t.on_enter_order(s, &order(6, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| true);
    let got = decode(&out);
    assert!(
        matches!(got[0].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::Backpressure && m.seq == 0)
    );
    assert!(
        matches!(got[1].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::Throttled && m.seq == 0)
    );
    assert_eq!(got.len(), 2);
    // A second later the bucket has refilled; an old id is refused.
    out.clear();
    t.on_enter_order(
        s,
        &order(5, Side::Buy, 50_000, 1),
        1_000_000_000,
        0,
        &mut out,
        |_| true,
    );
    t.on_enter_order(
        s,
        &order(4, Side::Buy, 50_000, 1),
        1_000_000_000,
        0,
        &mut out,
        |_| true,
    );
    let got = decode(&out);
    assert!(
        matches!(got[0].1, ServerMessage::OrderRejected(m) if m.reason == RejectReason::ClOrdIdNotIncreasing)
    );
}

#[test]
fn mass_cancel_acks_after_every_shard() {
    let a = accounts();
    let mut t = SessionTable::new(settings(64), Routing::new(&[(1, 0), (2, 1)], 2));
    let s = t.login(&a, &login(1, 1, 1), 1, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut fwd = None;
    t.on_mass_cancel(s, &MassCancel { instrument: None }, 0, 0, &mut out, |r| {
        fwd = Some(r);
        true
    });
    let req = fwd.unwrap();
    assert_eq!(req.shard, ALL_SHARDS);
    let done = |cancelled| Report {
        stamps: Default::default(),
        account: 1,
        session: req.session,
        seq: 5,
        ts_ns: 9,
        kind: ReportKind::MassCancelDone {
            tag: req.tag,
            instrument: None,
            cancelled,
        },
    };
    assert!(t.on_report(&done(2), &mut out));
    assert!(out.is_empty());
    assert!(t.on_report(&done(3), &mut out));
    assert!(matches!(decode(&out)[0].1, ServerMessage::MassCancelAck(m) if m.cancelled_count == 5));
}

/// The sequencing stage's own answers (`Unavailable`, "already sequenced") are unsequenced,
/// go to the connected session by `(account, session_id)`, and release the id the gateway
/// recorded when it forwarded the request.
#[test]
fn the_stages_answers_are_unsequenced_and_release_the_pending_id() {
    let a = accounts();
    let mut t = table();
    let s = t.login(&a, &login(1, 4, 1), 3, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut fwd = None;
    t.on_enter_order(s, &order(8, Side::Buy, 50_000, 1), 0, 0, &mut out, |r| {
        fwd = Some(r);
        true
    });
    let req = fwd.unwrap();
    assert_eq!(
        (req.session, req.account),
        (4, 1),
        "the client's session id, for the log"
    );
    assert_eq!(t.tracked_orders(), 1, "pending");
    let answer = Report {
        account: 1,
        session: req.session,
        seq: crate::msg::UNSEQUENCED,
        ts_ns: 5,
        kind: ReportKind::Rejected {
            cl_ord_id: 8,
            reason: RejectReason::Unavailable,
            request: RequestKind::EnterOrder,
        },
        stamps: Default::default(),
    };
    assert!(t.on_report(&answer, &mut out));
    assert!(
        matches!(decode(&out)[..], [(3, ServerMessage::OrderRejected(m))]
        if m.seq == 0 && m.reason == RejectReason::Unavailable && m.cl_ord_id == 8)
    );
    assert_eq!(t.tracked_orders(), 0);
    assert_eq!(t.next_seq(s), 1, "nothing numbered");
}

#[test]
fn cancel_on_disconnect_covers_the_sessions_orders_only() {
    let mut f = demo_accounts_file(&demo_accounts(3), 1_000);
    f.account[1].cancel_on_disconnect = CancelOnDisconnect::Account;
    let a = Accounts::from_file(f).unwrap();
    let mut t = table();
    let mut sh = shard();
    let cod = LoginOptions {
        cancel_on_disconnect: true,
        drop_copy: false,
    };
    let s1 = t.login_with(&a, &login(1, 1, 1), cod, 10, 0).unwrap().slot;
    let s2 = t.login(&a, &login(1, 2, 1), 11, 0).unwrap().slot;
    let (mut out, mut reqs) = (Vec::new(), Vec::new());
    for (slot, cl) in [(s1, 1), (s2, 2), (s1, 3)] {
        t.on_enter_order(
            slot,
            &order(cl, Side::Buy, 40_000, 1),
            0,
            0,
            &mut out,
            |r| {
                reqs.push(r);
                true
            },
        );
    }
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    // One more in flight (forwarded, not yet answered): its cancel follows it.
    t.on_enter_order(s1, &order(4, Side::Buy, 40_000, 1), 0, 0, &mut out, |r| {
        reqs.push(r);
        true
    });
    let mut cancels = Vec::new();
    assert_eq!(t.cancels_on_disconnect(s1, &mut cancels), 3);
    let ids: Vec<(u32, u64)> = cancels
        .iter()
        .map(|r| match r.input {
            Input::CancelOrder(c) => (r.session, c.cl_ord_id),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![(1, 1), (1, 3), (1, 4)]);
    // Session 2 asked for nothing.
    assert_eq!(t.cancels_on_disconnect(s2, &mut Vec::new()), 0);
    // Account 2's setting: one mass cancel of every instrument, as the session's request.
    let s3 = t.login(&a, &login(2, 5, 1), 12, 0).unwrap().slot;
    let mut mass = Vec::new();
    assert_eq!(t.cancels_on_disconnect(s3, &mut mass), 1);
    assert_eq!(
        (mass[0].shard, mass[0].session, mass[0].account),
        (ALL_SHARDS, 5, 2)
    );
    assert!(matches!(
        mass[0].input,
        Input::MassCancel(MassCancel { instrument: None })
    ));
}

#[test]
fn a_query_ends_once_every_shard_asked_has_answered() {
    let a = accounts();
    let mut t = SessionTable::new(settings(64), Routing::new(&[(1, 0), (2, 1)], 2));
    let s = t.login(&a, &login(1, 1, 1), 10, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut asked = Vec::new();
    let q = ClientMessage::QueryOpenOrders(tpx_wire::query::QueryOpenOrders {
        request_id: 77,
        instrument: None,
    });
    t.on_query(s, &q, 0, 0, &mut out, |shard, q| {
        asked.push((shard, q));
        true
    });
    assert_eq!(asked.iter().map(|a| a.0).collect::<Vec<_>>(), vec![0, 1]);
    let tag = asked[0].1.tag;
    let rep = |kind| Report {
        account: 1,
        session: 1,
        seq: crate::msg::UNSEQUENCED,
        ts_ns: 0,
        kind,
        stamps: Default::default(),
    };
    let order = ReportKind::QueryOrder {
        tag,
        cl_ord_id: 5,
        order_id: 9,
        instrument: 2,
        side: Side::Sell,
        price: 3,
        leaves_qty: 4,
    };
    assert!(t.on_report(&rep(order), &mut out));
    let done = |as_of_seq, count| ReportKind::QueryDone {
        tag,
        count,
        as_of_seq,
    };
    assert!(t.on_report(&rep(done(12, 1)), &mut out));
    assert_eq!(out.len(), 1, "no end before the second shard's");
    assert!(t.on_report(&rep(done(10, 0)), &mut out));
    let got = decode(&out);
    match (&got[0].1, &got[1].1) {
        (ServerMessage::OrderStatus(o), ServerMessage::QueryDone(d)) => {
            assert_eq!((o.seq, o.request_id, o.cl_ord_id), (0, 77, 5));
            assert_eq!((d.seq, d.request_id, d.count, d.as_of_seq), (0, 77, 1, 10));
        }
        other => panic!("{other:?}"),
    }
    // Unsequenced: nothing journaled.
    assert_eq!(t.next_seq(s), 1);
    // A late answer of an ended query is not delivered.
    assert!(!t.on_report(&rep(done(13, 0)), &mut out));
}

/// The stage's `Unavailable` answer to account 1 session 4's order `cl_ord_id`.
fn unavailable(cl_ord_id: u64) -> Report {
    Report {
        account: 1,
        session: 4,
        seq: crate::msg::UNSEQUENCED,
        ts_ns: 5,
        kind: ReportKind::Rejected {
            cl_ord_id,
            reason: RejectReason::Unavailable,
            request: RequestKind::EnterOrder,
        },
        stamps: Default::default(),
    }
}

/// Account 1 session 4 sends buy orders `ids` (all forwarded to `fwd`).
fn send_orders(
    t: &mut SessionTable,
    s: u32,
    ids: &[u64],
    out: &mut Vec<(ConnId, Vec<u8>)>,
    fwd: &mut Vec<Request>,
) {
    for &cl in ids {
        t.on_enter_order(s, &order(cl, Side::Buy, 50_000, 1), 0, 0, out, |r| {
            fwd.push(r);
            true
        });
    }
}

/// Found by logging in to `tpx up` with account 1 and session ids 1, 2, 3, ...: 4,095 logins in
/// a second filled the core's session table, and every other member's new session was then
/// refused `UnknownSession`. An account may open at most `max_sessions_per_account` sessions
/// by logging in; the others' stay open to them; a session the log names (its records came
/// from another node) is never refused.
#[test]
fn one_account_cannot_fill_the_session_table() {
    let a = accounts();
    let mut t = SessionTable::new(settings(2), Routing::new(&[(1, 0)], 1));
    let first = t.login(&a, &login(1, 1, 1), 1, 0).unwrap().slot;
    assert!(t.login(&a, &login(1, 2, 1), 2, 0).is_ok());
    assert!(matches!(
        t.login(&a, &login(1, 3, 1), 3, 0),
        Err(LoginRejectReason::UnknownSession)
    ));
    // Another member still opens a session.
    assert!(t.login(&a, &login(2, 1, 1), 4, 0).is_ok());
    // An existing session of account 1 logs in again (connection 1 gone, connection 5).
    t.disconnect(first, 1);
    assert!(t.login(&a, &login(1, 1, 1), 5, 0).is_ok());
    // A session the log names is made whatever the account's count.
    assert!(t.log_session(1, 9).is_some());
}

/// Issue 17: `Unavailable` is no answer: the client re-sends the request (and every later one
/// without an answer) after its next login, perhaps to this node again. The re-send must reach
/// the sequencing stage (which sequences it, or answers "already sequenced" if the log holds
/// it), not be refused `ClOrdIdNotIncreasing` for an id this gateway forwarded once; and the
/// stage's fence (`sequencing/fence.rs`) is lifted only by that re-send.
#[test]
fn a_request_refused_unavailable_may_be_sent_again() {
    let a = accounts();
    let mut t = table();
    let s = t.login(&a, &login(1, 4, 1), 3, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut fwd = Vec::new();
    send_orders(&mut t, s, &[8, 9], &mut out, &mut fwd);
    assert_eq!(fwd.len(), 2);
    for cl in [8, 9] {
        assert!(t.on_report(&unavailable(cl), &mut out));
    }
    out.clear();
    fwd.clear();
    // The client's next login re-sends 8 and 9, in order.
    t.disconnect(s, 3);
    let s = t.login(&a, &login(1, 4, 1), 5, 0).unwrap().slot;
    out.clear();
    send_orders(&mut t, s, &[8, 9], &mut out, &mut fwd);
    assert!(decode(&out).is_empty(), "refused again: {:?}", decode(&out));
    assert_eq!(fwd.len(), 2, "both re-sends reach the stage");
    // Ids that were answered (here: a new one, then an old one) are still refused.
    out.clear();
    t.on_enter_order(s, &order(7, Side::Buy, 50_000, 1), 0, 0, &mut out, |_| true);
    assert!(
        matches!(decode(&out)[..], [(5, ServerMessage::OrderRejected(m))]
        if m.reason == RejectReason::ClOrdIdNotIncreasing)
    );
}

/// An order still pending at the stage (sent, not answered) when the client re-sends it is
/// not "already sequenced": the gateway answers `DuplicateClientOrderId` itself only for a
/// live order's id and sends the re-send on; the stage decides. Before, the pending entry made
/// the gateway answer it duplicate, which a client takes as done though no log may hold it
/// (`tpx-sim` seeds 501846 and 501890).
#[test]
fn a_resent_order_still_pending_is_not_answered_duplicate_by_the_gateway() {
    let a = accounts();
    let mut t = table();
    let s = t.login(&a, &login(1, 4, 1), 3, 0).unwrap().slot;
    let mut out = Vec::new();
    let mut fwd = Vec::new();
    send_orders(&mut t, s, &[8, 9], &mut out, &mut fwd);
    // The stage refuses 8 `Unavailable`; 9 is still in flight there (no answer yet).
    assert!(t.on_report(&unavailable(8), &mut out));
    t.disconnect(s, 3);
    let s = t.login(&a, &login(1, 4, 1), 5, 0).unwrap().slot;
    out.clear();
    fwd.clear();
    send_orders(&mut t, s, &[8, 9], &mut out, &mut fwd);
    let dup = decode(&out).into_iter().any(|(_, m)| {
        matches!(m, ServerMessage::OrderRejected(r) if r.reason == RejectReason::DuplicateClientOrderId)
    });
    assert!(
        !dup,
        "a pending order answered duplicate: {:?}",
        decode(&out)
    );
    assert_eq!(fwd.len(), 2, "both re-sends reach the stage");
}

/// A node that stops being primary logs every session out (`Logout(Failover)`) before the
/// next report, and from then on journals replies without delivering them; the client gets
/// them by replay (from the new primary, or here again once this node serves).
#[test]
fn a_deposed_node_logs_its_sessions_out_and_delivers_no_reply() {
    let a = accounts();
    let mut t = table();
    let mut sh = shard();
    let s1 = t.login(&a, &login(1, 1, 1), 10, 0).unwrap().slot;
    let s2 = t.login(&a, &login(2, 1, 1), 20, 0).unwrap().slot;
    assert_eq!(t.connected(), 2);
    let mut out = Vec::new();
    let mut reqs = Vec::new();
    t.on_enter_order(s1, &order(1, Side::Sell, 50_000, 10), 0, 0, &mut out, |r| {
        reqs.push(r);
        true
    });
    pump(&mut t, &mut sh, &mut reqs, &mut out);
    assert!(matches!(decode(&out)[..], [(10, ServerMessage::OrderAccepted(m))] if m.seq == 1));
    out.clear();
    let mut ended = Vec::new();
    assert_eq!(t.log_out_unless_primary(|| true, &mut out, &mut ended), 0);
    assert!(out.is_empty() && ended.is_empty());
    // The buy that fills it is a record the node applies after it stepped down.
    t.on_enter_order(s2, &order(1, Side::Buy, 50_000, 4), 0, 0, &mut out, |r| {
        reqs.push(r);
        true
    });
    let e = Sequenced {
        seq: 2,
        ts_ns: 7,
        req: reqs.pop().unwrap(),
    };
    let mut reports = Vec::new();
    sh.apply(&e, |r| reports.push(r));
    assert!(reports.len() >= 3, "{reports:?}");
    for r in &reports {
        assert!(t.deliver_report(r, || false, &mut out, &mut ended));
    }
    let bye = ServerMessage::Logout(tpx_wire::session::Logout {
        reason: tpx_wire::enums::LogoutReason::Failover,
    });
    assert_eq!(decode(&out), vec![(10, bye), (20, bye)], "the logouts only");
    assert_eq!(ended, vec![10, 20]);
    assert_eq!(t.connected(), 0);
    assert_eq!(t.session(s1).conn, None);
    // Journaled all the same: reply 2 of session 1 is the fill.
    assert_eq!(t.next_seq(s1), 3);
    assert_eq!(t.next_seq(s2), 3);
    // Nothing is connected any more: no logout twice, and the primary flag is not read.
    out.clear();
    assert_eq!(
        t.log_out_unless_primary(|| panic!("asked"), &mut out, &mut ended),
        0
    );
    let ok = t.login(&a, &login(1, 1, 2), 11, 0).unwrap();
    let missed: Vec<ServerMessage> = t
        .replay(ok.slot, ok.replay)
        .map(|b| ServerMessage::decode(b).unwrap())
        .collect();
    assert!(
        matches!(missed[..], [ServerMessage::OrderExecuted(x)] if x.seq == 2 && x.cl_ord_id == 1 && x.qty == 4),
        "{missed:?}"
    );
    assert_eq!(t.connected(), 1);
    t.disconnect(ok.slot, 11);
    t.disconnect(ok.slot, 11);
    assert_eq!(t.connected(), 0, "a second disconnect counts nothing");
}
