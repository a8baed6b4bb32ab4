//! The fault lab (`fault-lab`): the real appliance (`tpx witness` and two `tpx node`s, risk
//! on, market data on, durable logs, `replicated` by default), each process in its own network
//! namespace, clients failing over between the nodes, faults drawn from a seed, and a checker
//! of every answer the clients got against the logs at the end. See "Fault lab" in
//! `docs/OPERATIONS.md`.

pub mod checker;
pub mod cluster;
pub mod disk;
pub mod faults;
pub mod feed;
pub mod history;
pub mod procs;
pub mod topology;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use checker::{read_log, Findings, Observed};
use cluster::{Cluster, ClusterConfig};
use faults::{Applied, Fault, Target};
use history::{Event, History, Kind};
use topology::{Host, Topology};
use workload::Counters;

/// A run's settings.
#[derive(Clone, Debug)]
pub struct LabConfig {
    pub faults: u32,
    pub seed: u64,
    pub timeout_us: u64,
    pub heartbeat_us: u64,
    pub durability: String,
    pub accounts: u32,
    /// Requests per second per account.
    pub rate: u64,
    /// SIGKILLs only (primary, standby, witness).
    pub kills_only: bool,
    /// Fault kinds never drawn (a kind is skipped when its name starts with one of these,
    /// e.g. `pause_primary`, `partition`).
    pub without: Vec<String>,
    /// Where the run's files go (default: a fresh folder under the temp dir).
    pub dir: Option<PathBuf>,
    /// Keep the folder even when nothing was found.
    pub keep: bool,
    pub md: bool,
    pub buffered: bool,
    /// Longest wait for the appliance to make progress after a fault is healed.
    pub settle_max: Duration,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            faults: 30,
            seed: 1,
            timeout_us: 200_000,
            heartbeat_us: 5_000,
            durability: "replicated".into(),
            accounts: 4,
            rate: 100,
            kills_only: false,
            without: Vec::new(),
            dir: None,
            keep: false,
            md: true,
            buffered: false,
            settle_max: Duration::from_secs(10),
        }
    }
}

