//! The `tpx-tune` binary: `plan` from a topology file, `check --json` on this machine (read
//! only), and `apply --dry-run` (never without it: tests must not change the host).

use std::path::PathBuf;
use std::process::Command;
use tpx_tuning::{CorePlan, HostTopology, Role};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tpx-tune"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tpx-tune-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sysctls and files `apply` would write, read before and after to prove a dry run wrote nothing.
fn host_state() -> Vec<(String, Option<String>)> {
    [
        "/proc/sys/net/core/busy_poll",
        "/proc/sys/net/core/busy_read",
        "/proc/sys/kernel/timer_migration",
        "/proc/sys/vm/stat_interval",
        "/proc/sys/vm/swappiness",
        "/proc/sys/vm/min_free_kbytes",
        "/proc/sys/vm/nr_hugepages",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/proc/irq/default_smp_affinity",
        "/sys/devices/virtual/workqueue/cpumask",
    ]
    .iter()
    .map(|p| (p.to_string(), std::fs::read_to_string(p).ok()))
    .collect()
}

#[test]
fn plan_from_a_topology_file_writes_only_when_changed() {
    let dir = scratch("plan");
    let topo = dir.join("metal.json");
    let t = HostTopology::synthetic(2, 32, 2).with_nic("ens5", "ena", Some(0));
    std::fs::write(&topo, serde_json::to_string(&t).unwrap()).unwrap();
    let out = dir.join("core-plan.toml");
    let run = || {
        let o = bin()
            .args(["plan", "--topology"])
            .arg(&topo)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (first, summary) = run();
    assert!(first.starts_with("core plan written"), "{first}");
    assert!(
        summary.contains("tpx-shard-0   CPU 2 (own core)"),
        "{summary}"
    );
    let (second, _) = run();
    assert!(second.starts_with("core plan unchanged"), "{second}");
    let plan = CorePlan::load(&out).unwrap();
    assert_eq!(plan.cpu_of(Role::Shard, 0), Some(2));
    let o = bin()
        .args(["render", "affinity", "--plan"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0,2-31,64\n");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn plan_on_this_host_says_when_it_degrades() {
    let o = bin().args(["plan"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = CorePlan::from_toml_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    let summary = String::from_utf8_lossy(&o.stderr);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 6 {
        assert!(plan.degraded && summary.contains("DEGRADED"), "{summary}");
    }
    assert!(plan.cpu_of(Role::Shard, 0).is_some());
}

#[test]
fn check_json_lists_every_item_with_a_status_and_a_value() {
    let o = bin().args(["check", "--json"]).output().unwrap();
    // Exit 0 (all pass) or 1 (some FAIL); 2 would be an error.
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = doc["items"].as_array().unwrap();
    assert!(items.len() >= 31);
    let mut ids = std::collections::BTreeSet::new();
    for i in items {
        let status = i["status"].as_str().unwrap();
        assert!(["PASS", "FAIL", "N/A"].contains(&status), "{i}");
        assert!(!i["value"].as_str().unwrap().is_empty(), "{i}");
        assert!(
            ids.insert(i["id"].as_str().unwrap().to_string()),
            "duplicate {i}"
        );
    }
    for id in [
        "cmdline.isolcpus",
        "irq.affinity",
        "sysctl.vm.min_free_kbytes",
        "cpu.governor",
        "nic.ena_express",
        "process.memlock",
    ] {
        assert!(ids.contains(id), "{id} missing");
    }
    let s = &doc["summary"];
    assert_eq!(
        s["pass"].as_u64().unwrap() + s["fail"].as_u64().unwrap() + s["na"].as_u64().unwrap(),
        items.len() as u64
    );
}

#[test]
fn check_pid_of_this_test_process() {
    let pid = std::process::id().to_string();
    let o = bin()
        .args(["check", "--json", "--pid", &pid])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let memlock = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "process.memlock")
        .unwrap();
    assert_ne!(memlock["status"], "N/A");
    assert!(memlock["value"].as_str().unwrap().starts_with("soft "));
}

#[test]
fn apply_dry_run_changes_nothing() {
    let before = host_state();
    let o = bin().args(["apply", "--dry-run"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("dry run:"), "{out}");
    assert!(
        out.contains("boot parameters (cannot be set at run time"),
        "{out}"
    );
    assert!(!out.contains("done "), "{out}");
    assert_eq!(host_state(), before, "a dry run must not write");
}
