//! The kill loop of `failover-bench` and what it checks.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_sequencer::process::mono_ns;
use tpx_wire::log_record::LogRecord;

use crate::fault_lab::checker::{self, read_log, Findings, Observed};
use crate::fault_lab::cluster::{Cluster, ClusterConfig};
use crate::fault_lab::history::History;
use crate::fault_lab::procs::Shared;
use crate::fault_lab::topology::{Host, Topology};
use crate::fault_lab::workload::{self, Counters};

/// A run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub kills: u32,
    pub seed: u64,
    /// The nodes' `timeout_us` (the standby's failure detector).
    pub timeout_us: u64,
    /// The witness's lease (`tpx witness --lease-us`).
    pub lease_us: u64,
    pub heartbeat_us: u64,
    /// `replicated` | `fsync` | `replicated+fsync`.
    pub durability: String,
    /// Trading accounts, one `FailoverClient` each.
    pub accounts: u32,
    /// Requests per second per account.
    pub rate: u64,
    /// The primary runs this long (uniformly random in the range) before each kill.
    pub gap_ms: (u64, u64),
    /// SIGSTOP the primary instead of SIGKILL (its connections stay open: only the timeout
    /// detects it, as for a frozen machine); SIGCONT `hang_ms` after the takeover.
    pub hang: bool,
    pub hang_ms: u64,
    pub md: bool,
    pub buffered: bool,
    /// Each process in its own network namespace (root) instead of the host's loopback.
    pub netns: bool,
    pub dir: PathBuf,
}

/// What a run measured and found.
#[derive(Debug)]
pub struct Outcome {
    pub kills: u32,
    /// Kills the standby took over from (the other kills are `refused`).
    pub takeovers: u32,
    /// Kill → the standby's `ROLE primary` line, ns (as the bench read it).
    pub takeover_ns: Histogram<u64>,
    /// Kills after which the witness refused the standby (`MissingAcked`: the killed primary
    /// had acknowledged records alone), so only the killed node, restarted as standby (or
    /// resumed, with `--hang`), could take the term; kill → its `ROLE primary` line.
    pub refused: u32,
    pub refused_ns: Histogram<u64>,
    /// Kill → the witness's `GRANTED` line for the new term.
    pub grant_ns: Histogram<u64>,
    /// Kill → the first acknowledgement a client got from the new primary.
    pub first_ack_ns: Histogram<u64>,
    /// Kills where no client got an acknowledgement from the new primary within 10 s.
    pub no_first_ack: u32,
    pub acked_lost: u64,
    pub duplicates: u64,
    /// Log comparisons that differed, plus replica checkpoints whose state hash differed
    /// (`DIVERGED` lines of processes that never said `REJOIN`).
    pub hash_mismatches: u64,
    /// Log comparisons made (before each kill and at the end).
    pub hashes_checked: u64,
    /// Replica checkpoints in the surviving log (`checkpoint_every = 500`): at each, every
    /// node applying the log compared its shards' state hash with the primary's.
    pub checkpoints_compared: u64,
    /// `DIVERGED` lines of processes that said `REJOIN` (expected; not mismatches).
    pub diverged_after_rejoin: u64,
    /// Promotions beyond one per kill (a standby that took the silence of a live primary
    /// for its death).
    pub spurious_promotions: u64,
    /// Exits the bench did not cause (restarted as standby), e.g. status 3 after a resumed
    /// `--hang` primary found its tail cut.
    pub unexpected_exits: u64,
    /// Distinct orders and replaces the clients were told are sequenced.
    pub acked: u64,
    pub sent: u64,
    pub client_errors: u64,
    pub final_last_seq: u64,
    pub netns: bool,
    pub findings: Findings,
    /// The first failed check, with its evidence.
    pub failure: Option<String>,
    /// Where each takeover's time went, from the new primary's `TAKEOVER` line.
    pub split: Split,
}

