//! Kernel items: command line, IRQs, memory, sysctls, CPU power, SMT, workqueues, clock, swap.

use super::source::*;
use super::{CheckContext, CheckItem, Fix, Status};
use crate::cpuset::{format_list, parse_list, parse_mask};
use crate::plan::SchedPolicy;
use crate::sys::SysSource;
use std::collections::{BTreeMap, BTreeSet};

const ABSENT: &str = "(absent)";

fn iso(ctx: &CheckContext) -> BTreeSet<u32> {
    ctx.plan.isolated.iter().copied().collect()
}

/// Parses `/proc/cmdline` into `key -> value` (the last occurrence wins; flags map to "").
pub fn parse_cmdline(cmdline: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Everything after a bare `--` goes to init, not the kernel.
    for tok in cmdline.split_whitespace().take_while(|t| *t != "--") {
        match tok.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), v.to_string()),
            None => out.insert(tok.to_string(), String::new()),
        };
    }
    out
}

/// The CPU list of `isolcpus=` style values, flags (`managed_irq,domain,`) dropped.
fn cpus_of_param(value: &str) -> Result<BTreeSet<u32>, String> {
    let list: Vec<&str> = value
        .split(',')
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    parse_list(&list.join(","))
}

pub(super) fn cmdline_items(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let Some(cmdline) = sys.read("/proc/cmdline") else {
        return [
            "isolcpus",
            "nohz_full",
            "rcu_nocbs",
            "irqaffinity",
            "skew_tick",
        ]
        .iter()
        .map(|k| {
            CheckItem::new(
                &format!("cmdline.{k}"),
                Status::NotApplicable,
                "/proc/cmdline unreadable",
                "-",
                Fix::Boot,
                KERNEL_DOCS,
            )
        })
        .collect();
    };
    let params = parse_cmdline(&cmdline);
    let iso = iso(ctx);
    let iso_text = format_list(&iso);
    let mut items = Vec::new();
    for (key, src) in [
        ("isolcpus", TUNED_CPU_PARTITIONING),
        ("nohz_full", TUNED_CPU_PARTITIONING),
        ("rcu_nocbs", KERNEL_DOCS),
    ] {
        let id = format!("cmdline.{key}");
        let value = params.get(key).cloned();
        let shown = value
            .clone()
            .map_or("(not set)".to_string(), |v| format!("{key}={v}"));
        let item = if iso.is_empty() {
            CheckItem::new(
                &id,
                Status::NotApplicable,
                format!("{shown}; the plan isolates no CPU"),
                "-",
                Fix::Boot,
                src,
            )
        } else {
            let ok = value
                .as_deref()
                .and_then(|v| cpus_of_param(v).ok())
                .is_some_and(|set| set.is_superset(&iso));
            CheckItem::new(
                &id,
                if ok { Status::Pass } else { Status::Fail },
                shown,
                format!("covers {iso_text}"),
                Fix::Boot,
                src,
            )
        };
        items.push(item);
    }
    let irq_cpus = ctx.plan.interrupt_cpus();
    let item = match params.get("irqaffinity") {
        None => CheckItem::new(
            "cmdline.irqaffinity",
            Status::Fail,
            "(not set)",
            format!("irqaffinity={}", format_list(&irq_cpus)),
            Fix::Boot,
            KERNEL_DOCS,
        ),
        Some(v) => {
            let ok = parse_list(v).is_ok_and(|set| !set.is_empty() && set.is_disjoint(&iso));
            CheckItem::new(
                "cmdline.irqaffinity",
                if ok { Status::Pass } else { Status::Fail },
                format!("irqaffinity={v}"),
                format!("irqaffinity={} (no isolated CPU)", format_list(&irq_cpus)),
                Fix::Boot,
                KERNEL_DOCS,
            )
        }
    };
    items.push(item);
    let skew = params.get("skew_tick");
    items.push(CheckItem::new(
        "cmdline.skew_tick",
        if skew.map(String::as_str) == Some("1") {
            Status::Pass
        } else {
            Status::Fail
        },
        skew.map_or("(not set)".to_string(), |v| format!("skew_tick={v}")),
        "skew_tick=1",
        Fix::Boot,
        TUNED_NETWORK_LATENCY,
    ));
    items
}

