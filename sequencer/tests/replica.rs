//! The replica state machines driven in-process: an in-memory network, a manual clock and
//! in-memory disks (crash = lose what was not flushed).

use tpx_sequencer::apply::EngineApplier;
use tpx_sequencer::log::{LogConfig, LogReader, SegmentLog};
use tpx_sequencer::replica::{Durability, Replica, ReplicaConfig, Role, SubmitError};
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::testing::{demo_engine_config, Load};
use tpx_sequencer::transport::{MemNet, MemTransport};
use tpx_sequencer::witness::WitnessServer;
use tpx_sequencer::writer::SyncLog;
use tpx_sequencer::{Applier, Clock, ManualClock};
use tpx_wire::log_record::{encode_record, LogRecord, RecordMeta};

const W: u32 = 100;
const TIMEOUT: u64 = 500_000;
const STEP: u64 = 10_000;

type Rep = Replica<SyncLog<MemStorage>, MemTransport, ManualClock>;

struct Node {
    id: u32,
    disk: MemStorage,
    rep: Option<Rep>,
    app: EngineApplier,
}

struct Cluster {
    net: MemNet,
    clock: ManualClock,
    witness: WitnessServer<MemTransport, ManualClock>,
    nodes: Vec<Node>,
    durability: Durability,
    load: Load,
}

fn cfg(id: u32, durability: Durability) -> ReplicaConfig {
    ReplicaConfig {
        node_id: id,
        peer_id: 3 - id,
        witness_id: W,
        durability,
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
    fn new(durability: Durability) -> Cluster {
        let net = MemNet::new();
        let clock = ManualClock::new(1_000_000_000);
        let witness = WitnessServer::new(TIMEOUT, net.endpoint(W), clock.clone(), None);
        let mut c = Cluster {
            net,
            clock,
            witness,
            nodes: Vec::new(),
            durability,
            load: Load::new(7, 42),
        };
        for id in [1, 2] {
            c.nodes.push(Node {
                id,
                disk: MemStorage::new(),
                rep: None,
                app: EngineApplier::new(demo_engine_config()).unwrap(),
            });
            c.start(id, id == 1);
        }
        c
    }

    /// (Re)starts a node from its disk: recover the log, replay it, join.
    fn start(&mut self, id: u32, want_primary: bool) {
        let n = &mut self.nodes[id as usize - 1];
        let (log, _) = SyncLog::open(n.disk.clone(), log_cfg()).unwrap();
        // A rewind rebuilds at once (inside `poll`), from this disk.
        let src = n.disk.clone();
        n.app = EngineApplier::new(demo_engine_config())
            .unwrap()
            .with_source(move || Ok(src.clone()));
        n.app.rebuild(n.disk.clone(), u64::MAX).unwrap();
        self.net.set_down(id, false);
        let ep = self.net.endpoint(id);
        n.rep = Some(
            Replica::new(
                cfg(id, self.durability),
                log,
                ep,
                self.clock.clone(),
                n.app.applied_seq,
                want_primary,
            )
            .unwrap(),
        );
    }

    /// A crash: the process is gone and its disk keeps only what was flushed.
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
                    assert_eq!(node.app.rebuild_error, None);
                    assert_eq!(node.app.rewound_to, None);
                }
            }
        }
    }

    fn primary(&self) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.rep.as_ref().is_some_and(|r| r.role() == Role::Primary))
            .map(|n| n.id)
    }

    /// Submits `k` orders through the primary (steps between them).
    fn submit(&mut self, k: usize) -> Vec<u64> {
        let p = self.primary().expect("a primary");
        let mut seqs = Vec::new();
        for _ in 0..k {
            let id = self.load.next_cl_ord_id;
            let req = self.load.request(id);
            let session = self.load.session;
            match self.rep(p).submit(session, session, &req) {
                Ok(s) => {
                    seqs.push(s);
                    self.load.next_cl_ord_id += 1;
                }
                Err(SubmitError::Duplicate { .. }) => self.load.next_cl_ord_id += 1,
                Err(e) => panic!("submit: {e:?}"),
            }
            self.step(1);
        }
        seqs
    }

    fn records(&self, id: u32) -> Vec<LogRecord> {
        let mut r = LogReader::new(self.nodes[id as usize - 1].disk.clone()).unwrap();
        let mut v = Vec::new();
        while let Some(x) = r.next().unwrap() {
            v.push(x);
        }
        v
    }
}

