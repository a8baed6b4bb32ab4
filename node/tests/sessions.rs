//! Sessions survive restart and failover, with real `tpx` processes over TCP: a session's reply
//! stream is a function of the log, so a node that restarts on its log (SIGKILL or SIGTERM), or
//! a standby promoted after the primary's SIGKILL, gives a client logging in with its session
//! id and last seen seq exactly the replies it missed, numbered as before, fills of its resting
//! orders included, and gives no session another session's replies.

use std::path::Path;
use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::enums::{LoginRejectReason, OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{free_port, listening, node_config, Proc, WAIT};

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

fn write_accounts(dir: &Path) {
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(3), 1_000_000)).unwrap(),
    )
    .unwrap();
}

fn cpu0() -> usize {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .first()
        .map_or(0, |c| c.id)
}

/// A single node with its durable log (`fsync`, in-process witness) in `dir/node`.
fn single_node_config(dir: &Path) -> String {
    let cores = format!(
        r#"
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
"#,
        cpu = cpu0()
    );
    node_config_file(dir, &cores)
}

/// A single node with `cores` as its core plan.
fn node_config_file(dir: &Path, cores: &str) -> String {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
journal_capacity = 1024
{cores}
[replication]
log_dir = "node"
segment_bytes = 1048576
"#
    );
    let p = dir.join("node.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn config(addr: std::net::SocketAddr, account: u32, session: u32) -> ClientConfig {
    ClientConfig::new(
        addr,
        account,
        session,
        token_from_str(&format!("demo-token-{account}")),
    )
}

/// Logs in asking for replies from `next` on, retrying while the node is not serving yet
/// (`NotPrimary`: promotion or restart in progress; `SessionInUse`: it has not yet seen the
/// old connection close); returns the client and the replies replayed before going live.
fn resume(addr: std::net::SocketAddr, account: u32, session: u32, next: u64) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect_at(config(addr, account, session), next) {
            Ok(c) => return c,
            Err(ClientError::LoginRejected(
                LoginRejectReason::NotPrimary | LoginRejectReason::SessionInUse,
            ))
            | Err(ClientError::Io(_))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("login {account}/{session} at {next}: {e}"),
        }
    }
}

/// Every reply that arrives within `quiet` of the previous one.
fn drain(c: &mut Client, quiet: Duration) -> Vec<ServerMessage> {
    let mut got = Vec::new();
    loop {
        match c.recv(quiet) {
            Ok(ServerMessage::Heartbeat(_)) => {}
            Ok(m) => got.push(m),
            Err(ClientError::Timeout) => return got,
            Err(e) => panic!("{e}; got {got:?}"),
        }
    }
}

/// The next `n` sequenced replies.
fn take(c: &mut Client, n: usize) -> Vec<ServerMessage> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; got {got:?}");
        match c.recv(left) {
            Ok(ServerMessage::Heartbeat(_)) | Err(ClientError::Timeout) => {}
            Ok(m) => got.push(m),
            Err(e) => panic!("{e}; got {got:?}"),
        }
    }
    got
}

fn seqs(ms: &[ServerMessage]) -> Vec<u64> {
    ms.iter().map(|m| m.seq().unwrap()).collect()
}

/// Two sessions of account 1 rest orders and read only their acks; account 2 fills both while
/// they are away. Returns what each of the three sessions' journals holds from seq 2 on
/// (account 1's) and account 2's next seq, read from the node before it goes down.
fn trade_while_away(addr: std::net::SocketAddr) -> (Vec<ServerMessage>, Vec<ServerMessage>, u64) {
    // Ids increase per account across its sessions (the client-order-id rule).
    let mut a1 = resume(addr, 1, 1, 1);
    let mut a2 = resume(addr, 1, 2, 1);
    a1.send(&req::enter(limit(1, Side::Sell, 50_000, 10)))
        .unwrap();
    assert!(matches!(take(&mut a1, 1)[..], [ServerMessage::OrderAccepted(a)] if a.seq == 1));
    a2.send(&req::enter(limit(2, Side::Sell, 50_010, 5)))
        .unwrap();
    assert!(matches!(take(&mut a2, 1)[..], [ServerMessage::OrderAccepted(a)] if a.seq == 1));
    drop(a1);
    drop(a2);
    let mut b = resume(addr, 2, 1, 1);
    b.send(&req::enter(limit(1, Side::Buy, 50_000, 3))).unwrap();
    b.send(&req::enter(limit(2, Side::Buy, 50_010, 12)))
        .unwrap();
    // Accepted, fill; accepted, fill, fill.
    let got = take(&mut b, 5);
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5]);
    let b_next = b.next_seq();
    drop(b);
    // What the node journaled for the sessions that were away (their numbering).
    let mut a1 = resume(addr, 1, 1, 2);
    let r1 = take(&mut a1, 2);
    let mut a2 = resume(addr, 1, 2, 2);
    let r2 = take(&mut a2, 1);
    assert!(drain(&mut a1, Duration::from_millis(100)).is_empty());
    assert!(drain(&mut a2, Duration::from_millis(100)).is_empty());
    (r1, r2, b_next)
}

