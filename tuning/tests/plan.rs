//! The planner on synthetic topologies: c6i.metal (2 sockets x 32 cores x 2 threads),
//! c6i.4xlarge (8 cores x 2 threads), a 2-vCPU VM without SMT, and smaller corner cases.

use std::collections::BTreeSet;
use tpx_tuning::plan::check_smt_rule;
use tpx_tuning::{
    plan, CorePlan, HostRole, HostTopology, PlanError, PlanRequest, Role, SchedPolicy,
};

fn metal() -> HostTopology {
    HostTopology::synthetic(2, 32, 2).with_nic("ens5", "ena", Some(0))
}

fn xl4() -> HostTopology {
    HostTopology::synthetic(1, 8, 2).with_nic("ens5", "ena", Some(0))
}

fn vm2() -> HostTopology {
    HostTopology::synthetic(1, 2, 1).with_nic("eth0", "virtio_net", None)
}

fn node() -> PlanRequest {
    PlanRequest::default()
}

fn set(v: &[u32]) -> BTreeSet<u32> {
    v.iter().copied().collect()
}

/// Invariants every plan keeps, whatever the host.
fn invariants(p: &CorePlan, topo: &HostTopology) {
    p.validate().unwrap();
    check_smt_rule(p, topo).unwrap();
    let all: BTreeSet<u32> = topo.cpus.iter().map(|c| c.os).collect();
    let hk = set(&p.housekeeping);
    let iso = set(&p.isolated);
    let spare = set(&p.spare);
    let irq = set(&p.irq);
    // Every CPU is exactly one of housekeeping / irq-only / isolated / spare.
    let mut covered = hk.clone();
    covered.extend(irq.iter());
    covered.extend(iso.iter());
    covered.extend(spare.iter());
    assert_eq!(covered, all, "every CPU has a place");
    assert!(
        hk.is_disjoint(&iso)
            && irq.is_disjoint(&iso)
            && spare.is_disjoint(&iso)
            && spare.is_disjoint(&hk)
    );
    // Hot threads live on the plan's NUMA node.
    for t in &p.threads {
        let cpu = topo.cpus.iter().find(|c| c.os == t.cpu).unwrap();
        assert_eq!(
            cpu.numa,
            p.numa_node,
            "{} off the NIC's node",
            t.thread_name()
        );
    }
    // Idle siblings are isolated and run nothing.
    for c in &p.idle {
        assert!(iso.contains(c));
        assert!(p.threads.iter().all(|t| t.cpu != *c));
    }
    // The TOML round-trips.
    let back = CorePlan::from_toml_str(&p.to_toml_string()).unwrap();
    assert_eq!(&back, p);
}

#[test]
fn c6i_metal_fills_the_nic_node_one_thread_per_core() {
    let topo = metal();
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert!(!p.degraded, "{:?}", p.notes);
    assert_eq!(p.numa_node, 0);
    assert_eq!(p.housekeeping, vec![0, 64]);
    assert_eq!(p.irq, vec![1, 65]);
    // 30 hot cores: sequencer, media driver, 7 sessions, 21 shards, all on CPUs 2-31.
    assert_eq!(p.threads.len(), 30);
    assert_eq!(p.threads_of(Role::Shard).count(), 21);
    assert_eq!(p.threads_of(Role::Session).count(), 7);
    assert_eq!(p.cpu_of(Role::Shard, 0), Some(2));
    assert_eq!(p.cpu_of(Role::Sequencer, 0), Some(3));
    assert_eq!(p.cpu_of(Role::Session, 0), Some(4));
    assert_eq!(p.cpu_of(Role::MediaDriver, 0), Some(5));
    assert_eq!(p.hot_cpus(), (2..32).collect());
    assert_eq!(set(&p.idle), (66..96).collect());
    assert_eq!(set(&p.isolated), (2..32).chain(66..96).collect());
    // The other socket is left to the OS.
    assert_eq!(set(&p.spare), (32..64).chain(96..128).collect());
    assert!(p.threads.iter().all(|t| !t.shared));
    let boot = p.boot_params();
    assert!(boot.contains(&"isolcpus=managed_irq,domain,2-31,66-95".to_string()));
    assert!(boot.contains(&"nohz_full=2-31,66-95".to_string()));
    assert!(boot.contains(&"irqaffinity=0-1,64-65".to_string()));
    assert_eq!(p.process_cpus(), [0, 64].into_iter().chain(2..32).collect());
}