fn replayed_hash(disk: &MemStorage, upto: u64) -> u64 {
    let mut a = EngineApplier::new(demo_engine_config()).unwrap();
    a.rebuild(disk.clone(), upto).unwrap();
    a.state_hash()
}

#[test]
fn replicates_and_acknowledges_in_every_mode() {
    for mode in [
        Durability::Replicated,
        Durability::Fsync,
        Durability::ReplicatedFsync,
    ] {
        let mut c = Cluster::new(mode);
        c.step(100);
        assert_eq!(c.primary(), Some(1), "{mode:?}");
        assert_eq!(c.rep(2).role(), Role::Standby);
        let seqs = c.submit(300);
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
        c.step(100);
        assert_eq!(c.rep(1).acknowledgeable_seq(), 300, "{mode:?}");
        assert_eq!(c.rep(2).last_seq(), 300);
        assert_eq!(c.rep(1).term(), 1);
        let (h1, h2) = (c.nodes[0].app.state_hash(), c.nodes[1].app.state_hash());
        assert_eq!(h1, h2, "{mode:?}");
        assert_eq!(h1, replayed_hash(&c.nodes[1].disk, 300));
        assert_eq!(c.records(1), c.records(2));
    }
}

#[test]
fn replicated_mode_waits_for_the_standby() {
    let mut c = Cluster::new(Durability::ReplicatedFsync);
    c.step(100);
    c.submit(10);
    c.step(20);
    assert_eq!(c.rep(1).acknowledgeable_seq(), 10);
    // Cut the standby off: nothing new is acknowledged while the primary still counts it as
    // there (within the timeout), then the primary goes on alone under its witness lease.
    c.net.partition(1, 2, true);
    let p = c.primary().unwrap();
    let session = c.load.session;
    let id = c.load.next_cl_ord_id;
    let req = c.load.request(id);
    let s = c.rep(p).submit(session, session, &req).unwrap();
    c.load.next_cl_ord_id += 1;
    // Step by step: `s` is acknowledged alone only once the witness has recorded that a new
    // primary must hold it.
    for _ in 0..200 {
        c.step(1);
        if c.rep(1).acknowledgeable_seq() >= s {
            assert!(c.witness.witness.must_have_seq >= s);
        }
    }
    // The standby asked for promotion and was refused (the lease is held).
    assert_eq!(c.primary(), Some(1));
    assert_eq!(c.rep(1).acknowledgeable_seq(), s);
    assert_eq!(c.witness.witness.must_have_seq, s);
    // The standby lacks `s`, so the witness never makes it primary, even once the lease ends.
    c.crash(1);
    c.net.partition(1, 2, false);
    c.step(300);
    assert_eq!(c.primary(), None);
    assert!(c.rep(2).stats().promotions_asked > 0);
}

#[test]
fn failover_continues_the_sequence_and_loses_nothing_acknowledged() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(200);
    c.step(10);
    let acked = c.rep(1).acknowledgeable_seq();
    assert!(acked >= 190);
    let before = c.clock.now_ns();
    c.crash(1);
    let mut took = 0;
    for i in 0..400 {
        c.step(1);
        if c.primary() == Some(2) {
            took = i;
            break;
        }
    }
    assert_eq!(c.primary(), Some(2), "standby took over");
    let takeover_ns = c.clock.now_ns() - before;
    assert!(
        takeover_ns <= 2 * TIMEOUT + 20 * STEP,
        "took {takeover_ns} ns ({took} steps)"
    );
    assert_eq!(c.rep(2).term(), 2);
    // Its term starts with a `TermStart` record after what it inherited.
    let last_before = c.rep(2).last_seq();
    assert!(last_before > acked);
    // The new primary continues the sequence: no gap, no duplicate, records of term 2.
    let seqs = c.submit(50);
    assert_eq!(seqs.first(), Some(&(last_before + 1)));
    c.step(50);
    assert_eq!(c.rep(2).acknowledgeable_seq(), last_before + 50);
    let recs = c.records(2);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.meta.seq, i as u64 + 1);
        assert_eq!(r.meta.term, if r.meta.seq < last_before { 1 } else { 2 });
        assert_eq!(
            matches!(r.input, tpx_wire::log_record::Input::TermStart(t) if t.node == 2),
            r.meta.seq == last_before
        );
    }
    assert_eq!(
        c.nodes[1].app.state_hash(),
        replayed_hash(&c.nodes[1].disk, u64::MAX)
    );
}

