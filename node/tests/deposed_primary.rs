//! A primary that is deposed (frozen with SIGSTOP past the failover timeout, so the witness
//! grants the next term to its standby) and then resumes becomes standby and applies the new
//! primary's records. It must not send its clients the replies of those records: as standby
//! it applies records the new term has not acknowledged yet (and may still cut), so such a
//! reply is one no log backs. It logs every session out with `Logout(Failover)` and closes
//! the connection; the client resumes on the new primary, which replays every reply it missed
//! exactly once. With real `tpx` processes over TCP (PROTOCOL.md, "Sessions": "Failover").

use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError, Event, FailoverClient};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::enums::{LogoutReason, OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{login_retrying, Pair, WAIT};

fn limit(cl: u64, side: Side, price: i64, qty: u64) -> EnterOrder {
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

fn config(addr: std::net::SocketAddr, account: u32) -> ClientConfig {
    ClientConfig::new(
        addr,
        account,
        1,
        token_from_str(&format!("demo-token-{account}")),
    )
}

/// The next `n` sequenced replies (heartbeats skipped).
fn take(c: &mut Client, n: usize) -> Vec<ServerMessage> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < deadline, "only {got:?}");
        match c.recv(Duration::from_millis(200)) {
            Ok(m) if m.seq().is_some_and(|s| s > 0) => got.push(m),
            Ok(_) | Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}; got {got:?}"),
        }
    }
    got
}

/// Everything `c` receives until the node closes the connection (or `limit` passes): the
/// messages and how it ended.
fn until_closed(c: &mut Client, limit: Duration) -> (Vec<ServerMessage>, Option<ClientError>) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match c.recv(Duration::from_millis(100)) {
            Ok(ServerMessage::Heartbeat(_)) | Err(ClientError::Timeout) => {}
            Ok(m) => got.push(m),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

fn write_accounts(dir: &std::path::Path) {
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(3), 1_000_000)).unwrap(),
    )
    .unwrap();
}

/// Freezes the primary until the standby has taken over, and has the new primary fill account
/// 1's resting sell (5 at 50 000) with account 2's buy; resumes the old primary and waits until
/// it follows the new one.
fn depose_and_trade(pair: &mut Pair) {
    pair.primary.signal(libc::SIGSTOP);
    pair.standby.expect("ROLE primary node=2");
    let mut b = login_retrying(config(pair.entry[1], 2), 1);
    b.send(&req::enter(limit(1, Side::Buy, 50_000, 5))).unwrap();
    let got = take(&mut b, 2);
    assert!(matches!(got[0], ServerMessage::OrderAccepted(_)), "{got:?}");
    assert!(
        matches!(got[1], ServerMessage::OrderExecuted(x) if x.qty == 5),
        "{got:?}"
    );
    pair.primary.signal(libc::SIGCONT);
}

/// Heartbeats are not what ends the old connection: the frozen node must not lapse the
/// client's session for silence it could not read.
const TOP: &str = "heartbeat_timeout_ms = 20000\n";

#[test]
fn a_deposed_primary_logs_its_sessions_out_and_sends_no_reply() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let mut pair = Pair::start(dir.path(), TOP, |_| String::new());

    let mut a = login_retrying(config(pair.entry[0], 1), 1);
    a.send(&req::enter(limit(1, Side::Sell, 50_000, 5)))
        .unwrap();
    let ack = take(&mut a, 1);
    assert!(
        matches!(ack[0], ServerMessage::OrderAccepted(x) if x.seq == 1),
        "{ack:?}"
    );

    depose_and_trade(&mut pair);
    pair.primary.expect("ROLE standby node=1");
    // The old primary applies the fill as standby: its client gets no reply of it, only the
    // `Logout(Failover)` and the connection's end.
    let (got, end) = until_closed(&mut a, Duration::from_secs(10));
    assert!(
        got.iter().all(|m| m.seq().is_none_or(|s| s == 0)),
        "a reply from the deposed primary: {got:?}"
    );
    assert!(
        matches!(got[..], [ServerMessage::Logout(l)] if l.reason == LogoutReason::Failover),
        "{got:?}"
    );
    assert!(
        matches!(end, Some(ClientError::Closed(_) | ClientError::Io(_))),
        "the connection stays open: {end:?}"
    );
    // The old primary refuses the session now (`NotPrimary`)...
    assert!(matches!(
        Client::connect_at(config(pair.entry[0], 1), 2),
        Err(ClientError::LoginRejected(
            tpx_wire::enums::LoginRejectReason::NotPrimary
        ))
    ));
    // ...and the new one replays the fill, exactly once.
    let mut a = login_retrying(config(pair.entry[1], 1), 2);
    let missed = take(&mut a, 1);
    assert!(
        matches!(missed[0], ServerMessage::OrderExecuted(x)
            if x.seq == 2 && x.cl_ord_id == 1 && x.qty == 5 && x.leaves_qty == 0),
        "{missed:?}"
    );
    let (rest, _) = until_closed(&mut a, Duration::from_millis(500));
    assert!(rest.is_empty(), "exactly once: {rest:?}");
}

/// `FailoverClient` fails over at the deposed primary's `Logout(Failover)` and gets the fill
/// from the new primary's replay.
#[test]
fn a_failover_client_moves_to_the_new_primary_at_the_logout() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let mut pair = Pair::start(dir.path(), TOP, |_| String::new());

    let mut a = FailoverClient::connect(pair.entry.to_vec(), config(pair.entry[0], 1)).unwrap();
    a.failover_timeout = WAIT;
    a.send(&req::enter(limit(1, Side::Sell, 50_000, 5)))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no ack");
        if let Ok(Event::Reply(ServerMessage::OrderAccepted(x))) =
            a.recv(Duration::from_millis(200))
        {
            assert_eq!(x.seq, 1);
            break;
        }
    }
    assert_eq!(a.endpoint(), 0);

    depose_and_trade(&mut pair);
    let mut events = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !events
        .iter()
        .any(|e| matches!(e, Event::Reply(ServerMessage::OrderExecuted(_))))
    {
        assert!(Instant::now() < deadline, "no fill: {events:?}");
        match a.recv(Duration::from_millis(200)) {
            Ok(Event::Reply(ServerMessage::Heartbeat(_))) | Err(ClientError::Timeout) => {}
            Ok(e) => events.push(e),
            Err(e) => panic!("{e}; {events:?}"),
        }
    }
    assert_eq!(a.endpoint(), 1, "{events:?}");
    assert!(
        matches!(
            events[..],
            [
                Event::FailedOver { endpoint: 1, resent: 0 },
                Event::Reply(ServerMessage::OrderExecuted(x))
            ] if x.seq == 2 && x.qty == 5
        ),
        "the logout is not passed on, the fill comes once, from the new primary: {events:?}"
    );
}
