//! Issue 15, items 3, 5, 11 and 12: the witness and the replication link, test-first.
//!
//! Each test was run on the code before its fix and failed there (see the note on each).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tpx_sequencer::apply::EngineApplier;
use tpx_sequencer::log::{LogConfig, LogReader};
use tpx_sequencer::proto::{DenyReason, Msg};
use tpx_sequencer::replica::{Durability, Replica, ReplicaConfig, Role};
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::testing::{demo_engine_config, Load};
use tpx_sequencer::transport::{Handshake, MemNet, MemTransport, TcpTransport};
use tpx_sequencer::witness::{Witness, WitnessServer};
use tpx_sequencer::writer::SyncLog;
use tpx_sequencer::{ManualClock, Transport};
use tpx_wire::log_record::LogRecord;

const W: u32 = 100;
const TIMEOUT: u64 = 500_000;
const LEASE: u64 = 500_000;
const STEP: u64 = 10_000;

mod common;

use common::StallLog;

type Rep = Replica<StallLog, MemTransport, ManualClock>;

struct Node {
    disk: MemStorage,
    frozen: Arc<AtomicBool>,
    rep: Option<Rep>,
    app: EngineApplier,
}

struct Cluster {
    net: MemNet,
    clock: ManualClock,
    witness: WitnessServer<MemTransport, ManualClock>,
    nodes: Vec<Node>,
    load: Load,
}

fn cfg(id: u32) -> ReplicaConfig {
    ReplicaConfig {
        node_id: id,
        peer_id: 3 - id,
        witness_id: W,
        durability: Durability::Replicated,
        heartbeat_ns: 50_000,
        timeout_ns: TIMEOUT,
        lease_margin_ns: 50_000,
        ..ReplicaConfig::default()
    }
}

fn log_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        write_buf_bytes: 16 << 10,
        zero_fill: false,
    }
}

impl Cluster {
    fn new() -> Cluster {
        let net = MemNet::new();
        let clock = ManualClock::new(1_000_000_000);
        let witness = WitnessServer::new(LEASE, net.endpoint(W), clock.clone(), None);
        let mut c = Cluster {
            net,
            clock,
            witness,
            nodes: Vec::new(),
            load: Load::new(7, 42),
        };
        for id in [1, 2] {
            c.nodes.push(Node {
                disk: MemStorage::new(),
                frozen: Arc::new(AtomicBool::new(false)),
                rep: None,
                app: EngineApplier::new(demo_engine_config()).unwrap(),
            });
            c.start(id, id == 1);
        }
        c
    }

    /// (Re)starts a node from its disk (a new process: a new incarnation).
    fn start(&mut self, id: u32, want_primary: bool) {
        let n = &mut self.nodes[id as usize - 1];
        let (inner, _) = SyncLog::open(n.disk.clone(), log_cfg()).unwrap();
        let src = n.disk.clone();
        n.app = EngineApplier::new(demo_engine_config())
            .unwrap()
            .with_source(move || Ok(src.clone()));
        n.app.rebuild(n.disk.clone(), u64::MAX).unwrap();
        self.net.set_down(id, false);
        let ep = self.net.endpoint(id);
        let log = StallLog {
            inner,
            stall: n.frozen.clone(),
        };
        n.rep = Some(
            Replica::new(
                cfg(id),
                log,
                ep,
                self.clock.clone(),
                n.app.applied_seq,
                want_primary,
            )
            .unwrap(),
        );
    }

    /// The process is gone; its disk keeps only what was flushed.
    fn crash(&mut self, id: u32) {
        let n = &mut self.nodes[id as usize - 1];
        n.rep = None;
        n.disk.crash();
        self.net.set_down(id, true);
    }

    fn rep(&mut self, id: u32) -> &mut Rep {
        self.nodes[id as usize - 1].rep.as_mut().unwrap()
    }

