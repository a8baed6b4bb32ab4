//! Faults, drawn from a seed: SIGKILL (silent: every packet of the victim's namespace is
//! dropped from the same instant), SIGSTOP/SIGCONT, partitions (one-way and two-way, as
//! nftables rules inside the namespaces), packet loss, a slow link (a token bucket: `tc netem`
//! is not in this kernel), a slow disk (a node's writes throttled: `disk.rs`), a witness
//! restart and a misconfigured standby.

use std::time::Duration;

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::cluster::Cluster;
use super::topology::Host;

/// Which process a fault hits, resolved when it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Primary,
    Standby,
    Witness,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, down for `down`, restarted (a node as standby).
    Kill(Target),
    /// SIGTERM and restart of the witness (its state file survives).
    RestartWitness,
    /// SIGSTOP for the duration, then SIGCONT.
    Pause(Target),
    /// Packets from `from` to `to` dropped (and back too if `both`).
    Partition {
        from: Target,
        to: Target,
        both: bool,
    },
    /// The clients cannot reach (both ways) this node.
    ClientPartition(Target),
    /// `pct`% of the packets a node receives are dropped.
    Loss { at: Target, pct: u32 },
    /// A node's outgoing link shaped to `kbit`.
    SlowLink { at: Target, kbit: u32 },
    /// A node's disk writes throttled to `iops` operations (and 16 KiB each) a second.
    SlowDisk { at: Target, iops: u32 },
    /// The standby restarted with a configuration that differs in what primary and standby
    /// must share (`max_accounts`, part of the config digest): it must not join, nor take the
    /// term, even when the primary dies meanwhile (`primary_dies`: SIGKILLed, silently, half
    /// way through); healed by restarting it with the right configuration (and the primary).
    MisconfiguredStandby { primary_dies: bool },
}

impl Fault {
    /// The kind's name in the report.
    pub fn kind(&self) -> String {
        let t = |t: &Target| match t {
            Target::Primary => "primary",
            Target::Standby => "standby",
            Target::Witness => "witness",
        };
        match self {
            Fault::Kill(x) => format!("kill_{}", t(x)),
            Fault::RestartWitness => "restart_witness".into(),
            Fault::Pause(x) => format!("pause_{}", t(x)),
            Fault::Partition { from, to, both } => format!(
                "partition_{}_{}_{}",
                t(from),
                t(to),
                if *both { "2way" } else { "1way" }
            ),
            Fault::ClientPartition(x) => format!("partition_clients_{}", t(x)),
            Fault::Loss { at, .. } => format!("loss_{}", t(at)),
            Fault::SlowLink { at, .. } => format!("slow_link_{}", t(at)),
            Fault::SlowDisk { at, .. } => format!("slow_disk_{}", t(at)),
            Fault::MisconfiguredStandby { primary_dies } => if *primary_dies {
                "misconfigured_standby_primary_dies"
            } else {
                "misconfigured_standby"
            }
            .into(),
        }
    }

