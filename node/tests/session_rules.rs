//! The session rules of PROTOCOL.md, over real TCP: a login of another version, unsequenced
//! answers outside the numbered stream, and what `DuplicateClientOrderId` means.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use tpx_client::{req, Client, ClientError};
use tpx_wire::enums::{LoginRejectReason, RejectReason, Side};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::Login;

/// A `Login` whose header says version 2: `LoginRejected(UnsupportedVersion)`, then the node
/// closes (before: `SessionReject(UnsupportedVersion)` and the connection stayed open).
#[test]
fn a_login_of_another_version_is_rejected_and_closed() {
    let node = single_core_node();
    let mut s = TcpStream::connect(node.addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = [0u8; 64];
    let n = ClientMessage::Login(Login {
        account: 1,
        session_id: 1,
        requested_next_seq: 1,
        token: tpx_client::token_from_str("tok-1"),
    })
    .encode(&mut bytes)
    .unwrap();
    bytes[6] = 2; // header.version
    s.write_all(&bytes[..n]).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    match ServerMessage::decode(&got[..16]).unwrap() {
        ServerMessage::LoginRejected(r) => {
            assert_eq!(r.reason, LoginRejectReason::UnsupportedVersion)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got.len(), 16, "the connection closes after the reject");
}

/// Throttled answers carry `seq` 0 and are not in the numbered stream: a reconnect replays
/// the sequenced replies only, numbered without gaps.
#[test]
fn unsequenced_answers_stay_out_of_the_numbered_stream() {
    let node = single_core_node();
    let mut c = login(&node, 9); // 5 a second, burst 5
    for cl in 1..=8 {
        c.queue(&req::enter(limit(cl, 1, Side::Buy, 50_000, 1)));
    }
    c.flush_blocking(WAIT).unwrap();
    let mut numbered = Vec::new();
    let mut throttled = 0;
    for _ in 0..8 {
        match next(&mut c) {
            ServerMessage::OrderAccepted(a) => numbered.push(a.seq),
            ServerMessage::OrderRejected(r) if r.reason == RejectReason::Throttled => {
                assert_eq!(r.seq, 0);
                throttled += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled > 0);
    let n = numbered.len() as u64;
    assert_eq!(numbered, (1..=n).collect::<Vec<_>>());
    let cfg = c.config().clone();
    drop(c);
    std::thread::sleep(Duration::from_millis(50));
    let mut c = Client::connect_at(cfg, 1).unwrap();
    let replayed: Vec<u64> = (0..n).map(|_| next(&mut c).seq().unwrap()).collect();
    assert_eq!(replayed, numbered);
    assert!(matches!(
        c.recv(Duration::from_millis(200)),
        Err(ClientError::Timeout)
    ));
}

/// `DuplicateClientOrderId` is the log's high-water mark per account and shard: an id at or
/// below the highest the account ever sent on the shard is refused (unsequenced, seq 0) even
/// when no order with that id is live, and whichever session of the account sent the original.
#[test]
fn duplicate_client_order_id_is_the_accounts_high_water_mark() {
    let node = single_core_node();
    let mut s1 = login(&node, 1);
    // An IOC that does not rest: nothing of id 10 is live afterwards.
    let mut ioc = limit(10, 1, Side::Buy, 50_000, 1);
    ioc.tif = tpx_wire::enums::TimeInForce::Ioc;
    s1.send(&req::enter(ioc)).unwrap();
    until(&mut s1, |m| matches!(m, ServerMessage::OrderCancelled(_)));
    // Another session of the account, ids 5 and 10: below or at the account's mark.
    let mut s2 = Client::connect(cfg(&node, 1, 2)).unwrap();
    for cl in [5, 10] {
        s2.send(&req::enter(limit(cl, 1, Side::Buy, 49_000, 1)))
            .unwrap();
        match next(&mut s2) {
            ServerMessage::OrderRejected(r) => assert_eq!(
                (r.seq, r.cl_ord_id, r.reason),
                (0, cl, RejectReason::DuplicateClientOrderId)
            ),
            other => panic!("{other:?}"),
        }
    }
    // Above it: sequenced, and the session's numbering starts at 1.
    s2.send(&req::enter(limit(11, 1, Side::Buy, 49_000, 1)))
        .unwrap();
    assert!(matches!(next(&mut s2), ServerMessage::OrderAccepted(a) if a.seq == 1));
}