    fn step(&mut self, n: usize) {
        for _ in 0..n {
            self.clock.advance(STEP);
            self.witness.poll();
            for node in &mut self.nodes {
                if let Some(r) = node.rep.as_mut() {
                    r.poll(&mut node.app);
                }
            }
        }
    }

    fn primary(&self) -> Option<u32> {
        self.nodes
            .iter()
            .enumerate()
            .find(|(_, n)| n.rep.as_ref().is_some_and(|r| r.role() == Role::Primary))
            .map(|(i, _)| i as u32 + 1)
    }

    fn submit(&mut self, k: usize) {
        let p = self.primary().expect("a primary");
        for _ in 0..k {
            let id = self.load.next_cl_ord_id;
            let req = self.load.request(id);
            let session = self.load.session;
            self.rep(p).submit(session, session, &req).unwrap();
            self.load.next_cl_ord_id += 1;
            self.step(1);
        }
    }

    /// What a node's disk holds.
    fn records(&self, id: u32) -> Vec<LogRecord> {
        let mut r = LogReader::new(self.nodes[id as usize - 1].disk.clone()).unwrap();
        let mut v = Vec::new();
        while let Some(x) = r.next().unwrap() {
            v.push(x);
        }
        v
    }
}

/// Item 3. In `replicated` mode the primary acknowledged records its own disk did not hold yet
/// (the standby had them); killed and restarted (systemd), it was re-granted the next term as
/// "the holder" without the lease or `must_have` checks, with a shorter log, and the standby
/// then cut the records it had acknowledged. Failed on the old code: 10 acknowledged records,
/// the new primary (node 1) held none of them.
#[test]
fn a_restarted_primary_with_a_lagging_disk_never_cuts_acknowledged_records() {
    let mut c = Cluster::new();
    c.step(100);
    assert_eq!(c.primary(), Some(1));
    // The primary's disk stops; the standby keeps receiving.
    c.nodes[0].frozen.store(true, Ordering::Relaxed);
    c.submit(10);
    c.step(20);
    let acked = c.rep(1).acknowledgeable_seq();
    let acked_records: Vec<LogRecord> = {
        // Everything acknowledged is, at this moment, at least on the standby.
        let mut r = c.records(2);
        r.truncate(acked as usize);
        r
    };
    assert_eq!(acked_records.len() as u64, acked);
    // The disk comes back for a moment (some records become durable, then more are acked).
    c.nodes[0].frozen.store(false, Ordering::Relaxed);
    c.step(1);
    c.nodes[0].frozen.store(true, Ordering::Relaxed);
    c.submit(5);
    c.step(20);
    let acked = c.rep(1).acknowledgeable_seq();
    // The primary dies; its standby cannot reach the witness for a while (a cut link or a
    // slow switch), so the restarted primary asks first.
    c.net.partition(2, W, true);
    c.crash(1);
    c.nodes[0].frozen.store(false, Ordering::Relaxed);
    c.step(5);
    c.start(1, false);
    c.step(200);
    c.net.partition(2, W, false);
    c.step(300);
    let p = c.primary().expect("someone is primary again");
    let mine = c.records(p);
    let theirs = c.records(3 - p);
    assert!(
        mine.len() as u64 >= acked,
        "the primary (node {p}) holds {} records, {acked} were acknowledged",
        mine.len()
    );
    assert_eq!(
        &theirs[..acked as usize],
        &mine[..acked as usize],
        "both logs hold the acknowledged records"
    );
    assert_eq!(&mine[..acked_records.len()], &acked_records[..]);
}