/// A standby told never to be promoted (`forbid_promotion`: its state was found to differ
/// from the log's) keeps following, and asks for no term when the primary dies.
#[test]
fn a_standby_forbidden_promotion_never_takes_over() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(50);
    c.step(10);
    c.rep(2).forbid_promotion();
    assert!(!c.rep(2).promotable());
    c.submit(50);
    c.step(10);
    assert_eq!(c.rep(2).last_seq(), c.rep(1).last_seq(), "it still follows");
    c.crash(1);
    for _ in 0..400 {
        c.step(1);
    }
    assert_eq!(c.primary(), None, "nobody took over");
    assert_eq!(c.rep(2).stats().promotions_asked, 0);
}

#[test]
fn returning_old_primary_truncates_and_rejoins() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(100);
    c.step(10);
    // Partition the primary away from the standby and append more on it: those records reach
    // its disk but never the standby, so they are never acknowledged.
    c.net.partition(1, 2, true);
    let p = c.primary().unwrap();
    for _ in 0..20 {
        let id = c.load.next_cl_ord_id;
        let req = c.load.request(id);
        let s = c.load.session;
        let _ = c.rep(p).submit(s, s, &req);
        c.load.next_cl_ord_id += 1;
    }
    c.net.partition(1, W, true);
    c.step(5);
    let acked_old = c.rep(1).acknowledgeable_seq();
    assert!(
        c.rep(1).last_seq() > acked_old,
        "unacknowledged tail on the old primary"
    );
    // The standby promotes once the old lease runs out.
    c.step(300);
    assert_eq!(c.rep(2).role(), Role::Primary);
    assert_eq!(c.rep(2).term(), 2);
    // The old primary, still cut off, acknowledges nothing more (its lease is gone).
    assert_eq!(c.rep(1).acknowledgeable_seq(), acked_old);
    assert!(acked_old <= c.rep(2).last_seq());
    // New term's records.
    c.submit(30);
    // Heal: the old primary learns the term, cuts its tail and catches up.
    c.net.partition(1, 2, false);
    c.net.partition(1, W, false);
    c.step(200);
    assert_eq!(c.rep(1).role(), Role::Standby);
    assert_eq!(c.rep(1).term(), 2);
    assert_eq!(c.records(1), c.records(2));
    assert_eq!(c.nodes[0].app.state_hash(), c.nodes[1].app.state_hash());
    assert_eq!(
        c.nodes[0].app.state_hash(),
        replayed_hash(&c.nodes[0].disk, u64::MAX)
    );
}

#[test]
fn standby_restart_catches_up_from_disk() {
    let mut c = Cluster::new(Durability::Fsync);
    c.step(100);
    c.submit(100);
    c.step(20);
    c.crash(2);
    // The primary goes on alone (fsync mode needs no standby).
    c.submit(3_000);
    c.step(20);
    assert_eq!(c.rep(1).acknowledgeable_seq(), c.rep(1).last_seq());
    c.start(2, false);
    c.step(300);
    assert_eq!(c.rep(2).last_seq(), c.rep(1).last_seq());
    assert_eq!(c.records(1), c.records(2));
    assert_eq!(c.nodes[0].app.state_hash(), c.nodes[1].app.state_hash());
    assert!(c.rep(1).stats().appends_sent > 2);
}

