//! `OrderRejected(Unavailable)` means "not known to be sequenced" (PROTOCOL.md,
//! "Acknowledgement"): a primary that steps down answers its unacknowledged requests so, and
//! the new term may keep them. `FailoverClient` used to pass that reject on as the request's
//! final answer: `failover-bench` saw orders a client was told were rejected trade afterwards
//! (3,404 in a 50-kill run). Now it fails over and re-sends. Two scripted servers on loopback
//! play the deposed primary and the new one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use tpx_client::{req, token_from_str, ClientConfig, Event, FailoverClient};
use tpx_wire::enums::{OrderKind, RejectReason, RequestKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::{decode_client, ClientMessage, EnterOrder};
use tpx_wire::replies::{OrderAccepted, OrderRejected, ServerMessage};
use tpx_wire::session::LoginAccepted;

fn send(s: &mut TcpStream, m: ServerMessage) {
    let mut b = [0u8; 256];
    let n = m.encode(&mut b).unwrap();
    s.write_all(&b[..n]).unwrap();
}

/// Reads one client frame (the length is the first two bytes of its header); `None` once the
/// client has gone.
fn read(s: &mut TcpStream) -> Option<ClientMessage> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    let len = u16::from_le_bytes([h[0], h[1]]) as usize;
    let mut b = vec![0u8; len.max(8)];
    b[..8].copy_from_slice(&h);
    s.read_exact(&mut b[8..]).ok()?;
    Some(decode_client(&b).expect("a client frame"))
}

/// Accepts one connection, answers its login, then answers each `EnterOrder` with `answer`.
fn serve(l: TcpListener, answer: fn(u64, u64) -> ServerMessage) -> thread::JoinHandle<Vec<u64>> {
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(matches!(read(&mut s), Some(ClientMessage::Login(_))));
        send(
            &mut s,
            ServerMessage::LoginAccepted(LoginAccepted {
                session_id: 1,
                heartbeat_interval_ms: 1_000,
                next_seq: 1,
            }),
        );
        let mut seen = Vec::new();
        let mut seq = 1;
        while let Some(m) = read(&mut s) {
            if let ClientMessage::EnterOrder(o) = m {
                seen.push(o.cl_ord_id);
                send(&mut s, answer(seq, o.cl_ord_id));
                seq += 1;
            }
        }
        seen
    })
}

fn order(cl: u64) -> EnterOrder {
    EnterOrder {
        cl_ord_id: cl,
        price: 50_000,
        qty: 1,
        instrument: 1,
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
    }
}

#[test]
fn an_unavailable_answer_is_resent_to_the_new_primary() {
    let deposed = TcpListener::bind("127.0.0.1:0").unwrap();
    let new = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoints = vec![deposed.local_addr().unwrap(), new.local_addr().unwrap()];
    let a = serve(deposed, |seq, cl| {
        ServerMessage::OrderRejected(OrderRejected {
            seq,
            timestamp_ns: 1,
            cl_ord_id: cl,
            reason: RejectReason::Unavailable,
            request: RequestKind::EnterOrder,
        })
    });
    let b = serve(new, |seq, cl| {
        ServerMessage::OrderAccepted(OrderAccepted {
            seq,
            timestamp_ns: 1,
            cl_ord_id: cl,
            order_id: 100 + cl,
            price: 50_000,
            qty: 1,
            instrument: 1,
            side: Side::Buy,
        })
    });
    let mut cfg = ClientConfig::new(endpoints[0], 7, 1, token_from_str("tok-7"));
    cfg.login_timeout = Duration::from_secs(2);
    let mut c = FailoverClient::connect(endpoints, cfg).unwrap();
    c.send(&req::enter(order(5))).unwrap();
    let mut events = Vec::new();
    loop {
        let e = c.recv(Duration::from_secs(5)).unwrap();
        events.push(e.clone());
        if matches!(e, Event::Reply(ServerMessage::OrderAccepted(_))) {
            break;
        }
        assert!(
            !matches!(e, Event::Reply(ServerMessage::OrderRejected(_))),
            "the reject was passed on as the answer: {events:?}"
        );
    }
    assert!(
        matches!(
            events[0],
            Event::FailedOver {
                endpoint: 1,
                resent: 1
            }
        ),
        "{events:?}"
    );
    assert_eq!(c.unanswered(), 0);
    drop(c);
    assert_eq!(a.join().unwrap(), vec![5]);
    assert_eq!(b.join().unwrap(), vec![5]);
}