/// Each takeover split at the moments the new primary's `TAKEOVER` line gives (the host's
/// `CLOCK_MONOTONIC`, as the bench's kill stamp): ns.
#[derive(Debug)]
pub struct Split {
    /// Kill → the standby saw the primary's connections close (kills it did not see close:
    /// `timeout_detections`).
    pub closed: Histogram<u64>,
    pub timeout_detections: u64,
    /// Kill → its first `Promote` to the witness.
    pub ask: Histogram<u64>,
    /// First `Promote` → the cycle that read the grant (the witness's answer, its wait for the
    /// dead primary's lease and the retries included).
    pub witness: Histogram<u64>,
    /// Promotes sent per takeover.
    pub asks: Histogram<u64>,
    /// Grant read → the term stored beside the log.
    pub store: Histogram<u64>,
    /// Term stored → the replica acts as primary (`TermStart` appended).
    pub start: Histogram<u64>,
    /// Acting as primary → the `ROLE primary` line written.
    pub line: Histogram<u64>,
    /// The line written → the bench's reader stamped it.
    pub read: Histogram<u64>,
    /// Takeovers without a `TAKEOVER` line (an older `tpx`).
    pub missing: u64,
}

impl Split {
    fn new() -> Split {
        Split {
            closed: hist(),
            timeout_detections: 0,
            ask: hist(),
            witness: hist(),
            asks: hist(),
            store: hist(),
            start: hist(),
            line: hist(),
            read: hist(),
            missing: 0,
        }
    }
}

/// A takeover to split: the kill's stamp, the new primary (0-based), its term and when the
/// bench read its `ROLE primary` line.
struct Taken {
    kill_ns: u64,
    node: usize,
    term: u64,
    role_read_ns: u64,
}

/// Splits each takeover by the new primary's `TAKEOVER` line for its term (in
/// `<dir>/node-<k>.out`).
fn split_takeovers(dir: &std::path::Path, taken: &[Taken]) -> Split {
    use crate::fault_lab::procs::field;
    let mut sp = Split::new();
    let outs: Vec<String> = (0..2)
        .map(|k| {
            std::fs::read_to_string(dir.join(format!("node-{}.out", k + 1))).unwrap_or_default()
        })
        .collect();
    for t in taken {
        let line = outs[t.node]
            .lines()
            .find(|l| l.contains("tpx node: TAKEOVER ") && field(l, "term") == Some(t.term));
        let Some(l) = line else {
            sp.missing += 1;
            continue;
        };
        let f = |k: &str| field(l, k).unwrap_or(0);
        let (closed, ask, granted, stored, primary, line_ns) = (
            f("closed_ns"),
            f("ask_ns"),
            f("granted_ns"),
            f("stored_ns"),
            f("primary_ns"),
            f("line_ns"),
        );
        if closed >= t.kill_ns {
            rec(&mut sp.closed, closed - t.kill_ns);
        } else {
            sp.timeout_detections += 1;
        }
        rec(&mut sp.ask, ask.saturating_sub(t.kill_ns));
        rec(&mut sp.witness, granted.saturating_sub(ask));
        rec(&mut sp.asks, f("asks"));
        rec(&mut sp.store, stored.saturating_sub(granted));
        rec(&mut sp.start, primary.saturating_sub(stored));
        rec(&mut sp.line, line_ns.saturating_sub(primary));
        rec(&mut sp.read, t.role_read_ns.saturating_sub(line_ns));
    }
    sp
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn rec(h: &mut Histogram<u64>, ns: u64) {
    let _ = h.record(ns.max(1));
}

/// Sleeps `d` in small steps, applying the restart policy meanwhile.
fn run_for(c: &mut Cluster, d: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        c.supervise()?;
        std::thread::sleep(Duration::from_millis(5).min(d));
    }
    Ok(())
}

/// Raft's log matching: where the two logs hold a record of the same term at the same index,
/// they are equal up to there. A tail of different terms is an election not settled yet (the
/// lower term's is cut when its node follows the newer one), not a mismatch. `tpx node`
/// exposes no state hash; its state is a function of its log, so equal logs are equal states.
fn prefix_agrees(a: &[LogRecord], b: &[LogRecord]) -> Option<String> {
    let n = a.len().min(b.len());
    let j = (0..n).rev().find(|&i| a[i].meta.term == b[i].meta.term)?;
    (0..=j)
        .find(|&i| a[i] != b[i])
        .map(|i| format!("index {i}: {:?} vs {:?}", a[i], b[i]))
}

fn lines_since(sh: &Arc<Mutex<Shared>>) -> (usize, usize, usize) {
    let g = sh.lock().unwrap_or_else(|e| e.into_inner());
    (g.roles.len(), g.grants.len(), g.denials.len())
}

