//! Node snapshots with real processes and files (`[snapshots]`, risk on): a single `tpx node`
//! takes images while it runs; after SIGKILL it restarts from the newest (its REPLAYED line
//! says so) and its shard's state hash equals a full replay's (`tpx replay --to-seq`) at the
//! next checkpoint the restarted node logs; a session that was away gets its missed fill,
//! numbered as before, from the restored journal; retention deleted old segments and images and
//! the restart works on the pruned log; a corrupted newest image is skipped for the older one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts_file, DemoAccount};
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::enums::{LoginRejectReason, RejectReason, Side};
use tpx_wire::log_record::Input;
use tpx_wire::replies::ServerMessage;

mod common;
mod procs;

use common::{cpus, limit};
use procs::{free_port, listening, Proc, WAIT};

const ADMIN: u32 = 50;
const USDT: u32 = 1;
const BTC: u32 = 2;
const BTC_USDT: u32 = 1;

fn write_accounts(dir: &Path) {
    let mut accts: Vec<DemoAccount> = [1, 2, ADMIN]
        .iter()
        .map(|&id| DemoAccount {
            id,
            name: format!("t{id}"),
            token: format!("tok-{id}"),
            admin: id == ADMIN,
        })
        .collect();
    accts.sort_by_key(|a| a.id);
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&accts, 1_000_000)).unwrap(),
    )
    .unwrap();
}

/// One core, risk on, checkpoints every 20 records, an image every 30, two kept, 64 KiB
/// segments (one order per commit: a 4 KiB block each, so a segment holds about 15 records);
/// `delete`: retention deletes segments.
fn config(dir: &Path, metrics: std::net::SocketAddr, delete: bool) -> PathBuf {
    procs::single_node_config(
        dir,
        &[0],
        "",
        "write = \"buffered\"\nsegment_bytes = 65536\ncheckpoint_every = 20",
        &format!(
            "[snapshots]\nevery_records = 30\nkeep = 2\ndelete_segments = {delete}\n\
             [stats]\nprometheus = \"{metrics}\"\n{}",
            procs::RISK_SECTION
        ),
    )
}

fn login(addr: std::net::SocketAddr, account: u32, session: u32, next: u64) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        let cfg = ClientConfig::new(
            addr,
            account,
            session,
            token_from_str(&format!("tok-{account}")),
        );
        match Client::connect_at(cfg, next) {
            Ok(c) => return c,
            Err(ClientError::LoginRejected(
                LoginRejectReason::NotPrimary | LoginRejectReason::SessionInUse,
            ))
            | Err(ClientError::Io(_))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("login {account}/{session}: {e}"),
        }
    }
}

/// The next sequenced reply (heartbeats and balance updates skipped).
fn next_reply(c: &mut Client) -> ServerMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply");
        match c.recv(left) {
            Ok(ServerMessage::Heartbeat(_) | ServerMessage::BalanceUpdate(_))
            | Err(ClientError::Timeout) => {}
            Ok(m) => return m,
            Err(e) => panic!("{e}"),
        }
    }
}

fn accepted(c: &mut Client, cl: u64) {
    match next_reply(c) {
        ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl => {}
        m => panic!("order {cl}: {m:?}"),
    }
}

fn fund(adm: &mut Client) {
    for (acct, asset, qty) in [(1, BTC, 10_000_000), (2, USDT, 100_000_000_000)] {
        match adm
            .admin(&admin::deposit(1, acct, asset, qty, 0), WAIT)
            .unwrap()
        {
            AdminAnswer::Accepted(_) => {}
            AdminAnswer::Rejected(r) => panic!("deposit refused: {r:?}"),
        }
    }
}

/// Account 1 (session 1) rests `n` one-lot sells from `cl`; account 2 takes every other one.
fn trade(s1: &mut Client, s2: &mut Client, cl: u64, n: u64) {
    trade_on(s1, s2, cl, n, &[BTC_USDT]);
}