#[test]
fn c6i_metal_follows_a_nic_on_socket_1() {
    let topo = HostTopology::synthetic(2, 32, 2).with_nic("ens5", "ena", Some(1));
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert_eq!(p.numa_node, 1);
    assert_eq!(p.housekeeping, vec![32, 96]);
    assert_eq!(p.irq, vec![33, 97]);
    assert_eq!(p.cpu_of(Role::Shard, 0), Some(34));
    assert_eq!(set(&p.spare), (0..32).chain(64..96).collect());
}

#[test]
fn explicit_counts_leave_the_rest_spare() {
    let topo = metal();
    let req = PlanRequest {
        shards: Some(4),
        sessions: Some(2),
        ..node()
    };
    let p = plan(&topo, &req).unwrap();
    invariants(&p, &topo);
    assert!(!p.degraded);
    assert_eq!(p.threads.len(), 8);
    assert_eq!(p.hot_cpus(), (2..10).collect());
    assert!(p.spare.contains(&10) && p.spare.contains(&74) && p.spare.contains(&32));
    assert!(!p.isolated.contains(&10));
}

#[test]
fn c6i_4xlarge_gets_an_irq_core_and_keeps_siblings_idle() {
    let topo = xl4();
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert!(!p.degraded);
    assert_eq!(p.housekeeping, vec![0, 8]);
    assert_eq!(p.irq, vec![1, 9]);
    assert_eq!(p.threads_of(Role::Shard).count(), 3);
    assert_eq!(p.threads_of(Role::Session).count(), 1);
    assert_eq!(p.hot_cpus(), (2..8).collect());
    assert_eq!(p.idle, (10..16).collect::<Vec<_>>());
    assert!(p.spare.is_empty());
}

#[test]
fn two_vcpu_vm_degrades_to_housekeeping_plus_one_shard_core() {
    let topo = vm2();
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert!(p.degraded);
    assert!(p.notes[0].starts_with("DEGRADED"), "{:?}", p.notes);
    assert_eq!(p.housekeeping, vec![0]);
    assert_eq!(p.irq, vec![0]);
    assert_eq!(p.isolated, vec![1]);
    let shard = p.thread(Role::Shard, 0).unwrap();
    assert_eq!((shard.cpu, shard.shared), (1, false));
    for role in [Role::Session, Role::Sequencer, Role::MediaDriver] {
        let t = p.thread(role, 0).unwrap();
        assert_eq!(
            (t.cpu, t.shared, t.policy),
            (0, true, SchedPolicy::Other),
            "{role}"
        );
    }
    assert!(p.summary().contains("DEGRADED"));
    assert_eq!(p.process_cpus(), set(&[0, 1]));
}

#[test]
fn one_core_with_smt_uses_the_sibling_and_says_so() {
    let topo = HostTopology::synthetic(1, 1, 2);
    let p = plan(&topo, &node()).unwrap();
    p.validate().unwrap();
    assert!(p.degraded);
    assert_eq!(p.housekeeping, vec![0]);
    assert_eq!(p.cpu_of(Role::Shard, 0), Some(1));
    assert!(
        p.notes.iter().any(|n| n.contains("SMT sibling")),
        "{:?}",
        p.notes
    );
}

#[test]
fn one_cpu_runs_everything_on_it() {
    let topo = HostTopology::synthetic(1, 1, 1);
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert!(p.degraded && p.isolated.is_empty());
    assert!(p.threads.iter().all(|t| t.cpu == 0 && t.shared));
    assert!(!p.boot_params().iter().any(|b| b.starts_with("isolcpus")));
}

#[test]
fn feed_and_witness_hosts() {
    let topo = xl4();
    let feed = plan(
        &topo,
        &PlanRequest {
            role: HostRole::Feed,
            ..node()
        },
    )
    .unwrap();
    invariants(&feed, &topo);
    assert_eq!(feed.threads.len(), 2);
    assert_eq!(feed.cpu_of(Role::Feed, 0), Some(2));
    assert_eq!(feed.cpu_of(Role::MediaDriver, 0), Some(3));
    assert_eq!(
        feed.thread(Role::Feed, 0).unwrap().thread_name(),
        "tpx-feed-0"
    );
    let witness = plan(
        &topo,
        &PlanRequest {
            role: HostRole::Witness,
            ..node()
        },
    )
    .unwrap();
    invariants(&witness, &topo);
    assert!(witness.threads.is_empty() && witness.isolated.is_empty());
    assert_eq!(witness.housekeeping.len(), 16);
}

