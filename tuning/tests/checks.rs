//! `check`, `apply` and `render` as pure functions over fixtures: a fully tuned c6i.4xlarge, this
//! 2-vCPU VM as it is, an empty host, and single breakages.

use std::collections::BTreeMap;
use tpx_tuning::apply::{execute, plan_apply, Action};
use tpx_tuning::check::{run_checks, CheckContext, CheckItem, Status};
use tpx_tuning::render::{render, What};
use tpx_tuning::sys::{Fixture, RecordingSink};
use tpx_tuning::{plan, CorePlan, HostRole, HostTopology, PlanRequest, SchedPolicy};

const PID: u32 = 4242;

fn xl4_plan() -> CorePlan {
    plan(
        &HostTopology::synthetic(1, 8, 2).with_nic("ens5", "ena", Some(0)),
        &PlanRequest::default(),
    )
    .unwrap()
}

fn vm_plan() -> CorePlan {
    plan(
        &HostTopology::synthetic(1, 2, 1).with_nic("eth0", "virtio_net", None),
        &PlanRequest::default(),
    )
    .unwrap()
}

fn stat_line(tid: u32, name: &str, policy: u32, prio: u32) -> String {
    format!(
        "{tid} ({name}) S{} {prio} {policy} 0 0 0\n",
        " 0".repeat(36)
    )
}

fn task(f: Fixture, tid: u32, name: &str, cpus: &str, policy: u32, prio: u32) -> Fixture {
    let base = format!("/proc/{PID}/task/{tid}");
    f.file(&format!("{base}/comm"), &format!("{name}\n"))
        .file(
            &format!("{base}/status"),
            &format!("Name:\t{name}\nCpus_allowed_list:\t{cpus}\n"),
        )
        .file(&format!("{base}/stat"), &stat_line(tid, name, policy, prio))
}