/// [`trade`] over `instruments` in turn.
fn trade_on(s1: &mut Client, s2: &mut Client, cl: u64, n: u64, instruments: &[u32]) {
    for k in 0..n {
        let i = instruments[k as usize % instruments.len()];
        s1.send(&req::enter(limit(
            cl + k,
            i,
            Side::Sell,
            60_000 + k as i64 % 7,
            1,
        )))
        .unwrap();
        accepted(s1, cl + k);
        if k % 2 == 0 {
            s2.send(&req::enter(limit(cl + k, i, Side::Buy, 60_010, 1)))
                .unwrap();
            accepted(s2, cl + k);
            // The taker's fill; the maker's comes to session 1.
            assert!(matches!(next_reply(s2), ServerMessage::OrderExecuted(_)));
            assert!(matches!(next_reply(s1), ServerMessage::OrderExecuted(_)));
        }
    }
}

/// `(shard, prev_seq, prev_hash)` of every checkpoint record in the log.
fn checkpoints(dir: &Path) -> Vec<(usize, u64, u64)> {
    let mut r = LogReader::new(FileStorage::new(dir, WriteMode::Buffered).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        if let Input::Checkpoint(c) = rec.input {
            out.push(((rec.meta.origin >> 24) as usize, c.prev_seq, c.prev_hash));
        }
    }
    out
}

fn replay_cmd(cfg: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tpx"))
        .args(["replay", "--config", cfg])
        .args(extra)
        .output()
        .unwrap()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// Shard `shard`'s state hash after every record before `seq`, by a full replay of the log.
fn replayed_hash(cfg: &str, seq: u64, shard: usize) -> u64 {
    let out = replay_cmd(cfg, &["--to-seq", &(seq - 1).to_string()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("REPLAYED")).unwrap();
    let h = field(line, "hashes=").split(',').nth(shard).unwrap();
    u64::from_str_radix(h, 16).unwrap()
}

/// Every checkpoint logged after `from` names the hash a full replay has at its seq (the last
/// four compared); returns how many were logged.
fn checkpoints_match_a_full_replay(cfg: &str, log: &Path, from: u64) -> usize {
    let after: Vec<(usize, u64, u64)> = checkpoints(log)
        .into_iter()
        .filter(|c| c.1 > from)
        .collect();
    assert!(!after.is_empty());
    for (shard, prev_seq, prev_hash) in after.iter().rev().take(4) {
        assert_eq!(
            replayed_hash(cfg, *prev_seq, *shard),
            *prev_hash,
            "shard {shard} at seq {prev_seq}"
        );
    }
    after.len()
}

fn images(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "nsnap"));
    v.sort();
    v
}

fn first_segment(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| tpx_sequencer::log::parse_segment_name(e.file_name().to_str()?))
        .min()
        .unwrap()
}

fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The seq of the `start from` line of a node that started from an image.
fn started_from(node: &Proc) -> u64 {
    let line = node.expect("SNAPSHOT start from seq=");
    field(&line, "seq=").parse().unwrap()
}

/// A start from an image faults the engines' tables in beside the restore and the replay
/// (`tpx_engine::deferring_prefault`), and serves only once they are all resident: at the
/// default `max_orders` (2^20) the order slab and the order-type table alone are 144 MiB, of
/// which the restore and a short tail write a few pages.
#[test]
fn a_node_restarted_from_an_image_serves_only_with_its_tables_resident() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let metrics = free_port();
    let small = config(dir.path(), metrics, false);
    let text = std::fs::read_to_string(&small)
        .unwrap()
        .replace("max_orders = 4096", "max_orders = 1048576");
    assert!(text.contains("max_orders = 1048576"));
    std::fs::write(&small, text).unwrap();
    let cfg = small.display().to_string();
    let snaps = dir.path().join("log").join("snapshots");

    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut adm = login(addr, ADMIN, 1, 1);
    fund(&mut adm);
    let mut s1 = login(addr, 1, 1, 1);
    let mut s2 = login(addr, 2, 1, 1);
    trade(&mut s1, &mut s2, 1, 40);
    wait_until(|| !images(&snaps).is_empty());
    trade(&mut s1, &mut s2, 1_000, 3);
    drop((s1, s2, adm));
    node.signal(libc::SIGKILL);
    node.wait();

    // The thread that faults the tables in beside the replay is held back (as a starved one
    // would be): the core faults them in itself at the replay's end, before it serves.
    let node = Proc::start_with_env(
        "node",
        &["node", "--config", &cfg],
        &[("TPX_TEST_TABLES_DELAY_MS", "3000")],
    );
    let from = started_from(&node);
    node.expect(&format!("after snapshot seq={from}"));
    node.expect("ROLE primary");
    let rss_kib = resident_kib(node.pid());
    assert!(
        rss_kib >= 150 << 10,
        "VmRSS {rss_kib} KiB at ROLE primary: the tables were not faulted in before serving"
    );
    let line = node.expect("TABLES faulted in");
    assert!(line.contains(" MiB of the engines' tables"), "{line}");
    let addr = listening(&node);
    let mut s1 = login(addr, 1, 1, 0);
    s1.send(&req::enter(limit(5_000, BTC_USDT, Side::Sell, 61_000, 1)))
        .unwrap();
    accepted(&mut s1, 5_000);
}

