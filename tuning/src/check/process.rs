//! Items for a running tpx process (`--pid`): its threads' CPU affinity and scheduling policy
//! against the plan, and its memlock limit.

use super::source::*;
use super::{CheckContext, CheckItem, Fix, Status};
use crate::cpuset::{format_list, parse_list};
use crate::plan::{Role, ThreadPlacement};
use crate::sys::SysSource;
use std::collections::BTreeSet;

/// One thread of a process, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Thread id.
    pub tid: u32,
    /// `comm` (the thread name).
    pub name: String,
    /// `Cpus_allowed_list`.
    pub cpus: BTreeSet<u32>,
    /// Scheduling policy (0 other, 1 fifo, 2 rr, 3 batch, 5 idle).
    pub policy: u32,
    /// Real-time priority.
    pub rt_priority: u32,
}

fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Policy and rt_priority from `/proc/PID/task/TID/stat` (fields 41 and 40; the name in
/// parentheses may hold spaces, so fields are counted from the last `)`).
fn sched_of(stat: &str) -> Option<(u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    Some((f.get(38)?.parse().ok()?, f.get(37)?.parse().ok()?))
}

/// The threads of `pid`; `None` when the process does not exist.
pub fn read_threads(sys: &dyn SysSource, pid: u32) -> Option<Vec<ThreadInfo>> {
    let tids = sys.list(&format!("/proc/{pid}/task"))?;
    let mut out = Vec::new();
    for tid in tids {
        let Ok(tid) = tid.parse::<u32>() else {
            continue;
        };
        let base = format!("/proc/{pid}/task/{tid}");
        let Some(status) = sys.read(&format!("{base}/status")) else {
            continue;
        };
        let name = sys
            .read_trim(&format!("{base}/comm"))
            .or_else(|| status_field(&status, "Name"))
            .unwrap_or_default();
        let cpus = status_field(&status, "Cpus_allowed_list")
            .and_then(|l| parse_list(&l).ok())
            .unwrap_or_default();
        let (policy, rt_priority) = sys
            .read(&format!("{base}/stat"))
            .as_deref()
            .and_then(sched_of)
            .unwrap_or((0, 0));
        out.push(ThreadInfo {
            tid,
            name,
            cpus,
            policy,
            rt_priority,
        });
    }
    Some(out)
}

fn policy_name(p: u32) -> &'static str {
    match p {
        0 => "other",
        1 => "fifo",
        2 => "rr",
        3 => "batch",
        5 => "idle",
        6 => "deadline",
        _ => "?",
    }
}

/// The planned node thread (shard, session, sequencer) on the same CPU as `t` that the process
/// runs `t`'s role on: found by name and pinned to that CPU alone.
fn merged_into<'a>(
    plan: &crate::plan::CorePlan,
    t: &ThreadPlacement,
    threads: &'a [ThreadInfo],
) -> Option<&'a str> {
    let name = t.thread_name();
    plan.threads
        .iter()
        .filter(|o| {
            o.cpu == t.cpu
                && o.thread_name() != name
                && matches!(o.role, Role::Shard | Role::Session | Role::Sequencer)
        })
        .find_map(|o| {
            threads
                .iter()
                .find(|th| th.name == o.thread_name() && th.cpus == BTreeSet::from([t.cpu]))
        })
        .map(|th| th.name.as_str())
}