/// A c6i.4xlarge tuned exactly as the plan and the sources say, with a node running.
fn tuned(plan: &CorePlan) -> Fixture {
    let mut f = Fixture::new()
        .file("/proc/cmdline", &format!("BOOT_IMAGE=/vmlinuz root=/dev/nvme0n1p1 ro {}\n", plan.boot_params().join(" ")))
        .file("/proc/irq/default_smp_affinity", "303\n")
        .file("/sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n")
        .file("/proc/meminfo", "MemTotal:       32000000 kB\nHugePages_Total:     512\nHugePages_Free:      512\nHugepagesize:       2048 kB\n")
        .file("/proc/sys/net/core/busy_poll", "50\n")
        .file("/proc/sys/net/core/busy_read", "50\n")
        .file("/proc/sys/kernel/numa_balancing", "0\n")
        .file("/proc/sys/kernel/timer_migration", "0\n")
        .file("/proc/sys/vm/stat_interval", "10\n")
        .file("/proc/sys/kernel/nmi_watchdog", "0\n")
        .file("/proc/sys/vm/swappiness", "10\n")
        .file("/proc/sys/vm/min_free_kbytes", "640000\n")
        .file("/proc/sys/kernel/sched_rt_runtime_us", "-1\n")
        .file("/sys/devices/system/cpu/online", "0-15\n")
        .file("/sys/devices/system/cpu/cpuidle/current_driver", "intel_idle\n")
        .file("/sys/devices/system/cpu/smt/control", "on\n")
        .file("/sys/devices/virtual/workqueue/cpumask", "303\n")
        .file("/sys/bus/workqueue/devices/writeback/cpumask", "303\n")
        .file("/sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
        .file("/sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc kvm-clock acpi_pm\n")
        .file("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        .link("/sys/class/net/ens5/device/driver", "../../../bus/pci/drivers/ena")
        .command("ethtool -c ens5", "Coalesce parameters for ens5:\nAdaptive RX: off  TX: off\nrx-usecs: 0\nrx-frames: n/a\ntx-usecs: 0\n")
        .command("ethtool -S ens5", "NIC statistics:\n     tx_timeout: 0\n     ena_srd_mode: 0\n")
        .file(&format!("/proc/{PID}/limits"), "Limit                     Soft Limit           Hard Limit           Units     \nMax locked memory         unlimited            unlimited            bytes     \n");
    for irq in [0, 1, 24, 25] {
        f.set(&format!("/proc/irq/{irq}/smp_affinity_list"), "0-1,8-9\n");
    }
    for cpu in 0..16 {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}");
        f.set(&format!("{base}/cpufreq/scaling_governor"), "performance\n");
        f.set(
            &format!("{base}/topology/thread_siblings_list"),
            &format!("{},{}\n", cpu % 8, cpu % 8 + 8),
        );
        for (i, (name, lat, off)) in [("POLL", 0, 0), ("C1", 2, 0), ("C1E", 10, 1), ("C6", 133, 1)]
            .iter()
            .enumerate()
        {
            f.set(&format!("{base}/cpuidle/state{i}/name"), name);
            f.set(
                &format!("{base}/cpuidle/state{i}/latency"),
                &lat.to_string(),
            );
            f.set(
                &format!("{base}/cpuidle/state{i}/disable"),
                &off.to_string(),
            );
        }
    }
    f = task(f, PID, "tpx", "0,8", 0, 0);
    for (i, t) in plan.threads.iter().enumerate() {
        f = task(
            f,
            PID + 1 + i as u32,
            &t.thread_name(),
            &t.cpu.to_string(),
            t.policy.kernel_value(),
            u32::from(t.priority),
        );
    }
    f
}

fn ctx(plan: CorePlan, pid: Option<u32>) -> CheckContext {
    let mut c = CheckContext::new(plan);
    c.pid = pid;
    c
}

fn by_id(items: &[CheckItem]) -> BTreeMap<String, CheckItem> {
    items.iter().map(|i| (i.id.clone(), i.clone())).collect()
}

fn status(items: &[CheckItem], id: &str) -> Status {
    by_id(items)
        .get(id)
        .unwrap_or_else(|| panic!("no item {id}"))
        .status
}

const ALL_IDS: &[&str] = &[
    "cmdline.isolcpus",
    "cmdline.nohz_full",
    "cmdline.rcu_nocbs",
    "cmdline.irqaffinity",
    "cmdline.skew_tick",
    "irq.affinity",
    "mm.transparent_hugepage",
    "mm.hugepages",
    "sysctl.net.core.busy_poll",
    "sysctl.net.core.busy_read",
    "sysctl.kernel.numa_balancing",
    "sysctl.kernel.timer_migration",
    "sysctl.vm.stat_interval",
    "sysctl.kernel.nmi_watchdog",
    "sysctl.vm.swappiness",
    "sysctl.vm.min_free_kbytes",
    "sysctl.kernel.sched_rt_runtime_us",
    "cpu.governor",
    "cpu.cstates",
    "cpu.smt",
    "workqueue.cpumask",
    "workqueue.writeback_cpumask",
    "clock.source",
    "mm.swap",
    "nic.adaptive_rx",
    "nic.rx_usecs",
    "nic.tx_usecs",
    "nic.ena_express",
    "process.affinity",
    "process.sched_policy",
    "process.memlock",
];

#[test]
fn a_tuned_host_passes_everything() {
    let plan = xl4_plan();
    let items = run_checks(&tuned(&plan), &ctx(plan, Some(PID)));
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ALL_IDS);
    let not_pass: Vec<&CheckItem> = items.iter().filter(|i| i.status != Status::Pass).collect();
    // sched_rt_runtime_us is -1 here: PASS even though the plan has no FIFO thread.
    assert!(not_pass.is_empty(), "{not_pass:#?}");
}

#[test]
fn an_empty_host_never_passes() {
    let items = run_checks(&Fixture::new(), &ctx(xl4_plan(), Some(PID)));
    assert_eq!(items.len(), ALL_IDS.len());
    for i in &items {
        assert_ne!(i.status, Status::Pass, "{i:?}");
        assert!(!i.value.is_empty(), "{i:?}");
    }
}