/// The process's resident memory (`VmRSS` in `/proc/PID/status`), KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_node_restarts_from_its_snapshot_with_the_same_state_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let metrics = free_port();
    let cfg = config(dir.path(), metrics, false).display().to_string();
    let log = dir.path().join("log");
    let snaps = log.join("snapshots");

    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut adm = login(addr, ADMIN, 1, 1);
    fund(&mut adm);
    let mut s1 = login(addr, 1, 1, 1);
    let mut s2 = login(addr, 2, 1, 1);
    trade(&mut s1, &mut s2, 1, 40);
    // Session 2 of account 1 rests an order, reads its ack and leaves; account 2 fills it.
    let mut away = login(addr, 1, 2, 1);
    away.send(&req::enter(limit(1_000, BTC_USDT, Side::Sell, 59_000, 2)))
        .unwrap();
    accepted(&mut away, 1_000);
    drop(away);
    s2.send(&req::enter(limit(1_000, BTC_USDT, Side::Buy, 59_000, 2)))
        .unwrap();
    accepted(&mut s2, 1_000);
    assert!(matches!(
        next_reply(&mut s2),
        ServerMessage::OrderExecuted(_)
    ));
    let fill_seq = metric(&scrape(metrics), "tpx_node_last_seq");
    // Enough after the fill for two images that hold it.
    trade(&mut s1, &mut s2, 2_000, 60);
    wait_until(|| {
        images(&snaps)
            .first()
            .is_some_and(|p| newest_seq(p) > fill_seq)
    });
    node.expect("RETAINED");
    // An IOC that does not rest, after the images above: its record is in the tail a restart
    // replays (unless an image is taken at it before the kill).
    let mut ioc = limit(3_000, BTC_USDT, Side::Sell, 70_000, 1);
    ioc.tif = tpx_wire::enums::TimeInForce::Ioc;
    s1.send(&req::enter(ioc)).unwrap();
    accepted(&mut s1, 3_000);
    assert!(matches!(
        next_reply(&mut s1),
        ServerMessage::OrderCancelled(_)
    ));
    drop((s1, s2, adm));
    node.signal(libc::SIGKILL);
    node.wait();
    assert_eq!(first_segment(&log), 1, "delete_segments = false");
    let kept = images(&snaps);
    assert_eq!(kept.len(), 2, "keep = 2: {kept:?}");

    // Restart: from the newest image, the tail replayed after it.
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    let from = started_from(&node);
    assert_eq!(from, newest_seq(&kept[1]));
    node.expect(&format!("after snapshot seq={from}"));
    node.expect("ROLE primary");
    let addr = listening(&node);
    // The session that was away gets its fill, numbered after its ack.
    let mut away = login(addr, 1, 2, 2);
    match next_reply(&mut away) {
        ServerMessage::OrderExecuted(x) => {
            assert_eq!((x.seq, x.cl_ord_id, x.qty, x.leaves_qty), (2, 1_000, 2, 0))
        }
        m => panic!("{m:?}"),
    }
    drop(away);
    // More trading: the restarted node logs checkpoints naming its own hashes.
    let mut s1 = login(addr, 1, 1, 0);
    let mut s2 = login(addr, 2, 1, 0);
    // The account's last id before the kill, in the tail replayed after the image (whose
    // de-duplication entries the replay's reader noted), is refused as already sequenced.
    s1.send(&req::enter(limit(3_000, BTC_USDT, Side::Sell, 60_000, 1)))
        .unwrap();
    match next_reply(&mut s1) {
        ServerMessage::OrderRejected(r) => assert_eq!(
            (r.seq, r.cl_ord_id, r.reason),
            (0, 3_000, RejectReason::DuplicateClientOrderId)
        ),
        m => panic!("{m:?}"),
    }
    trade(&mut s1, &mut s2, 5_000, 30);
    let page = scrape(metrics);
    assert_eq!(metric(&page, "tpx_node_checkpoint_mismatches_total"), 0);
    assert_eq!(metric(&page, "tpx_node_snapshot_start_seq"), from);
    drop((s1, s2));
    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
    // Every checkpoint the restarted node logged names the hash a full replay has there.
    checkpoints_match_a_full_replay(&cfg, &log, from);
    // A corrupted newest image: the older one is used.
    let kept = images(&snaps);
    let newest = kept.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&newest, bytes).unwrap();
    // Retention on from here.
    config(dir.path(), metrics, true);
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect(&format!("SNAPSHOT skipped {}", newest.display()));
    let older = started_from(&node);
    assert!(older < newest_seq(&newest));
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut away = login(addr, 1, 2, 2);
    assert!(matches!(next_reply(&mut away), ServerMessage::OrderExecuted(x) if x.seq == 2));
    drop(away);

    // Retention: images taken now delete the segments before the oldest kept.
    let mut s1 = login(addr, 1, 1, 0);
    let mut s2 = login(addr, 2, 1, 0);
    trade(&mut s1, &mut s2, 8_000, 70);
    let line = node.expect("segments=[\"");
    assert!(line.contains("RETAINED"), "{line}");
    // The images after it, written before the kill.
    let last = metric(&scrape(metrics), "tpx_node_last_seq");
    wait_until(|| {
        images(&snaps)
            .last()
            .is_some_and(|p| newest_seq(p) + 30 > last)
    });
    drop((s1, s2));
    node.signal(libc::SIGKILL);
    node.wait();
    let first = first_segment(&log);
    assert!(first > 1, "retention deleted the first segments");
    let kept = images(&snaps);
    assert_eq!(kept.len(), 2);
    assert!(
        newest_seq(&kept[0]) >= first,
        "the oldest image kept is in the log"
    );
    assert!(
        !replay_cmd(&cfg, &[]).status.success(),
        "tpx replay refuses a pruned log"
    );
    // The pruned log restarts from its image.
    let node = Proc::start("node", &["node", "--config", &cfg]);
    assert_eq!(started_from(&node), newest_seq(&kept[1]));
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut away = login(addr, 1, 2, 2);
    assert!(matches!(next_reply(&mut away), ServerMessage::OrderExecuted(x) if x.seq == 2));
    drop(away);
    drop(node);
    // Without an image the pruned log cannot be replayed: the node refuses to start.
    for p in images(&snaps) {
        std::fs::remove_file(p).unwrap();
    }
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    assert_ne!(node.wait(), Some(0));
}