pub(super) fn process_items(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let ids = [
        ("process.affinity", Fix::Manual),
        ("process.sched_policy", Fix::Manual),
        ("process.memlock", Fix::Manual),
    ];
    let Some(pid) = ctx.pid else {
        return ids
            .iter()
            .map(|(id, fix)| {
                CheckItem::new(
                    id,
                    Status::NotApplicable,
                    "no --pid given",
                    "see --pid",
                    *fix,
                    CORE_PLAN,
                )
            })
            .collect();
    };
    let Some(threads) = read_threads(sys, pid) else {
        return ids
            .iter()
            .map(|(id, fix)| {
                CheckItem::new(
                    id,
                    Status::Fail,
                    format!("process {pid} not found"),
                    "a running tpx process",
                    *fix,
                    CORE_PLAN,
                )
            })
            .collect();
    };
    let plan = &ctx.plan;
    let allowed = plan.process_cpus();
    let mut items = Vec::new();

    // Affinity: each planned thread alone on its CPU; every other thread inside the process CPUs.
    let mut problems = Vec::new();
    let mut shown = Vec::new();
    for t in &plan.threads {
        let name = t.thread_name();
        match threads.iter().find(|th| th.name == name) {
            // The media driver may run in another process (tpx-md, aeronmd): not a fault of
            // this one, but said.
            None if t.role == Role::MediaDriver => {
                shown.push(format!("{name} not in this process"))
            }
            None => match merged_into(plan, t, &threads) {
                // `tpx node` runs the roles that share a CPU on one thread, named after its
                // first shard, else the sequencer, else its gateway (a degraded plan puts the
                // sessions on the sequencer's CPU): found there, pinned alone, is as planned.
                Some(host) => shown.push(format!("{name}(in {host})@{}", t.cpu)),
                None => problems.push(format!("{name} missing")),
            },
            Some(th) => {
                shown.push(format!("{name}@{}", format_list(&th.cpus)));
                if th.cpus != BTreeSet::from([t.cpu]) {
                    problems.push(format!(
                        "{name} on {} (plan: {})",
                        format_list(&th.cpus),
                        t.cpu
                    ));
                }
            }
        }
    }
    let planned: BTreeSet<String> = plan.threads.iter().map(|t| t.thread_name()).collect();
    for th in threads.iter().filter(|th| !planned.contains(&th.name)) {
        shown.push(format!("{}[{}]@{}", th.name, th.tid, format_list(&th.cpus)));
        if !th.cpus.is_subset(&allowed) {
            problems.push(format!(
                "{}[{}] may run on {}",
                th.name,
                th.tid,
                format_list(&th.cpus)
            ));
        }
    }
    let mut value = shown.join(" ");
    if !problems.is_empty() {
        value = format!("{}; {value}", problems.join("; "));
    }
    items.push(CheckItem::new(
        "process.affinity",
        if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        value,
        format!(
            "planned threads pinned as planned, others within {}",
            format_list(&allowed)
        ),
        Fix::Manual,
        CORE_PLAN,
    ));

    // Scheduling policy of the planned threads.
    let mut found = 0;
    let mut wrong = Vec::new();
    let mut shown = Vec::new();
    for t in &plan.threads {
        if let Some(th) = threads.iter().find(|th| th.name == t.thread_name()) {
            found += 1;
            shown.push(format!(
                "{} {}/{}",
                th.name,
                policy_name(th.policy),
                th.rt_priority
            ));
            if th.policy != t.policy.kernel_value()
                || (th.policy == 1 && th.rt_priority != u32::from(t.priority))
            {
                wrong.push(th.name.clone());
            }
        }
    }
    items.push(if found == 0 {
        let main = threads.first().map_or(String::new(), |m| {
            format!("; main thread {} {}", m.name, policy_name(m.policy))
        });
        CheckItem::new(
            "process.sched_policy",
            Status::Fail,
            format!("no planned thread found{main}"),
            "as planned",
            Fix::Manual,
            CORE_PLAN,
        )
    } else {
        CheckItem::new(
            "process.sched_policy",
            if wrong.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            shown.join(", "),
            "as planned",
            Fix::Manual,
            CORE_PLAN,
        )
    });

    let limit = sys.read(&format!("/proc/{pid}/limits")).and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("Max locked memory"))
            .map(|l| {
                let f: Vec<&str> = l["Max locked memory".len()..].split_whitespace().collect();
                (
                    f.first().map(|s| s.to_string()).unwrap_or_default(),
                    f.get(1).map(|s| s.to_string()).unwrap_or_default(),
                )
            })
    });
    items.push(match limit {
        None => CheckItem::new(
            "process.memlock",
            Status::Fail,
            "limits unreadable",
            "unlimited",
            Fix::Manual,
            CORE_PLAN,
        ),
        Some((soft, hard)) => CheckItem::new(
            "process.memlock",
            if soft == "unlimited" {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("soft {soft}, hard {hard}"),
            "unlimited (LimitMEMLOCK=infinity)",
            Fix::Manual,
            CORE_PLAN,
        ),
    });
    items
}