/// Item 3, the rule: in `replicated` mode a primary acknowledges only what its own disk holds
/// as well as the standby (commit = min(standby received, local durable)). Failed on the old
/// code: 10 records acknowledged with none on the primary's disk.
#[test]
fn replicated_mode_acknowledges_only_what_the_primary_disk_holds_too() {
    let mut c = Cluster::new();
    c.step(100);
    c.nodes[0].frozen.store(true, Ordering::Relaxed);
    c.submit(10);
    c.step(50);
    assert_eq!(c.rep(2).last_seq(), 10, "the standby received them");
    assert_eq!(c.rep(1).durable_seq(), 0);
    assert_eq!(
        c.rep(1).acknowledgeable_seq(),
        0,
        "nothing is acknowledged before the primary's own disk holds it"
    );
    c.nodes[0].frozen.store(false, Ordering::Relaxed);
    c.step(5);
    assert_eq!(c.rep(1).acknowledgeable_seq(), 10);
}

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tpx-wsafety-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn promote(node: u32, term: u64, last_term: u64, last_seq: u64) -> Msg<'static> {
    Msg::Promote {
        node,
        term,
        last_seq,
        last_term,
        incarnation: u64::from(node) * 1_000,
    }
}

/// Sends `m` from `from` to the witness server and returns its answer.
fn ask(
    net: &MemNet,
    w: &mut WitnessServer<MemTransport, ManualClock>,
    from: u32,
    m: Msg<'_>,
) -> Option<Msg<'static>> {
    let mut ep = net.endpoint(from);
    let mut b = Vec::new();
    m.encode(&mut b);
    assert!(ep.send(W, &b));
    w.poll();
    let mut got = None;
    ep.poll(&mut |_, m| got = Msg::decode(m).map(own));
    got
}