/// After a restart on the same log, each session of account 1 logs in with its last seen seq
/// and gets exactly its own missed replies with the numbering it had; account 2 resumes at its
/// end; a new session of account 1 gets nothing of the others'.
fn restart_keeps_sessions(sig: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let cfg = single_node_config(dir.path());
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let (r1, r2, b_next) = trade_while_away(addr);
    assert_eq!(seqs(&r1), vec![2, 3]);
    assert!(
        matches!(r1[..], [ServerMessage::OrderExecuted(x), ServerMessage::OrderExecuted(y)]
        if x.cl_ord_id == 1 && x.qty == 3 && x.leaves_qty == 7 && y.qty == 7 && y.leaves_qty == 0)
    );
    assert!(matches!(r2[..], [ServerMessage::OrderExecuted(x)]
        if x.seq == 2 && x.cl_ord_id == 2 && x.qty == 5 && x.leaves_qty == 0));
    node.signal(sig);
    node.wait();

    let node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    // A new session of the account first: before the fix it received the other sessions'
    // pre-restart replies, renumbered from 1.
    let mut fresh = resume(addr, 1, 3, 1);
    assert!(drain(&mut fresh, Duration::from_millis(200)).is_empty());
    let mut a1 = resume(addr, 1, 1, 2);
    assert_eq!(a1.next_seq(), 2);
    assert_eq!(
        take(&mut a1, 2),
        r1,
        "session 1 of account 1: its replies as numbered before"
    );
    let mut a2 = resume(addr, 1, 2, 2);
    assert_eq!(take(&mut a2, 1), r2, "session 2 of account 1");
    assert!(drain(&mut a1, Duration::from_millis(200)).is_empty());
    assert!(drain(&mut a2, Duration::from_millis(200)).is_empty());
    // Account 2 resumes at its end (before the fix: SequenceAhead).
    let mut b = resume(addr, 2, 1, b_next);
    assert!(drain(&mut b, Duration::from_millis(200)).is_empty());
    // Each goes on numbering where it was; the new session from 1.
    a1.send(&req::enter(limit(5, Side::Buy, 49_000, 1)))
        .unwrap();
    assert!(matches!(take(&mut a1, 1)[..], [ServerMessage::OrderAccepted(a)] if a.seq == 4));
    fresh
        .send(&req::enter(limit(6, Side::Buy, 49_000, 1)))
        .unwrap();
    assert!(matches!(take(&mut fresh, 1)[..], [ServerMessage::OrderAccepted(a)] if a.seq == 1));
    b.send(&req::enter(limit(3, Side::Buy, 49_000, 1))).unwrap();
    assert!(matches!(take(&mut b, 1)[..], [ServerMessage::OrderAccepted(a)] if a.seq == b_next));
}

#[test]
fn sessions_survive_a_sigkill_restart() {
    restart_keeps_sessions(libc::SIGKILL);
}

#[test]
fn sessions_survive_a_sigterm_restart() {
    restart_keeps_sessions(libc::SIGTERM);
}

/// A client with resting orders disconnects; the primary is SIGKILLed; a counterparty trades
/// against its orders on the promoted standby; the client logs in there with its session id and
/// last seen seq and receives every missed reply (an accept the standby journaled without a
/// client, then the fills) exactly once, in order, numbered as the old primary would have.
#[test]
fn a_client_resumes_on_the_new_primary_with_every_missed_reply() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let (_witness, mut primary, standby, _cfgs) = start_pair(dir.path());
    let (a1, a2) = (listening(&primary), listening(&standby));

    let mut c = resume(a1, 1, 1, 1);
    c.send(&req::enter(limit(1, Side::Sell, 50_000, 5)))
        .unwrap();
    c.send(&req::enter(limit(2, Side::Sell, 50_010, 5)))
        .unwrap();
    // The client reads the first ack only (both are acknowledged: replicated to the standby).
    let acks = take(&mut c, 2);
    assert_eq!(seqs(&acks), vec![1, 2]);
    drop(c);
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");

    let mut b = resume(a2, 2, 1, 1);
    b.send(&req::enter(limit(1, Side::Buy, 50_010, 8))).unwrap();
    let got = take(&mut b, 3);
    assert!(matches!(got[0], ServerMessage::OrderAccepted(_)));
    drop(b);

    // Resumes after reply 1: the second accept (journaled by the standby) and both fills.
    let mut c = resume(a2, 1, 1, 2);
    let missed = take(&mut c, 3);
    assert_eq!(seqs(&missed), vec![2, 3, 4]);
    assert_eq!(
        missed[0], acks[1],
        "the accept, byte for byte as the old primary sent it"
    );
    assert!(matches!(missed[1], ServerMessage::OrderExecuted(x)
        if x.cl_ord_id == 1 && x.qty == 5 && x.leaves_qty == 0));
    assert!(matches!(missed[2], ServerMessage::OrderExecuted(x)
        if x.cl_ord_id == 2 && x.qty == 3 && x.leaves_qty == 2));
    assert!(
        drain(&mut c, Duration::from_millis(300)).is_empty(),
        "exactly once"
    );
    // The session still owns its order on the new primary.
    c.send(&req::cancel(2, 0)).unwrap();
    assert!(
        matches!(take(&mut c, 1)[..], [ServerMessage::OrderCancelled(x)]
        if x.seq == 5 && x.cl_ord_id == 2 && x.leaves_qty == 0)
    );
}

