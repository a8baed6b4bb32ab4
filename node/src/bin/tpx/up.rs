//! `tpx up`: the whole appliance on one machine, with the built-in instruments and generated demo
//! accounts; `--demo` adds simulated traders and a line of numbers a second.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::demo::Demo;
use tpx_node::appliance::serve::{termination_flag, tops_line, tops_of, PRINT_TOPS_ENV};
use tpx_node::appliance::start::Node;
use tpx_node::config::NodeConfig;
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file, Accounts};

/// Options of `tpx up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub demo: bool,
    /// One node in this process instead of primary + standby + witness processes.
    pub single: bool,
    /// Where the logs go (default: a fresh temp folder, removed at exit).
    pub dir: Option<PathBuf>,
    /// Stop after this long (default: run until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    pub listen: SocketAddr,
    /// A node config to start from (its accounts file is replaced by the demo accounts).
    pub config: Option<PathBuf>,
    pub makers: usize,
    pub takers: usize,
    /// Run the shards with risk off (no `[risk]`; for comparison). Default: risk on.
    pub no_risk: bool,
}

/// Runs `tpx up`: three processes (witness, primary, standby) or, with `--single`, one node in
/// this process.
pub fn run(opts: UpOptions) -> Result<(), String> {
    let term = termination_flag()?;
    let mut cfg = match &opts.config {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::default(),
    };
    if opts.config.is_none() {
        cfg.listen = opts.listen;
        // Accounts and pre-trade risk on, with the built-in instruments' parameters.
        if !opts.no_risk {
            cfg.risk = Some(tpx_node::config::builtin_risk());
        }
    }
    let demo_accts = demo_accounts(8);
    let (dir, remove_dir) = match &opts.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("tpx-up-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut with_admin = demo_accts.clone();
    if cfg.risk.is_some() {
        with_admin.push(crate::funding::demo_admin());
    }
    let file = demo_accounts_file(&with_admin, 1_000_000);
    let path = dir.join("accounts.toml");
    let text = toml::to_string(&file).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    cfg.accounts_file = path.clone();
    let r = if opts.single {
        run_single(&opts, cfg, &dir, &path, &demo_accts, &term)
    } else {
        run_cluster(&opts, cfg, &dir, &path, &demo_accts, &term)
    };
    if remove_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("tpx up: stopped");
    r
}

/// Risk on: funds the demo accounts through admin deposits (see `funding.rs`).
fn fund_demo(
    addr: SocketAddr,
    cfg: &NodeConfig,
    demo_accts: &[tpx_node::gateway::accounts::DemoAccount],
) -> Result<(), String> {
    if cfg.risk.is_none() {
        println!("  risk off (the config has no [risk] section)");
        return Ok(());
    }
    let balances = crate::funding::shard_assets(cfg)?;
    let admin = crate::funding::demo_admin();
    let f = crate::funding::fund(addr, &admin, demo_accts, &balances)?;
    println!(
        "  risk on: admin account {} (token {}) funded accounts 1..={} on every shard: {} deposits applied, {} already applied, {} refused",
        admin.id,
        admin.token,
        demo_accts.len(),
        f.accepted,
        f.duplicates,
        f.rejected
    );
    Ok(())
}

/// The demo's admin account and the perpetuals it marks (risk on).
fn demo_admin_of(cfg: &NodeConfig) -> Option<(tpx_node::gateway::accounts::DemoAccount, Vec<u32>)> {
    cfg.risk.as_ref()?;
    let perps = cfg
        .instruments()
        .iter()
        .filter(|i| i.kind == "linear_perp")
        .map(|i| i.id)
        .collect();
    Some((crate::funding::demo_admin(), perps))
}

fn ack_line(demo: &Demo) -> String {
    let mut h = demo
        .stats
        .interval
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let s = if h.is_empty() {
        "ack -".to_string()
    } else {
        format!(
            "ack p50 {}us p99 {}us p99.9 {}us",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        )
    };
    h.reset();
    s
}

fn demo_summary(demo: Option<Demo>) {
    let Some(d) = demo else { return };
    let stats = d.stats.clone();
    let errs = d.stop();
    {
        let h = stats.total.lock().unwrap_or_else(|e| e.into_inner());
        if !h.is_empty() {
            println!(
                "ack round trip over {} orders: p50 {}us p99 {}us p99.9 {}us max {}us",
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
    }
    println!(
        "demo clients: {} requests sent, {} rejected ({} for balance/margin), {} errors, {} failovers; marks and funding: {} accepted, {} refused",
        stats.sent.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        stats.risk_rejects(),
        errs.len(),
        stats.failovers.load(Ordering::Relaxed),
        stats.admin_accepted.load(Ordering::Relaxed),
        stats.admin_rejected.load(Ordering::Relaxed)
    );
    let reasons: Vec<String> = stats
        .reject_reasons()
        .iter()
        .map(|(r, n)| format!("{r:?} {n}"))
        .collect();
    if !reasons.is_empty() {
        println!(
            "  rejects by reason: {} (a maker's replace of a quote that has just traded is UnknownOrder)",
            reasons.join(", ")
        );
    }
    for e in errs {
        println!("  demo error: {e}");
    }
}

fn run_single(
    opts: &UpOptions,
    mut cfg: NodeConfig,
    dir: &std::path::Path,
    accounts_path: &std::path::Path,
    demo_accts: &[tpx_node::gateway::accounts::DemoAccount],
    term: &AtomicBool,
) -> Result<(), String> {
    let mut repl = cfg.replication();
    if repl.log_dir.is_relative() {
        repl.log_dir = dir.join("log");
    }
    cfg.replication = Some(repl);
    let accounts = Accounts::load(accounts_path)?;
    if opts.demo && cfg.md.is_none() {
        cfg.md = Some(tpx_node::config::md::MdConfig::demo());
    }
    let node = Node::start(&cfg, accounts)?;
    let feed = crate::demo_feed::DemoFeed::for_node(&node);
    let plan = node.plan().clone();
    println!(
        "tpx up: one node (--single), order entry on {} ({:?} idle), log {} ({:?})",
        node.addr(),
        cfg.idle,
        cfg.replication().log_dir.display(),
        cfg.replication().durability()?
    );
    for c in &plan.cores {
        let mut roles = Vec::new();
        if c.gateway {
            roles.push("gateway".to_string());
        }
        if c.sequencer {
            roles.push("sequencer".to_string());
        }
        for s in &c.shards {
            roles.push(format!("shard {s}"));
        }
        println!("  cpu {}: {}", c.cpu, roles.join(", "));
    }
    let symbols: Vec<&str> = node
        .shared()
        .instruments
        .iter()
        .map(|(_, s)| s.as_str())
        .collect();
    println!("  instruments: {}", symbols.join(", "));
    println!(
        "  demo accounts 1..=8, tokens demo-token-<id> (SHA-256 hashes in {})",
        accounts_path.display()
    );

    if let Some(p) = node.stats_path() {
        println!(
            "  stats: {} (tpx stat --port {})",
            p.display(),
            node.addr().port()
        );
    }

    fund_demo(node.addr(), &cfg, demo_accts)?;
    println!("tpx up: ready, order entry on {}", node.addr());
    let instrument_ids: Vec<u32> = node.shared().instruments.iter().map(|(i, _)| *i).collect();
    let demo = opts.demo.then(|| {
        Demo::start(
            vec![node.addr()],
            demo_accts,
            opts.makers,
            opts.takers,
            instrument_ids,
            node.shared().clone(),
            demo_admin_of(&cfg),
        )
    });

    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_seq = 0u64;
    let mut secs = 0u64;
    loop {
        if term.load(Ordering::Relaxed) {
            println!("tpx up: signal received, shutting down");
            break;
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if last_tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let dt = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        secs += 1;
        let st = &node.shared().stats;
        let seq = st.sequenced.load(Ordering::Relaxed);
        let rate = (seq - last_seq) as f64 / dt;
        last_seq = seq;
        let trades = st.trades.load(Ordering::Relaxed);
        let lat = demo.as_ref().map_or(String::new(), ack_line);
        println!(
            "[{secs:>4}s] {rate:>9.0} orders/s | {lat} | trades {trades} | {}",
            tops_line(&node, &cfg)
        );
        if let Some(f) = &feed {
            println!("       md: {}", f.line(&node, &cfg));
        }
    }
    demo_summary(demo);
    let elapsed = started.elapsed().as_secs_f64();
    let st = &node.shared().stats;
    let seq = st.sequenced.load(Ordering::Relaxed);
    let trades = st.trades.load(Ordering::Relaxed);
    println!("---- summary ----");
    println!(
        "ran {elapsed:.1}s: {seq} orders sequenced ({:.0}/s), {trades} trades",
        seq as f64 / elapsed.max(1e-9)
    );
    println!("books: {}", tops_line(&node, &cfg));
    if let Some(f) = feed {
        println!("market data: {}", f.line(&node, &cfg));
        f.stop();
    }
    drop(node);
    Ok(())
}

/// One child process of `tpx up` and what it last said about its role.
struct Child {
    name: String,
    args: Vec<String>,
    proc: std::process::Child,
    role: Arc<std::sync::Mutex<String>>,
    /// The term its last `ROLE` line named (0: none yet).
    term: Arc<std::sync::atomic::AtomicU64>,
    /// The last `TOPS` line the child printed (node children under `tpx up --demo`).
    tops: Arc<std::sync::Mutex<String>>,
}

fn spawn_child(tpx: &std::path::Path, name: &str, args: Vec<String>) -> Result<Child, String> {
    use std::io::BufRead as _;
    let mut proc = std::process::Command::new(tpx)
        .args(&args)
        .env(PRINT_TOPS_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?;
    let term = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let role = Arc::new(std::sync::Mutex::new(
        if name == "witness" {
            "witness"
        } else {
            "starting"
        }
        .to_string(),
    ));
    let tops = Arc::new(std::sync::Mutex::new(String::new()));
    if let Some(out) = proc.stdout.take() {
        let (role, term, tops, name) = (role.clone(), term.clone(), tops.clone(), name.to_string());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(t) = line.strip_prefix("tpx node: TOPS ") {
                    *tops.lock().unwrap_or_else(|e| e.into_inner()) = t.to_string();
                    continue;
                }
                if let Some(r) = line.split("ROLE ").nth(1) {
                    *role.lock().unwrap_or_else(|e| e.into_inner()) =
                        r.split_whitespace().next().unwrap_or("?").to_string();
                    let t = r
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("term="))
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    term.store(t, Ordering::Relaxed);
                }
                println!("  [{name}] {line}");
            }
        });
    }
    Ok(Child {
        name: name.to_string(),
        args,
        proc,
        role,
        term,
        tops,
    })
}

fn stop_child(c: &mut Child) {
    if let Ok(None) = c.proc.try_wait() {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(c.proc.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = c.proc.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.proc.kill();
    }
    let _ = c.proc.wait();
}

/// The machine's CPUs in the order the standby's default plan takes them: rotated by one, so
/// that its gateway and sequencer core is the primary's shard CPU and the other way round (on
/// two CPUs). Measured in ARCHITECTURE.md, "The latency lab".
fn standby_cpus() -> Vec<usize> {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    rotated(&cpus)
}

/// `cpus` rotated left by one (empty stays empty).
fn rotated(cpus: &[usize]) -> Vec<usize> {
    let mut v = cpus.to_vec();
    if !v.is_empty() {
        v.rotate_left(1);
    }
    v
}

fn port_plus(addr: SocketAddr, k: u16) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port().wrapping_add(k))
}