    /// Draws the next fault.
    pub fn draw(rng: &mut Xoshiro256PlusPlus, kills_only: bool) -> Fault {
        use Target::*;
        let node = |rng: &mut Xoshiro256PlusPlus| {
            if rng.gen_bool(0.6) {
                Primary
            } else {
                Standby
            }
        };
        if kills_only {
            return Fault::Kill([Primary, Primary, Standby, Witness][rng.gen_range(0..4)]);
        }
        match rng.gen_range(0..100) {
            0..=14 => Fault::Kill(Primary),
            15..=21 => Fault::Kill(Standby),
            22..=27 => Fault::Kill(Witness),
            28..=31 => Fault::RestartWitness,
            32..=46 => Fault::Pause(Primary),
            47..=53 => Fault::Pause(Standby),
            54..=57 => Fault::Pause(Witness),
            58..=67 => Fault::Partition {
                from: Primary,
                to: Standby,
                both: rng.gen_bool(0.5),
            },
            68..=69 => Fault::Partition {
                from: Standby,
                to: Primary,
                both: false,
            },
            70..=79 => {
                let n = node(rng);
                let (from, to) = if rng.gen_bool(0.5) {
                    (n, Witness)
                } else {
                    (Witness, n)
                };
                Fault::Partition {
                    from,
                    to,
                    both: rng.gen_bool(0.5),
                }
            }
            80..=86 => Fault::ClientPartition(node(rng)),
            87..=92 => Fault::Loss {
                at: node(rng),
                pct: rng.gen_range(10..=50),
            },
            93..=94 => Fault::MisconfiguredStandby {
                primary_dies: rng.gen_bool(0.5),
            },
            95..=96 => Fault::SlowLink {
                at: node(rng),
                kbit: [64, 256, 1024][rng.gen_range(0..3)],
            },
            _ => Fault::SlowDisk {
                at: node(rng),
                iops: [5, 20, 100][rng.gen_range(0..3)],
            },
        }
    }
}

/// Resolves a target to a host now (a node target needs a known primary; `None` otherwise).
pub fn host_of(c: &Cluster, t: Target) -> Option<Host> {
    match t {
        Target::Witness => Some(Host::Witness),
        Target::Primary => c.primary().map(Host::Node),
        Target::Standby => c.primary().map(|p| Host::Node(1 - p)),
    }
}

/// A fault in force: what undoes it.
#[derive(Debug)]
pub enum Applied {
    /// Restart this host (after clearing its drop rules).
    Restart(Host),
    Resume(Host),
    ClearRules(Vec<Host>),
    ClearShaper(Host),
    /// Lift node `k`'s disk throttle.
    Unthrottle(usize),
    /// Restart the misconfigured standby with its configuration, and the primary if it was
    /// killed (see [`kill_silently`]).
    Misconfigured {
        standby: Host,
        primary: Option<Host>,
    },
    Nothing,
}

/// SIGKILL with a drop rule at the same instant (no RST, no FIN: the death is silent).
pub fn kill_silently(c: &mut Cluster, h: Host) -> Result<(), String> {
    c.topo
        .set_rules(h, &[("input", "drop".into()), ("output", "drop".into())])?;
    c.kill(h);
    Ok(())
}