/// IRQs whose affinity includes an isolated CPU: `(irq, its CPU list)`.
pub fn offending_irqs(sys: &dyn SysSource, iso: &BTreeSet<u32>) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for name in sys.list("/proc/irq").unwrap_or_default() {
        let Ok(irq) = name.parse::<u32>() else {
            continue;
        };
        let Some(list) = sys.read_trim(&format!("/proc/irq/{irq}/smp_affinity_list")) else {
            continue;
        };
        if parse_list(&list).is_ok_and(|set| !set.is_disjoint(iso)) {
            out.push((irq, list));
        }
    }
    out.sort();
    out
}

pub(super) fn irq_affinity(sys: &dyn SysSource, ctx: &CheckContext) -> CheckItem {
    let id = "irq.affinity";
    let iso = iso(ctx);
    let expected = format!("no IRQ on isolated CPUs {}", format_list(&iso));
    let src = TUNED_CPU_PARTITIONING;
    let Some(entries) = sys.list("/proc/irq") else {
        return CheckItem::new(
            id,
            Status::NotApplicable,
            "/proc/irq absent",
            expected,
            Fix::Runtime,
            src,
        );
    };
    let total = entries.iter().filter(|n| n.parse::<u32>().is_ok()).count();
    if iso.is_empty() {
        return CheckItem::new(
            id,
            Status::NotApplicable,
            format!("{total} IRQs; the plan isolates no CPU"),
            "-",
            Fix::Runtime,
            src,
        );
    }
    let bad = offending_irqs(sys, &iso);
    let default = sys.read_trim("/proc/irq/default_smp_affinity");
    let default_bad = default
        .as_deref()
        .and_then(|m| parse_mask(m).ok())
        .is_some_and(|set| !set.is_disjoint(&iso));
    let mut value = format!("{total} IRQs, {} on isolated CPUs", bad.len());
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .take(8)
            .map(|(i, l)| format!("{i}->{l}"))
            .collect();
        value.push_str(&format!(
            " ({}{})",
            shown.join(" "),
            if bad.len() > 8 { " ..." } else { "" }
        ));
    }
    if let Some(d) = &default {
        value.push_str(&format!("; default_smp_affinity={d}"));
    }
    let status = if bad.is_empty() && !default_bad {
        Status::Pass
    } else {
        Status::Fail
    };
    CheckItem::new(id, status, value, expected, Fix::Runtime, src)
}

pub(super) fn thp(sys: &dyn SysSource) -> CheckItem {
    let id = "mm.transparent_hugepage";
    match sys.read_trim("/sys/kernel/mm/transparent_hugepage/enabled") {
        None => CheckItem::new(
            id,
            Status::NotApplicable,
            ABSENT,
            "never",
            Fix::Runtime,
            TUNED_NETWORK_LATENCY,
        ),
        Some(v) => {
            let selected = v
                .split_whitespace()
                .find(|w| w.starts_with('['))
                .map(|w| w.trim_matches(['[', ']']).to_string());
            let status = if selected.as_deref() == Some("never") {
                Status::Pass
            } else {
                Status::Fail
            };
            CheckItem::new(id, status, v, "never", Fix::Runtime, TUNED_NETWORK_LATENCY)
        }
    }
}

/// A `/proc/meminfo` field, in its unit (kB or pages).
pub fn meminfo(sys: &dyn SysSource, field: &str) -> Option<u64> {
    let text = sys.read("/proc/meminfo")?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == field).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

pub(super) fn hugepages(sys: &dyn SysSource, ctx: &CheckContext) -> CheckItem {
    let id = "mm.hugepages";
    let expected = format!(">= {} pages", ctx.min_hugepages);
    match meminfo(sys, "HugePages_Total") {
        None => CheckItem::new(
            id,
            Status::NotApplicable,
            "no HugePages_Total in /proc/meminfo",
            expected,
            Fix::Runtime,
            KERNEL_DOCS,
        ),
        Some(total) => {
            let size = meminfo(sys, "Hugepagesize").map_or(String::new(), |s| format!(" x {s} kB"));
            let free =
                meminfo(sys, "HugePages_Free").map_or(String::new(), |f| format!(", {f} free"));
            let status = if total >= ctx.min_hugepages {
                Status::Pass
            } else {
                Status::Fail
            };
            CheckItem::new(
                id,
                status,
                format!("{total}{size}{free}"),
                expected,
                Fix::Runtime,
                KERNEL_DOCS,
            )
        }
    }
}