#[test]
fn damage_before_the_snapshot_stops_the_node_after_its_start_and_refuses_a_start_from_before_it() {
    // The log's open does not scan the segments wholly before the snapshot the node starts
    // from (it replays none of them); the loader checks them once the replay is done, and
    // at once when the start falls back to an older image.
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let metrics = free_port();
    let cfg = config(dir.path(), metrics, false).display().to_string();
    let log = dir.path().join("log");
    let snaps = log.join("snapshots");
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut adm = login(addr, ADMIN, 1, 1);
    fund(&mut adm);
    let mut s1 = login(addr, 1, 1, 1);
    let mut s2 = login(addr, 2, 1, 1);
    trade(&mut s1, &mut s2, 1, 60);
    wait_until(|| images(&snaps).len() >= 2);
    let kept = images(&snaps);
    assert_eq!(kept.len(), 2, "{kept:?}");
    drop((s1, s2, adm));
    node.signal(libc::SIGKILL);
    node.wait();
    // A record in the middle of the first segment (its second commit; every image is after
    // the segment).
    let first = log.join(tpx_sequencer::log::segment_name(1));
    let mut bytes = std::fs::read(&first).unwrap();
    assert!(bytes[4096] != 0, "a second commit in the first segment");
    bytes[4096 + 60] ^= 0x5a;
    std::fs::write(&first, bytes).unwrap();
    let next = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| tpx_sequencer::log::parse_segment_name(e.ok()?.file_name().to_str()?))
        .filter(|&s| s > 1)
        .min()
        .unwrap();
    assert!(
        next <= newest_seq(&kept[0]),
        "the first segment is before both images"
    );

    // From the newest image: the node starts, then finds the damage and stops.
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    assert_eq!(started_from(&node), newest_seq(&kept[1]));
    node.expect("ROLE primary");
    let line = node.expect("LOGERROR the log before the snapshot's seq");
    assert!(
        line.contains(&tpx_sequencer::log::segment_name(1)),
        "{line}"
    );
    assert_eq!(node.wait(), Some(1));

    // The newest image damaged: the start from the older one would replay records the open
    // did not scan, so the loader checks them first, and the start is refused.
    let newest = kept.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(newest, bytes).unwrap();
    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect(&format!("SNAPSHOT skipped {}", newest.display()));
    assert_ne!(node.wait(), Some(0));
    assert!(node.within("ROLE primary", Duration::ZERO).is_none());
}

