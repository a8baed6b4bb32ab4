//! `tpx-tune render`: the persistent form of the tuning, as file contents the Ansible role
//! installs (so the role and `apply` share one source of truth): `/etc/sysctl.d/` lines,
//! `/etc/tmpfiles.d/` lines (systemd-tmpfiles writes /sys at boot), the kernel command line,
//! the systemd `CPUAffinity=` value, the irqbalance ban list, and the same tuning as a tuned
//! profile (`/etc/tuned/tpx/tuned.conf`) for hosts that run tuned.

use crate::check::{online_cpus, sysctl_targets, CheckContext, WORKQUEUE_MASKS};
use crate::cpuset::{format_list, format_mask};
use crate::plan::HostRole;
use crate::sys::SysSource;
use std::collections::BTreeSet;

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// `/etc/sysctl.d/90-tpx.conf`.
    Sysctl,
    /// `/etc/tmpfiles.d/tpx-tuning.conf`.
    Tmpfiles,
    /// Kernel command-line parameters, one line.
    Cmdline,
    /// `CPUAffinity=` for a unit of the given kind.
    Affinity(HostRole),
    /// `/etc/default/irqbalance` lines.
    Irqbalance,
    /// `/etc/tuned/tpx/tuned.conf`: `include=cpu-partitioning` with the plan's isolated CPUs,
    /// plus the network-latency items tpx checks (sysctls, THP, governor, C-states, the rest of
    /// the boot parameters).
    Tuned,
}

const HEADER: &str = "# Written by tpx-tune render from the core plan; see docs/OPERATIONS.md.\n";

/// Renders `what` for this host.
pub fn render(sys: &dyn SysSource, ctx: &CheckContext, what: What) -> String {
    let plan = &ctx.plan;
    let iso: BTreeSet<u32> = plan.isolated.iter().copied().collect();
    match what {
        What::Sysctl => {
            let mut out = HEADER.to_string();
            for (name, value) in sysctl_targets(sys, ctx) {
                out.push_str(&format!("{name} = {value}\n"));
            }
            out
        }
        What::Tmpfiles => {
            let mut out = HEADER.to_string();
            out.push_str("w /sys/kernel/mm/transparent_hugepage/enabled - - - - never\n");
            out.push_str("w /sys/kernel/mm/transparent_hugepage/defrag - - - - never\n");
            if sys
                .read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
                .is_some()
            {
                out.push_str(
                    "w /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor - - - - performance\n",
                );
            }
            let keep: BTreeSet<u32> = online_cpus(sys).difference(&iso).copied().collect();
            if !iso.is_empty() && !keep.is_empty() {
                for (_, path) in WORKQUEUE_MASKS {
                    out.push_str(&format!("w {path} - - - - {}\n", format_mask(&keep)));
                }
                out.push_str(&format!(
                    "w /proc/irq/default_smp_affinity - - - - {}\n",
                    format_mask(&plan.interrupt_cpus())
                ));
            }
            out
        }
        What::Cmdline => format!("{}\n", plan.boot_params().join(" ")),
        What::Affinity(HostRole::Witness) => format!("{}\n", format_list(&plan.housekeeping)),
        What::Affinity(_) => format!("{}\n", format_list(&plan.process_cpus())),
        What::Tuned => tuned_profile(sys, ctx, &iso),
        What::Irqbalance => {
            let mut out = HEADER.to_string();
            if !iso.is_empty() {
                out.push_str(&format!(
                    "IRQBALANCE_BANNED_CPULIST={}\n",
                    format_list(&iso)
                ));
            }
            out
        }
    }
}

/// Boot parameters cpu-partitioning already writes for `isolated_cores` (its `[bootloader]`
/// cmdline), left out of the profile's own. Its `isolcpus` comes only from `no_balance_cores`,
/// which the profile leaves unset: the plan's `isolcpus=managed_irq,domain,...` stays ours.
pub const CPU_PARTITIONING_PARAMS: &[&str] = &["nohz=", "nohz_full=", "rcu_nocbs=", "nosoftlockup"];

fn tuned_profile(sys: &dyn SysSource, ctx: &CheckContext, iso: &BTreeSet<u32>) -> String {
    let plan = &ctx.plan;
    let mut out = HEADER.to_string();
    out.push_str(
        "# tuned profile: tuned-adm profile tpx. `tpx-tune check` verifies the result.\n\
         [main]\n\
         summary=tpx: cpu-partitioning on the core plan's isolated CPUs, plus network-latency items\n",
    );
    if iso.is_empty() {
        // No CPU to isolate (a small host): network-latency alone.
        out.push_str("include=network-latency\n");
    } else {
        out.push_str("include=cpu-partitioning\n\n[variables]\n");
        out.push_str(&format!("isolated_cores={}\n", format_list(iso)));
    }
    out.push_str("\n[cpu]\ngovernor=performance\nforce_latency=1\n");
    out.push_str("\n[vm]\ntransparent_hugepages=never\n");
    out.push_str("\n[sysctl]\n");
    for (name, value) in sysctl_targets(sys, ctx) {
        out.push_str(&format!("{name}={value}\n"));
    }
    let extra: Vec<String> = plan
        .boot_params()
        .into_iter()
        .filter(|p| !CPU_PARTITIONING_PARAMS.iter().any(|c| p.starts_with(c)) || iso.is_empty())
        .collect();
    out.push_str(&format!(
        "\n[bootloader]\ncmdline_tpx={}\n",
        extra.join(" ")
    ));
    out
}
