//! Failover with real processes: `tpx witness`, `tpx node --role primary` and
//! `tpx node --role standby` (durability `replicated`), a client sending orders, SIGKILL of the
//! primary while orders are in flight, the client failing over to the promoted standby and
//! re-sending what has no answer. Then: every order has exactly one answer that says it is
//! sequenced, and the new primary's log holds every order exactly once.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, ClientConfig, ClientError, Event, FailoverClient};
use tpx_node::accounts::{demo_accounts, demo_accounts_file};
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::Input;
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A child process whose stdout lines arrive on a channel; killed (by pid) when dropped.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    /// Every line received so far.
    seen: std::cell::RefCell<Vec<String>>,
    name: &'static str,
}

impl Proc {
    fn start(name: &'static str, args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tpx"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Default::default(),
            name,
        }
    }

    /// Waits for a line containing `needle` (or finds one already received); returns it.
    fn expect(&self, needle: &str) -> String {
        if let Some(l) = self.seen.borrow().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.borrow_mut().push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("{}: no line with {needle:?}", self.name),
            }
        }
    }

    fn signal(&mut self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} did not exit", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn node_config(dir: &Path, k: usize, cpu: usize, repl: [SocketAddr; 2], w: SocketAddr) -> PathBuf {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
journal_capacity = 1024
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
[replication]
node_id = {id}
peer_id = {peer}
listen = "{listen}"
peer_addr = "{peer_addr}"
witness_addr = "{w}"
log_dir = "node-{id}"
segment_bytes = 1048576
timeout_us = 200000
heartbeat_us = 500
"#,
        id = k + 1,
        peer = 2 - k,
        listen = repl[k],
        peer_addr = repl[1 - k],
    );
    let p = dir.join(format!("node-{}.toml", k + 1));
    std::fs::write(&p, text).unwrap();
    p
}

