//! `tpx-tune apply`: what can be set at run time (sysctls, THP, hugepages, IRQ affinity,
//! governor, idle states, workqueue masks, clock source, ENA coalescing), computed from the
//! failed checks as a list of [`Action`]s; the boot parameters it cannot set are listed with
//! whether the running kernel already has them.

use crate::check::{
    deep_idle_states, nic_iface, offending_irqs, online_cpus, parse_cmdline, run_checks,
    sysctl_targets, CheckContext, Status, WORKQUEUE_MASKS,
};
use crate::cpuset::{format_list, format_mask};
use crate::sys::{SysSink, SysSource};
use std::collections::BTreeSet;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `value` to `path`.
    Write {
        /// The check item this fixes.
        item: String,
        /// A /proc or /sys file.
        path: String,
        /// What to write.
        value: String,
    },
    /// Run a command.
    Run {
        /// The check item this fixes.
        item: String,
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// Everything `apply` would do and tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyPlan {
    /// Run-time changes, in order.
    pub actions: Vec<Action>,
    /// Boot parameters the plan needs, with whether the running kernel has them already.
    pub boot_params: Vec<(String, bool)>,
    /// What must be done by hand.
    pub manual: Vec<String>,
}

/// Computes the changes for every FAIL item that can be fixed at run time. Pure.
pub fn plan_apply(sys: &dyn SysSource, ctx: &CheckContext) -> ApplyPlan {
    let items = run_checks(sys, ctx);
    let failed: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.status == Status::Fail)
        .map(|i| i.id.as_str())
        .collect();
    let mut out = ApplyPlan::default();
    let write = |out: &mut ApplyPlan, item: &str, path: String, value: String| {
        out.actions.push(Action::Write {
            item: item.to_string(),
            path,
            value,
        });
    };

    for (name, value) in sysctl_targets(sys, ctx) {
        let item = if name == "vm.nr_hugepages" {
            "mm.hugepages".to_string()
        } else {
            format!("sysctl.{name}")
        };
        if failed.contains(item.as_str()) {
            write(
                &mut out,
                &item,
                format!("/proc/sys/{}", name.replace('.', "/")),
                value,
            );
        }
    }
    if failed.contains("mm.transparent_hugepage") {
        write(
            &mut out,
            "mm.transparent_hugepage",
            "/sys/kernel/mm/transparent_hugepage/enabled".into(),
            "never".into(),
        );
    }
    let iso: BTreeSet<u32> = ctx.plan.isolated.iter().copied().collect();
    if failed.contains("irq.affinity") {
        let target = format_list(&ctx.plan.interrupt_cpus());
        for (irq, _) in offending_irqs(sys, &iso) {
            write(
                &mut out,
                "irq.affinity",
                format!("/proc/irq/{irq}/smp_affinity_list"),
                target.clone(),
            );
        }
        write(
            &mut out,
            "irq.affinity",
            "/proc/irq/default_smp_affinity".into(),
            format_mask(&ctx.plan.interrupt_cpus()),
        );
    }
    if failed.contains("cpu.governor") {
        for cpu in online_cpus(sys) {
            let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
            if sys.read_trim(&path).is_some_and(|g| g != "performance") {
                write(&mut out, "cpu.governor", path, "performance".into());
            }
        }
    }
    if failed.contains("cpu.cstates") {
        for (_, state_dir, _, _) in deep_idle_states(sys) {
            write(
                &mut out,
                "cpu.cstates",
                format!("{state_dir}/disable"),
                "1".into(),
            );
        }
    }
    let not_isolated: BTreeSet<u32> = online_cpus(sys).difference(&iso).copied().collect();
    for (id, path) in WORKQUEUE_MASKS {
        if failed.contains(id) && !not_isolated.is_empty() {
            write(&mut out, id, path.to_string(), format_mask(&not_isolated));
        }
    }
    if failed.contains("clock.source") {
        let avail = sys
            .read("/sys/devices/system/clocksource/clocksource0/available_clocksource")
            .unwrap_or_default();
        if avail.split_whitespace().any(|c| c == "tsc") {
            write(
                &mut out,
                "clock.source",
                "/sys/devices/system/clocksource/clocksource0/current_clocksource".into(),
                "tsc".into(),
            );
        } else {
            out.manual.push("clock.source: tsc is not an available clocksource here (tsc=reliable on the command line)".into());
        }
    }
    if ["nic.adaptive_rx", "nic.rx_usecs", "nic.tx_usecs"]
        .iter()
        .any(|i| failed.contains(i))
    {
        if let Some(iface) = nic_iface(sys, ctx) {
            let args = [
                "-C",
                iface.as_str(),
                "adaptive-rx",
                "off",
                "rx-usecs",
                "0",
                "tx-usecs",
                "0",
            ];
            out.actions.push(Action::Run {
                item: "nic.coalescing".into(),
                program: "ethtool".into(),
                args: args.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    if failed.contains("nic.ena_express") {
        out.manual.push(
            "nic.ena_express: turn ENA Express off on the ENI (aws ec2 modify-network-interface-attribute --ena-srd-specification EnaSrdEnabled=false)".into(),
        );
    }
    if failed.contains("mm.swap") {
        out.manual
            .push("mm.swap: run `swapoff -a` and remove swap from /etc/fstab".into());
    }
    if failed.contains("cpu.smt") {
        out.manual.push("cpu.smt: regenerate the core plan (siblings of hot CPUs must stay idle) or boot with nosmt".into());
    }
    for id in [
        "process.affinity",
        "process.sched_policy",
        "process.memlock",
    ] {
        if failed.contains(id) {
            out.manual.push(format!(
                "{id}: restart the process under its systemd unit (CPUAffinity from the plan, LimitMEMLOCK=infinity); the process pins its own threads"
            ));
        }
    }

    let cmdline = parse_cmdline(&sys.read("/proc/cmdline").unwrap_or_default());
    out.boot_params = ctx
        .plan
        .boot_params()
        .into_iter()
        .map(|p| {
            let have = match p.split_once('=') {
                Some((k, v)) => cmdline.get(k).map(String::as_str) == Some(v),
                None => cmdline.contains_key(&p),
            };
            (p, have)
        })
        .collect();
    out
}

/// Carries out the actions through `sink`; returns one line per action (done / failed).
pub fn execute(plan: &ApplyPlan, sink: &mut dyn SysSink) -> Vec<String> {
    let mut lines = Vec::new();
    for a in &plan.actions {
        let (desc, res) = match a {
            Action::Write { item, path, value } => (
                format!("[{item}] write {value} > {path}"),
                sink.write(path, value),
            ),
            Action::Run {
                item,
                program,
                args,
            } => (
                format!("[{item}] run {program} {}", args.join(" ")),
                sink.run(program, args),
            ),
        };
        lines.push(match res {
            Ok(()) => format!("done    {desc}"),
            Err(e) => format!("FAILED  {desc}: {e}"),
        });
    }
    lines
}

/// The report `apply` prints (after executing, or instead of it with `--dry-run`).
pub fn render(plan: &ApplyPlan, executed: Option<&[String]>) -> String {
    let mut out = String::new();
    match executed {
        None => {
            out.push_str(&format!(
                "dry run: {} run-time change(s) would be made\n",
                plan.actions.len()
            ));
            for a in &plan.actions {
                match a {
                    Action::Write { item, path, value } => {
                        out.push_str(&format!("would   [{item}] write {value} > {path}\n"))
                    }
                    Action::Run {
                        item,
                        program,
                        args,
                    } => out.push_str(&format!(
                        "would   [{item}] run {program} {}\n",
                        args.join(" ")
                    )),
                }
            }
        }
        Some(lines) => {
            out.push_str(&format!("{} run-time change(s)\n", lines.len()));
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    let missing: Vec<&str> = plan
        .boot_params
        .iter()
        .filter(|(_, have)| !have)
        .map(|(p, _)| p.as_str())
        .collect();
    out.push_str(
        "boot parameters (cannot be set at run time; add to GRUB_CMDLINE_LINUX and reboot):\n",
    );
    out.push_str(&format!(
        "  {}\n",
        plan.boot_params
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    if missing.is_empty() {
        out.push_str("  the running kernel has all of them\n");
    } else {
        out.push_str(&format!(
            "  missing from the running kernel: {}\n",
            missing.join(" ")
        ));
    }
    for m in &plan.manual {
        out.push_str(&format!("manual: {m}\n"));
    }
    out
}