/// Applies `f`; returns what undoes it and a description.
pub fn apply(c: &mut Cluster, f: Fault) -> Result<(Applied, String), String> {
    let topo_rules = |c: &Cluster, h: Host, rules: &[(&str, String)]| c.topo.set_rules(h, rules);
    let need = |t: Target| host_of(c, t).ok_or_else(|| "no primary known".to_string());
    Ok(match f {
        Fault::Kill(t) => {
            let h = need(t)?;
            // Silent: nothing leaves or enters the namespace from this instant (no RST, no FIN).
            kill_silently(c, h)?;
            (Applied::Restart(h), format!("SIGKILL {}", h.name()))
        }
        Fault::RestartWitness => {
            if let Some(p) = c.proc_mut(Host::Witness) {
                p.stop(Duration::from_secs(2));
            }
            c.kill(Host::Witness);
            c.start(Host::Witness, false)?;
            (Applied::Nothing, "witness restarted (SIGTERM)".into())
        }
        Fault::Pause(t) => {
            let h = need(t)?;
            let p = c.proc_mut(h).ok_or("target down")?;
            p.signal(libc::SIGSTOP);
            (Applied::Resume(h), format!("SIGSTOP {}", h.name()))
        }
        Fault::Partition { from, to, both } => {
            let (a, b) = (need(from)?, need(to)?);
            if !c.topo.netns {
                return Err("no namespaces".into());
            }
            topo_rules(c, b, &[("input", format!("ip saddr {} drop", a.ip()))])?;
            if both {
                topo_rules(c, a, &[("input", format!("ip saddr {} drop", b.ip()))])?;
            }
            (
                Applied::ClearRules(vec![a, b]),
                format!(
                    "partition {} -> {}{}",
                    a.name(),
                    b.name(),
                    if both { " (both ways)" } else { "" }
                ),
            )
        }
        Fault::ClientPartition(t) => {
            let h = need(t)?;
            if !c.topo.netns {
                return Err("no namespaces".into());
            }
            let ip = Host::Clients.ip();
            topo_rules(
                c,
                h,
                &[
                    ("input", format!("ip saddr {ip} drop")),
                    ("output", format!("ip daddr {ip} drop")),
                ],
            )?;
            (
                Applied::ClearRules(vec![h]),
                format!("clients cut off from {}", h.name()),
            )
        }
        Fault::Loss { at, pct } => {
            let h = need(at)?;
            if !c.topo.netns {
                return Err("no namespaces".into());
            }
            topo_rules(
                c,
                h,
                &[("input", format!("numgen random mod 100 < {pct} drop"))],
            )?;
            (
                Applied::ClearRules(vec![h]),
                format!("{pct}% loss into {}", h.name()),
            )
        }
        Fault::MisconfiguredStandby { primary_dies } => {
            let (h, p) = (need(Target::Standby)?, need(Target::Primary)?);
            c.start_misconfigured(h)?;
            (
                Applied::Misconfigured {
                    standby: h,
                    primary: primary_dies.then_some(p),
                },
                format!(
                    "{} restarted with max_accounts = 2048{}",
                    h.name(),
                    if primary_dies {
                        format!(", {} SIGKILLed half way", p.name())
                    } else {
                        String::new()
                    }
                ),
            )
        }
        Fault::SlowLink { at, kbit } => {
            let h = need(at)?;
            if !c.topo.netns {
                return Err("no namespaces".into());
            }
            c.topo.set_shaper(h, Some(kbit))?;
            (
                Applied::ClearShaper(h),
                format!("{} sends at {kbit} kbit/s", h.name()),
            )
        }
        Fault::SlowDisk { at, iops } => {
            let h = need(at)?;
            let Host::Node(k) = h else {
                return Err("only a node has a disk".into());
            };
            let disks = c.disks.as_ref().ok_or("no throttled disks")?;
            disks.throttle(k, Some((iops, u64::from(iops) * 16 * 1024)))?;
            (
                Applied::Unthrottle(k),
                format!("{} writes at {iops} IO/s", h.name()),
            )
        }
    })
}

/// Undoes an applied fault.
pub fn heal(c: &mut Cluster, a: Applied) -> Result<(), String> {
    match a {
        Applied::Restart(h) => {
            c.topo.set_rules(h, &[])?;
            c.start(h, false)?;
        }
        Applied::Resume(h) => {
            if let Some(p) = c.proc_mut(h) {
                p.signal(libc::SIGCONT);
            }
        }
        Applied::ClearRules(hs) => {
            for h in hs {
                c.topo.set_rules(h, &[])?;
            }
        }
        Applied::ClearShaper(h) => c.topo.set_shaper(h, None)?,
        Applied::Unthrottle(k) => {
            if let Some(d) = &c.disks {
                d.throttle(k, None)?;
            }
        }
        Applied::Misconfigured { standby, primary } => {
            c.start(standby, false)?;
            if let Some(p) = primary {
                c.topo.set_rules(p, &[])?;
                c.start(p, false)?;
            }
        }
        Applied::Nothing => {}
    }
    Ok(())
}

/// How long a fault is held: 0.5–10× the timeout (kills: 0.5–3×).
pub fn hold(rng: &mut Xoshiro256PlusPlus, f: Fault, timeout: Duration) -> Duration {
    let x = match f {
        Fault::Kill(_) => rng.gen_range(0.5..3.0),
        Fault::RestartWitness => 0.0,
        _ => rng.gen_range(0.5..10.0),
    };
    timeout.mul_f64(x)
}