#[test]
fn resent_requests_are_deduplicated_across_a_failover() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(50);
    c.step(10);
    let session = c.load.session;
    let is_order =
        |l: &Load, id| matches!(l.request(id), tpx_wire::log_record::Input::EnterOrder(_));
    let last_order = (1..=50).rev().find(|&id| is_order(&c.load, id)).unwrap();
    let req = c.load.request(last_order);
    assert!(matches!(
        c.rep(1).submit(session, session, &req),
        Err(SubmitError::Duplicate { cl_ord_id, .. }) if cl_ord_id == last_order
    ));
    c.crash(1);
    c.step(300);
    assert_eq!(c.primary(), Some(2));
    // The client re-sends its last 10 requests to the new primary, then goes on.
    let mut dup = 0;
    for id in 41..=60 {
        let req = c.load.request(id);
        match c.rep(2).submit(session, session, &req) {
            Err(SubmitError::Duplicate { .. }) => dup += 1,
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(dup, (41..=50).filter(|&id| is_order(&c.load, id)).count());
    c.step(10);
    let mut seen = std::collections::HashSet::new();
    for r in c.records(2) {
        if let tpx_wire::log_record::Input::EnterOrder(m) = r.input {
            assert!(seen.insert(m.cl_ord_id), "cl_ord_id {} twice", m.cl_ord_id);
        }
    }
}

#[test]
fn stale_primary_is_fenced_by_a_higher_term() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(10);
    // The standby is cut from the primary but reaches the witness; the primary loses the
    // witness: the lease runs out and the standby is promoted.
    c.net.partition(1, 2, true);
    c.net.partition(1, W, true);
    c.step(300);
    assert_eq!(c.rep(2).role(), Role::Primary);
    let old_ack = c.rep(1).acknowledgeable_seq();
    // Old primary (term 1) still thinks it is primary but cannot acknowledge anything new.
    let s = c.load.session;
    let req = c.load.request(c.load.next_cl_ord_id);
    if let Ok(seq) = c.rep(1).submit(s, s, &req) {
        c.step(50);
        assert!(c.rep(1).acknowledgeable_seq() < seq);
    }
    assert_eq!(c.rep(1).acknowledgeable_seq(), old_ack);
    // Its messages reach the new primary again: the term-2 replica fences it.
    c.net.partition(1, 2, false);
    c.step(50);
    assert_eq!(c.rep(1).role(), Role::Standby);
    assert_eq!(c.rep(1).term(), 2);
    c.net.partition(1, W, false);
    c.step(50);
    assert_eq!(c.records(1), c.records(2));
}

/// Unused-field guard so `Applier` stays in scope for readers of this file.
#[allow(dead_code)]
fn _applier_is_used(a: &mut EngineApplier, r: &LogRecord) {
    a.apply(r);
}

fn rec(seq: u64, term: u64, id: u64) -> LogRecord {
    LogRecord {
        meta: RecordMeta {
            seq,
            term,
            timestamp_ns: seq * 10,
            origin: 9,
            account: 9,
            session: 0,
        },
        input: Load::new(9, 1).request(id),
    }
}

/// The standby's engine after `rewind(3)` followed, in the same poll, by records 4 and 5 of
/// the new term: it must equal a replay of the log (1..=3 of term 1, 4..=5 of term 2).
/// `sync`: the applier rebuilds inside `rewind`; else the owner rebuilds after the poll.
fn rewind_then_apply(sync: bool) {
    let disk = MemStorage::new();
    let (mut log, _) = SegmentLog::open(disk.clone(), log_cfg()).unwrap();
    let mut app = EngineApplier::new(demo_engine_config()).unwrap();
    if sync {
        let src = disk.clone();
        app = app.with_source(move || Ok(src.clone()));
    }
    let mut buf = vec![0u8; 1024];
    let mut append = |log: &mut SegmentLog<MemStorage>, r: &LogRecord| {
        let n = encode_record(r, &mut buf).unwrap();
        log.append(&buf[..n]).unwrap();
        log.commit().unwrap();
    };
    for seq in 1..=5 {
        let r = rec(seq, 1, seq);
        append(&mut log, &r);
        app.apply(&r);
    }
    // The Welcome: cut after 3, rewind; then the Append of the same poll.
    log.truncate_after(3).unwrap();
    app.rewind(3);
    for seq in 4..=5 {
        let r = rec(seq, 2, 100 + seq);
        append(&mut log, &r);
        app.apply(&r);
    }
    if let Some(seq) = app.rewound_to {
        assert!(!sync);
        app.rebuild(disk.clone(), seq).unwrap();
    }
    assert_eq!(app.rewound_to, None);
    assert_eq!(app.applied_seq, 5);
    assert_eq!(app.state_hash(), replayed_hash(&disk, u64::MAX));
    assert_ne!(app.state_hash(), replayed_hash(&disk, 3));
}

