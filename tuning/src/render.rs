//! `tpx-tune render`: the persistent form of the tuning, as file contents the Ansible role
//! installs (so the role and `apply` share one source of truth): `/etc/sysctl.d/` lines,
//! `/etc/tmpfiles.d/` lines (systemd-tmpfiles writes /sys at boot), the kernel command line,
//! the systemd `CPUAffinity=` value, and the irqbalance ban list.

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