/// Waits until one node is primary, the other its standby in its running incarnation, the
/// clients are being acknowledged and the standby's log holds the primary's (as read when
/// the rest held). Returns the primary.
fn steady(
    c: &mut Cluster,
    counters: &Counters,
    shared: &Arc<Mutex<Shared>>,
    limit: Duration,
) -> Result<(usize, Vec<LogRecord>, Vec<LogRecord>), String> {
    let t0 = Instant::now();
    let base = counters.acked.load(Ordering::Relaxed);
    let mut target: Option<(usize, usize)> = None;
    loop {
        if t0.elapsed() > limit {
            return Err(format!(
                "no steady pair within {limit:?} (roles {:?} / {:?}, acked {} -> {}, waiting for \
                 the standby to hold {target:?})",
                c.role(0),
                c.role(1),
                base,
                counters.acked.load(Ordering::Relaxed)
            ));
        }
        run_for(c, Duration::from_millis(20))?;
        let Some(p) = c.primary() else {
            target = None;
            continue;
        };
        let s = 1 - p;
        // The standby follows the primary's term.
        if c.role(s) != Some((false, c.role(p).map_or(0, |r| r.1)))
            || counters.acked.load(Ordering::Relaxed) < base + 20
        {
            target = None;
            continue;
        }
        match target {
            Some((tp, n)) if tp == p => {
                let (n_roles, ..) = lines_since(shared);
                let ls = read_log(&c.log_dir(s));
                if ls.len() >= n {
                    let lp = read_log(&c.log_dir(p));
                    // No role changed while the logs were read (a standby's unacknowledged
                    // tail of an older term is cut when it follows a new one).
                    if lines_since(shared).0 == n_roles {
                        return Ok((p, lp, ls));
                    }
                    target = None;
                    continue;
                }
                run_for(c, Duration::from_millis(30))?;
            }
            _ => target = Some((p, read_log(&c.log_dir(p)).len())),
        }
    }
}