fn run_cluster(
    opts: &UpOptions,
    cfg: NodeConfig,
    dir: &std::path::Path,
    accounts_path: &std::path::Path,
    demo_accts: &[tpx_node::gateway::accounts::DemoAccount],
    term: &AtomicBool,
) -> Result<(), String> {
    let tpx = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let base = cfg.listen;
    let witness_addr = port_plus(base, 100);
    let repl = [port_plus(base, 101), port_plus(base, 102)];
    let entry = [base, port_plus(base, 1)];
    // Market data with --demo: one media driver for the machine, in this process (as an
    // external `aeronmd` would be in production); both nodes publish through it on `aeron:ipc`
    // (the standby only numbers its packets until it takes over), and the demo's feed handler
    // subscribes through it.
    let md_driver = if opts.demo && cfg.md.is_none() {
        match tpx_node::shard::md::launch_driver(&tpx_node::config::md::MdConfig::demo()) {
            Ok(d) => Some(d),
            Err(e) => {
                println!("tpx up: no market data: {e}");
                None
            }
        }
    } else {
        None
    };
    let demo_md = md_driver.as_ref().map(|d| tpx_node::config::md::MdConfig {
        aeron_dir: Some(d.dir().to_string()),
        ..tpx_node::config::md::MdConfig::demo()
    });
    let mut cfgs = Vec::new();
    for k in 0..2 {
        let mut c = cfg.clone();
        if let Some(md) = &demo_md {
            c.md = Some(md.clone());
        }
        c.listen = entry[k];
        c.accounts_file = accounts_path.to_path_buf();
        if k == 1 && c.core_plan.is_none() && c.core_plan_file.is_none() {
            // The standby's plan is the primary's on the CPUs in the other order, so that the
            // two sequencing cores (the replication round trip's ends) do not share a CPU.
            c.core_plan = Some(tpx_node::config::CorePlan::for_cpus(&standby_cpus()));
        }
        let mut r = cfg.replication();
        r.node_id = k as u32 + 1;
        r.peer_id = 2 - k as u32;
        r.listen = Some(repl[k]);
        r.peer_addr = Some(repl[1 - k]);
        r.witness_addr = Some(witness_addr);
        r.log_dir = dir.join(format!("node-{}", k + 1));
        c.replication = Some(r);
        let path = dir.join(format!("node-{}.toml", k + 1));
        let text = toml::to_string(&c).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        cfgs.push(path);
    }
    println!(
        "tpx up: witness on {witness_addr}, node 1 (primary) order entry {} replication {}, node 2 (standby) order entry {} replication {}; logs under {}",
        entry[0],
        repl[0],
        entry[1],
        repl[1],
        dir.display()
    );
    println!(
        "  demo accounts 1..=8, tokens demo-token-<id> (SHA-256 hashes in {})",
        accounts_path.display()
    );
    let mut children = vec![spawn_child(
        &tpx,
        "witness",
        vec![
            "witness".into(),
            "--listen".into(),
            witness_addr.to_string(),
            "--state-file".into(),
            dir.join("witness.state").display().to_string(),
        ],
    )?];
    let has_role = |children: &[Child], role: &str| {
        children
            .iter()
            .any(|c| *c.role.lock().unwrap_or_else(|e| e.into_inner()) == role)
    };
    for (k, role) in ["primary", "standby"].iter().enumerate() {
        if k == 1 {
            // The standby starts once the primary holds its term (a standby that hears no
            // primary for `timeout_us` asks for the term itself).
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) && !has_role(&children, "primary") {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let c = spawn_child(
            &tpx,
            &format!("node-{}", k + 1),
            vec![
                "node".into(),
                "--config".into(),
                cfgs[k].display().to_string(),
                "--role".into(),
                role.to_string(),
            ],
        );
        match c {
            Ok(c) => children.push(c),
            Err(e) => {
                children.iter_mut().for_each(stop_child);
                return Err(e);
            }
        }
    }
    // Wait (bounded) for a primary before starting the demo load, and for the other node to
    // follow it (its `ROLE standby` line names the primary's term): from then on the primary's
    // acknowledgements wait for the standby too (`replicated`), so what is acknowledged after
    // `ready` (the demo's funding first) is on both nodes and a primary killed right after
    // `ready` leaves a standby the witness can promote. (Without this wait a kill soon after
    // `ready` could find the standby not yet started: the funding, acknowledged by the primary
    // alone, was then on no other disk, and the witness rightly refused the standby,
    // `MissingAcked`, until the killed node came back.)
    let term_of = |children: &[Child], role: &str| {
        children
            .iter()
            .find(|c| *c.role.lock().unwrap_or_else(|e| e.into_inner()) == role)
            .map(|c| c.term.load(Ordering::Relaxed))
    };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20)
        && !matches!(
            (term_of(&children, "primary"), term_of(&children, "standby")),
            (Some(p), Some(s)) if p > 0 && s == p
        )
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let roles = |children: &[Child]| {
        children
            .iter()
            .map(|c| {
                format!(
                    "{} (pid {}): {}",
                    c.name,
                    c.proc.id(),
                    c.role.lock().unwrap_or_else(|e| e.into_inner())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("tpx up: {}", roles(&children));
    let feed = demo_md.as_ref().and_then(|m| {
        let dir = m.aeron_dir.clone().unwrap_or_default();
        let shards = cfg.plan().map_or(1, |p| p.shard_count()) as u16;
        let configs = (0..shards)
            .map(|sh| {
                crate::demo_feed::feed_config_of(
                    m,
                    sh,
                    tpx_md::AeronSetup::External { dir: dir.clone() },
                )
            })
            .collect();
        let ids = cfg.instruments().iter().map(|i| i.id).collect();
        match crate::demo_feed::DemoFeed::start_with(configs, ids) {
            Ok(f) => Some(f),
            Err(e) => {
                println!("tpx up: no market-data subscriber: {e}");
                None
            }
        }
    });
    let books = |children: &[Child]| {
        let node = children
            .iter()
            .find(|c| *c.role.lock().unwrap_or_else(|e| e.into_inner()) == "primary")
            .map(|c| c.tops.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let mut out = format!("       node (primary): {node}");
        if let Some(f) = &feed {
            out.push_str(&format!(
                "\n       feed handler:   {}  md_seq={} gaps={}",
                tops_of(&cfg, |k| f.top(k)),
                f.next_seq.load(Ordering::Relaxed),
                f.gaps.load(Ordering::Relaxed)
            ));
        }
        out
    };
    let primary_entry = children
        .iter()
        .position(|c| *c.role.lock().unwrap_or_else(|e| e.into_inner()) == "primary")
        .map_or(entry[0], |i| entry[(i - 1).min(1)]);
    let instrument_ids: Vec<u32> = cfg.instruments().iter().map(|i| i.id).collect();
    let local = Arc::new(tpx_node::runtime::state::NodeState::new(
        cfg.instruments()
            .iter()
            .map(|i| (i.id, i.symbol.clone()))
            .collect(),
    ));
    if let Err(e) = fund_demo(primary_entry, &cfg, demo_accts) {
        println!("tpx up: {e}");
    }
    println!("tpx up: ready, order entry on {primary_entry}");
    let demo = opts.demo.then(|| {
        Demo::start(
            // The primary first; the clients fail over to the other node after a takeover.
            std::iter::once(primary_entry)
                .chain(entry.iter().copied().filter(|a| *a != primary_entry))
                .collect(),
            demo_accts,
            opts.makers,
            opts.takers,
            instrument_ids,
            local,
            demo_admin_of(&cfg),
        )
    });
    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_sent = 0u64;
    let mut secs = 0u64;
    loop {
        if term.load(Ordering::Relaxed) {
            println!("tpx up: signal received, shutting down");
            break;
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        // A node that cut its log's tail on rejoining exits with EXIT_REJOIN: restart it as
        // standby (its shards are rebuilt by replaying its log).
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.proc.try_wait() {
                if status.code() == Some(i32::from(tpx_node::sequencing::feed::EXIT_REJOIN)) {
                    println!(
                        "tpx up: {} exited to rejoin; restarting it as standby",
                        c.name
                    );
                    let mut args = c.args.clone();
                    if let Some(r) = args.iter_mut().last() {
                        *r = "standby".into();
                    }
                    match spawn_child(&tpx, &c.name, args) {
                        Ok(n) => *c = n,
                        Err(e) => println!("tpx up: {e}"),
                    }
                } else if *c.role.lock().unwrap_or_else(|e| e.into_inner()) != "exited" {
                    println!("tpx up: {} exited ({status})", c.name);
                    *c.role.lock().unwrap_or_else(|e| e.into_inner()) = "exited".into();
                }
            }
        }
        if last_tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let dt = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        secs += 1;
        let line = match &demo {
            Some(d) => {
                let sent = d.stats.sent.load(Ordering::Relaxed);
                let rate = (sent - last_sent) as f64 / dt;
                last_sent = sent;
                format!("{rate:>9.0} requests/s | {} | ", ack_line(d))
            }
            None => String::new(),
        };
        println!("[{secs:>4}s] {line}{}", roles(&children));
        println!("{}", books(&children));
    }
    let load_stopped = demo.is_some();
    demo_summary(demo);
    if load_stopped && feed.is_some() {
        // The books are still now: let the primary print its tops once more and the feed
        // handler catch up, so the summary compares the same moment.
        std::thread::sleep(Duration::from_millis(1500));
    }
    println!("---- summary ----");
    println!(
        "ran {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        roles(&children)
    );
    println!("{}", books(&children));
    // Standby first (so the primary's shutdown is not taken for a failure), then the primary,
    // then the witness.
    children.sort_by_key(
        |c| match c.role.lock().unwrap_or_else(|e| e.into_inner()).as_str() {
            "witness" => 2,
            "primary" => 1,
            _ => 0,
        },
    );
    for c in children.iter_mut() {
        stop_child(c);
    }
    // The subscriber, then the driver the nodes published through.
    drop(feed);
    drop(md_driver);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rotated;
    use tpx_node::config::CorePlan;

    /// On two CPUs the standby's gateway and sequencer core is the primary's shard CPU and the
    /// other way round; on more, the sequencing cores still differ; the shard count (part of
    /// the configuration digest the pair must share) is the same.
    #[test]
    fn the_standby_plan_puts_its_sequencer_on_another_cpu() {
        for cpus in [vec![0, 1], vec![0, 1, 2, 3], vec![4, 6]] {
            let primary = CorePlan::for_cpus(&cpus);
            let standby = CorePlan::for_cpus(&rotated(&cpus));
            let seq_cpu = |p: &CorePlan| p.cores.iter().find(|c| c.sequencer).map(|c| c.cpu);
            assert_ne!(seq_cpu(&primary), seq_cpu(&standby), "{cpus:?}");
            assert_eq!(primary.shard_count(), standby.shard_count(), "{cpus:?}");
        }
        let standby = CorePlan::for_cpus(&rotated(&[0, 1]));
        assert_eq!(standby.cores[0].cpu, 1);
        assert!(standby.cores[0].sequencer && standby.cores[0].gateway);
        assert_eq!(
            (standby.cores[1].cpu, &standby.cores[1].shards),
            (0, &vec![0])
        );
        assert_eq!(rotated(&[3]), vec![3]);
        assert!(rotated(&[]).is_empty());
    }
}