/// Two shards on two cores (instrument 1 on shard 0, instrument 2 on shard 1): one session's
/// replies come from both, on separate rings, in an order that depends on the cores' timing.
/// They are numbered in log order, so the node restarted on its log (which replays the records
/// with the shards racing differently) journals the same stream byte for byte; an all-shard
/// mass cancel is acked after both shards' cancels.
#[test]
fn replies_from_two_shards_are_numbered_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let (a, b) = (
        ids.first().copied().unwrap_or(0),
        ids.get(1).or(ids.first()).copied().unwrap_or(0),
    );
    let cores = format!(
        r#"
[[core_plan.cores]]
cpu = {a}
gateway = true
sequencer = true
shards = [0]
[[core_plan.cores]]
cpu = {b}
shards = [1]
"#
    );
    let cfg = node_config_file(dir.path(), &cores);
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let on = |inst: u32, o: EnterOrder| EnterOrder {
        instrument: inst,
        price: if inst == 2 { 20_000 } else { o.price },
        ..o
    };
    let mut m = resume(addr, 1, 1, 1);
    let mut t = resume(addr, 2, 1, 1);
    const ROUNDS: u64 = 20;
    for k in 0..ROUNDS {
        // Resting sells on both shards; the taker's buys on both in one burst.
        m.queue(&req::enter(on(1, limit(4 * k + 1, Side::Sell, 50_000, 2))));
        m.queue(&req::enter(on(2, limit(4 * k + 2, Side::Sell, 0, 2))));
        m.flush_blocking(WAIT).unwrap();
        take(&mut m, 2);
        t.queue(&req::enter(on(1, limit(2 * k + 1, Side::Buy, 50_000, 1))));
        t.queue(&req::enter(on(2, limit(2 * k + 2, Side::Buy, 0, 1))));
        t.flush_blocking(WAIT).unwrap();
    }
    // A mass cancel of every shard.
    m.send(&req::mass_cancel(None)).unwrap();
    let got = drain(&mut m, Duration::from_millis(500));
    assert!(
        matches!(got.last(), Some(ServerMessage::MassCancelAck(a)) if a.cancelled_count > 0),
        "{got:?}"
    );
    let n = m.next_seq() - 1;
    // (How many fills and cancels depends on how the two clients' orders interleaved.)
    assert!(n > 4 * ROUNDS, "{n}");
    drop(m);
    drop(t);
    let before = take(&mut resume(addr, 1, 1, 1), n as usize);
    assert_eq!(seqs(&before), (1..=n).collect::<Vec<_>>());
    node.signal(libc::SIGKILL);
    node.wait();
    let node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let after = take(&mut resume(addr, 1, 1, 1), n as usize);
    assert_eq!(
        after, before,
        "the same stream after a replay with other timing"
    );
}

/// `tpx witness`, node 1 as primary and node 2 as standby (`replicated`), configs in `dir`.
fn start_pair(dir: &Path) -> (Proc, Proc, Proc, [String; 2]) {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cpu = |k: usize| cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0);
    let w = free_port();
    let repl = [free_port(), free_port()];
    let cfgs = [
        node_config(dir, 0, cpu(0), repl, w).display().to_string(),
        node_config(dir, 1, cpu(1), repl, w).display().to_string(),
    ];
    let w_s = w.to_string();
    let witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            &dir.join("witness.state").display().to_string(),
        ],
    );
    let primary = Proc::start(
        "node-1",
        &["node", "--config", &cfgs[0], "--role", "primary"],
    );
    primary.expect("ROLE primary node=1");
    let standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    standby.expect("ROLE standby node=2");
    (witness, primary, standby, cfgs)
}

