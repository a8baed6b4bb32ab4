//! `tpx-tune check`: one [`CheckItem`] per tuning item, PASS / FAIL / N/A with the value read.
//!
//! Every check is a pure function of a [`SysSource`] (what /proc, /sys and ethtool say) and a
//! [`CheckContext`] (the core plan and options), so tests run them on fixtures. Rules for the
//! status: PASS only when the thing is present and right; FAIL when it is present and wrong
//! (a kernel parameter this kernel supports but the command line does not set counts as
//! present and wrong); N/A when the thing does not exist here (no cpufreq, SMT control
//! "notsupported", a NIC that is not ENA, no isolated CPU in the plan, no `--pid`).

mod kernel;
mod nic;
mod process;

pub use kernel::{
    deep_idle_states, meminfo, offending_irqs, online_cpus, parse_cmdline, sysctl_targets,
    MAX_IDLE_LATENCY_US, MIN_FREE_PCT_MAX, MIN_FREE_PCT_MIN, WORKQUEUE_MASKS,
};
pub use nic::{nic_iface, parse_coalesce, NIC_ITEMS};
pub use process::{read_threads, ThreadInfo};

use crate::plan::CorePlan;
use crate::sys::SysSource;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an item's recommendation comes from; `docs/OPERATIONS.md` has the full references.
pub mod source {
    /// tuned's `network-latency` profile.
    pub const TUNED_NETWORK_LATENCY: &str = "tuned network-latency";
    /// tuned's `cpu-partitioning` profile.
    pub const TUNED_CPU_PARTITIONING: &str = "tuned cpu-partitioning";
    /// tuned's `latency-performance` profile (included by `network-latency`).
    pub const TUNED_LATENCY_PERFORMANCE: &str = "tuned latency-performance (via network-latency)";
    /// AWS's ENA Linux best-practices guide (amzn-drivers, ENA_Linux_Best_Practices.rst).
    pub const ENA_BEST_PRACTICES: &str = "AWS ENA Linux best practices";
    /// AWS's ENA Express documentation (`ena_srd_mode`).
    pub const ENA_EXPRESS: &str = "AWS EC2 ENA Express guide";
    /// The kernel's admin guide (kernel-parameters, sched-rt-group, hugetlbpage).
    pub const KERNEL_DOCS: &str = "Linux kernel admin-guide";
    /// The tpx core plan itself.
    pub const CORE_PLAN: &str = "tpx core plan";
}

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Present and right.
    #[serde(rename = "PASS")]
    Pass,
    /// Present and wrong (or required and missing).
    #[serde(rename = "FAIL")]
    Fail,
    /// Not present on this host, or not relevant to this plan.
    #[serde(rename = "N/A")]
    NotApplicable,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::NotApplicable => "N/A",
        })
    }
}

/// How an item is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fix {
    /// `tpx-tune apply` sets it at run time.
    Runtime,
    /// A kernel command-line parameter: GRUB, then reboot.
    Boot,
    /// By hand or outside the host (AWS API, BIOS, the service unit).
    Manual,
}

/// One checked item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    /// Stable identifier (`sysctl.net.core.busy_poll`).
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// What was read (`"(absent)"` when nothing was there).
    pub value: String,
    /// What a tuned host has.
    pub expected: String,
    /// How it is fixed.
    pub fix: Fix,
    /// Where the recommendation comes from.
    pub source: String,
}

impl CheckItem {
    /// Builds an item.
    pub fn new(
        id: &str,
        status: Status,
        value: impl Into<String>,
        expected: impl Into<String>,
        fix: Fix,
        source: &str,
    ) -> Self {
        CheckItem {
            id: id.to_string(),
            status,
            value: value.into(),
            expected: expected.into(),
            fix,
            source: source.to_string(),
        }
    }
}

/// What the checks compare against.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The core plan of this host.
    pub plan: CorePlan,
    /// The NIC to check; `None`: the plan's, else the default-route interface.
    pub iface: Option<String>,
    /// A running tpx process to check (`--pid`).
    pub pid: Option<u32>,
    /// Hugepages a tuned host reserves (2 MiB pages).
    pub min_hugepages: u64,
}

/// The default hugepage reservation: 1 GiB of 2 MiB pages.
pub const DEFAULT_MIN_HUGEPAGES: u64 = 512;

impl CheckContext {
    /// A context for `plan` with default options.
    pub fn new(plan: CorePlan) -> Self {
        CheckContext {
            plan,
            iface: None,
            pid: None,
            min_hugepages: DEFAULT_MIN_HUGEPAGES,
        }
    }
}

/// Runs every check, in a fixed order.
pub fn run_checks(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let mut items = Vec::new();
    items.extend(kernel::cmdline_items(sys, ctx));
    items.push(kernel::irq_affinity(sys, ctx));
    items.push(kernel::thp(sys));
    items.push(kernel::hugepages(sys, ctx));
    items.extend(kernel::sysctl_items(sys, ctx));
    items.push(kernel::governor(sys));
    items.push(kernel::cstates(sys));
    items.push(kernel::smt(sys, ctx));
    items.extend(kernel::workqueue_items(sys, ctx));
    items.push(kernel::clocksource(sys));
    items.push(kernel::swap(sys));
    items.extend(nic::nic_items(sys, ctx));
    items.extend(process::process_items(sys, ctx));
    items
}

/// Counts of each status.
pub fn tally(items: &[CheckItem]) -> (usize, usize, usize) {
    let count = |s: Status| items.iter().filter(|i| i.status == s).count();
    (
        count(Status::Pass),
        count(Status::Fail),
        count(Status::NotApplicable),
    )
}

/// The human report: one line per item, then a tally.
pub fn render_human(items: &[CheckItem]) -> String {
    let width = items.iter().map(|i| i.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for i in items {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}",
            i.status.to_string(),
            i.id,
            i.value
        ));
        if i.status == Status::Fail {
            out.push_str(&format!(
                "   (want {}; fix: {})",
                i.expected,
                fix_word(i.fix)
            ));
        }
        out.push('\n');
    }
    let (p, f, n) = tally(items);
    out.push_str(&format!("{p} PASS, {f} FAIL, {n} N/A\n"));
    out
}

fn fix_word(fix: Fix) -> &'static str {
    match fix {
        Fix::Runtime => "tpx-tune apply",
        Fix::Boot => "boot parameter",
        Fix::Manual => "manual",
    }
}

/// Counts in the JSON report.
#[derive(Debug, Serialize)]
struct Summary {
    pass: usize,
    fail: usize,
    na: usize,
}

/// The JSON report document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    plan: &'a str,
    summary: Summary,
    items: &'a [CheckItem],
}

/// The JSON report: `{"plan", "summary": {"pass", "fail", "na"}, "items": [...]}`, each item's
/// keys in the order of [`CheckItem`].
pub fn render_json(items: &[CheckItem], plan_source: &str) -> String {
    let (pass, fail, na) = tally(items);
    let doc = Report {
        plan: plan_source,
        summary: Summary { pass, fail, na },
        items,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