#[test]
fn planning_within_the_allowed_cpus() {
    // The process may only use CPUs 2-7 and their siblings (taskset / cgroup).
    let allowed: Vec<u32> = (2..8).chain(10..16).collect();
    let topo = xl4().restricted_to(&allowed);
    let p = plan(&topo, &node()).unwrap();
    invariants(&p, &topo);
    assert_eq!(p.housekeeping, vec![2, 10]);
    assert!(p.process_cpus().iter().all(|c| allowed.contains(c)));
}

#[test]
fn fifo_request_and_errors() {
    let topo = xl4();
    let p = plan(
        &topo,
        &PlanRequest {
            hot_policy: SchedPolicy::Fifo,
            hot_priority: 50,
            ..node()
        },
    )
    .unwrap();
    assert!(p
        .threads
        .iter()
        .all(|t| t.policy == SchedPolicy::Fifo && t.priority == 50));
    assert!(matches!(
        plan(
            &topo,
            &PlanRequest {
                hot_policy: SchedPolicy::Fifo,
                hot_priority: 0,
                ..node()
            }
        ),
        Err(PlanError::BadRequest(_))
    ));
    assert!(matches!(
        plan(
            &topo,
            &PlanRequest {
                shards: Some(0),
                ..node()
            }
        ),
        Err(PlanError::BadRequest(_))
    ));
    assert!(matches!(
        plan(
            &topo,
            &PlanRequest {
                nic: Some("nope".into()),
                ..node()
            }
        ),
        Err(PlanError::UnknownNic(_))
    ));
    let empty = HostTopology {
        hostname: String::new(),
        cpus: vec![],
        nics: vec![],
    };
    assert_eq!(plan(&empty, &node()), Err(PlanError::NoCpus));
}

#[test]
fn planning_is_deterministic() {
    for topo in [metal(), xl4(), vm2()] {
        assert_eq!(plan(&topo, &node()).unwrap(), plan(&topo, &node()).unwrap());
    }
}

#[test]
fn validation_rejects_broken_plans() {
    let good = plan(&xl4(), &node()).unwrap();
    let mut two_on_one = good.clone();
    two_on_one.threads[1].cpu = two_on_one.threads[0].cpu;
    assert!(matches!(two_on_one.validate(), Err(PlanError::Invalid(_))));
    let mut shared_not_degraded = good.clone();
    shared_not_degraded.threads[0].shared = true;
    shared_not_degraded.threads[0].cpu = 0;
    assert!(shared_not_degraded.validate().is_err());
    let mut hk_isolated = good.clone();
    hk_isolated.isolated.push(0);
    assert!(hk_isolated.validate().is_err());
    let mut no_seq = good.clone();
    no_seq.threads.retain(|t| t.role != Role::Sequencer);
    assert!(no_seq.validate().is_err());
    let newer = good.to_toml_string().replace("version = 1", "version = 2");
    assert!(CorePlan::from_toml_str(&newer).is_err());
    let unknown = format!("{}\nsurprise = true\n", good.to_toml_string()).replacen(
        "version = 1",
        "surprise = 1\nversion = 1",
        1,
    );
    assert!(matches!(
        CorePlan::from_toml_str(&unknown),
        Err(PlanError::Parse(_))
    ));
}

#[test]
fn smt_rule_catches_hot_siblings() {
    let topo = xl4();
    let mut p = plan(&topo, &node()).unwrap();
    // Put shard 1 on the sibling of shard 0's CPU.
    let s0 = p.cpu_of(Role::Shard, 0).unwrap();
    let sib = topo.siblings_of(s0)[0];
    let t = p
        .threads
        .iter_mut()
        .find(|t| t.role == Role::Shard && t.index == 1)
        .unwrap();
    t.cpu = sib;
    assert!(check_smt_rule(&p, &topo).is_err());
}
