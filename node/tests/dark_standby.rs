//! A primary whose standby's host goes dark (powered off: its SYNs are never answered, unlike
//! a killed process whose host answers with a reset) keeps serving at its usual pace. The
//! replication transport redials the standby every 2 ms; the dial was a blocking
//! `connect_timeout(20 ms)` on the sequencing core, so such a primary spent most of its time
//! blocked in `connect` and each acknowledgement waited up to 20 ms. With real `tpx` processes
//! over TCP: the standby is SIGKILLed and its replication port taken by a listener whose
//! accept queue is full (the kernel drops every SYN to it, as a dark host's network does).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{login_retrying, order, Pair, WAIT};

fn write_accounts(dir: &std::path::Path) {
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(3), 1_000_000)).unwrap(),
    )
    .unwrap();
}

/// The `[replication] listen` address in a node config.
fn replication_listen(config: &str) -> SocketAddr {
    let text = std::fs::read_to_string(config).unwrap();
    let repl = &text[text.find("[replication]").unwrap()..];
    let line = repl.lines().find(|l| l.starts_with("listen = ")).unwrap();
    line.trim_start_matches("listen = ")
        .trim_matches('"')
        .parse()
        .unwrap()
}

/// A listener on `addr` with an accept queue of one, filled: every later SYN is dropped.
fn dark(addr: SocketAddr) -> (socket2::Socket, TcpStream) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.set_reuse_address(true).unwrap();
    // The killed standby's port can take a moment to be free.
    let deadline = Instant::now() + WAIT;
    while l.bind(&addr.into()).is_err() {
        assert!(Instant::now() < deadline, "bind {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    l.listen(0).unwrap();
    let queued = TcpStream::connect(addr).unwrap();
    (l, queued)
}

/// The next sequenced answer to `cl` (heartbeats and other replies skipped).
fn answer(c: &mut Client, cl: u64) -> ServerMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no answer to {cl}");
        match c.recv(Duration::from_millis(200)) {
            Ok(m @ ServerMessage::OrderAccepted(x)) if x.cl_ord_id == cl => return m,
            Ok(ServerMessage::OrderRejected(r)) if r.cl_ord_id == cl => panic!("{r:?}"),
            Ok(_) | Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_primary_whose_standby_goes_dark_keeps_acknowledging_at_its_pace() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let mut pair = Pair::start(dir.path(), "", |_| String::new());
    let standby_repl = replication_listen(&pair.configs[1]);
    let cfg = ClientConfig::new(pair.entry[0], 1, 1, token_from_str("demo-token-1"));
    let mut c = login_retrying(cfg, 1);
    c.send(&req::enter(order(1))).unwrap();
    answer(&mut c, 1);

    pair.standby.signal(libc::SIGKILL);
    pair.standby.wait();
    let _dark = dark(standby_repl);
    // The first order after the loss waits for the primary to stand alone (the standby's
    // 200 ms timeout, then the witness's record); the ones after it are what is measured.
    let mut took = Vec::new();
    for cl in 2..=60u64 {
        let t0 = Instant::now();
        c.send(&req::enter(order(cl))).unwrap();
        answer(&mut c, cl);
        if cl > 10 {
            took.push(t0.elapsed());
        }
    }
    took.sort();
    let median = took[took.len() / 2];
    eprintln!(
        "acks with the standby dark: median {median:?}, max {:?}",
        took.last().unwrap()
    );
    assert!(
        median < Duration::from_millis(5),
        "median ack {median:?} (all: {took:?})"
    );
}