/// Records in a node's log.
fn log_len(dir: &Path) -> u64 {
    use tpx_sequencer::{FileStorage, LogReader, WriteMode};
    let Ok(storage) = FileStorage::new(dir, WriteMode::Buffered) else {
        return 0;
    };
    let Ok(mut r) = LogReader::new(storage) else {
        return 0;
    };
    let mut n = 0;
    while let Ok(Some(_)) = r.next() {
        n += 1;
    }
    n
}

/// A standby restarted on its log (it replays it into its shards and sessions, then follows)
/// and promoted right after it caught up: a new session of an account gets nothing of the
/// account's history (before: the whole fill history, numbered as new replies), and the
/// session that placed the orders resumes with exactly the fills it missed.
#[test]
fn a_restarted_standby_promoted_hands_no_history_to_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let (_witness, mut primary, mut standby, cfgs) = start_pair(dir.path());
    let a1 = listening(&primary);
    const N: u64 = 200;
    const FILLED: u64 = 150;
    let mut maker = resume(a1, 1, 1, 1);
    for cl in 1..=N {
        maker.queue(&req::enter(limit(cl, Side::Sell, 50_000, 1)));
    }
    maker.flush_blocking(WAIT).unwrap();
    assert_eq!(
        seqs(&take(&mut maker, N as usize)),
        (1..=N).collect::<Vec<_>>()
    );
    drop(maker);
    let mut taker = resume(a1, 2, 1, 1);
    taker
        .send(&req::enter(limit(1, Side::Buy, 50_000, FILLED)))
        .unwrap();
    take(&mut taker, 1 + FILLED as usize);
    drop(taker);
    // The standby restarts: it replays its log, then follows the primary to its end.
    standby.signal(libc::SIGKILL);
    standby.wait();
    let standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    standby.expect("ROLE standby node=2");
    let a2 = listening(&standby);
    let end = log_len(&dir.path().join("node-1"));
    let deadline = Instant::now() + WAIT;
    while log_len(&dir.path().join("node-2")) < end {
        assert!(Instant::now() < deadline, "the standby did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    // A new session of account 1, first in: nothing.
    let mut fresh = resume(a2, 1, 2, 1);
    assert_eq!(fresh.next_seq(), 1);
    assert!(drain(&mut fresh, Duration::from_millis(300)).is_empty());
    // The maker's session: exactly its fills, N + 1 ..= N + FILLED.
    let mut maker = resume(a2, 1, 1, N + 1);
    let fills = take(&mut maker, FILLED as usize);
    assert_eq!(seqs(&fills), (N + 1..=N + FILLED).collect::<Vec<_>>());
    assert!(fills.iter().enumerate().all(|(k, m)| matches!(m,
        ServerMessage::OrderExecuted(x) if x.cl_ord_id == k as u64 + 1 && x.leaves_qty == 0)));
    assert!(drain(&mut maker, Duration::from_millis(300)).is_empty());
}

/// `tpx_client::FailoverClient` resumes its session on the new primary: fills of its resting
/// orders that happened there while it was failing over arrive, once, in order.
#[test]
fn a_failover_client_gets_the_fills_of_its_resting_orders_after_a_takeover() {
    use tpx_client::{Event, FailoverClient};
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let (_witness, mut primary, standby, _cfgs) = start_pair(dir.path());
    let (a1, a2) = (listening(&primary), listening(&standby));
    let mut fc = FailoverClient::connect(vec![a1, a2], config(a1, 1, 5)).unwrap();
    fc.send(&req::enter(limit(1, Side::Sell, 50_000, 4)))
        .unwrap();
    fc.send(&req::enter(limit(2, Side::Sell, 50_010, 4)))
        .unwrap();
    let mut acks = 0;
    while acks < 2 {
        match fc.recv(WAIT).unwrap() {
            Event::Reply(ServerMessage::OrderAccepted(_)) => acks += 1,
            other => panic!("{other:?}"),
        }
    }
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    let mut b = resume(a2, 2, 1, 1);
    b.send(&req::enter(limit(1, Side::Buy, 50_010, 6))).unwrap();
    take(&mut b, 3);
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 2 {
        assert!(Instant::now() < deadline, "got {got:?}");
        match fc.recv(Duration::from_millis(200)) {
            Ok(Event::Reply(ServerMessage::Heartbeat(_))) | Ok(Event::FailedOver { .. }) => {}
            Ok(Event::Reply(m)) => got.push(m),
            Ok(other) => panic!("{other:?}"),
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(fc.endpoint(), 1);
    assert!(
        matches!(got[..], [ServerMessage::OrderExecuted(x), ServerMessage::OrderExecuted(y)]
        if x.seq == 3 && x.cl_ord_id == 1 && x.qty == 4 && y.seq == 4 && y.cl_ord_id == 2 && y.qty == 2)
    );
    assert!(matches!(
        fc.recv(Duration::from_millis(300)),
        Err(ClientError::Timeout) | Ok(Event::Reply(ServerMessage::Heartbeat(_)))
    ));
}