fn listening(p: &Proc) -> SocketAddr {
    p.expect("listening on ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn order(cl: u64) -> EnterOrder {
    // Resting buys at many prices: never cross, so each order has exactly one answer.
    EnterOrder {
        cl_ord_id: cl,
        price: 50_000 - (cl % 500) as i64,
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

/// `cl_ord_id`s of account 1's orders in a log, in log order.
fn logged_orders(dir: &Path) -> Vec<u64> {
    let mut r = LogReader::new(FileStorage::new(dir, WriteMode::Buffered).unwrap()).unwrap();
    let mut ids = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        if let Input::EnterOrder(o) = rec.input {
            if rec.meta.account == 1 {
                ids.push(o.cl_ord_id);
            }
        }
    }
    ids
}

#[test]
fn sigkill_of_the_primary_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let accts = demo_accounts(2);
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&accts, 1_000_000)).unwrap(),
    )
    .unwrap();
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cpu = |k: usize| cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0);
    let w = free_port();
    let repl = [free_port(), free_port()];
    let cfgs = [
        node_config(dir.path(), 0, cpu(0), repl, w),
        node_config(dir.path(), 1, cpu(1), repl, w),
    ];
    let w_s = w.to_string();
    let _witness = Proc::start(
        "witness",
        &["witness", "--listen", &w_s, "--lease-us", "200000"],
    );
    let c0 = cfgs[0].display().to_string();
    let c1 = cfgs[1].display().to_string();
    let mut primary = Proc::start("node-1", &["node", "--config", &c0, "--role", "primary"]);
    primary.expect("ROLE primary node=1");
    let a1 = listening(&primary);
    let mut standby = Proc::start("node-2", &["node", "--config", &c1, "--role", "standby"]);
    let a2 = listening(&standby);
    standby.expect("ROLE standby node=2");

    // A standby refuses order entry until promoted.
    let token = token_from_str("demo-token-1");
    match tpx_client::Client::connect_at(ClientConfig::new(a2, 1, 1, token), 0) {
        Err(ClientError::LoginRejected(r)) => {
            assert_eq!(r, tpx_wire::enums::LoginRejectReason::NotPrimary)
        }
        other => panic!("standby accepted a login: {other:?}"),
    }

    let mut c = FailoverClient::connect(vec![a1, a2], ClientConfig::new(a1, 1, 1, token)).unwrap();
    assert_eq!(c.endpoint(), 0);
    const BEFORE: u64 = 300;
    const AFTER: u64 = 50;
    let mut acked = std::collections::BTreeMap::<u64, &'static str>::new();
    let note = |acked: &mut std::collections::BTreeMap<u64, &'static str>, e: &Event| match e {
        Event::Reply(ServerMessage::OrderAccepted(a)) => {
            assert!(
                acked.insert(a.cl_ord_id, "accepted").is_none(),
                "two acks for {}",
                a.cl_ord_id
            );
        }
        Event::AlreadySequenced(id) => {
            assert!(acked.insert(*id, "already").is_none(), "two acks for {id}");
        }
        Event::Reply(other) => panic!("unexpected reply {other:?}"),
        Event::FailedOver { .. } => {}
    };
    for cl in 1..=BEFORE {
        c.send(&req::enter(order(cl))).unwrap();
    }
    // Some answers, then the primary dies with the rest in flight.
    while acked.len() < 100 {
        let e = c.recv(WAIT).unwrap();
        note(&mut acked, &e);
    }
    let acked_before_kill: Vec<u64> = acked.keys().copied().collect();
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    // More orders right away: they go to the dead connection, the client notices, moves to
    // the promoted standby and re-sends everything without an answer.
    for cl in BEFORE + 1..=BEFORE + AFTER {
        c.send(&req::enter(order(cl))).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while (acked.len() as u64) < BEFORE + AFTER {
        assert!(
            Instant::now() < deadline,
            "answers missing: {} of {}",
            acked.len(),
            BEFORE + AFTER
        );
        match c.recv(Duration::from_millis(200)) {
            Ok(e) => {
                if let Event::FailedOver { endpoint, .. } = e {
                    assert_eq!(endpoint, 1);
                }
                note(&mut acked, &e);
            }
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(c.failovers > 0, "the client never failed over");
    assert_eq!(c.endpoint(), 1);
    assert_eq!(c.unanswered(), 0);
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=BEFORE + AFTER).collect::<Vec<_>>()
    );
    // A request the old primary sequenced, sent again on another session of the account: the
    // new primary's log knows it (de-duplication by account and cl_ord_id survives the failover).
    // (Whichever node is primary: on a loaded machine a stall of the primary longer than the
    // timeout is a legitimate failover.)
    let mut again =
        FailoverClient::connect(vec![a2, a1], ClientConfig::new(a2, 1, 2, token)).unwrap();
    again.send(&req::enter(order(5))).unwrap();
    match again.recv(WAIT).unwrap() {
        Event::Reply(ServerMessage::OrderRejected(r)) => {
            assert_eq!(r.cl_ord_id, 5);
            assert_eq!(
                r.reason,
                tpx_wire::enums::RejectReason::DuplicateClientOrderId
            );
        }
        other => panic!("a re-sent order was not refused: {other:?}"),
    }
    // The old primary comes back as standby: it follows the new term and catches up (its log
    // ends with every order, once).
    let mut old = Proc::start("node-1", &["node", "--config", &c0, "--role", "standby"]);
    old.expect("ROLE standby node=1");
    let deadline = Instant::now() + WAIT;
    while logged_orders(&dir.path().join("node-1")).len() < (BEFORE + AFTER) as usize {
        assert!(
            Instant::now() < deadline,
            "the old primary did not catch up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    old.signal(libc::SIGTERM);
    assert_eq!(old.wait(), Some(0));
    let rejoined = logged_orders(&dir.path().join("node-1"));
    assert_eq!(rejoined, logged_orders(&dir.path().join("node-2")));

    standby.signal(libc::SIGTERM);
    assert_eq!(standby.wait(), Some(0));

    // The new primary's log: every order exactly once (nothing lost, nothing doubled), among
    // them every order acknowledged before the kill.
    let mut ids = logged_orders(&dir.path().join("node-2"));
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "an order is in the log twice");
    assert_eq!(ids, (1..=BEFORE + AFTER).collect::<Vec<_>>());
    for id in acked_before_kill {
        assert!(ids.binary_search(&id).is_ok());
    }
}
