//! Cancel on disconnect with real processes: a witness, a primary and a standby `tpx node`
//! (replicated), market data from the primary's shard on `aeron:ipc` read by a feed handler.
//!
//! Account 1's session 1 logs in with `LoginWithOptions { cancel_on_disconnect }`, its session
//! 2 with a plain `Login`; account 2 never asks; account 3 has `cancel_on_disconnect =
//! "account"` in the accounts file. Closing sockets must cancel exactly: session 1's orders
//! (not session 2's, not account 2's), and every order of account 3 when one of its sessions
//! goes. The cancels are log records: market data shows the deletes, the standby's log holds
//! them, and after the primary is killed the promoted standby replays each session's cancels
//! (made from its own copy of the log) when it logs in again. A heartbeat lapse counts as a
//! disconnect (a single node, in `heartbeat_lapse_cancels`).

use std::path::Path;
use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_feed::FeedHandler;
use tpx_md::{AeronClient, AeronSetup};
use tpx_node::config::md::MdConfig;
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file, CancelOnDisconnect};
use tpx_node::shard::md::launch_driver;
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::enums::CancelReason;
use tpx_wire::log_record::Input;
use tpx_wire::replies::ServerMessage;

#[allow(dead_code)]
#[path = "common/feed.rs"]
mod feed;
#[allow(dead_code)]
#[path = "common/md_orders.rs"]
mod md_orders;
mod procs;

use feed::feed_config_of;
use md_orders::{feed_until, place};
use procs::{free_port, listening, order, Pair, Proc, WAIT};

/// `(account, CancelOrder records, MassCancel records)` in a node's log, per account 1..=3.
fn logged_cancels(dir: &Path) -> [(usize, usize); 3] {
    let mut r = LogReader::new(FileStorage::new(dir, WriteMode::Buffered).unwrap()).unwrap();
    let mut n = [(0, 0); 3];
    while let Some(rec) = r.next().unwrap() {
        let Some(slot) = n.get_mut((rec.meta.account as usize).wrapping_sub(1)) else {
            continue;
        };
        match rec.input {
            Input::CancelOrder(_) => slot.0 += 1,
            Input::MassCancel(_) => slot.1 += 1,
            _ => {}
        }
    }
    n
}

/// Polls the feed handler for `dur` and checks its book still holds `orders` orders.
fn feed_stays(feed: &mut FeedHandler, orders: usize, dur: Duration, what: &str) {
    let until = Instant::now() + dur;
    while Instant::now() < until {
        if feed.poll(AeronClient::nano_clock(), &mut ()) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_eq!(feed.core().books().live_orders(), orders, "{what}");
}

/// The sequenced replies a session gets from `c` until `n` of them matched `pred`.
fn replies_until(
    c: &mut Client,
    n: usize,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> Vec<ServerMessage> {
    let mut got = Vec::new();
    let mut hits = 0;
    let deadline = Instant::now() + WAIT;
    while hits < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{hits} of {n}; got {got:?}");
        match c.recv(left) {
            Ok(m) => {
                hits += usize::from(pred(&m));
                got.push(m);
            }
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}; got {got:?}"),
        }
    }
    got
}