fn own(m: Msg<'_>) -> Msg<'static> {
    match m {
        Msg::Granted { term, lease_ns } => Msg::Granted { term, lease_ns },
        Msg::Denied {
            term,
            holder,
            reason,
        } => Msg::Denied {
            term,
            holder,
            reason,
        },
        Msg::Lease {
            term,
            solo_upto,
            lease_ns,
            standby_incarnation,
        } => Msg::Lease {
            term,
            solo_upto,
            lease_ns,
            standby_incarnation,
        },
        other => panic!("unexpected {other:?}"),
    }
}

/// Item 5. Both slots shared one sector: a torn write of that sector (or of the file's first
/// block) lost every grant, and the witness started as if it had never granted anything,
/// granting the next term at once to a node that lacked what the holder acknowledged. Failed
/// on the old code (Granted).
#[test]
fn a_witness_whose_first_block_is_lost_keeps_its_grant() {
    let p = tmp("first-block");
    let net = MemNet::new();
    let clock = ManualClock::new(1_000);
    let mut w = WitnessServer::new(LEASE, net.endpoint(W), clock.clone(), Some(p.clone()));
    assert!(matches!(
        ask(&net, &mut w, 1, promote(1, 3, 2, 50)),
        Some(Msg::Granted { term: 3, .. })
    ));
    drop(w);
    // The first 4 KiB block is lost (zeroes, as a torn write of it can leave).
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len().min(4096);
    bytes[..n].fill(0);
    std::fs::write(&p, &bytes).unwrap();
    let mut w = WitnessServer::new(LEASE, net.endpoint(W), clock.clone(), Some(p.clone()));
    clock.advance(10 * LEASE);
    let r = ask(&net, &mut w, 2, promote(2, 4, 2, 10));
    assert!(
        !matches!(r, Some(Msg::Granted { .. })),
        "a witness that lost its state granted term 4: {r:?}"
    );
    let _ = std::fs::remove_file(&p);
}

/// Item 5. A state file with no valid grant was read as "no state". Failed on the old code
/// (the restarted witness granted term 1 at once).
#[test]
fn a_witness_with_a_damaged_state_file_grants_nothing() {
    let p = tmp("damaged");
    std::fs::write(&p, [0x5Au8; 8192]).unwrap();
    let net = MemNet::new();
    let clock = ManualClock::new(1_000);
    let mut w = WitnessServer::new(LEASE, net.endpoint(W), clock.clone(), Some(p.clone()));
    clock.advance(10 * LEASE);
    let r = ask(&net, &mut w, 2, promote(2, 1, 0, 0));
    assert!(
        r.is_none(),
        "a damaged state file must not act as no state: {r:?}"
    );
    assert_eq!(
        std::fs::read(&p).unwrap(),
        vec![0x5Au8; 8192],
        "left as it was"
    );
    let _ = std::fs::remove_file(&p);
}

/// Item 11. A `Renew` lowered `must_have` at once, while the primary could still acknowledge
/// alone up to the value it had been granted before (its `solo_ok` from the earlier `Lease`),
/// or its standby could lose what it had received (a restart with a lagging disk): the witness
/// then granted a node lacking records acknowledged alone. Now `must_have` never goes down.
/// Failed on the old code (Granted).
#[test]
fn the_witness_never_lowers_what_a_candidate_must_hold() {
    let mut w = Witness::new(LEASE, 0, None);
    assert!(w.on_message(0, &promote(1, 1, 0, 0)).1.granted);
    let renew = |solo_upto, solo_term| Msg::Renew {
        node: 1,
        term: 1,
        solo_upto,
        solo_term,
        incarnation: 1_000,
        standby_incarnation: 0,
    };
    assert!(matches!(
        w.on_message(100, &renew(40, 1)).0,
        Some(Msg::Lease { solo_upto: 40, .. })
    ));
    // The standby came back and caught up: the primary reports nothing alone any more.
    assert!(matches!(
        w.on_message(200, &renew(0, 0)).0,
        Some(Msg::Lease { solo_upto: 0, .. })
    ));
    // The primary dies; a node holding only up to 30 asks after the lease.
    let (reply, out) = w.on_message(200 + 3 * LEASE, &promote(2, 2, 1, 30));
    assert!(
        !out.granted,
        "granted a log lacking records acknowledged alone"
    );
    assert!(matches!(
        reply,
        Some(Msg::Denied {
            reason: DenyReason::MissingAcked,
            ..
        })
    ));
    assert!(
        w.on_message(200 + 3 * LEASE, &promote(2, 2, 1, 40))
            .1
            .granted
    );
}

fn handshake(cluster_id: u64, secret_byte: u8, config_digest: u64) -> Handshake {
    Handshake {
        cluster_id,
        secret: [secret_byte; 32],
        config_digest,
        who: "test",
    }
}

fn frame(b: &[u8]) -> Vec<u8> {
    let mut f = (b.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(b);
    f
}

/// A hello as `TcpTransport` sends it (see `transport.rs`).
fn hello(id: u32, h: &Handshake) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[0..4].copy_from_slice(&0x4858_5054u32.to_le_bytes());
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    b[8..12].copy_from_slice(&id.to_le_bytes());
    b[16..24].copy_from_slice(&h.cluster_id.to_le_bytes());
    b[24..32].copy_from_slice(&h.config_digest.to_le_bytes());
    b[32..64].copy_from_slice(&h.secret);
    b
}

/// Item 12. Any connection to a node's replication port could claim to be the witness (peer
/// id 100) and send `Granted`. Failed on the old code: the candidate became primary of term 1
/// on a forged grant. Now a connection must present the cluster id and the shared secret in
/// its first frame; the old bare id, a wrong secret and a wrong cluster id are all dropped
/// (and counted), and the real witness, holding the secret, still grants.
#[test]
fn a_connection_claiming_the_witness_id_without_the_secret_cannot_grant_a_term() {
    use std::io::Write;
    use tpx_sequencer::SystemClock;
    let good = handshake(7, 0x42, 0xD1);
    // The witness listens; the node dials it and listens for its peer.
    let wnet = TcpTransport::new(W, Some("127.0.0.1:0".parse().unwrap()), Vec::new())
        .unwrap()
        .with_handshake(Handshake {
            config_digest: 0,
            ..good.clone()
        });
    let waddr = wnet.local_addr().unwrap();
    let net = TcpTransport::new(1, Some("127.0.0.1:0".parse().unwrap()), vec![(W, waddr)])
        .unwrap()
        .with_handshake(good.clone());
    let addr = net.local_addr().unwrap();
    let (log, _) = SyncLog::open(MemStorage::new(), log_cfg()).unwrap();
    let mut rep = Replica::new(cfg(1), log, net, SystemClock::new(), 0, true).unwrap();
    let mut app = EngineApplier::new(demo_engine_config()).unwrap();
    assert_eq!(rep.role(), Role::Candidate);
    let mut g = Vec::new();
    Msg::Granted {
        term: 1,
        lease_ns: 1_000_000_000,
    }
    .encode(&mut g);
    let forgeries = [
        // The old first frame: a bare peer id.
        frame(&W.to_le_bytes()),
        // A well-formed hello with the witness's id and cluster, but not the secret.
        frame(&hello(W, &handshake(7, 0x41, 0))),
        // The secret, but another cluster.
        frame(&hello(W, &handshake(8, 0x42, 0))),
    ];
    let mut forgers = Vec::new();
    for f in &forgeries {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let mut bytes = f.clone();
        bytes.extend(frame(&g));
        c.write_all(&bytes).unwrap();
        forgers.push(c);
    }
    for _ in 0..100 {
        rep.poll(&mut app);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(
        rep.role(),
        Role::Candidate,
        "a forged grant made it primary"
    );
    let stats = rep.transport_mut().handshake_stats();
    assert_eq!(stats.refused, 3, "{stats:?}");
    // The real witness (with the secret) grants.
    let mut w = WitnessServer::new(LEASE, wnet, SystemClock::new(), None);
    for _ in 0..2_000 {
        w.poll();
        rep.poll(&mut app);
        if rep.role() == Role::Primary {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert_eq!(
        rep.role(),
        Role::Primary,
        "the witness with the secret grants"
    );
}

/// Item 7. Two nodes whose configuration digests differ never pair: no connection comes up
/// (so neither acknowledges with the other), both count a mismatch; equal digests pair, and
/// the witness (digest 0) pairs with both.
#[test]
fn nodes_with_different_configuration_digests_refuse_to_pair() {
    let pair = |d1: u64, d2: u64| {
        let mut a = TcpTransport::new(1, Some("127.0.0.1:0".parse().unwrap()), Vec::new())
            .unwrap()
            .with_handshake(handshake(7, 0x42, d1));
        let addr = a.local_addr().unwrap();
        let mut b = TcpTransport::new(2, None, vec![(1, addr)])
            .unwrap()
            .with_handshake(handshake(7, 0x42, d2));
        let mut got = 0;
        for _ in 0..300 {
            a.poll(&mut |_, _| got += 1);
            b.poll(&mut |_, _| got += 1);
            if b.connected(1) {
                b.send(1, b"x");
            }
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        (
            a.connected(2) && b.connected(1),
            got,
            a.handshake_stats().config_mismatches + b.handshake_stats().config_mismatches,
        )
    };
    let (up, got, mismatches) = pair(0xAAAA, 0xBBBB);
    assert!(!up, "paired with another configuration");
    assert_eq!(got, 0, "nothing passed");
    assert!(mismatches >= 1);
    let (up, got, mismatches) = pair(0xAAAA, 0xAAAA);
    assert!(up && got > 0 && mismatches == 0);
    let (up, _, mismatches) = pair(0, 0xAAAA);
    assert!(
        up && mismatches == 0,
        "the witness's digest 0 is not checked"
    );
}

/// `replicated` acknowledges records held by the primary's disk and the standby's memory. The
/// standby crashed (its memory gone, its disk behind) while the primary was cut off (a pause,
/// a dead link): the restarted standby won the next term once the primary's lease ran out,
/// without the acknowledged records (`tpx-sim` seeds 338, 342, 343, 417 of `--crash-ppm 10000
/// --max-restart-steps 20 --pause-ppm 1000`). Now the witness knows which standby process the
/// primary counts on (reported in `Renew` once that process holds everything acknowledged,
/// before any of its receipts count) and refuses another process of that node. Failed on the
/// old code: node 2 primary of term 2 with none of the 10 acknowledged records.
#[test]
fn a_restarted_standby_never_wins_without_what_its_receipt_acknowledged() {
    let mut c = Cluster::new();
    c.step(100);
    assert_eq!(c.primary(), Some(1));
    // The standby's disk stalls: what it receives stays in its memory.
    c.nodes[1].frozen.store(true, Ordering::Relaxed);
    let before = c.rep(2).durable_seq();
    c.submit(10);
    c.step(20);
    let acked = c.rep(1).acknowledgeable_seq();
    assert!(
        acked >= before + 10,
        "acknowledged by the standby's receipt"
    );
    assert_eq!(c.rep(2).durable_seq(), before);
    // The primary is cut off from everyone; the standby crashes and restarts at once.
    c.net.partition(1, 2, true);
    c.net.partition(1, W, true);
    c.crash(2);
    c.nodes[1].frozen.store(false, Ordering::Relaxed);
    c.start(2, false);
    c.step(600);
    assert_ne!(
        c.primary(),
        Some(2),
        "node 2 won holding {} records; {acked} were acknowledged",
        c.rep(2).last_seq()
    );
    // The primary comes back: the cluster goes on with every acknowledged record.
    c.net.partition(1, 2, false);
    c.net.partition(1, W, false);
    c.step(600);
    let p = c.primary().expect("a primary once node 1 is back");
    assert!(
        c.rep(p).last_seq() >= acked,
        "node {p} primary of term {} holds {}; {acked} acknowledged",
        c.rep(p).term(),
        c.rep(p).last_seq()
    );
    c.submit(5);
    c.step(50);
    assert!(c.records(2).len() as u64 >= acked + 5);
}

/// A single node (no standby) that was granted the first term of a fresh witness and restarts
/// before it logged anything (a primary of an empty log writes no `TermStart`) must be granted
/// again: no term was ever granted before its own, so it inherited nothing anyone could have
/// acknowledged, and what it acknowledged itself is on its disk. Before the fix the witness
/// refused it forever (`MissingAcked`: "a restarted holder whose log ends in an older term"),
/// found by `make e2e-ops`'s failover drill of a single node. Failed on the old code (Denied).
#[test]
fn the_first_holder_restarted_with_an_empty_log_is_granted_again() {
    let net = MemNet::new();
    let clock = ManualClock::new(1_000);
    let mut w = WitnessServer::new(LEASE, net.endpoint(W), clock.clone(), None);
    assert!(matches!(
        ask(&net, &mut w, 1, promote(1, 1, 0, 0)),
        Some(Msg::Granted { term: 1, .. })
    ));
    // Its renewals say it acknowledged nothing alone.
    let renew = Msg::Renew {
        node: 1,
        term: 1,
        solo_upto: 0,
        solo_term: 0,
        incarnation: 1_000,
        standby_incarnation: 0,
    };
    assert!(matches!(
        ask(&net, &mut w, 1, renew),
        Some(Msg::Lease { term: 1, .. })
    ));
    // SIGKILL; the lease runs out; the restarted process (another incarnation) asks again.
    clock.advance(LEASE * 2);
    let again = Msg::Promote {
        node: 1,
        term: 2,
        last_seq: 0,
        last_term: 0,
        incarnation: 2_000,
    };
    let got = ask(&net, &mut w, 1, again);
    assert!(
        matches!(got, Some(Msg::Granted { term: 2, .. })),
        "the first holder, restarted with its (empty) log: {got:?}"
    );
}