#[test]
fn rewind_rebuilds_before_records_received_in_the_same_poll() {
    rewind_then_apply(true);
}

#[test]
fn deferred_rewind_keeps_records_applied_before_the_rebuild() {
    rewind_then_apply(false);
}

/// A full disk on the primary in fsync mode: the replica stops acknowledging (and then stops
/// taking requests) while nothing acknowledged is lost; a crash then keeps every acknowledged
/// record.
#[test]
fn full_disk_on_the_primary_stops_acknowledging_and_loses_nothing_acknowledged() {
    let mut c = Cluster::new(Durability::Fsync);
    c.step(100);
    assert_eq!(c.primary(), Some(1));
    c.submit(50);
    c.step(20);
    assert_eq!(c.rep(1).acknowledgeable_seq(), 50);
    // Space for the segment written so far and nothing more: the next segment cannot be
    // preallocated.
    let disk = c.nodes[0].disk.clone();
    disk.set_space_limit(Some(log_cfg().segment_bytes));
    let mut acked = 50;
    let mut refused = None;
    for _ in 0..5_000 {
        let id = c.load.next_cl_ord_id;
        let req = c.load.request(id);
        match c.rep(1).submit(7, 7, &req) {
            Ok(_) | Err(SubmitError::Duplicate { .. }) => c.load.next_cl_ord_id += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        c.step(1);
        let a = c.rep(1).acknowledgeable_seq();
        assert!(a >= acked, "acknowledgements never go back");
        assert!(
            a <= c.rep(1).durable_seq(),
            "fsync mode acknowledges only durable records"
        );
        acked = a;
    }
    let refused = refused.expect("a full disk stops the primary taking requests");
    assert!(matches!(refused, SubmitError::LogFailed(_)), "{refused:?}");
    let last = c.rep(1).last_seq();
    assert!(
        acked < last,
        "records after the disk filled are not acknowledged"
    );
    c.step(50);
    assert_eq!(c.rep(1).acknowledgeable_seq(), acked);
    // Crash: every acknowledged record is on the disk.
    c.crash(1);
    let recs = c.records(1);
    assert!(recs.len() as u64 >= acked);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.meta.seq, i as u64 + 1);
    }
}

#[test]
fn a_primary_that_stalled_does_not_count_its_standby_as_gone() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(10);
    c.step(20);
    assert_eq!(c.rep(1).acknowledgeable_seq(), 10);
    // A record goes out, then the whole pair is not run for three timeouts (a VM pause, or
    // both descheduled): the standby never had a chance to answer.
    let session = c.load.session;
    let id = c.load.next_cl_ord_id;
    let req = c.load.request(id);
    let s = c.rep(1).submit(session, session, &req).unwrap();
    c.load.next_cl_ord_id += 1;
    c.step(1);
    c.clock.advance(3 * TIMEOUT);
    // The primary must not acknowledge alone (and have the witness record it, which would
    // refuse the standby a takeover until it caught up): the standby answers at once.
    for _ in 0..50 {
        c.step(1);
        let now = c.clock.now_ns();
        assert!(c.rep(1).peer_alive(now));
        assert_eq!(c.witness.witness.must_have_seq, 0);
    }
    assert_eq!(c.primary(), Some(1));
    assert_eq!(c.rep(1).acknowledgeable_seq(), s);
    // A standby that is connected but stops answering (hung) is counted gone after
    // `peer_timeout_ns` (2 timeouts by default), not after the standby's own detection
    // timeout.
    let hung = c.nodes[1].rep.take();
    let t0 = c.clock.now_ns();
    while {
        let now = c.clock.now_ns();
        c.rep(1).peer_alive(now)
    } {
        c.step(1);
        assert!(c.clock.now_ns() - t0 < 10 * TIMEOUT);
    }
    let gone_after = c.clock.now_ns() - t0;
    assert!(
        (2 * TIMEOUT..2 * TIMEOUT + 4 * STEP + 50_000).contains(&gone_after),
        "{gone_after}"
    );
    // It answers again: present again, and nothing was lost on the way.
    c.nodes[1].rep = hung;
    c.step(20);
    let now = c.clock.now_ns();
    assert!(c.rep(1).peer_alive(now));
    assert_eq!(c.primary(), Some(1));
}