fn wait_until(mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn newest_seq(p: &Path) -> u64 {
    p.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Two shards on one core (instrument 1 on shard 0, 2 on shard 1), risk off: the image holds
/// both shards and the session's replies from both; after SIGKILL the restart starts from it,
/// the session that was away gets its fill from shard 1 numbered after its acks from both, and
/// every checkpoint the restarted node logs names, per shard, the hash of a full replay.
#[test]
fn two_shards_restart_from_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let metrics = free_port();
    let cfg = procs::single_node_config(
        dir.path(),
        &[0, 1],
        "",
        "write = \"buffered\"\ncheckpoint_every = 20",
        &format!(
            "[snapshots]\nevery_records = 30\nkeep = 2\ndelete_segments = false\n\
             [stats]\nprometheus = \"{metrics}\"\n"
        ),
    );
    let cfg = cfg.display().to_string();
    let log = dir.path().join("log");
    let snaps = log.join("snapshots");
    let both = [1, 2];

    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut s1 = login(addr, 1, 1, 1);
    let mut s2 = login(addr, 2, 1, 1);
    trade_on(&mut s1, &mut s2, 1, 30, &both);
    let mut away = login(addr, 1, 2, 1);
    away.send(&req::enter(limit(1_000, 1, Side::Sell, 59_000, 2)))
        .unwrap();
    accepted(&mut away, 1_000);
    away.send(&req::enter(limit(1_001, 2, Side::Sell, 59_000, 2)))
        .unwrap();
    accepted(&mut away, 1_001);
    drop(away);
    // Account 2 takes the order on shard 1, then the one on shard 0.
    for (cl, instrument) in [(1_000, 2), (1_001, 1)] {
        s2.send(&req::enter(limit(cl, instrument, Side::Buy, 59_000, 2)))
            .unwrap();
        accepted(&mut s2, cl);
        assert!(matches!(
            next_reply(&mut s2),
            ServerMessage::OrderExecuted(_)
        ));
    }
    let fill_seq = metric(&scrape(metrics), "tpx_node_last_seq");
    trade_on(&mut s1, &mut s2, 2_000, 60, &both);
    wait_until(|| {
        images(&snaps)
            .first()
            .is_some_and(|p| newest_seq(p) > fill_seq)
    });
    drop((s1, s2));
    node.signal(libc::SIGKILL);
    node.wait();

    let mut node = Proc::start("node", &["node", "--config", &cfg]);
    let from = started_from(&node);
    node.expect(&format!("after snapshot seq={from}"));
    node.expect("ROLE primary");
    let addr = listening(&node);
    let mut away = login(addr, 1, 2, 3);
    for (seq, cl) in [(3, 1_001), (4, 1_000)] {
        match next_reply(&mut away) {
            ServerMessage::OrderExecuted(x) => {
                assert_eq!((x.seq, x.cl_ord_id, x.qty), (seq, cl, 2))
            }
            m => panic!("{m:?}"),
        }
    }
    drop(away);
    let mut s1 = login(addr, 1, 1, 0);
    let mut s2 = login(addr, 2, 1, 0);
    trade_on(&mut s1, &mut s2, 5_000, 50, &both);
    assert_eq!(
        metric(&scrape(metrics), "tpx_node_checkpoint_mismatches_total"),
        0
    );
    drop((s1, s2));
    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
    let shards: std::collections::BTreeSet<usize> = checkpoints(&log)
        .into_iter()
        .filter(|c| c.1 > from)
        .map(|c| c.0)
        .collect();
    assert_eq!(
        shards.len(),
        2,
        "both shards logged checkpoints after the restart"
    );
    checkpoints_match_a_full_replay(&cfg, &log, from);
}

/// A pair with `[snapshots]` on both nodes: the standby takes images too (from the records the
/// primary acknowledged); SIGKILLed and restarted as standby, it starts from its own image and
/// catches up; then the primary is SIGKILLed, the standby is promoted, and a session that was
/// away resumes there with its missed fill, numbered as before; no checkpoint mismatched.
#[test]
fn a_standby_restarts_from_its_snapshot_and_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let cpus = cpus();
    let cpu = |k: usize| cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0);
    let w = free_port();
    let repl = [free_port(), free_port()];
    let extra = "checkpoint_every = 20\n[snapshots]\nevery_records = 30\nkeep = 2\n";
    let cfgs = [
        procs::node_config_with(dir.path(), 0, cpu(0), repl, w, extra)
            .display()
            .to_string(),
        procs::node_config_with(dir.path(), 1, cpu(1), repl, w, extra)
            .display()
            .to_string(),
    ];
    let w_s = w.to_string();
    let _witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            &dir.path().join("witness.state").display().to_string(),
        ],
    );
    let mut primary = Proc::start(
        "node-1",
        &["node", "--config", &cfgs[0], "--role", "primary"],
    );
    primary.expect("ROLE primary node=1");
    let mut standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    standby.expect("ROLE standby node=2");
    let a1 = listening(&primary);

    let mut s1 = login(a1, 1, 1, 1);
    let mut s2 = login(a1, 2, 1, 1);
    trade(&mut s1, &mut s2, 1, 20);
    let mut away = login(a1, 1, 2, 1);
    away.send(&req::enter(limit(1_000, BTC_USDT, Side::Sell, 59_000, 2)))
        .unwrap();
    accepted(&mut away, 1_000);
    drop(away);
    s2.send(&req::enter(limit(1_000, BTC_USDT, Side::Buy, 59_000, 2)))
        .unwrap();
    accepted(&mut s2, 1_000);
    assert!(matches!(
        next_reply(&mut s2),
        ServerMessage::OrderExecuted(_)
    ));
    trade(&mut s1, &mut s2, 2_000, 60);
    let snaps2 = dir.path().join("node-2").join("snapshots");
    let last = metric_of_log(&dir.path().join("node-1"));
    // The standby's images reach close to the primary's log.
    wait_until(|| {
        images(&snaps2)
            .last()
            .is_some_and(|p| newest_seq(p) + 40 > last)
    });
    primary.expect("SNAPSHOT seq=");

    // The standby restarts from its own image and catches up.
    standby.signal(libc::SIGKILL);
    standby.wait();
    let standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    let from = started_from(&standby);
    standby.expect(&format!("after snapshot seq={from}"));
    standby.expect("ROLE standby node=2");
    trade(&mut s1, &mut s2, 5_000, 20);
    drop((s1, s2));
    // Its log catches up with the primary's, then the primary dies.
    let want = metric_of_log(&dir.path().join("node-1"));
    wait_until(|| metric_of_log(&dir.path().join("node-2")) >= want);
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    let a2 = listening(&standby);
    let mut away = login(a2, 1, 2, 2);
    match next_reply(&mut away) {
        ServerMessage::OrderExecuted(x) => {
            assert_eq!((x.seq, x.cl_ord_id, x.qty, x.leaves_qty), (2, 1_000, 2, 0))
        }
        m => panic!("{m:?}"),
    }
    assert!(standby
        .within("DIVERGED", Duration::from_millis(200))
        .is_none());
}

/// The last seq in a node's log.
fn metric_of_log(dir: &Path) -> u64 {
    let Ok(st) = FileStorage::new(dir, WriteMode::Buffered) else {
        return 0;
    };
    let Ok(mut r) = LogReader::new(st) else {
        return 0;
    };
    let mut last = 0;
    while let Ok(Some(rec)) = r.next() {
        last = rec.meta.seq;
    }
    last
}
