//! Issue 17 ("nothing acknowledged lost"): a request answered `Unavailable` must not be
//! overtaken in the log by a later request of the same pipeline.
//!
//! The de-duplication table keeps the highest `cl_ord_id` per account (`Dedup::duplicate_of`):
//! a re-sent id at or below it is answered "already sequenced". That is true only if the log
//! never holds an id above one the client still waits for. `Unavailable` is no answer (the
//! client fails over and re-sends it, `client/src/failover.rs`), so a node that refused id 10
//! `Unavailable` (a standby: the session was connected when the node stepped down) and then,
//! promoted, sequenced id 11 from the same connection (sent before the client read the
//! refusal) made the client's re-sent 10 "already sequenced" though no log holds it: an
//! acknowledged order lost. `failover-bench` showed it twice under heavy host load
//! (`/work/takeover-evidence/main-tpx-lost40-load33`: account 1's orders 3553..3570 refused
//! by node 2 as standby of term 422, its 3572 sequenced by node 2 as primary of term 423, the
//! re-sent 3553..3570 answered "already sequenced" by node 2 in term 424; none in any log).
//!
//! Hand-built on the simulator's parts (the node's own stages, the simulated network, a
//! manual clock): node 1 primary, node 2 standby; a request reaches node 2 while standby;
//! node 1 dies, node 2 is promoted; a later request of that connection arrives; the client
//! re-sends the first one.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_node::msg::{ReportKind, Request};
use tpx_sequencer::replica::{Durability, ReplicaConfig, Role};
use tpx_sequencer::witness::WitnessServer;
use tpx_sequencer::{Clock, LogConfig, LogReader, ManualClock, MemStorage, Replica};
use tpx_sim::lag_log::LagLog;
use tpx_sim::net::{NetFaults, SimEndpoint, SimNet};
use tpx_sim::node::SimNode;
use tpx_sim::shards::ShardPlan;
use tpx_wire::enums::{OrderKind, RejectReason, Side, StpMode, TimeInForce};
use tpx_wire::log_record::Input;
use tpx_wire::order_entry::EnterOrder;

const WITNESS: u32 = 100;
const TIMEOUT_NS: u64 = 500_000;
const STEP_NS: u64 = 10_000;
const ACCOUNT: u32 = 1;
const SESSION: u32 = 7;

fn enter(cl_ord_id: u64) -> Request {
    Request::new(
        SESSION,
        0,
        ACCOUNT,
        Input::EnterOrder(EnterOrder {
            cl_ord_id,
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: 50_000,
            qty: 1,
            tif: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
        }),
    )
}

struct Pair {
    clock: ManualClock,
    net: SimNet,
    witness: WitnessServer<SimEndpoint, ManualClock>,
    plan: ShardPlan,
    nodes: [Option<SimNode>; 2],
    disks: [MemStorage; 2],
    /// The stage's own answers to node 2's sessions: `(cl_ord_id, reason)`.
    answers: Vec<(u64, RejectReason)>,
}

impl Pair {
    fn new(state_file: &std::path::Path) -> Pair {
        let clock = ManualClock::new(1_000_000_000);
        let faults = NetFaults {
            min_delay_ns: 1_000,
            max_delay_ns: 1_000,
            reset_ppm: 0,
            max_outage_ns: 0,
            stale_pct: 0,
        };
        let net = SimNet::new(clock.clone(), Xoshiro256PlusPlus::seed_from_u64(1), faults);
        let plan = ShardPlan::round_robin(1);
        net.set_digest(1, plan.digest());
        net.set_digest(2, plan.digest());
        let witness =
            WitnessServer::open(TIMEOUT_NS, net.endpoint(WITNESS), clock.clone(), state_file)
                .unwrap();
        let mut p = Pair {
            clock,
            net,
            witness,
            plan,
            nodes: [None, None],
            disks: [MemStorage::new(), MemStorage::new()],
            answers: Vec::new(),
        };
        p.start(1, true);
        p.start(2, false);
        p
    }

    fn start(&mut self, id: u32, want_primary: bool) {
        let disk = self.disks[id as usize - 1].clone();
        let cfg = LogConfig {
            segment_bytes: 64 << 10,
            write_buf_bytes: 16 << 10,
            zero_fill: false,
        };
        let (log, _) =
            LagLog::open(disk.clone(), cfg, 1, Xoshiro256PlusPlus::seed_from_u64(2)).unwrap();
        let rep = Replica::new(
            ReplicaConfig {
                node_id: id,
                incarnation: u64::from(id) * 7919,
                peer_id: 3 - id,
                witness_id: WITNESS,
                durability: Durability::Replicated,
                heartbeat_ns: 50_000,
                timeout_ns: TIMEOUT_NS,
                lease_margin_ns: 50_000,
                ..ReplicaConfig::default()
            },
            log,
            self.net.endpoint(id),
            self.clock.clone(),
            0,
            want_primary,
        )
        .unwrap();
        let accounts = std::sync::Arc::new(tpx_sim::clients::accounts(&[ACCOUNT]));
        let mut node = SimNode::new(&self.plan, rep, disk, 0, id, accounts).unwrap();
        node.stage_answers = Some(Vec::new());
        self.nodes[id as usize - 1] = Some(node);
    }