/// This VM as read on the build machine: 2 vCPUs, virtio NIC, no cpufreq, SMT "notsupported",
/// haltpoll idle, no isolation on the command line.
fn this_vm() -> Fixture {
    let mut f = Fixture::new()
        .file("/proc/cmdline", "console=ttyS0 quiet reboot=k panic=1 cpuidle_haltpoll.force=1 -- --firecracker-init\n")
        .file("/proc/irq/default_smp_affinity", "3\n")
        .file("/proc/irq/24/smp_affinity_list", "0-1\n")
        .file("/proc/irq/25/smp_affinity_list", "0-1\n")
        .file("/sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
        .file("/proc/meminfo", "MemTotal:       24684100 kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n")
        .file("/proc/sys/net/core/busy_poll", "0\n")
        .file("/proc/sys/net/core/busy_read", "0\n")
        .file("/proc/sys/kernel/numa_balancing", "0\n")
        .file("/proc/sys/kernel/timer_migration", "1\n")
        .file("/proc/sys/vm/stat_interval", "1\n")
        .file("/proc/sys/kernel/nmi_watchdog", "0\n")
        .file("/proc/sys/vm/swappiness", "60\n")
        .file("/proc/sys/vm/min_free_kbytes", "67584\n")
        .file("/proc/sys/kernel/sched_rt_runtime_us", "950000\n")
        .file("/sys/devices/system/cpu/online", "0-1\n")
        .file("/sys/devices/system/cpu/cpuidle/current_driver", "haltpoll\n")
        .file("/sys/devices/system/cpu/smt/control", "notsupported\n")
        .file("/sys/devices/virtual/workqueue/cpumask", "3\n")
        .file("/sys/bus/workqueue/devices/writeback/cpumask", "3\n")
        .file("/sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
        .file("/sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc kvm-clock\n")
        .file("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        .link("/sys/class/net/eth0/device/driver", "../../../bus/virtio/drivers/virtio_net")
        .file("/proc/net/route", "Iface\tDestination\tGateway\neth0\t00000000\t0100A8C0\n");
    for cpu in 0..2 {
        for (i, (name, lat)) in [("POLL", 0), ("haltpoll idle", 1)].iter().enumerate() {
            let base = format!("/sys/devices/system/cpu/cpu{cpu}/cpuidle/state{i}");
            f.set(&format!("{base}/name"), name);
            f.set(&format!("{base}/latency"), &lat.to_string());
            f.set(&format!("{base}/disable"), "0");
        }
    }
    f
}

#[test]
fn this_vm_reports_absent_things_as_na_and_wrong_things_as_fail() {
    let items = run_checks(&this_vm(), &ctx(vm_plan(), None));
    let want = [
        ("cmdline.isolcpus", Status::Fail),
        ("cmdline.nohz_full", Status::Fail),
        ("cmdline.skew_tick", Status::Fail),
        ("irq.affinity", Status::Fail),
        ("mm.transparent_hugepage", Status::Fail),
        ("mm.hugepages", Status::Fail),
        ("sysctl.net.core.busy_poll", Status::Fail),
        ("sysctl.kernel.numa_balancing", Status::Pass),
        ("sysctl.vm.min_free_kbytes", Status::Fail),
        ("sysctl.kernel.sched_rt_runtime_us", Status::NotApplicable),
        ("cpu.governor", Status::NotApplicable),
        ("cpu.cstates", Status::Pass),
        ("cpu.smt", Status::NotApplicable),
        ("workqueue.cpumask", Status::Fail),
        ("clock.source", Status::Pass),
        ("mm.swap", Status::Pass),
        ("nic.adaptive_rx", Status::NotApplicable),
        ("nic.rx_usecs", Status::NotApplicable),
        ("nic.tx_usecs", Status::NotApplicable),
        ("nic.ena_express", Status::NotApplicable),
        ("process.affinity", Status::NotApplicable),
    ];
    for (id, s) in want {
        assert_eq!(status(&items, id), s, "{id}: {:?}", by_id(&items)[id]);
    }
    let m = by_id(&items);
    assert!(m["nic.adaptive_rx"].value.contains("virtio_net (not ENA)"));
    assert!(m["cpu.smt"].value.contains("notsupported"));
    assert!(m["cmdline.isolcpus"].value.contains("not set"));
}

#[test]
fn single_breakages_fail_their_item_only() {
    let plan = xl4_plan();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("/proc/sys/net/core/busy_poll", "0", "sysctl.net.core.busy_poll"),
        ("/proc/sys/kernel/timer_migration", "1", "sysctl.kernel.timer_migration"),
        ("/proc/sys/vm/swappiness", "60", "sysctl.vm.swappiness"),
        ("/proc/sys/vm/min_free_kbytes", "67584", "sysctl.vm.min_free_kbytes"),
        ("/proc/sys/vm/min_free_kbytes", "2000000", "sysctl.vm.min_free_kbytes"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never", "mm.transparent_hugepage"),
        ("/proc/irq/24/smp_affinity_list", "0-15", "irq.affinity"),
        ("/proc/irq/default_smp_affinity", "ffff", "irq.affinity"),
        ("/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor", "powersave", "cpu.governor"),
        ("/sys/devices/system/cpu/cpu5/cpuidle/state3/disable", "0", "cpu.cstates"),
        ("/sys/devices/virtual/workqueue/cpumask", "ffff", "workqueue.cpumask"),
        ("/sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock", "clock.source"),
        ("/proc/swaps", "Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n", "mm.swap"),
        ("/proc/cmdline", "ro isolcpus=2-5 nohz_full=2-7,10-15 rcu_nocbs=2-7,10-15 irqaffinity=0-1,8-9 skew_tick=1", "cmdline.isolcpus"),
        ("/proc/cmdline", "ro isolcpus=2-7,10-15 nohz_full=2-7,10-15 rcu_nocbs=2-7,10-15 irqaffinity=0-3 skew_tick=1", "cmdline.irqaffinity"),
        ("/proc/4242/limits", "Limit Soft Hard Units\nMax locked memory         65536                65536                bytes\n", "process.memlock"),
        ("/proc/4242/task/4243/status", "Name:\ttpx-sess-0\nCpus_allowed_list:\t0-15\n", "process.affinity"),
        ("/sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "2,3", "cpu.smt"),
    ];
    for (path, value, id) in cases {
        let mut f = tuned(&plan);
        f.set(path, value);
        let items = run_checks(&f, &ctx(plan.clone(), Some(PID)));
        let failed: Vec<&str> = items
            .iter()
            .filter(|i| i.status == Status::Fail)
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(failed, vec![id], "setting {path} = {value:?}");
    }
}

#[test]
fn ena_items() {
    let plan = xl4_plan();
    let run = |f: &Fixture| by_id(&run_checks(f, &ctx(plan.clone(), None)));
    let base = tuned(&plan);
    let adaptive = base.clone().command(
        "ethtool -c ens5",
        "Coalesce parameters for ens5:\nAdaptive RX: on  TX: off\nrx-usecs: 20\ntx-usecs: 64\n",
    );
    let m = run(&adaptive);
    assert_eq!(m["nic.adaptive_rx"].status, Status::Fail);
    assert_eq!(m["nic.rx_usecs"].status, Status::Fail);
    assert_eq!(m["nic.tx_usecs"].status, Status::Fail);
    assert_eq!(m["nic.tx_usecs"].value, "ens5: tx-usecs 64");
    for (mode, st) in [
        ("0", Status::Pass),
        ("1", Status::Fail),
        ("2", Status::Pass),
        ("3", Status::Fail),
    ] {
        let f = base.clone().command(
            "ethtool -S ens5",
            &format!("NIC statistics:\n     ena_srd_mode: {mode}\n"),
        );
        assert_eq!(run(&f)["nic.ena_express"].status, st, "mode {mode}");
    }
    let no_srd = base
        .clone()
        .command("ethtool -S ens5", "NIC statistics:\n     tx_timeout: 0\n");
    assert_eq!(
        run(&no_srd)["nic.ena_express"].status,
        Status::NotApplicable
    );
    // No ethtool: the driver is known from sysfs, the values are not.
    let bare = Fixture::new().link("/sys/class/net/ens5/device/driver", "../ena");
    let m = run(&bare);
    assert_eq!(m["nic.adaptive_rx"].status, Status::NotApplicable);
    assert!(m["nic.adaptive_rx"].value.contains("ethtool"));
}

#[test]
fn process_policy_and_missing_threads() {
    let fifo = plan(
        &HostTopology::synthetic(1, 8, 2).with_nic("ens5", "ena", Some(0)),
        &PlanRequest {
            hot_policy: SchedPolicy::Fifo,
            hot_priority: 50,
            ..PlanRequest::default()
        },
    )
    .unwrap();
    // The fixture's threads run SCHED_FIFO 50 as planned.
    let items = run_checks(&tuned(&fifo), &ctx(fifo.clone(), Some(PID)));
    assert_eq!(status(&items, "process.sched_policy"), Status::Pass);
    assert_eq!(
        status(&items, "sysctl.kernel.sched_rt_runtime_us"),
        Status::Pass
    );
    // Against an other-policy plan they are wrong.
    let items = run_checks(&tuned(&fifo), &ctx(xl4_plan(), Some(PID)));
    assert_eq!(status(&items, "process.sched_policy"), Status::Fail);
    // rt throttling on while the plan has FIFO threads fails.
    let mut f = tuned(&fifo);
    f.set("/proc/sys/kernel/sched_rt_runtime_us", "950000");
    assert_eq!(
        status(
            &run_checks(&f, &ctx(fifo.clone(), None)),
            "sysctl.kernel.sched_rt_runtime_us"
        ),
        Status::Fail
    );
    // A process with only its main thread (the stand-in) fails affinity and policy.
    let lone = task(Fixture::new(), PID, "sleep", "0-15", 0, 0);
    let items = run_checks(&lone, &ctx(xl4_plan(), Some(PID)));
    assert_eq!(status(&items, "process.affinity"), Status::Fail);
    assert!(by_id(&items)["process.affinity"]
        .value
        .contains("tpx-shard-0 missing"));
    assert_eq!(status(&items, "process.sched_policy"), Status::Fail);
    // No such process.
    let items = run_checks(&Fixture::new(), &ctx(xl4_plan(), Some(1)));
    assert_eq!(status(&items, "process.memlock"), Status::Fail);
}

#[test]
fn apply_fixes_what_failed_at_run_time_and_lists_boot_params() {
    let plan = vm_plan();
    let todo = plan_apply(&this_vm(), &ctx(plan.clone(), None));
    let writes: BTreeMap<String, String> = todo
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Write { path, value, .. } => Some((path.clone(), value.clone())),
            Action::Run { .. } => None,
        })
        .collect();
    assert_eq!(writes["/proc/sys/net/core/busy_poll"], "50");
    assert_eq!(writes["/proc/sys/kernel/timer_migration"], "0");
    assert_eq!(writes["/proc/sys/vm/swappiness"], "10");
    assert_eq!(writes["/proc/sys/vm/min_free_kbytes"], "247808");
    assert_eq!(writes["/proc/sys/vm/nr_hugepages"], "512");
    assert_eq!(
        writes["/sys/kernel/mm/transparent_hugepage/enabled"],
        "never"
    );
    assert_eq!(writes["/proc/irq/24/smp_affinity_list"], "0");
    assert_eq!(writes["/proc/irq/default_smp_affinity"], "1");
    assert_eq!(writes["/sys/devices/virtual/workqueue/cpumask"], "1");
    assert!(
        !writes.contains_key("/proc/sys/kernel/numa_balancing"),
        "already right"
    );
    assert!(
        !writes.contains_key("/proc/sys/kernel/sched_rt_runtime_us"),
        "no FIFO thread"
    );
    assert!(
        !todo.actions.iter().any(|a| matches!(a, Action::Run { .. })),
        "virtio NIC: no ethtool"
    );
    let missing: Vec<&str> = todo
        .boot_params
        .iter()
        .filter(|(_, have)| !have)
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(missing.contains(&"isolcpus=managed_irq,domain,1"));
    assert!(missing.contains(&"skew_tick=1"));
    // Executing through a recording sink touches nothing.
    let mut sink = RecordingSink::default();
    let lines = execute(&todo, &mut sink);
    assert_eq!(lines.len(), todo.actions.len());
    assert!(lines.iter().all(|l| l.starts_with("done")));
    assert_eq!(sink.log.len(), todo.actions.len());

    // A tuned host needs nothing.
    let plan = xl4_plan();
    let todo = plan_apply(&tuned(&plan), &ctx(plan, None));
    assert!(todo.actions.is_empty(), "{:?}", todo.actions);
    assert!(todo.boot_params.iter().all(|(_, have)| *have));
    assert!(todo.manual.is_empty());
}

#[test]
fn apply_runs_ethtool_for_an_ena_nic_with_moderation_on() {
    let plan = xl4_plan();
    let f = tuned(&plan).command(
        "ethtool -c ens5",
        "Adaptive RX: on  TX: off\nrx-usecs: 20\ntx-usecs: 64\n",
    );
    let todo = plan_apply(&f, &ctx(plan, None));
    assert_eq!(
        todo.actions,
        vec![Action::Run {
            item: "nic.coalescing".into(),
            program: "ethtool".into(),
            args: [
                "-C",
                "ens5",
                "adaptive-rx",
                "off",
                "rx-usecs",
                "0",
                "tx-usecs",
                "0"
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }]
    );
}

#[test]
fn render_outputs() {
    let plan = xl4_plan();
    let f = tuned(&plan);
    let c = ctx(plan.clone(), None);
    let sysctl = render(&f, &c, What::Sysctl);
    assert!(sysctl.contains("net.core.busy_poll = 50\n"));
    assert!(sysctl.contains("vm.min_free_kbytes = 320512\n"));
    assert!(sysctl.contains("vm.nr_hugepages = 512\n"));
    assert!(!sysctl.contains("sched_rt_runtime_us"));
    let tmpfiles = render(&f, &c, What::Tmpfiles);
    assert!(tmpfiles.contains("w /sys/devices/virtual/workqueue/cpumask - - - - 303\n"));
    assert!(tmpfiles.contains("scaling_governor - - - - performance"));
    assert_eq!(render(&f, &c, What::Affinity(HostRole::Node)), "0,2-8\n");
    assert_eq!(render(&f, &c, What::Affinity(HostRole::Witness)), "0,8\n");
    assert_eq!(
        render(&f, &c, What::Irqbalance).lines().last(),
        Some("IRQBALANCE_BANNED_CPULIST=2-7,10-15")
    );
    assert!(
        render(&f, &c, What::Cmdline).starts_with("isolcpus=managed_irq,domain,2-7,10-15 nohz=on")
    );
}

/// The tuned profile carries the same tuning as the other renders: cpu-partitioning on the
/// isolated CPUs, every sysctl target, THP never, the governor, and the boot parameters
/// cpu-partitioning does not write itself.
#[test]
fn render_tuned_profile() {
    let plan = xl4_plan();
    let f = tuned(&plan);
    let c = ctx(plan.clone(), None);
    let p = render(&f, &c, What::Tuned);
    let section = |name: &str| -> Vec<&str> {
        p.split(&format!("[{name}]\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no [{name}] in\n{p}"))
            .split("\n[")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert!(section("main").contains(&"include=cpu-partitioning"));
    assert_eq!(section("variables"), ["isolated_cores=2-7,10-15"]);
    assert_eq!(section("vm"), ["transparent_hugepages=never"]);
    assert!(section("cpu").contains(&"governor=performance"));
    let sysctl = render(&f, &c, What::Sysctl);
    let want: Vec<String> = sysctl
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.replace(" = ", "="))
        .collect();
    assert_eq!(section("sysctl"), want);
    let boot = section("bootloader");
    assert_eq!(boot.len(), 1);
    let cmdline = boot[0].strip_prefix("cmdline_tpx=").unwrap();
    // Everything of the plan's command line but what cpu-partitioning derives from
    // isolated_cores.
    let all = render(&f, &c, What::Cmdline);
    let want: Vec<&str> = all
        .split_whitespace()
        .filter(|p| {
            !["nohz=", "nohz_full=", "rcu_nocbs=", "nosoftlockup"]
                .iter()
                .any(|c| p.starts_with(c))
        })
        .collect();
    assert_eq!(cmdline.split(' ').collect::<Vec<_>>(), want);
    assert!(cmdline.contains("intel_idle.max_cstate=1"), "{cmdline}");
    assert!(
        cmdline.starts_with("isolcpus=managed_irq,domain,2-7,10-15 irqaffinity="),
        "{cmdline}"
    );
}

/// `tpx node` on the 2-vCPU VM's degraded plan: the sessions share the sequencer's CPU and run
/// on its thread (`tpx-seq`), and the media driver is not in the node process. That is the plan
/// as the node runs it; the same threads unpinned are not.
#[test]
fn merged_roles_and_media_driver_elsewhere() {
    let plan = vm_plan();
    let cpu_of = |role: &str| {
        plan.threads
            .iter()
            .find(|t| t.thread_name().starts_with(role))
            .map(|t| t.cpu)
            .unwrap()
    };
    let (seq, shard, sess) = (
        cpu_of("tpx-seq"),
        cpu_of("tpx-shard-0"),
        cpu_of("tpx-sess-0"),
    );
    assert_eq!(
        seq, sess,
        "the degraded plan shares the sequencer's CPU with the sessions"
    );
    let node = |seq_cpus: &str| {
        let f = task(Fixture::new(), PID, "tpx", "0-1", 0, 0);
        let f = task(f, PID + 1, "tpx-seq", seq_cpus, 0, 0);
        let f = task(f, PID + 2, "tpx-shard-0", &shard.to_string(), 0, 0);
        by_id(&run_checks(&f, &ctx(plan.clone(), Some(PID))))["process.affinity"].clone()
    };
    let ok = node(&seq.to_string());
    assert_eq!(ok.status, Status::Pass, "{}", ok.value);
    assert!(
        ok.value.contains(&format!("tpx-sess-0(in tpx-seq)@{sess}")),
        "{}",
        ok.value
    );
    assert!(
        ok.value.contains("tpx-media not in this process"),
        "{}",
        ok.value
    );
    // The sequencer's thread not pinned: the sessions are not where the plan says either.
    let bad = node("0-1");
    assert_eq!(bad.status, Status::Fail, "{}", bad.value);
    assert!(bad.value.contains("tpx-sess-0 missing"), "{}", bad.value);
    assert!(bad.value.contains("tpx-seq on 0-1"), "{}", bad.value);
}