/// The `cl_ord_id`s of the `OrderCancelled` among `replies`, each for `reason`.
fn cancelled_ids(replies: &[ServerMessage], reason: CancelReason) -> Vec<u64> {
    replies
        .iter()
        .filter_map(|m| match m {
            ServerMessage::OrderCancelled(c) => {
                assert_eq!(c.reason, reason, "{c:?}");
                Some(c.cl_ord_id)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_dropped_session_is_cancelled_on_primary_standby_and_market_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut accounts = demo_accounts_file(&demo_accounts(3), 1_000_000);
    accounts.account[2].cancel_on_disconnect = CancelOnDisconnect::Account;
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let md = MdConfig {
        term_length: 64 << 10,
        ..MdConfig::default()
    };
    let driver = launch_driver(&md).unwrap();
    let retransmit = [free_port(), free_port()];
    let section = |k: usize| {
        format!(
            r#"
[md]
channel_a = "aeron:ipc"
retransmit_addr = "{}"
aeron_dir = "{}"
heartbeat_interval_ms = 20
snapshot_interval_ms = 1000
ring_capacity = 4096
term_length = 65536
"#,
            retransmit[k],
            driver.dir()
        )
    };
    let Pair {
        witness: _witness,
        mut primary,
        mut standby,
        entry: [a1, a2],
        ..
    } = Pair::start(dir.path(), "", section);

    let mut fcfg = feed_config_of(
        &md,
        0,
        AeronSetup::External {
            dir: driver.dir().to_string(),
        },
    );
    fcfg.retransmit_server = Some(retransmit[1]);
    let mut feed = FeedHandler::connect(fcfg).unwrap();

    let cfg = |addr, account: u32, session: u32, cod: bool| ClientConfig {
        cancel_on_disconnect: cod,
        ..ClientConfig::new(
            addr,
            account,
            session,
            token_from_str(&format!("demo-token-{account}")),
        )
    };
    let mut s11 = Client::connect(cfg(a1, 1, 1, true)).unwrap();
    let mut s12 = Client::connect(cfg(a1, 1, 2, false)).unwrap();
    let mut s21 = Client::connect(cfg(a1, 2, 1, false)).unwrap();
    let mut s31 = Client::connect(cfg(a1, 3, 1, false)).unwrap();
    let mut s32 = Client::connect(cfg(a1, 3, 2, false)).unwrap();
    place(&mut s11, 1..=20, &mut feed);
    place(&mut s12, 101..=103, &mut feed);
    place(&mut s21, 1..=5, &mut feed);
    place(&mut s31, 1..=4, &mut feed);
    place(&mut s32, 11..=12, &mut feed);
    feed_until(&mut feed, 34, "all placed");

    // Account 2 asked for nothing: its connection ends, its orders stay.
    drop(s21);
    // Account 1's session 1 asked: its 20 go, session 2's 3 stay.
    let resume11 = s11.next_seq();
    drop(s11);
    feed_until(&mut feed, 14, "session 1 of account 1 dropped");
    // Account 3's setting: any of its sessions ending cancels the whole account.
    let resume32 = s32.next_seq();
    drop(s32);
    feed_until(&mut feed, 8, "session 2 of account 3 dropped");
    feed_stays(&mut feed, 8, Duration::from_millis(300), "nothing more");

    // The standby holds the same records (replicated before they were applied).
    let deadline = Instant::now() + WAIT;
    let want = [(20, 0), (0, 0), (0, 1)];
    while logged_cancels(&dir.path().join("node-2")) != want {
        assert!(Instant::now() < deadline, "standby's log");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(logged_cancels(&dir.path().join("node-1")), want);

    // The standby takes over; the sessions' replies there are made from its own log.
    drop(s12);
    drop(s31);
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    let mut s11 = procs::login_retrying(cfg(a2, 1, 1, true), resume11);
    let got = replies_until(&mut s11, 20, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert_eq!(
        cancelled_ids(&got, CancelReason::UserRequested),
        (1..=20).collect::<Vec<_>>()
    );
    let mut s32 = procs::login_retrying(cfg(a2, 3, 2, false), resume32);
    let got = replies_until(&mut s32, 1, |m| {
        matches!(m, ServerMessage::MassCancelAck(_))
    });
    assert_eq!(cancelled_ids(&got, CancelReason::MassCancel), vec![11, 12]);
    match got.last() {
        Some(ServerMessage::MassCancelAck(a)) => assert_eq!(a.cancelled_count, 6, "{a:?}"),
        other => panic!("{other:?}"),
    }
    // Session 2 of account 1 still owns its orders on the new primary.
    let mut s12 = procs::login_retrying(cfg(a2, 1, 2, false), 0);
    s12.send(&req::cancel(101, 0)).unwrap();
    let got = replies_until(&mut s12, 1, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert_eq!(cancelled_ids(&got, CancelReason::UserRequested), vec![101]);
    feed_until(&mut feed, 7, "after the takeover");

    drop(s11);
    standby.signal(libc::SIGTERM);
    assert_eq!(standby.wait(), Some(0));
    drop(feed);
    drop(driver);
}

#[test]
fn heartbeat_lapse_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = demo_accounts_file(&demo_accounts(1), 1_000_000);
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let config = procs::single_node_config(
        dir.path(),
        &[0],
        "heartbeat_interval_ms = 50\nheartbeat_timeout_ms = 150",
        "segment_bytes = 1048576",
        "",
    );
    let cfg_s = config.display().to_string();
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let cfg = ClientConfig {
        cancel_on_disconnect: true,
        ..ClientConfig::new(addr, 1, 1, token_from_str("demo-token-1"))
    };
    let mut c = Client::connect(cfg.clone()).unwrap();
    for cl in 1..=3 {
        c.send(&req::enter(order(cl))).unwrap();
    }
    replies_until(&mut c, 3, |m| matches!(m, ServerMessage::OrderAccepted(_)));
    let resume = c.next_seq();
    // Silent (no heartbeat, socket open) past the timeout: the node ends the session.
    std::thread::sleep(Duration::from_millis(600));
    let mut c2 = loop {
        match Client::connect_at(cfg.clone(), resume) {
            Ok(c2) => break c2,
            Err(ClientError::LoginRejected(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
    };
    let got = replies_until(&mut c2, 3, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert_eq!(
        cancelled_ids(&got, CancelReason::UserRequested),
        vec![1, 2, 3]
    );
    drop(c);
    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
}

#[test]
fn sessions_absent_after_a_takeover_are_cancelled_after_the_heartbeat_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut accounts = demo_accounts_file(&demo_accounts(2), 1_000_000);
    for a in &mut accounts.account {
        a.cancel_on_disconnect = CancelOnDisconnect::Session;
    }
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let Pair {
        witness: _witness,
        mut primary,
        standby,
        entry: [a1, a2],
        ..
    } = Pair::start(
        dir.path(),
        "heartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1500\n",
        |_| String::new(),
    );
    let cfg = |addr, account: u32| {
        ClientConfig::new(
            addr,
            account,
            1,
            token_from_str(&format!("demo-token-{account}")),
        )
    };
    let mut c1 = Client::connect(cfg(a1, 1)).unwrap();
    let mut c2 = Client::connect(cfg(a1, 2)).unwrap();
    for cl in 1..=5 {
        c1.send(&req::enter(order(cl))).unwrap();
    }
    for cl in 1..=3 {
        c2.send(&req::enter(order(cl))).unwrap();
    }
    replies_until(&mut c1, 5, |m| matches!(m, ServerMessage::OrderAccepted(_)));
    replies_until(&mut c2, 3, |m| matches!(m, ServerMessage::OrderAccepted(_)));
    let (resume1, resume2) = (c1.next_seq(), c2.next_seq());

    // The primary dies with both sessions connected; account 2 logs in to the new primary at
    // once, account 1 does not come back within the heartbeat timeout.
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    drop(c1);
    drop(c2);
    let deadline = Instant::now() + WAIT;
    let mut c2 = loop {
        match Client::connect_at(cfg(a2, 2), resume2) {
            Ok(c) => break c,
            Err(ClientError::LoginRejected(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    // Account 2's session stays alive (its heartbeats) while the timeout runs out.
    let deadline = Instant::now() + WAIT;
    let line = loop {
        if let Some(l) = standby.within("CANCELONDISCONNECT", Duration::from_millis(20)) {
            break l;
        }
        assert!(Instant::now() < deadline, "no CANCELONDISCONNECT");
        c2.maintain().unwrap();
        assert_eq!(c2.poll().unwrap(), None);
    };
    assert!(line.contains(" 5 cancels"), "{line}");
    let mut c1 = procs::login_retrying(cfg(a2, 1), resume1);
    let got = replies_until(&mut c1, 5, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert_eq!(
        cancelled_ids(&got, CancelReason::UserRequested),
        vec![1, 2, 3, 4, 5]
    );
    assert!(c1.open_orders(1, None, WAIT).unwrap().items.is_empty());
    // Account 2 came back in time: its orders stand.
    let open = c2.open_orders(1, None, WAIT).unwrap();
    assert_eq!(open.items.len(), 3, "{open:?}");
    assert_eq!(
        logged_cancels(&dir.path().join("node-2"))[..2],
        [(5, 0), (0, 0)]
    );
}

/// A connection to `addr` whose receive buffer is as small as the kernel allows (so that
/// what the node sends to a client that stops reading stays in the node's output queue).
fn small_window_stream(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket calls on a descriptor this function owns; the sockaddr is a valid
    // `sockaddr_in` for the length given.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 1024;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn a_lapsed_session_that_reads_nothing_is_still_cancelled() {
    use std::io::{Read, Write};
    use tpx_wire::order_entry::ClientMessage;
    use tpx_wire::session::LoginWithOptions;

    let dir = tempfile::tempdir().unwrap();
    let accounts = demo_accounts_file(&demo_accounts(1), 1_000_000);
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let cpu = core_affinity::get_core_ids()
        .unwrap_or_default()
        .first()
        .map_or(0, |c| c.id);
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\naccounts_file = \"accounts.toml\"\nidle = \"park\"\n\
             heartbeat_interval_ms = 50\nheartbeat_timeout_ms = 150\n\
             [[core_plan.cores]]\ncpu = {cpu}\ngateway = true\nsequencer = true\nshards = [0]\n\
             [replication]\nlog_dir = \"log\"\n"
        ),
    )
    .unwrap();
    let cfg_s = config.display().to_string();
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    node.expect("ROLE primary");
    let addr = listening(&node);

    // A client that logs in with cancel on disconnect, rests 3 orders, sends 20,000 IOCs whose
    // answers it never reads, and goes silent with its socket open.
    let mut s = small_window_stream(addr);
    let mut buf = [0u8; 256];
    let login = ClientMessage::LoginWithOptions(LoginWithOptions {
        account: 1,
        session_id: 1,
        requested_next_seq: 1,
        token: token_from_str("demo-token-1"),
        cancel_on_disconnect: true,
        drop_copy: false,
    });
    let n = login.encode(&mut buf).unwrap();
    s.write_all(&buf[..n]).unwrap();
    let mut accepted = [0u8; 24];
    s.read_exact(&mut accepted).unwrap();
    assert!(matches!(
        ServerMessage::decode(&accepted),
        Ok(ServerMessage::LoginAccepted(_))
    ));
    let mut out = Vec::new();
    for cl in 1..=20_003u64 {
        let o = if cl <= 3 {
            order(cl)
        } else {
            tpx_wire::order_entry::EnterOrder {
                tif: tpx_wire::enums::TimeInForce::Ioc,
                ..order(cl)
            }
        };
        let n = ClientMessage::EnterOrder(o).encode(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    s.write_all(&out).unwrap();

    // The node ends the session (heartbeat lapse) even though its goodbye cannot be written,
    // and cancels the 3 resting orders: a new connection gets the session and sees none open.
    let cfg = ClientConfig::new(addr, 1, 1, token_from_str("demo-token-1"));
    let deadline = Instant::now() + WAIT;
    let mut c = loop {
        match Client::connect_at(cfg.clone(), 0) {
            Ok(c) => break c,
            Err(ClientError::LoginRejected(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("the session never ended: {e}"),
        }
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let open = c.open_orders(1, None, WAIT).unwrap();
        if open.items.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still open: {open:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
}
