//! The replication transport over Aeron UDP unicast carries a real replica pair: promotion,
//! `Hello`/`Welcome`, appends, acks; and a standby that comes back as a new process (a new
//! Aeron publication session) is taken as a new connection and caught up from scratch.
//! One media driver under /dev/shm (removed at the end), small terms, parked.

use std::time::{Duration, Instant};

use tpx_benches::xport::aeron::{AeronPeer, AeronReplConfig, AeronReplTransport, Split};
use tpx_md::aeron::{AeronSetup, DriverConfig, EmbeddedDriver};
use tpx_sequencer::testing::Load;
use tpx_sequencer::transport::MemTransport;
use tpx_sequencer::{
    Applier, LogConfig, LogSink, MemNet, MemStorage, Replica, ReplicaConfig, Role, SyncLog,
    SystemClock, WitnessServer,
};
use tpx_wire::log_record::LogRecord;

const WITNESS: u32 = 100;

#[derive(Default)]
struct Seqs(Vec<u64>);
impl Applier for Seqs {
    fn apply(&mut self, r: &LogRecord) {
        self.0.push(r.meta.seq);
    }
    fn rewind(&mut self, seq: u64) {
        self.0.retain(|&s| s <= seq);
    }
}

type Net = Split<AeronReplTransport, MemTransport>;
type Rep = Replica<SyncLog<MemStorage>, Net, SystemClock>;

fn udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn node(dir: &str, mem: &MemNet, me: u32, peer: u32, ports: (u16, u16), primary: bool) -> Rep {
    let cfg = AeronReplConfig::new(
        AeronSetup::External {
            dir: dir.to_string(),
        },
        me,
        &format!("127.0.0.1:{}", ports.0),
        vec![AeronPeer {
            id: peer,
            endpoint: format!("127.0.0.1:{}", ports.1),
        }],
    );
    let net = Split {
        first: vec![peer],
        a: AeronReplTransport::connect(&cfg).expect("aeron transport"),
        b: mem.endpoint(me),
    };
    let (log, _) = SyncLog::open(MemStorage::new(), LogConfig::default()).unwrap();
    let rc = ReplicaConfig {
        node_id: me,
        peer_id: peer,
        witness_id: WITNESS,
        heartbeat_ns: 500_000,
        timeout_ns: 2_000_000_000,
        max_append_bytes: 16 << 10,
        // Acknowledge only what the standby acked (never alone under a witness lease), so
        // acknowledgements are the transport's.
        solo_when_alone: false,
        ..ReplicaConfig::default()
    };
    Replica::new(rc, log, net, SystemClock::new(), 0, primary).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn run_until(
    w: &mut WitnessServer<MemTransport, SystemClock>,
    p: &mut Rep,
    pa: &mut Seqs,
    s: &mut Rep,
    sa: &mut Seqs,
    what: &str,
    mut done: impl FnMut(&Rep, &Rep) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(p, s) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {p:?} {s:?}"
        );
        w.poll();
        let busy = p.poll(pa) | s.poll(sa);
        if !busy {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

#[test]
fn aeron_transport_carries_a_replica_pair() {
    let driver = EmbeddedDriver::launch(&DriverConfig {
        term_length: 1 << 20,
        ..DriverConfig::for_tests()
    })
    .expect("media driver");
    let dir = driver.dir().to_string();
    let mem = MemNet::new();
    let mut w = WitnessServer::new(50_000_000, mem.endpoint(WITNESS), SystemClock::new(), None);
    let (p1, p2) = (udp_port(), udp_port());
    let mut p = node(&dir, &mem, 1, 2, (p1, p2), true);
    let mut s = node(&dir, &mem, 2, 1, (p2, p1), false);
    assert!(p.transport_mut().a.max_message(2).unwrap() >= 16 << 10);
    let (mut pa, mut sa) = (Seqs::default(), Seqs::default());
    run_until(
        &mut w,
        &mut p,
        &mut pa,
        &mut s,
        &mut sa,
        "a primary",
        |p, _| p.role() == Role::Primary,
    );
    let mut load = Load::new(1, 7);
    let mut submit = |p: &mut Rep, n: u64| {
        for _ in 0..n {
            let id = load.next_cl_ord_id;
            load.next_cl_ord_id += 1;
            p.submit(1, 1, &load.request(id)).unwrap();
        }
    };
    submit(&mut p, 2_000);
    // Replicated durability: acknowledgeable only once the standby acked over Aeron.
    run_until(&mut w, &mut p, &mut pa, &mut s, &mut sa, "acks", |p, s| {
        p.acknowledgeable_seq() == 2_000 && p.peer_seqs().0 == 2_000 && s.last_seq() == 2_000
    });
    assert_eq!(p.peer_seqs().0, 2_000);
    assert_eq!(s.role(), Role::Standby);
    assert_eq!(sa.0, (1..=2_000).collect::<Vec<_>>());
    assert!(
        p.stats().appends_sent > 1,
        "records went in several appends"
    );

    // The standby comes back as a new process (a new publication session) with an empty log:
    // the primary must take it as a new connection and send everything again.
    drop(s);
    let mut s = node(&dir, &mem, 2, 1, (p2, p1), false);
    let mut sa = Seqs::default();
    submit(&mut p, 500);
    run_until(
        &mut w,
        &mut p,
        &mut pa,
        &mut s,
        &mut sa,
        "catch-up",
        |p, s| p.acknowledgeable_seq() == 2_500 && s.last_seq() == 2_500,
    );
    assert_eq!(sa.0, (1..=2_500).collect::<Vec<_>>());
    let mut recs = Vec::new();
    s.log_mut().read(1, 10_000, &mut recs).unwrap();
    assert_eq!(recs.len(), 2_500);
    assert!(recs.iter().zip(1..).all(|(r, i)| r.meta.seq == i));

    drop((p, s));
    drop(driver);
    assert!(
        !std::path::Path::new(&dir).exists(),
        "driver dir {dir} left behind"
    );
}