    fn node(&self, id: u32) -> &SimNode {
        self.nodes[id as usize - 1].as_ref().unwrap()
    }

    fn step(&mut self) {
        self.clock.advance(STEP_NS);
        self.witness.poll();
        let now = self.clock.now_ns();
        let mut out = Vec::new();
        for i in 0..2 {
            let Some(n) = self.nodes[i].as_mut() else {
                continue;
            };
            out.clear();
            n.cycle(now, &mut out);
            let answers = n
                .stage_answers
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            if i == 1 {
                for r in answers {
                    if let ReportKind::Rejected {
                        cl_ord_id, reason, ..
                    } = r.kind
                    {
                        self.answers.push((cl_ord_id, reason));
                    }
                }
            }
        }
    }

    fn run_until(&mut self, what: &str, max_steps: u32, done: impl Fn(&Pair) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            self.step();
        }
        let d = |n: &SimNode| {
            let r = n.rep();
            format!(
                "{:?} t{} last{} ack{}",
                r.role(),
                r.term(),
                r.last_seq(),
                r.acknowledgeable_seq()
            )
        };
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.as_ref().map_or("down".into(), d))
            .collect();
        panic!("not reached in {max_steps} steps: {what}; nodes {nodes:?}");
    }

    fn run(&mut self, steps: u32) {
        for _ in 0..steps {
            self.step();
        }
    }

    /// The account's order ids in node `id`'s log, in log order.
    fn logged_ids(&self, id: u32) -> Vec<u64> {
        let mut r = LogReader::new(self.disks[id as usize - 1].clone()).unwrap();
        let mut ids = Vec::new();
        while let Ok(Some(rec)) = r.next() {
            if let Input::EnterOrder(o) = rec.input {
                if rec.meta.account == ACCOUNT {
                    ids.push(o.cl_ord_id);
                }
            }
        }
        ids
    }

    fn answers_for(&self, cl: u64) -> Vec<RejectReason> {
        self.answers
            .iter()
            .filter(|a| a.0 == cl)
            .map(|a| a.1)
            .collect()
    }
}

#[test]
fn an_order_refused_unavailable_is_never_answered_already_sequenced_unless_logged() {
    let state = std::env::temp_dir().join(format!(
        "tpx-sim-unavailable-order-{}.witness",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&state);
    let mut p = Pair::new(&state);
    p.run_until("node 1 primary, node 2 its standby", 5_000, |p| {
        p.node(1).rep().role() == Role::Primary
            && p.node(2).rep().role() == Role::Standby
            && p.node(2).rep().term() == p.node(1).rep().term()
    });
    p.run(50);

    // Order 10 reaches the standby (a session connected when it stepped down): refused.
    assert!(p.nodes[1].as_mut().unwrap().submit(enter(10)));
    p.run(5);
    assert_eq!(p.answers_for(10), vec![RejectReason::Unavailable]);

    // Node 1 dies; node 2 takes over.
    p.nodes[0] = None;
    p.net.set_down(1, true);
    p.run_until("node 2 primary", 20_000, |p| {
        p.node(2).rep().role() == Role::Primary
    });
    p.run(50);

    // Order 11, sent on the same connection before the client read the refusal of 10.
    assert!(p.nodes[1].as_mut().unwrap().submit(enter(11)));
    p.run(200);
    // The client, having read the refusal, logs in again and re-sends 10, then 11.
    assert!(p.nodes[1].as_mut().unwrap().submit(enter(10)));
    assert!(p.nodes[1].as_mut().unwrap().submit(enter(11)));
    p.run(500);

    let logged = p.logged_ids(2);
    let _ = std::fs::remove_file(&state);
    for cl in [10, 11] {
        if p.answers_for(cl)
            .contains(&RejectReason::DuplicateClientOrderId)
        {
            assert!(
                logged.contains(&cl),
                "order {cl} answered \"already sequenced\" but the log holds only {logged:?} \
                 (answers: 10 {:?}, 11 {:?})",
                p.answers_for(10),
                p.answers_for(11)
            );
        }
    }
    // Both orders end in the log once, in the client's order.
    assert_eq!(logged, vec![10, 11], "answers: {:?}", p.answers);
    // What an operator sees (Prometheus `tpx_node_fenced_total` and the sequencer's
    // `Unavailable` rejects): node 2 refused 10 as standby and fenced the first 11.
    let stats = &p.node(2).shared.stats;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.fenced.load(Relaxed), 1, "answers: {:?}", p.answers);
    assert_eq!(
        stats.unavailable.load(Relaxed),
        2,
        "answers: {:?}",
        p.answers
    );
}
