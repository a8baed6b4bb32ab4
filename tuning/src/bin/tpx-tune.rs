//! `tpx-tune`: plan CPU placement, check and apply low-latency host tuning.
//!
//! ```text
//! tpx-tune plan   [--role node|feed|witness] [--shards N] [--sessions N] [--nic IF] [--out FILE]
//! tpx-tune check  [--plan FILE] [--pid PID] [--iface IF] [--json]
//! tpx-tune apply  [--plan FILE] [--dry-run]
//! tpx-tune render sysctl|tmpfiles|cmdline|affinity|irqbalance|tuned [--plan FILE] [--unit ROLE]
//! tpx-tune topology
//! ```

use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tpx_tuning::check::{self, CheckContext, DEFAULT_MIN_HUGEPAGES};
use tpx_tuning::sys::{RealSink, RealSys, RecordingSink};
use tpx_tuning::{
    apply, hw, render, CorePlan, HostRole, HostTopology, PlanRequest, SchedPolicy,
    DEFAULT_PLAN_PATH,
};

#[derive(Parser, Debug)]
#[command(
    name = "tpx-tune",
    version,
    about = "tpx host topology, core plan and low-latency tuning"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Node,
    Feed,
    Witness,
}

impl From<RoleArg> for HostRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Node => HostRole::Node,
            RoleArg::Feed => HostRole::Feed,
            RoleArg::Witness => HostRole::Witness,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PolicyArg {
    Other,
    Fifo,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RenderArg {
    Sysctl,
    Tmpfiles,
    Cmdline,
    Affinity,
    Irqbalance,
    Tuned,
}

#[derive(clap::Args, Debug)]
struct PlanSource {
    /// The core plan to check against [default: /etc/tpx/core-plan.toml if present, else one
    /// computed from this host's topology].
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Host role used when the plan is computed.
    #[arg(long, value_enum, default_value = "node")]
    role: RoleArg,
    /// Hugepages (2 MiB) a tuned host reserves.
    #[arg(long, default_value_t = DEFAULT_MIN_HUGEPAGES)]
    hugepages: u64,
    /// NIC to check [default: the plan's, else the default-route interface].
    #[arg(long)]
    iface: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Read the topology and write the core plan (TOML) to stdout or --out.
    Plan {
        /// What the host runs.
        #[arg(long, value_enum, default_value = "node")]
        role: RoleArg,
        /// Number of shards [default: fill the NIC's NUMA node].
        #[arg(long)]
        shards: Option<u32>,
        /// Number of session threads [default: a quarter of the hot cores].
        #[arg(long)]
        sessions: Option<u32>,
        /// NIC to follow [default: the default-route interface].
        #[arg(long)]
        nic: Option<String>,
        /// Scheduling policy of threads that own their CPU.
        #[arg(long, value_enum, default_value = "other")]
        hot_policy: PolicyArg,
        /// SCHED_FIFO priority with --hot-policy fifo.
        #[arg(long, default_value_t = 50)]
        hot_priority: u8,
        /// Plan from a topology JSON file (`tpx-tune topology` output) instead of this host.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Write the plan here (only if it changed); prints `written` or `unchanged`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No summary on stderr.
        #[arg(long)]
        quiet: bool,
    },
    /// Report PASS / FAIL / N/A for every tuning item, with the value read. Exit 1 on any FAIL.
    Check {
        #[command(flatten)]
        src: PlanSource,
        /// Also check a running tpx process: thread affinity, scheduling policy, memlock.
        #[arg(long)]
        pid: Option<u32>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Set what can be set at run time for the failed items; print the boot parameters.
    Apply {
        #[command(flatten)]
        src: PlanSource,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the persistent form of the tuning (for Ansible).
    Render {
        /// What to print.
        #[arg(value_enum)]
        what: RenderArg,
        #[command(flatten)]
        src: PlanSource,
        /// For `affinity`: the kind of unit (witness units get housekeeping CPUs only).
        #[arg(long, value_enum, default_value = "node")]
        unit: RoleArg,
    },
    /// Print this host's topology as JSON (input for `plan --topology`).
    Topology,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tpx-tune: {msg}");
    ExitCode::from(2)
}

fn live_topology() -> Result<(HostTopology, Vec<String>), String> {
    hw::read_host_topology(&RealSys)
}

/// The plan to check against, and a word on where it came from.
fn resolve_plan(src: &PlanSource) -> Result<(CorePlan, String), String> {
    if let Some(p) = &src.plan {
        return CorePlan::load(p)
            .map(|plan| (plan, p.display().to_string()))
            .map_err(|e| e.to_string());
    }
    let default = Path::new(DEFAULT_PLAN_PATH);
    if default.exists() {
        return CorePlan::load(default)
            .map(|plan| (plan, DEFAULT_PLAN_PATH.to_string()))
            .map_err(|e| e.to_string());
    }
    let (topo, _) = live_topology()?;
    let req = PlanRequest {
        role: src.role.into(),
        ..PlanRequest::default()
    };
    let plan = tpx_tuning::plan(&topo, &req).map_err(|e| e.to_string())?;
    Ok((
        plan,
        "computed from this host's topology (no plan file)".to_string(),
    ))
}

fn context(src: &PlanSource, plan: CorePlan) -> CheckContext {
    let mut ctx = CheckContext::new(plan);
    ctx.iface = src.iface.clone();
    ctx.min_hugepages = src.hugepages;
    ctx
}

/// Writes `contents` to `path` only if it differs; atomic (temp file + rename).
fn write_if_changed(path: &Path, contents: &str) -> std::io::Result<bool> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Plan {
            role,
            shards,
            sessions,
            nic,
            hot_policy,
            hot_priority,
            topology,
            out,
            quiet,
        } => {
            let (topo, read_notes) = match &topology {
                Some(path) => {
                    let parsed = std::fs::read_to_string(path)
                        .map_err(|e| e.to_string())
                        .and_then(|t| {
                            serde_json::from_str::<HostTopology>(&t).map_err(|e| e.to_string())
                        });
                    match parsed {
                        Ok(t) => (t, Vec::new()),
                        Err(e) => return fail(format!("{}: {e}", path.display())),
                    }
                }
                None => match live_topology() {
                    Ok(t) => t,
                    Err(e) => return fail(e),
                },
            };
            let req = PlanRequest {
                role: role.into(),
                shards,
                sessions,
                nic,
                hot_policy: match hot_policy {
                    PolicyArg::Other => SchedPolicy::Other,
                    PolicyArg::Fifo => SchedPolicy::Fifo,
                },
                hot_priority,
            };
            let mut plan = match tpx_tuning::plan(&topo, &req) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            plan.notes.extend(read_notes);
            if !quiet {
                eprint!("{}", plan.summary());
            }
            let text = plan.to_toml_string();
            match out {
                None => print!("{text}"),
                Some(path) => match write_if_changed(&path, &text) {
                    Ok(true) => println!("core plan written: {}", path.display()),
                    Ok(false) => println!("core plan unchanged: {}", path.display()),
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
            }
            ExitCode::SUCCESS
        }
        Cmd::Check { src, pid, json } => {
            let (plan, from) = match resolve_plan(&src) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let mut ctx = context(&src, plan);
            ctx.pid = pid;
            let items = check::run_checks(&RealSys, &ctx);
            if json {
                println!("{}", check::render_json(&items, &from));
            } else {
                println!(
                    "plan: {from}{}",
                    if ctx.plan.degraded { " (DEGRADED)" } else { "" }
                );
                print!("{}", check::render_human(&items));
            }
            let (_, failed, _) = check::tally(&items);
            if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Cmd::Apply { src, dry_run } => {
            let (plan, from) = match resolve_plan(&src) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let ctx = context(&src, plan);
            let todo = apply::plan_apply(&RealSys, &ctx);
            println!("plan: {from}");
            if dry_run {
                let mut sink = RecordingSink::default();
                let _ = apply::execute(&todo, &mut sink);
                print!("{}", apply::render(&todo, None));
                ExitCode::SUCCESS
            } else {
                let lines = apply::execute(&todo, &mut RealSink);
                print!("{}", apply::render(&todo, Some(&lines)));
                if lines.iter().any(|l| l.starts_with("FAILED")) {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
        }
        Cmd::Render { what, src, unit } => {
            let (plan, _) = match resolve_plan(&src) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let ctx = context(&src, plan);
            let what = match what {
                RenderArg::Sysctl => render::What::Sysctl,
                RenderArg::Tmpfiles => render::What::Tmpfiles,
                RenderArg::Cmdline => render::What::Cmdline,
                RenderArg::Affinity => render::What::Affinity(unit.into()),
                RenderArg::Irqbalance => render::What::Irqbalance,
                RenderArg::Tuned => render::What::Tuned,
            };
            print!("{}", render::render(&RealSys, &ctx, what));
            ExitCode::SUCCESS
        }
        Cmd::Topology => match live_topology() {
            Ok((topo, _)) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&topo).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}