/// Lower bound of `vm.min_free_kbytes`, percent of MemTotal (ENA best practices: 1-3 %).
pub const MIN_FREE_PCT_MIN: u64 = 1;
/// Upper bound of `vm.min_free_kbytes`, percent of MemTotal.
pub const MIN_FREE_PCT_MAX: u64 = 3;

/// How a sysctl value is judged.
#[derive(Debug, Clone, Copy)]
enum Want {
    Eq(i64),
    AtLeast(i64),
    AtMost(i64),
}

/// The sysctl items: name, wanted value, source. `tpx-tune apply` and `render sysctl` use the
/// same table through [`sysctl_targets`].
const SYSCTLS: &[(&str, Want, &str)] = &[
    (
        "net.core.busy_poll",
        Want::AtLeast(50),
        TUNED_NETWORK_LATENCY,
    ),
    (
        "net.core.busy_read",
        Want::AtLeast(50),
        TUNED_NETWORK_LATENCY,
    ),
    ("kernel.numa_balancing", Want::Eq(0), TUNED_NETWORK_LATENCY),
    ("kernel.timer_migration", Want::Eq(0), TUNED_NETWORK_LATENCY),
    (
        "vm.stat_interval",
        Want::AtLeast(10),
        TUNED_CPU_PARTITIONING,
    ),
    ("kernel.nmi_watchdog", Want::Eq(0), TUNED_CPU_PARTITIONING),
    ("vm.swappiness", Want::AtMost(10), TUNED_LATENCY_PERFORMANCE),
];

fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// The sysctls a tuned host sets and their values, for `apply` and `render sysctl`.
/// `vm.min_free_kbytes` is 1 % of MemTotal (rounded up to a MiB) when MemTotal is known.
pub fn sysctl_targets(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = SYSCTLS
        .iter()
        .map(|(name, want, _)| {
            let v = match want {
                Want::Eq(v) | Want::AtLeast(v) | Want::AtMost(v) => *v,
            };
            (name.to_string(), v.to_string())
        })
        .collect();
    if let Some(total) = meminfo(sys, "MemTotal") {
        let kb = (total * MIN_FREE_PCT_MIN).div_ceil(100).div_ceil(1024) * 1024;
        out.push(("vm.min_free_kbytes".to_string(), kb.to_string()));
    }
    if needs_rt_unthrottled(ctx) {
        out.push(("kernel.sched_rt_runtime_us".to_string(), "-1".to_string()));
    }
    out.push(("vm.nr_hugepages".to_string(), ctx.min_hugepages.to_string()));
    out
}

fn needs_rt_unthrottled(ctx: &CheckContext) -> bool {
    ctx.plan
        .threads
        .iter()
        .any(|t| t.policy == SchedPolicy::Fifo)
}