/// Runs the whole scenario.
pub fn run(cfg: &Config) -> Result<Outcome, String> {
    let started = Instant::now();
    let dir = cfg.dir.clone();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let topo = if cfg.netns {
        crate::fault_lab::topology::remove_stale();
        Topology::create()
    } else {
        Topology::loopback()
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut c = Cluster::new(
        topo,
        &dir,
        ClusterConfig {
            timeout_us: cfg.timeout_us,
            heartbeat_us: cfg.heartbeat_us,
            lease_us: cfg.lease_us,
            durability: cfg.durability.clone(),
            accounts: cfg.accounts,
            buffered: cfg.buffered,
            md: cfg.md,
        },
        shared.clone(),
        started,
    )?;
    let hist_log = History::create(&dir.join("history.jsonl"), started)?;
    let r = drive(cfg, &mut c, &shared, &hist_log);
    c.stop_all();
    let (mut out, mut obs, surviving, taken) = r?;
    out.split = split_takeovers(&dir, &taken);
    let logs = [read_log(&c.log_dir(0)), read_log(&c.log_dir(1))];
    let now_ms = started.elapsed().as_millis() as u64;
    for (k, l) in logs.iter().enumerate() {
        obs.observe(k, l, now_ms);
    }
    let roles = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .roles
        .clone();
    let surviving = surviving.unwrap_or(usize::from(logs[1].len() > logs[0].len()));
    let f = checker::check(
        &hist_log.events(),
        &roles,
        &logs,
        surviving,
        &obs,
        &c.node_config_path(surviving),
        None,
    );
    out.acked = f.acked;
    // An acknowledgement as a client saw it: accepted / replaced / already sequenced (`lost`),
    // a fill (`phantom_fills`: of an order in no log), a confirmed cancel, an accepted deposit.
    out.acked_lost =
        f.lost + f.phantom_fills + f.fills_not_reproduced + f.lost_cancels + f.lost_deposits;
    out.duplicates = f.duplicated + f.overfilled;
    // The final comparison: the logs match (see `prefix_agrees`; the lab's `logs_disagree`
    // wants them equal, which a pair still electing at the stop need not be), and never two
    // records at one (term, seq) over every read.
    out.hashes_checked += 1;
    let differ = prefix_agrees(&logs[0], &logs[1]);
    if differ.is_some() || f.conflicting_records > 0 {
        out.hash_mismatches += 1;
    }
    // The state itself: every replica checkpoint the nodes applied compared their shards'
    // state hash with the one the primary logged; a `DIVERGED` line is a mismatch.
    out.checkpoints_compared = logs[surviving]
        .iter()
        .filter(|r| matches!(r.input, tpx_wire::log_record::Input::Checkpoint(_)))
        .count() as u64;
    let (diverged, after_rejoin) = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .diverged_split();
    out.diverged_after_rejoin = after_rejoin;
    if let Some(d) = diverged.first() {
        out.failure
            .get_or_insert(format!("a replica checkpoint diverged: {d}"));
    }
    out.hash_mismatches += diverged.len() as u64;
    if f.logs_disagree > 0 && differ.is_none() {
        eprintln!(
            "failover-bench: note: the logs end in different terms (an election not settled at \
             the stop): {:?}",
            f.examples.get("logs_disagree")
        );
    }
    let violations = f.violations() - f.logs_disagree + u64::from(differ.is_some());
    let terms: BTreeSet<u64> = roles.iter().filter(|r| r.primary).map(|r| r.term).collect();
    out.spurious_promotions =
        (terms.len() as u64).saturating_sub(1 + u64::from(out.takeovers + out.refused));
    out.unexpected_exits = c.own_exits.len() as u64;
    out.final_last_seq = logs[surviving].len() as u64;
    if out.failure.is_none() && violations > 0 {
        out.failure = Some(format!(
            "the checker found {violations} violations (final logs differ: {differ:?}): {:?}",
            f.examples
        ));
    }
    out.findings = f;
    Ok(out)
}

type Driven = (Outcome, Observed, Option<usize>, Vec<Taken>);

fn drive(
    cfg: &Config,
    c: &mut Cluster,
    shared: &Arc<Mutex<Shared>>,
    hist_log: &History,
) -> Result<Driven, String> {
    c.start(Host::Witness, false)?;
    c.start(Host::Node(0), true)?;
    let t0 = Instant::now();
    while !matches!(c.role(0), Some((true, _))) {
        if t0.elapsed() > Duration::from_secs(30) {
            return Err("node-1 never became primary".into());
        }
        run_for(c, Duration::from_millis(20))?;
    }
    c.start(Host::Node(1), false)?;
    let endpoints = vec![c.entry(0), c.entry(1)];
    let ns = c.topo.ns_path(Host::Clients);
    let counters = Arc::new(Counters::default());
    let funded = Arc::new(AtomicBool::new(false));
    let admin = {
        let (e, ns, h, cn, f) = (
            endpoints.clone(),
            ns.clone(),
            hist_log.clone(),
            counters.clone(),
            funded.clone(),
        );
        let n = cfg.accounts;
        std::thread::spawn(move || {
            workload::admin_loop(e, ns, n, Duration::from_millis(500), h, cn, f)
        })
    };
    let t0 = Instant::now();
    while !funded.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(60) {
        run_for(c, Duration::from_millis(20))?;
    }
    let traders: Vec<_> = (1..=cfg.accounts)
        .map(|a| {
            let tc = workload::TraderConfig {
                account: a,
                endpoints: endpoints.clone(),
                ns: ns.clone(),
                seed: cfg.seed,
                rate: cfg.rate,
                drain: Duration::from_secs(20),
            };
            let (h, cn) = (hist_log.clone(), counters.clone());
            std::thread::spawn(move || workload::trader(tc, h, cn))
        })
        .collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let mut obs = Observed::default();
    let mut out = Outcome {
        kills: 0,
        takeovers: 0,
        takeover_ns: hist(),
        refused: 0,
        refused_ns: hist(),
        grant_ns: hist(),
        first_ack_ns: hist(),
        no_first_ack: 0,
        acked_lost: 0,
        duplicates: 0,
        hash_mismatches: 0,
        hashes_checked: 0,
        checkpoints_compared: 0,
        diverged_after_rejoin: 0,
        spurious_promotions: 0,
        unexpected_exits: 0,
        acked: 0,
        sent: 0,
        client_errors: 0,
        final_last_seq: 0,
        netns: c.topo.netns,
        findings: Findings::default(),
        failure: None,
        split: Split::new(),
    };
    let mut taken = Vec::new();
    let mut k = 0u32;
    let mut attempts = 0u32;
    while k < cfg.kills && attempts < cfg.kills * 3 {
        attempts += 1;
        // Steady: one primary acknowledging, the other a standby holding its log, the two
        // logs equal where both have records. A difference that the next steady moment no
        // longer shows was a tail being cut (a flap between the reads); one that stays is a
        // mismatch.
        let mut differs = None;
        for _ in 0..3 {
            let (p, lp, ls) = steady(c, &counters, shared, Duration::from_secs(60))?;
            let at_ms = c.started.elapsed().as_millis() as u64;
            obs.observe(p, &lp, at_ms);
            obs.observe(1 - p, &ls, at_ms);
            differs = prefix_agrees(&lp, &ls);
            if differs.is_none() {
                break;
            }
        }
        out.hashes_checked += 1;
        if let Some(d) = differs {
            out.hash_mismatches += 1;
            out.failure.get_or_insert(format!(
                "before kill {}: the standby's log differs from the primary's at {d}",
                k + 1
            ));
        }
        let gap = rng.gen_range(cfg.gap_ms.0..=cfg.gap_ms.1.max(cfg.gap_ms.0));
        run_for(c, Duration::from_millis(gap))?;
        // Only a primary that still is one, with its standby up.
        let Some(victim) = c.primary() else { continue };
        let survivor = 1 - victim;
        let Some((false, _)) = c.role(survivor) else {
            continue;
        };
        let vterm = c.role(victim).map_or(0, |r| r.1);
        counters.watch(Some(survivor));
        let (n_roles, _, n_denials) = lines_since(shared);
        let t_kill = mono_ns();
        if cfg.hang {
            if let Some(pr) = c.proc_mut(Host::Node(victim)) {
                pr.signal(libc::SIGSTOP);
            }
        } else {
            c.kill(Host::Node(victim));
        }
        // The takeover: the standby's `ROLE primary` for a newer term; or, when the witness
        // refuses it (`MissingAcked`), the killed node's once it is back (restarted as
        // standby, as systemd does; resumed with `--hang`). Also brought back after 2 s
        // without a takeover, whatever the reason.
        let t_wait = Instant::now();
        let mut back = false;
        let bring_back = |c: &mut Cluster| -> Result<(), String> {
            if cfg.hang {
                if let Some(pr) = c.proc_mut(Host::Node(victim)) {
                    pr.signal(libc::SIGCONT);
                }
                Ok(())
            } else {
                c.start(Host::Node(victim), false)
            }
        };
        let (new_primary, role_ns, new_term) = loop {
            let (found, denied) = {
                let g = shared.lock().unwrap_or_else(|e| e.into_inner());
                (
                    g.roles[n_roles..]
                        .iter()
                        .find(|r| r.primary && r.term > vterm)
                        .map(|r| (r.node, r.mono_ns, r.term)),
                    g.denials[n_denials..]
                        .iter()
                        .any(|d| d.node == survivor && d.reason == "MissingAcked"),
                )
            };
            if let Some(f) = found {
                break f;
            }
            if !back && (denied || t_wait.elapsed() > Duration::from_secs(2)) {
                eprintln!(
                    "kill {:>3}: no takeover by node-{} ({}); bringing node-{} back",
                    k + 1,
                    survivor + 1,
                    if denied {
                        "the witness refuses it: MissingAcked"
                    } else {
                        "nothing within 2 s"
                    },
                    victim + 1
                );
                bring_back(c)?;
                back = true;
            }
            if t_wait.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "kill {}: no new primary within 30 s (roles {:?} / {:?})",
                    k + 1,
                    c.role(0),
                    c.role(1)
                ));
            }
            c.supervise()?;
            std::thread::sleep(Duration::from_micros(500));
        };
        let grant = {
            let g = shared.lock().unwrap_or_else(|e| e.into_inner());
            g.grants
                .iter()
                .rev()
                .find(|g| g.term == new_term)
                .map(|g| g.mono_ns)
        };
        if role_ns < t_kill || grant.is_some_and(|g| g < t_kill) {
            // A spurious promotion raced the kill (granted before it): not a takeover from it.
            eprintln!(
                "kill {:>3}: node-{} became primary before the kill; not counted",
                k + 1,
                new_primary + 1
            );
            if !back {
                bring_back(c)?;
            }
            counters.watch(None);
            continue;
        }
        k += 1;
        out.kills += 1;
        let takeover = role_ns - t_kill;
        let grant = grant.map(|g| g - t_kill);
        if let Some(gns) = grant {
            rec(&mut out.grant_ns, gns);
        }
        if new_primary == survivor {
            out.takeovers += 1;
            rec(&mut out.takeover_ns, takeover);
            taken.push(Taken {
                kill_ns: t_kill,
                node: new_primary,
                term: new_term,
                role_read_ns: role_ns,
            });
        } else {
            out.refused += 1;
            rec(&mut out.refused_ns, takeover);
        }
        // `--hang`: the clients still wait on the frozen node's open connections; they move
        // only when it resumes (and drops them), `hang_ms` later.
        if cfg.hang && !back {
            run_for(c, Duration::from_millis(cfg.hang_ms))?;
            bring_back(c)?;
            back = true;
        }
        // The first acknowledgement a client got from the new primary (before the killed node
        // restarts: its log replay would compete for the CPUs).
        counters.watch(Some(new_primary));
        let t_ack = Instant::now();
        let first_ack = loop {
            let v = counters.first_ack_ns.load(Ordering::SeqCst);
            if v != 0 {
                break Some(v);
            }
            if t_ack.elapsed() > Duration::from_secs(10) {
                break None;
            }
            c.supervise()?;
            std::thread::sleep(Duration::from_micros(500));
        };
        counters.watch(None);
        match first_ack {
            Some(v) => rec(&mut out.first_ack_ns, v.saturating_sub(t_kill)),
            None => out.no_first_ack += 1,
        }
        eprintln!(
            "kill {:>3}: {} node-{} took over in {:>8.1} µs (granted {:>8.1} µs, first ack {:>9.1} µs) term {new_term}",
            k,
            if new_primary == survivor { "standby" } else { "refused; killed" },
            new_primary + 1,
            takeover as f64 / 1e3,
            grant.unwrap_or(0) as f64 / 1e3,
            first_ack.map_or(f64::NAN, |v| v.saturating_sub(t_kill) as f64 / 1e3),
        );
        if !back {
            // The killed node comes back as the new standby (systemd's restart).
            bring_back(c)?;
        }
        // Both logs as they are after the takeover (never two records at one (term, seq)).
        let at_ms = c.started.elapsed().as_millis() as u64;
        for n in 0..2 {
            obs.observe(n, &read_log(&c.log_dir(n)), at_ms);
        }
    }
    // The end: the load stops, answers drain, the standby catches up.
    for h in [Host::Witness, Host::Node(0), Host::Node(1)] {
        if !c.is_up(h) {
            c.start(h, false)?;
        }
    }
    run_for(c, Duration::from_millis(500))?;
    counters.stop.store(true, Ordering::Relaxed);
    for t in traders {
        let errs = t.join().unwrap_or_else(|_| vec!["trader panicked".into()]);
        out.client_errors += errs.len() as u64;
        for e in errs.iter().take(3) {
            eprintln!("failover-bench: {e}");
        }
        c.supervise()?;
    }
    let errs = admin
        .join()
        .unwrap_or_else(|_| vec!["admin panicked".into()]);
    out.client_errors += errs.len() as u64;
    let t0 = Instant::now();
    loop {
        run_for(c, Duration::from_millis(200))?;
        let (a, b) = (read_log(&c.log_dir(0)), read_log(&c.log_dir(1)));
        if (a.len() == b.len() && a.last() == b.last()) || t0.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    out.sent = counters.sent.load(Ordering::Relaxed);
    let primary = c.primary();
    Ok((out, obs, primary, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_that_differs_is_named() {
        let r = |seq: u64, account: u32| LogRecord {
            meta: tpx_wire::log_record::RecordMeta {
                seq,
                term: 1,
                timestamp_ns: 0,
                origin: 1,
                account,
                session: 0,
            },
            input: tpx_wire::log_record::Input::CancelOrder(tpx_wire::order_entry::CancelOrder {
                cl_ord_id: seq,
                remaining_qty: 0,
            }),
        };
        let a = vec![r(1, 1), r(2, 1), r(3, 1)];
        let b = vec![r(1, 1), r(2, 1)];
        assert_eq!(prefix_agrees(&a, &b), None);
        let c = vec![r(1, 1), r(2, 2)];
        assert!(prefix_agrees(&a, &c).unwrap().starts_with("index 1"));
        // A tail of another term is an unsettled election, not a mismatch.
        let mut d = b.clone();
        d.push(LogRecord {
            meta: tpx_wire::log_record::RecordMeta {
                term: 2,
                ..a[2].meta
            },
            ..a[2]
        });
        d[2].input = tpx_wire::log_record::Input::CancelOrder(tpx_wire::order_entry::CancelOrder {
            cl_ord_id: 99,
            remaining_qty: 0,
        });
        assert_eq!(prefix_agrees(&a, &d), None);
        // Same term at the end, different before: a mismatch.
        let mut e = a.clone();
        e[0].meta.account = 7;
        assert!(prefix_agrees(&a, &e).unwrap().starts_with("index 0"));
    }
}