#[test]
fn a_closed_connection_to_the_primary_starts_the_candidacy_at_once() {
    let mut c = Cluster::new(Durability::Replicated);
    c.step(100);
    c.submit(10);
    c.step(20);
    assert_eq!(c.primary(), Some(1));
    let asked = c.rep(2).stats().promotions_asked;
    // The primary's process dies: its connections close (a frozen one keeps them open and
    // is found by the timeout instead).
    c.crash(1);
    c.step(2);
    assert!(
        c.rep(2).stats().promotions_asked > asked,
        "the standby asks the witness at once, not after the timeout"
    );
    // The witness grants once the dead primary's lease ran out (not before).
    let t0 = c.clock.now_ns();
    while c.primary() != Some(2) {
        c.step(1);
        assert!(c.clock.now_ns() - t0 < 2 * TIMEOUT);
    }
    assert_eq!(c.rep(2).acknowledgeable_seq(), 10);
}

/// The last role event of `id` (what `tpx node` prints as its `ROLE` line).
fn last_role(c: &mut Cluster, id: u32) -> Option<tpx_sequencer::replica::ReplicaEvent> {
    use tpx_sequencer::replica::ReplicaEvent;
    let mut last = None;
    while let Some(ev) = c.rep(id).take_event() {
        if matches!(
            ev,
            ReplicaEvent::BecameStandby { .. } | ReplicaEvent::BecamePrimary { .. }
        ) {
            last = Some(ev);
        }
    }
    last
}

/// A standby that joins a primary already in term 1 (started after it) names that term in its
/// role event, as `tpx node`'s `ROLE standby ... term=` line does and the benches wait for.
#[test]
fn a_standby_that_joins_a_running_primary_names_its_term() {
    use tpx_sequencer::replica::ReplicaEvent;
    let mut c = Cluster::new(Durability::Fsync);
    c.crash(2);
    c.step(200);
    assert_eq!(c.primary(), Some(1));
    let term = c.rep(1).term();
    assert!(term >= 1);
    c.start(2, false);
    c.step(200);
    assert_eq!(c.rep(2).term(), term);
    assert_eq!(
        last_role(&mut c, 2),
        Some(ReplicaEvent::BecameStandby { term, primary: 1 })
    );
}

/// The exact order TCP can give: the primary's `Welcome` (the answer to the standby's `Hello`)
/// is the first message of the new term a standby receives. Before the fix the `Welcome`
/// raised the term silently: the node kept printing `ROLE standby ... term=0` while it
/// replicated every record, and `failover-bench` (`make test`) waited for a steady pair until
/// it gave up (`no steady pair within 60s ... roles Some((true, 1)) / Some((false, 0))`, CI
/// under load). Failed on the old code (the last event named term 0).
#[test]
fn a_standby_that_learns_the_term_from_the_welcome_says_so() {
    use tpx_sequencer::proto::Msg;
    use tpx_sequencer::replica::ReplicaEvent;
    use tpx_sequencer::Transport;
    let mut c = Cluster::new(Durability::Fsync);
    c.crash(2);
    c.step(200);
    let term = c.rep(1).term();
    assert!(term >= 1);
    // Node 2 comes back; node 1 is silent (down on the network) but for one Welcome.
    c.net.set_down(1, true);
    c.start(2, false);
    let _ = last_role(&mut c, 2);
    c.net.set_down(1, false);
    let mut from_1 = c.net.endpoint(1);
    let mut b = Vec::new();
    Msg::Welcome { term, keep_seq: 0 }.encode(&mut b);
    assert!(from_1.send(2, &b));
    let n = &mut c.nodes[1];
    n.rep.as_mut().unwrap().poll(&mut n.app);
    assert_eq!(c.rep(2).term(), term);
    assert_eq!(
        last_role(&mut c, 2),
        Some(ReplicaEvent::BecameStandby { term, primary: 1 })
    );
}