/// What a run did and found (the JSON of `fault-lab --json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub durability: String,
    pub netns: bool,
    /// How the slow-disk fault is made here, or why it is not drawn.
    pub slow_disk: String,
    /// Faults applied, by kind.
    pub faults: BTreeMap<String, u64>,
    pub faults_applied: u64,
    /// Faults that could not be applied (no primary known at the time).
    pub faults_skipped: u64,
    pub sent: u64,
    /// Distinct orders and replaces the clients were told are sequenced.
    pub acked: u64,
    pub violations: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub phantom_fills: u64,
    pub split_brain_terms: u64,
    pub findings: Findings,
    /// Times the appliance made no progress for `settle_max`: no answers after a heal, or no
    /// primary before a fault (liveness, not safety; the history says when).
    pub stalls: u64,
    /// Misconfigured standbys (a config digest unlike the primary's) whose log grew while
    /// misconfigured (`joined`: it paired and took records) or that took the term
    /// (`promoted`). Both must stay 0 and count as violations.
    pub misconfigured_joined: u64,
    pub misconfigured_promoted: u64,
    /// Replica checkpoints (`checkpoint_every = 500`: every 500 records the primary logs each
    /// shard's state hash and every node compares its own) in the surviving log, and the
    /// `DIVERGED` lines of either node (violations: a node's state differed from its primary's
    /// at the same seq).
    pub checkpoints_logged: u64,
    pub diverged: u64,
    /// `DIVERGED` lines of a node process that had said `REJOIN` before (its shards hold
    /// records the new term cut, and it is exiting to rebuild them): reported, not violations.
    pub diverged_after_rejoin: u64,
    /// Processes that exited without being killed (restarted), by name and exit code.
    pub own_exits: Vec<String>,
    pub client_errors: u64,
    pub elapsed_s: f64,
    /// The run's folder (kept when something was found, or with `--keep`).
    pub dir: Option<String>,
    pub replay: String,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn wait_role(c: &Cluster, node: usize, primary: bool, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit && !interrupted() {
        let sh = c.shared.lock().unwrap_or_else(|e| e.into_inner());
        if sh
            .roles
            .iter()
            .any(|r| r.node == node && r.primary == primary)
        {
            return true;
        }
        drop(sh);
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sleeps `d` in small steps, applying the restart policy meanwhile.
fn run_for(c: &mut Cluster, d: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < d && !interrupted() {
        c.supervise()?;
        std::thread::sleep(Duration::from_millis(10).min(d));
    }
    Ok(())
}

fn observe(c: &Cluster, obs: &mut Observed) {
    let at = c.started.elapsed().as_millis() as u64;
    for k in 0..2 {
        obs.observe(k, &read_log(&c.log_dir(k)), at);
    }
}

/// Runs the lab.
pub fn run(cfg: &LabConfig) -> Result<Report, String> {
    install_signal_handlers();
    topology::remove_stale();
    disk::remove_stale();
    let started = Instant::now();
    let dir = cfg.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "tpx-fault-lab-{}-seed{}",
            std::process::id(),
            cfg.seed
        ))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let topo = Topology::create();
    let netns = topo.netns;
    let shared = Arc::new(Mutex::new(procs::Shared::default()));
    let mut c = Cluster::new(
        topo,
        &dir,
        ClusterConfig {
            timeout_us: cfg.timeout_us,
            heartbeat_us: cfg.heartbeat_us,
            lease_us: 0,
            durability: cfg.durability.clone(),
            accounts: cfg.accounts,
            buffered: cfg.buffered,
            md: cfg.md,
        },
        shared.clone(),
        started,
    )?;
    // Each node's log on a disk the slow-disk fault can throttle, where the host allows it.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "tpxl{}d{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let slow_disk = match c.with_slow_disks(&tag) {
        Ok(()) => "throttled loop devices (cgroup-v1 blkio)".to_string(),
        Err(e) => {
            eprintln!("fault-lab: no slow-disk fault on this host: {e}");
            format!("unavailable: {e}")
        }
    };
    let hist = History::create(&dir.join("history.jsonl"), started)?;
    let r = drive(cfg, &mut c, &hist);
    c.stop_all();
    let (mut report, events) = match r {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "fault-lab: run failed: {e}; files kept in {}",
                dir.display()
            );
            return Err(e);
        }
    };
    // The final logs, read after every process stopped.
    let logs = [read_log(&c.log_dir(0)), read_log(&c.log_dir(1))];
    let mut obs = report.1;
    for (k, log) in logs.iter().enumerate() {
        obs.observe(k, log, started.elapsed().as_millis() as u64);
    }
    let roles = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .roles
        .clone();
    let surviving = report
        .2
        .unwrap_or(if logs[1].len() > logs[0].len() { 1 } else { 0 });
    let findings = checker::check(
        &events,
        &roles,
        &logs,
        surviving,
        &obs,
        &c.node_config_path(surviving),
        report.3.as_ref(),
    );
    let rep = &mut report.0;
    rep.netns = netns;
    rep.slow_disk = slow_disk;
    rep.acked = findings.acked;
    rep.checkpoints_logged = logs[surviving]
        .iter()
        .filter(|r| matches!(r.input, tpx_wire::log_record::Input::Checkpoint(_)))
        .count() as u64;
    let (diverged, after_rejoin) = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .diverged_split();
    rep.diverged = diverged.len() as u64;
    rep.diverged_after_rejoin = after_rejoin;
    for d in diverged.iter().take(3) {
        eprintln!("fault-lab: {d}");
    }
    rep.violations = findings.violations()
        + rep.misconfigured_joined
        + rep.misconfigured_promoted
        + rep.diverged;
    rep.lost = findings.lost;
    rep.duplicated = findings.duplicated;
    rep.phantom_fills = findings.phantom_fills + findings.overfilled;
    rep.split_brain_terms = findings.split_brain_terms;
    rep.own_exits = c
        .own_exits
        .iter()
        .map(|(s, code)| format!("{} exit {code:?}", ["witness", "node-1", "node-2"][*s]))
        .collect();
    rep.findings = findings;
    rep.elapsed_s = started.elapsed().as_secs_f64();
    rep.replay = format!(
        "cargo run --release -p tpx-benches --bin fault-lab -- --seed {} --faults {} --durability {} --timeout-us {}{}{} --keep (the fault sequence follows the seed; timing does not)",
        cfg.seed,
        cfg.faults,
        cfg.durability,
        cfg.timeout_us,
        if cfg.kills_only {
            " --kills-only".to_string()
        } else if cfg.without.is_empty() {
            String::new()
        } else {
            format!(" --without {}", cfg.without.join(","))
        },
        if cfg.md { "" } else { " --no-md" },
    );
    drop(c);
    if rep.violations > 0 || cfg.keep || interrupted() {
        let summary = serde_json::to_string_pretty(&*rep).unwrap_or_default();
        let _ = std::fs::write(dir.join("report.json"), summary);
        rep.dir = Some(dir.display().to_string());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(report.0)
}

