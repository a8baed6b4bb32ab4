//! Failover with real processes: `tpx witness`, `tpx node --role primary` and
//! `tpx node --role standby` (durability `replicated`), a client sending orders, SIGKILL of the
//! primary while orders are in flight, the client failing over to the promoted standby and
//! re-sending what has no answer. Then: every order has exactly one answer that says it is
//! sequenced, and the new primary's log holds every order exactly once; orders resting from
//! before the failover are cancelled and replaced by `cl_ord_id` on the new primary (and the
//! replaced one trades at its new price); the old primary, whose log holds a record the new term
//! does not, rejoins (cut, exit 3, restart as standby, catch up) and takes over again at a second
//! SIGKILL, where the orders of both earlier terms are still cancellable by `cl_ord_id`.

use std::path::Path;
use std::time::{Duration, Instant};

use tpx_client::{req, token_from_str, ClientConfig, ClientError, Event, FailoverClient};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_sequencer::{FileStorage, LogConfig, LogReader, SegmentLog, WriteMode};
use tpx_wire::enums::{CancelReason, RejectReason, Side, TimeInForce};
use tpx_wire::log_record::{encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::{EnterOrder, ReplaceOrder};
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{free_port, listening, node_config, order, Proc, WAIT};

/// The `cl_ord_id` of the record [`diverge`] plants in the old primary's log.
const UNREPLICATED: u64 = 9_999;

/// Makes the old primary's (stopped) log end as it does when the primary wrote records its
/// standby never received: the records of its last term as the new primary holds them, then one
/// more of that term (an order `UNREPLICATED`), which the new term does not hold. (Whether a
/// SIGKILL leaves such a tail is a race; this makes the rejoin's cut certain.) Returns the seq
/// the new primary's log holds of the old term.
fn diverge(old: &Path, new: &Path) -> u64 {
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let (mut log, _) =
        SegmentLog::open(FileStorage::new(old, WriteMode::Buffered).unwrap(), cfg).unwrap();
    let mut r = LogReader::new(FileStorage::new(new, WriteMode::Buffered).unwrap()).unwrap();
    let mut held: Vec<LogRecord> = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        if held.first().is_some_and(|f| f.meta.term != rec.meta.term) {
            break;
        }
        held.push(rec);
    }
    // The old primary's term (its own disk may hold none of it yet: in `replicated` mode it
    // acknowledges once the standby holds a record).
    let term = held.first().map_or(0, |f| f.meta.term);
    assert!(log.last_term() == 0 || log.last_term() == term);
    eprintln!(
        "diverge: the old primary's log ends at {}, the new one holds {} of term {term}",
        log.last_seq(),
        held.len()
    );
    let end = held.len() as u64;
    assert!(end > 0, "the new primary holds none of the old term");
    let mut buf = [0u8; 256];
    let mut append = |log: &mut SegmentLog<FileStorage>, rec: &LogRecord| {
        let n = encode_record(rec, &mut buf).unwrap();
        log.append(&buf[..n]).unwrap();
    };
    // Records of the term the old primary did not write to its disk before it died.
    for rec in held.iter().skip(log.last_seq() as usize) {
        append(&mut log, rec);
    }
    let last = held.last().unwrap().meta;
    let seq = log.last_seq() + 1;
    append(
        &mut log,
        &LogRecord {
            meta: RecordMeta {
                seq,
                origin: tpx_node::sequencing::feed::origin_of(0, 1),
                account: 1,
                ..last
            },
            input: Input::EnterOrder(EnterOrder {
                price: 40_000,
                ..order(UNREPLICATED)
            }),
        },
    );
    log.commit().unwrap();
    assert!(log.last_seq() > end);
    end
}