pub(super) fn sysctl_items(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let mut items = Vec::new();
    for (name, want, src) in SYSCTLS {
        let id = format!("sysctl.{name}");
        let expected = match want {
            Want::Eq(v) => format!("{v}"),
            Want::AtLeast(v) => format!(">= {v}"),
            Want::AtMost(v) => format!("<= {v}"),
        };
        let item = match sys.read_trim(&sysctl_path(name)) {
            None => CheckItem::new(
                &id,
                Status::NotApplicable,
                ABSENT,
                expected,
                Fix::Runtime,
                src,
            ),
            Some(raw) => {
                let ok = raw.parse::<i64>().is_ok_and(|v| match want {
                    Want::Eq(w) => v == *w,
                    Want::AtLeast(w) => v >= *w,
                    Want::AtMost(w) => v <= *w,
                });
                CheckItem::new(
                    &id,
                    if ok { Status::Pass } else { Status::Fail },
                    raw,
                    expected,
                    Fix::Runtime,
                    src,
                )
            }
        };
        items.push(item);
    }

    let id = "sysctl.vm.min_free_kbytes";
    let total = meminfo(sys, "MemTotal");
    let expected = total.map_or("1-3 % of MemTotal".to_string(), |t| {
        format!(
            "{}-{} kB (1-3 % of MemTotal {t} kB)",
            t * MIN_FREE_PCT_MIN / 100,
            t * MIN_FREE_PCT_MAX / 100
        )
    });
    items.push(
        match (sys.read_trim(&sysctl_path("vm.min_free_kbytes")), total) {
            (None, _) => CheckItem::new(
                id,
                Status::NotApplicable,
                ABSENT,
                expected,
                Fix::Runtime,
                ENA_BEST_PRACTICES,
            ),
            (Some(raw), None) => CheckItem::new(
                id,
                Status::NotApplicable,
                format!("{raw} (MemTotal unknown)"),
                expected,
                Fix::Runtime,
                ENA_BEST_PRACTICES,
            ),
            (Some(raw), Some(t)) => {
                let ok = raw.parse::<u64>().is_ok_and(|v| {
                    v * 100 >= t * MIN_FREE_PCT_MIN && v * 100 <= t * MIN_FREE_PCT_MAX
                });
                CheckItem::new(
                    id,
                    if ok { Status::Pass } else { Status::Fail },
                    raw,
                    expected,
                    Fix::Runtime,
                    ENA_BEST_PRACTICES,
                )
            }
        },
    );

    let id = "sysctl.kernel.sched_rt_runtime_us";
    items.push(
        match sys.read_trim(&sysctl_path("kernel.sched_rt_runtime_us")) {
            None => CheckItem::new(
                id,
                Status::NotApplicable,
                ABSENT,
                "-1",
                Fix::Runtime,
                KERNEL_DOCS,
            ),
            Some(raw) if raw == "-1" => {
                CheckItem::new(id, Status::Pass, raw, "-1", Fix::Runtime, KERNEL_DOCS)
            }
            Some(raw) if !needs_rt_unthrottled(ctx) => CheckItem::new(
                id,
                Status::NotApplicable,
                format!("{raw} (only matters for SCHED_FIFO threads; the plan has none)"),
                "-1 when the plan uses SCHED_FIFO",
                Fix::Runtime,
                KERNEL_DOCS,
            ),
            Some(raw) => CheckItem::new(
                id,
                Status::Fail,
                raw,
                "-1 (the plan has SCHED_FIFO threads)",
                Fix::Runtime,
                KERNEL_DOCS,
            ),
        },
    );
    items
}

/// The online CPUs (`/sys/devices/system/cpu/online`).
pub fn online_cpus(sys: &dyn SysSource) -> BTreeSet<u32> {
    sys.read("/sys/devices/system/cpu/online")
        .and_then(|t| parse_list(&t).ok())
        .unwrap_or_default()
}

pub(super) fn governor(sys: &dyn SysSource) -> CheckItem {
    let id = "cpu.governor";
    let mut by_gov: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for cpu in online_cpus(sys) {
        if let Some(g) = sys.read_trim(&format!(
            "/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
        )) {
            by_gov.entry(g).or_default().insert(cpu);
        }
    }
    if by_gov.is_empty() {
        return CheckItem::new(
            id,
            Status::NotApplicable,
            "no cpufreq (scaling_governor absent)",
            "performance",
            Fix::Runtime,
            TUNED_LATENCY_PERFORMANCE,
        );
    }
    let value: Vec<String> = by_gov
        .iter()
        .map(|(g, cpus)| format!("{g} on {}", format_list(cpus)))
        .collect();
    let ok = by_gov.len() == 1 && by_gov.contains_key("performance");
    CheckItem::new(
        id,
        if ok { Status::Pass } else { Status::Fail },
        value.join("; "),
        "performance",
        Fix::Runtime,
        TUNED_LATENCY_PERFORMANCE,
    )
}

