//! Drop copy with real processes: a witness, a primary and a standby `tpx node` (replicated).
//! Account 9 is a drop-copy account watching accounts 1 and 2 (`drop_copy_of` in the accounts
//! file). Its drop-copy session gets an `ExecutionCopy` of every execution report of 1 and 2
//! (accepts, fills on both sides, cancels; not account 3's), numbered in its own stream; it
//! disconnects, the reports go on, the primary is killed, and on the promoted standby the
//! session resumes with its last seq + 1 and gets exactly the copies it missed, then a full
//! replay from seq 1 there equals what the primary sent. The session is read-only, and only a
//! drop-copy account may open one.

use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::drop_copy::ExecutionCopy;
use tpx_wire::enums::{
    CancelReason, ExecType, Liquidity, LoginRejectReason, RejectReason, Side, TimeInForce,
};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{Pair, WAIT};

fn copies(c: &mut Client, n: usize) -> Vec<ExecutionCopy> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{} of {n} copies: {got:?}", got.len());
        match c.recv(left) {
            Ok(ServerMessage::ExecutionCopy(x)) => got.push(x),
            Ok(other) => panic!("not a copy: {other:?}"),
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    got
}

/// Sends `o` and waits for its `OrderAccepted` (or, an IOC, its first answer).
fn place(c: &mut Client, o: EnterOrder) {
    c.send(&req::enter(o)).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left) {
            Ok(ServerMessage::OrderAccepted(a)) if a.cl_ord_id == o.cl_ord_id => return,
            Ok(ServerMessage::OrderRejected(r)) => panic!("{r:?}"),
            Ok(_) | Err(ClientError::Timeout) if !left.is_zero() => {}
            other => panic!("{other:?}"),
        }
    }
}

fn limit(cl: u64, side: Side, price: i64, qty: u64) -> EnterOrder {
    EnterOrder {
        side,
        price,
        qty,
        ..procs::order(cl)
    }
}

#[test]
fn a_drop_copy_session_gets_every_report_of_its_accounts_and_resumes_on_the_standby() {
    let dir = tempfile::tempdir().unwrap();
    let mut accounts = demo_accounts_file(&demo_accounts(9), 1_000_000);
    accounts.account[8].drop_copy_of = vec![1, 2];
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let Pair {
        witness: _witness,
        mut primary,
        mut standby,
        entry: [a1, a2],
        ..
    } = Pair::start(dir.path(), "", |_| String::new());

    let cfg = |addr, account: u32, session: u32, drop_copy: bool| ClientConfig {
        drop_copy,
        ..ClientConfig::new(
            addr,
            account,
            session,
            token_from_str(&format!("demo-token-{account}")),
        )
    };
    // Only a drop-copy account opens a drop-copy session, only with the option, only session 1.
    for (account, session, dc) in [(1, 1, true), (9, 1, false), (9, 2, true)] {
        match Client::connect(cfg(a1, account, session, dc)) {
            Err(ClientError::LoginRejected(LoginRejectReason::NotAuthorized)) => {}
            other => panic!("{account}/{session}/{dc}: {other:?}"),
        }
    }
    let mut dc = Client::connect(cfg(a1, 9, 1, true)).unwrap();
    // Read-only.
    dc.send(&req::enter(procs::order(1))).unwrap();
    match dc.recv(WAIT).unwrap() {
        ServerMessage::OrderRejected(r) => {
            assert_eq!(
                (r.seq, r.reason, r.cl_ord_id),
                (0, RejectReason::NotAuthorized, 1)
            )
        }
        other => panic!("{other:?}"),
    }

    let mut c1 = Client::connect(cfg(a1, 1, 1, false)).unwrap();
    let mut c2 = Client::connect(cfg(a1, 2, 4, false)).unwrap();
    let mut c3 = Client::connect(cfg(a1, 3, 1, false)).unwrap();
    place(&mut c1, limit(1, Side::Sell, 50_000, 2));
    place(&mut c3, limit(1, Side::Buy, 40_000, 1)); // not watched
    place(
        &mut c2,
        EnterOrder {
            tif: TimeInForce::Ioc,
            ..limit(1, Side::Buy, 50_000, 1)
        },
    );
    let first = copies(&mut dc, 4);
    let kinds: Vec<(u32, u32, ExecType, u64)> = first
        .iter()
        .map(|x| (x.account, x.session_id, x.exec_type, x.cl_ord_id))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, 1, ExecType::Accepted, 1),
            (2, 4, ExecType::Accepted, 1),
            (1, 1, ExecType::Executed, 1),
            (2, 4, ExecType::Executed, 1),
        ]
    );
    assert_eq!(
        first.iter().map(|x| x.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let (maker, taker) = (first[2], first[3]);
    assert_eq!(
        (
            maker.side,
            maker.detail,
            maker.price,
            maker.qty,
            maker.leaves_qty
        ),
        (Side::Sell.as_u8(), Liquidity::Maker.as_u8(), 50_000, 1, 1)
    );
    assert_eq!(
        (taker.side, taker.detail, taker.trade_id),
        (Side::Buy.as_u8(), Liquidity::Taker.as_u8(), maker.trade_id)
    );
    // The drop copy goes away; account 1 cancels the rest of its order and places another.
    let resume = dc.next_seq();
    drop(dc);
    c1.send(&req::cancel(1, 0)).unwrap();
    place(&mut c1, limit(2, Side::Sell, 51_000, 3));

    // The standby holds the same streams: kill the primary, resume there.
    std::thread::sleep(Duration::from_millis(200));
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    let mut dc = procs::login_retrying(cfg(a2, 9, 1, true), resume);
    let missed = copies(&mut dc, 2);
    assert_eq!(
        missed
            .iter()
            .map(|x| (x.seq, x.account, x.exec_type, x.cl_ord_id, x.qty))
            .collect::<Vec<_>>(),
        vec![
            (5, 1, ExecType::Cancelled, 1, 1),
            (6, 1, ExecType::Accepted, 2, 3)
        ]
    );
    assert_eq!(missed[0].detail, CancelReason::UserRequested.as_u8());
    match dc.recv(Duration::from_millis(300)) {
        Err(ClientError::Timeout) => {}
        other => panic!("nothing more expected: {other:?}"),
    }
    drop(dc);
    // A full replay on the new primary is what the old one sent, byte for byte.
    let mut again = loop {
        match Client::connect_at(cfg(a2, 9, 1, true), 1) {
            Ok(c) => break c,
            Err(ClientError::LoginRejected(LoginRejectReason::SessionInUse)) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let all = copies(&mut again, 6);
    assert_eq!(all[..4], first[..]);
    assert_eq!(all[4..], missed[..]);

    standby.signal(libc::SIGTERM);
    assert_eq!(standby.wait(), Some(0));
}