/// Waits for the reply `pick` selects, skipping others (answers to re-sent requests, fills).
fn await_reply<T>(
    c: &mut FailoverClient,
    what: &str,
    mut pick: impl FnMut(&ServerMessage) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no {what}");
        match c.recv(Duration::from_millis(200)) {
            Ok(Event::Reply(m)) => {
                if let Some(t) = pick(&m) {
                    return t;
                }
            }
            Ok(_) | Err(ClientError::Timeout) => {}
            Err(e) => panic!("{what}: {e}"),
        }
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
    // Orders resting from before the failover, by the cl_ord_id the old primary took them
    // under: the new primary derived their owner from the log it applied as standby.
    let (gone, moved) = (acked_before_kill[0], acked_before_kill[1]);
    let moved_to = BEFORE + AFTER + 1;
    c.send(&req::cancel(gone, 0)).unwrap();
    let cancelled = await_reply(&mut c, "cancel of a pre-failover order", |m| match m {
        ServerMessage::OrderCancelled(x) if x.cl_ord_id == gone => Some(*x),
        ServerMessage::OrderRejected(r) if r.cl_ord_id == gone => panic!("cancel refused: {r:?}"),
        _ => None,
    });
    assert_eq!((cancelled.cancelled_qty, cancelled.leaves_qty), (1, 0));
    assert_eq!(cancelled.reason, CancelReason::UserRequested);
    c.send(&req::replace(ReplaceOrder {
        orig_cl_ord_id: moved,
        new_cl_ord_id: moved_to,
        price: 60_000,
        qty: 1,
    }))
    .unwrap();
    let replaced = await_reply(&mut c, "replace of a pre-failover order", |m| match m {
        ServerMessage::OrderReplaced(x) if x.new_cl_ord_id == moved_to => Some(*x),
        ServerMessage::OrderRejected(r) if r.cl_ord_id == moved_to => {
            panic!("replace refused: {r:?}")
        }
        _ => None,
    });
    assert_eq!((replaced.orig_cl_ord_id, replaced.price), (moved, 60_000));
    // The book: the cancelled order is gone, the replaced one rests at its new price (the best
    // bid): a sell of account 2 at 60 000 trades with it and nothing else.
    let t2 = token_from_str("demo-token-2");
    let mut taker = tpx_client::Client::connect_at(ClientConfig::new(a2, 2, 1, t2), 0).unwrap();
    taker
        .send(&req::enter(EnterOrder {
            side: Side::Sell,
            price: 60_000,
            qty: 2,
            tif: TimeInForce::Ioc,
            ..order(1)
        }))
        .unwrap();
    let fill = await_reply(&mut c, "the fill of the replaced order", |m| match m {
        ServerMessage::OrderExecuted(x) => Some(*x),
        _ => None,
    });
    assert_eq!(
        (fill.cl_ord_id, fill.price, fill.qty, fill.leaves_qty),
        (moved_to, 60_000, 1, 0)
    );
    let mut taker_fills = 0;
    loop {
        match taker.recv(WAIT).unwrap() {
            ServerMessage::OrderExecuted(x) => {
                assert_eq!(x.price, 60_000);
                taker_fills += x.qty;
            }
            ServerMessage::OrderCancelled(x) => {
                assert_eq!(x.leaves_qty, 0);
                break;
            }
            ServerMessage::OrderAccepted(_) => {}
            other => panic!("taker: {other:?}"),
        }
    }
    assert_eq!(taker_fills, 1, "the sell met only the replaced order");
    c.send(&req::cancel(gone, 0)).unwrap();
    let r = await_reply(&mut c, "a second cancel", |m| match m {
        ServerMessage::OrderRejected(r) if r.cl_ord_id == gone => Some(*r),
        ServerMessage::OrderCancelled(x) if x.cl_ord_id == gone => panic!("cancelled twice"),
        _ => None,
    });
    assert_eq!(r.reason, RejectReason::UnknownOrder);
    // A request the old primary sequenced, sent again on another session of the account: the
    // new primary's log knows it (de-duplication by account and cl_ord_id survives the
    // failover); `gone` is no longer live, so the gateway lets it through and the log refuses it.
    // (Whichever node is primary: on a loaded machine a stall of the primary longer than the
    // timeout is a legitimate failover.)
    let mut again =
        FailoverClient::connect(vec![a2, a1], ClientConfig::new(a2, 1, 2, token)).unwrap();
    for id in [gone, 5] {
        again.send(&req::enter(order(id))).unwrap();
        match again.recv(WAIT).unwrap() {
            Event::Reply(ServerMessage::OrderRejected(r)) => {
                assert_eq!(r.cl_ord_id, id);
                assert_eq!(r.reason, RejectReason::DuplicateClientOrderId);
            }
            other => panic!("a re-sent order was not refused: {other:?}"),
        }
    }
    drop(again);
    drop(c);
    // The old primary comes back as standby. Its log ends with a record the new term does not
    // hold: it cuts it, exits 3 (its shards applied it), and is restarted as standby (what
    // systemd and `tpx up` do); then it follows the new term and catches up (its log ends with
    // every order, once).
    let held = diverge(&dir.path().join("node-1"), &dir.path().join("node-2"));
    let mut old = Proc::start("node-1", &["node", "--config", &c0, "--role", "standby"]);
    let cut = old.expect("TRUNCATED to_seq=");
    assert!(cut.ends_with(&format!("to_seq={held}")), "{cut}");
    old.expect("REJOIN");
    assert_eq!(old.wait(), Some(3));
    let mut old = Proc::start("node-1", &["node", "--config", &c0, "--role", "standby"]);
    old.expect("ROLE standby node=1");
    let a1 = listening(&old);
    let deadline = Instant::now() + WAIT;
    while logged_orders(&dir.path().join("node-1")).len() < (BEFORE + AFTER) as usize {
        assert!(
            Instant::now() < deadline,
            "the old primary did not catch up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rejoined = logged_orders(&dir.path().join("node-1"));
    assert!(!rejoined.contains(&UNREPLICATED));
    assert_eq!(rejoined, logged_orders(&dir.path().join("node-2")));

    // A second takeover, back to the rejoined node: orders of both earlier terms are still
    // there and still cancellable by their cl_ord_id, by the session that placed them (the
    // rejoined node rebuilt the ownership from its log; another session of the account gets
    // `UnknownOrder`).
    let mut other =
        FailoverClient::connect(vec![a2, a1], ClientConfig::new(a2, 1, 3, token)).unwrap();
    let mut c3 = FailoverClient::connect(vec![a2, a1], ClientConfig::new(a2, 1, 1, token)).unwrap();
    standby.signal(libc::SIGKILL);
    standby.wait();
    old.expect("ROLE primary node=1");
    let (first_term, second_term) = (acked_before_kill[2], BEFORE + AFTER);
    for id in [first_term, second_term] {
        c3.send(&req::cancel(id, 0)).unwrap();
        let x = await_reply(&mut c3, "cancel after the second takeover", |m| match m {
            ServerMessage::OrderCancelled(x) if x.cl_ord_id == id => Some(*x),
            ServerMessage::OrderRejected(r) if r.cl_ord_id == id => panic!("refused: {r:?}"),
            _ => None,
        });
        assert_eq!(x.leaves_qty, 0);
    }
    assert_eq!(c3.endpoint(), 1);
    other.send(&req::cancel(second_term - 1, 0)).unwrap();
    let r = await_reply(&mut other, "another session's cancel", |m| match m {
        ServerMessage::OrderRejected(r) if r.cl_ord_id == second_term - 1 => Some(*r),
        ServerMessage::OrderCancelled(x) => panic!("another session cancelled {x:?}"),
        _ => None,
    });
    assert_eq!(r.reason, RejectReason::UnknownOrder);
    // The cut order never reached the book.
    c3.send(&req::cancel(UNREPLICATED, 0)).unwrap();
    let r = await_reply(&mut c3, "a cancel of the cut order", |m| match m {
        ServerMessage::OrderRejected(r) if r.cl_ord_id == UNREPLICATED => Some(*r),
        _ => None,
    });
    assert_eq!(r.reason, RejectReason::UnknownOrder);
    old.signal(libc::SIGTERM);
    assert_eq!(old.wait(), Some(0));

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

/// A SIGKILL closes the dead primary's connections once the kernel has torn its process down:
/// the standby asks the witness for a term then, without waiting for its timeout. With a 3 s
/// timeout and a 50 ms lease the standby is primary long before the timeout, and its
/// `TAKEOVER` line says it saw the connections close (`closed_ns`) before it first asked.
#[test]
fn the_standby_takes_over_when_the_dead_primarys_connections_close() {
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
    let cfgs: Vec<String> = (0..2)
        .map(|k| {
            let p = node_config(dir.path(), k, cpu(k), repl, w);
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("timeout_us = 200000", "timeout_us = 3000000")
                .replace("heartbeat_us = 500", "heartbeat_us = 1000");
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect();
    let w_s = w.to_string();
    let _witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "50000",
            "--state-file",
            &dir.path().join("witness.state").display().to_string(),
        ],
    );
    let mut primary = Proc::start(
        "node-1",
        &["node", "--config", &cfgs[0], "--role", "primary"],
    );
    primary.expect("ROLE primary node=1 term=1");
    let standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    standby.expect("ROLE standby node=2 term=1");
    // Connected both ways and following.
    std::thread::sleep(Duration::from_millis(500));
    assert!(standby
        .within("ROLE primary", Duration::from_millis(1))
        .is_none());
    let t0 = Instant::now();
    primary.signal(libc::SIGKILL);
    let took = standby.within("ROLE primary node=2", Duration::from_millis(2_500));
    let after = t0.elapsed();
    assert!(
        took.is_some(),
        "no takeover within 2.5 s of the kill (timeout 3 s): the close was not acted on"
    );
    assert!(after < Duration::from_secs(2), "took {after:?}");
    let line = standby.expect("TAKEOVER node=2");
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    let (closed, ask, primary_ns) = (field("closed_ns"), field("ask_ns"), field("primary_ns"));
    assert!(
        closed > 0,
        "the standby did not see the connections close: {line}"
    );
    assert!(closed <= ask && ask <= primary_ns, "{line}");
    // The lease (50 ms) is what it waited for, not the timeout (3 s).
    assert!(primary_ns - closed < 1_000_000_000, "{line}");
    primary.wait();
}