/// Exit latency (µs) above which an idle state counts as deep: tuned's latency-performance
/// asks for `cstate.id_no_zero:1|3`, the ENA guide for `max_cstate=1` (C1 only).
pub const MAX_IDLE_LATENCY_US: u64 = 3;

/// Enabled idle states deeper than [`MAX_IDLE_LATENCY_US`]: `(cpu, state dir, name, latency)`.
pub fn deep_idle_states(sys: &dyn SysSource) -> Vec<(u32, String, String, u64)> {
    let mut out = Vec::new();
    for cpu in online_cpus(sys) {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/cpuidle");
        for state in sys.list(&dir).unwrap_or_default() {
            if !state.starts_with("state") {
                continue;
            }
            let base = format!("{dir}/{state}");
            let latency = sys
                .read_trim(&format!("{base}/latency"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let disabled = sys
                .read_trim(&format!("{base}/disable"))
                .is_some_and(|v| v == "1");
            if !disabled && latency > MAX_IDLE_LATENCY_US {
                let name = sys
                    .read_trim(&format!("{base}/name"))
                    .unwrap_or_else(|| state.clone());
                out.push((cpu, base, name, latency));
            }
        }
    }
    out
}

pub(super) fn cstates(sys: &dyn SysSource) -> CheckItem {
    let id = "cpu.cstates";
    let expected = format!("no enabled idle state with exit latency > {MAX_IDLE_LATENCY_US} us");
    let driver = sys.read_trim("/sys/devices/system/cpu/cpuidle/current_driver");
    let cpu0 = "/sys/devices/system/cpu/cpu0/cpuidle";
    let states = sys.list(cpu0).unwrap_or_default();
    if driver.as_deref().is_none_or(|d| d == "none") || states.is_empty() {
        return CheckItem::new(
            id,
            Status::NotApplicable,
            "no cpuidle driver",
            expected,
            Fix::Runtime,
            ENA_BEST_PRACTICES,
        );
    }
    let shown: Vec<String> = states
        .iter()
        .filter(|s| s.starts_with("state"))
        .map(|s| {
            let name = sys
                .read_trim(&format!("{cpu0}/{s}/name"))
                .unwrap_or_default();
            let lat = sys
                .read_trim(&format!("{cpu0}/{s}/latency"))
                .unwrap_or_default();
            let off = if sys.read_trim(&format!("{cpu0}/{s}/disable")).as_deref() == Some("1") {
                " off"
            } else {
                ""
            };
            format!("{name}({lat}us{off})")
        })
        .collect();
    let deep = deep_idle_states(sys);
    let mut value = format!(
        "driver {}; cpu0: {}",
        driver.unwrap_or_default(),
        shown.join(", ")
    );
    if !deep.is_empty() {
        let cpus: BTreeSet<u32> = deep.iter().map(|d| d.0).collect();
        value.push_str(&format!(
            "; deep states enabled on CPUs {}",
            format_list(&cpus)
        ));
    }
    CheckItem::new(
        id,
        if deep.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        value,
        expected,
        Fix::Runtime,
        ENA_BEST_PRACTICES,
    )
}

pub(super) fn smt(sys: &dyn SysSource, ctx: &CheckContext) -> CheckItem {
    let id = "cpu.smt";
    let expected = "off, or the SMT siblings of hot CPUs idle";
    let control = sys.read_trim("/sys/devices/system/cpu/smt/control");
    match control.as_deref() {
        None => CheckItem::new(
            id,
            Status::NotApplicable,
            "no SMT control",
            expected,
            Fix::Manual,
            CORE_PLAN,
        ),
        Some(c @ ("notsupported" | "notimplemented")) => CheckItem::new(
            id,
            Status::NotApplicable,
            c,
            expected,
            Fix::Manual,
            CORE_PLAN,
        ),
        Some(c @ ("off" | "forceoff")) => {
            CheckItem::new(id, Status::Pass, c, expected, Fix::Manual, CORE_PLAN)
        }
        Some(c) => {
            let hot = ctx.plan.hot_cpus();
            let iso = iso(ctx);
            let mut busy = Vec::new();
            for &cpu in &hot {
                let sibs = sys
                    .read(&format!(
                        "/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
                    ))
                    .and_then(|t| parse_list(&t).ok())
                    .unwrap_or_default();
                for s in sibs {
                    if s != cpu && (hot.contains(&s) || !iso.contains(&s)) {
                        busy.push(format!("{cpu}/{s}"));
                    }
                }
            }
            if busy.is_empty() {
                CheckItem::new(
                    id,
                    Status::Pass,
                    format!("{c}; siblings of hot CPUs are idle"),
                    expected,
                    Fix::Manual,
                    CORE_PLAN,
                )
            } else {
                CheckItem::new(
                    id,
                    Status::Fail,
                    format!("{c}; busy siblings: {}", busy.join(" ")),
                    expected,
                    Fix::Manual,
                    CORE_PLAN,
                )
            }
        }
    }
}

/// The workqueue cpumask files tuned's cpu-partitioning sets.
pub const WORKQUEUE_MASKS: &[(&str, &str)] = &[
    (
        "workqueue.cpumask",
        "/sys/devices/virtual/workqueue/cpumask",
    ),
    (
        "workqueue.writeback_cpumask",
        "/sys/bus/workqueue/devices/writeback/cpumask",
    ),
];

pub(super) fn workqueue_items(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let iso = iso(ctx);
    WORKQUEUE_MASKS
        .iter()
        .map(|(id, path)| {
            let expected = format!("excludes isolated CPUs {}", format_list(&iso));
            match sys.read_trim(path) {
                None => CheckItem::new(
                    id,
                    Status::NotApplicable,
                    ABSENT,
                    expected,
                    Fix::Runtime,
                    TUNED_CPU_PARTITIONING,
                ),
                Some(mask) if iso.is_empty() => CheckItem::new(
                    id,
                    Status::NotApplicable,
                    format!("{mask}; the plan isolates no CPU"),
                    "-",
                    Fix::Runtime,
                    TUNED_CPU_PARTITIONING,
                ),
                Some(mask) => {
                    let cpus = parse_mask(&mask).unwrap_or_default();
                    let ok = !cpus.is_empty() && cpus.is_disjoint(&iso);
                    CheckItem::new(
                        id,
                        if ok { Status::Pass } else { Status::Fail },
                        format!("{mask} (CPUs {})", format_list(&cpus)),
                        expected,
                        Fix::Runtime,
                        TUNED_CPU_PARTITIONING,
                    )
                }
            }
        })
        .collect()
}

pub(super) fn clocksource(sys: &dyn SysSource) -> CheckItem {
    let id = "clock.source";
    let base = "/sys/devices/system/clocksource/clocksource0";
    match sys.read_trim(&format!("{base}/current_clocksource")) {
        None => CheckItem::new(
            id,
            Status::NotApplicable,
            ABSENT,
            "tsc",
            Fix::Runtime,
            TUNED_NETWORK_LATENCY,
        ),
        Some(cur) => {
            let avail = sys
                .read_trim(&format!("{base}/available_clocksource"))
                .unwrap_or_default();
            CheckItem::new(
                id,
                if cur == "tsc" {
                    Status::Pass
                } else {
                    Status::Fail
                },
                format!("{cur} (available: {avail})"),
                "tsc",
                Fix::Runtime,
                TUNED_NETWORK_LATENCY,
            )
        }
    }
}

pub(super) fn swap(sys: &dyn SysSource) -> CheckItem {
    let id = "mm.swap";
    match sys.read("/proc/swaps") {
        None => CheckItem::new(
            id,
            Status::NotApplicable,
            "/proc/swaps absent",
            "no swap",
            Fix::Manual,
            KERNEL_DOCS,
        ),
        Some(text) => {
            let devs: Vec<&str> = text
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            if devs.is_empty() {
                CheckItem::new(id, Status::Pass, "off", "no swap", Fix::Manual, KERNEL_DOCS)
            } else {
                CheckItem::new(
                    id,
                    Status::Fail,
                    format!("on: {}", devs.join(" ")),
                    "no swap",
                    Fix::Manual,
                    KERNEL_DOCS,
                )
            }
        }
    }
}