type Driven = (
    (Report, Observed, Option<usize>, Option<feed::FeedEnd>),
    Vec<Event>,
);

fn drive(cfg: &LabConfig, c: &mut Cluster, hist: &History) -> Result<Driven, String> {
    let timeout = Duration::from_micros(cfg.timeout_us);
    c.start(Host::Witness, false)?;
    c.start(Host::Node(0), true)?;
    if !wait_role(c, 0, true, Duration::from_secs(30)) {
        return Err("node-1 never became primary".into());
    }
    c.start(Host::Node(1), false)?;
    if !wait_role(c, 1, false, Duration::from_secs(30)) {
        return Err("node-2 never became standby".into());
    }
    let endpoints = vec![c.entry(0), c.entry(1)];
    let ns = c.topo.ns_path(Host::Clients);
    let counters = Arc::new(Counters::default());
    let funded = Arc::new(AtomicBool::new(false));
    let admin = {
        let (e, ns, h, cn, f) = (
            endpoints.clone(),
            ns.clone(),
            hist.clone(),
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
        run_for(c, Duration::from_millis(50))?;
    }
    // The market-data subscriber, where the nodes publish over UDP to the clients' namespace.
    let feed_stop = Arc::new(AtomicBool::new(false));
    let feed = (cfg.md && c.topo.netns).then(|| {
        let (ns, stop) = (ns.clone(), feed_stop.clone());
        let endpoint = format!("{}:{}", c.topo.addr(Host::Clients), feed::MD_PORT);
        std::thread::spawn(move || {
            feed::subscribe(
                ns,
                endpoint,
                vec![1],
                stop,
                Duration::from_millis(600),
                Duration::from_secs(15),
            )
        })
    });
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
            let (h, cn) = (hist.clone(), counters.clone());
            std::thread::spawn(move || workload::trader(tc, h, cn))
        })
        .collect();
    // Warm up: some answers before the first fault.
    let t0 = Instant::now();
    while counters.acked.load(Ordering::Relaxed) < 50 && t0.elapsed() < Duration::from_secs(30) {
        run_for(c, Duration::from_millis(50))?;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let mut obs = Observed::default();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let (mut applied, mut skipped, mut stalls) = (0u64, 0u64, 0u64);
    let mut misconfigured = (0u64, 0u64);
    let mut i = 0u32;
    while (applied as u32) < cfg.faults && i < cfg.faults * 2 {
        i += 1;
        if interrupted() {
            break;
        }
        // A fault on a node needs to know which one is primary: wait (bounded) for one.
        let t0 = Instant::now();
        while c.primary().is_none() && !interrupted() {
            if t0.elapsed() > cfg.settle_max {
                stalls += 1;
                let mut ev = Event::new(0, Kind::Heal, u64::from(i));
                ev.detail = format!("no primary for {} s", cfg.settle_max.as_secs());
                hist.record(ev);
                break;
            }
            run_for(c, Duration::from_millis(20))?;
        }
        c.supervise()?;
        observe(c, &mut obs);
        let mut f = Fault::draw(&mut rng, cfg.kills_only);
        let mut redraws = 0;
        let excluded = |f: &Fault| {
            cfg.without.iter().any(|w| f.kind().starts_with(w.as_str()))
                || (c.disks.is_none() && matches!(f, Fault::SlowDisk { .. }))
        };
        while excluded(&f) && redraws < 1000 {
            f = Fault::draw(&mut rng, cfg.kills_only);
            redraws += 1;
        }
        let hold = faults::hold(&mut rng, f, timeout);
        let f = if !c.topo.netns
            && !matches!(f, Fault::Kill(_) | Fault::Pause(_) | Fault::RestartWitness)
        {
            Fault::Pause(Target::Primary)
        } else {
            f
        };
        let (undo, what) = match faults::apply(c, f) {
            Ok(x) => x,
            Err(e) => {
                skipped += 1;
                let mut ev = Event::new(0, Kind::Fault, u64::from(i));
                ev.detail = format!("{} skipped: {e}", f.kind());
                hist.record(ev);
                run_for(c, Duration::from_millis(200))?;
                continue;
            }
        };
        applied += 1;
        *by_kind.entry(f.kind()).or_default() += 1;
        // The misconfigured standby's log once it runs (the stopped process wrote its last
        // records): it must not grow while it is misconfigured.
        let standby_log = match &undo {
            Applied::Misconfigured {
                standby: Host::Node(k),
                ..
            } => read_log(&c.log_dir(*k)).len(),
            _ => 0,
        };
        let mut ev = Event::new(0, Kind::Fault, u64::from(i));
        ev.detail = format!("{}: {what} for {} ms", f.kind(), hold.as_millis());
        hist.record(ev);
        if let Applied::Misconfigured {
            primary: Some(p), ..
        } = &undo
        {
            run_for(c, hold / 2)?;
            faults::kill_silently(c, *p)?;
            // Long enough for the standby's failure detector and the witness's lease.
            run_for(c, hold / 2 + timeout * 3)?;
        } else {
            run_for(c, hold)?;
        }
        {
            if let Applied::Misconfigured {
                standby: Host::Node(k),
                ..
            } = &undo
            {
                // It may say `ROLE standby` (it learns the term) but must pair with nobody:
                // no record reaches its log, and it never takes the term.
                if read_log(&c.log_dir(*k)).len() > standby_log {
                    misconfigured.0 += 1;
                }
                if matches!(c.role(*k), Some((true, _))) {
                    misconfigured.1 += 1;
                }
            }
        }
        faults::heal(c, undo)?;
        hist.record(Event::new(0, Kind::Heal, u64::from(i)));
        // Settle: wait for answers to flow again.
        let base = counters.acked.load(Ordering::Relaxed);
        let t0 = Instant::now();
        while counters.acked.load(Ordering::Relaxed) < base + 20 && !interrupted() {
            if t0.elapsed() > cfg.settle_max {
                stalls += 1;
                let mut ev = Event::new(0, Kind::Heal, u64::from(i));
                ev.detail = format!("no progress {} s after the heal", cfg.settle_max.as_secs());
                hist.record(ev);
                break;
            }
            run_for(c, Duration::from_millis(20))?;
        }
    }
    // The end: everything up, the load stops, answers drain, the standby catches up.
    for h in [Host::Witness, Host::Node(0), Host::Node(1)] {
        c.topo.set_rules(h, &[])?;
        let _ = c.topo.set_shaper(h, None);
        if !c.is_up(h) {
            c.start(h, false)?;
        }
    }
    run_for(c, Duration::from_secs(1))?;
    counters.stop.store(true, Ordering::Relaxed);
    let mut client_errors = 0u64;
    for t in traders {
        let errs = t.join().unwrap_or_else(|_| vec!["trader panicked".into()]);
        client_errors += errs.len() as u64;
        for e in errs.iter().take(3) {
            eprintln!("fault-lab: {e}");
        }
        c.supervise()?;
    }
    let admin_errs = admin
        .join()
        .unwrap_or_else(|_| vec!["admin panicked".into()]);
    client_errors += admin_errs.len() as u64;
    let t0 = Instant::now();
    loop {
        run_for(c, Duration::from_millis(200))?;
        let (a, b) = (read_log(&c.log_dir(0)), read_log(&c.log_dir(1)));
        if (a.len() == b.len() && a.last() == b.last()) || t0.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    let primary = c.primary();
    observe(c, &mut obs);
    // The cluster is up and idle: the feed handler catches up (snapshots) and stops.
    feed_stop.store(true, Ordering::Relaxed);
    let feed_end = match feed.map(|h| h.join()) {
        None => None,
        Some(Ok(Ok(end))) => Some(end),
        Some(Ok(Err(e))) => {
            eprintln!("fault-lab: the feed handler failed: {e}");
            Some(feed::FeedEnd::default())
        }
        Some(Err(_)) => {
            eprintln!("fault-lab: the feed handler panicked");
            Some(feed::FeedEnd::default())
        }
    };
    let report = Report {
        seed: cfg.seed,
        durability: cfg.durability.clone(),
        netns: c.topo.netns,
        slow_disk: String::new(),
        faults: by_kind,
        faults_applied: applied,
        faults_skipped: skipped,
        sent: counters.sent.load(Ordering::Relaxed),
        acked: 0,
        violations: 0,
        lost: 0,
        duplicated: 0,
        phantom_fills: 0,
        split_brain_terms: 0,
        findings: Findings::default(),
        stalls,
        misconfigured_joined: misconfigured.0,
        misconfigured_promoted: misconfigured.1,
        checkpoints_logged: 0,
        diverged: 0,
        diverged_after_rejoin: 0,
        own_exits: Vec::new(),
        client_errors,
        elapsed_s: 0.0,
        dir: None,
        replay: String::new(),
    };
    Ok(((report, obs, primary, feed_end), hist.events()))
}
