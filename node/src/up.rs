//! `tpx up`: the whole appliance on one machine, with the built-in instruments and generated demo
//! accounts; `--demo` adds simulated traders and a line of numbers a second.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accounts::{demo_accounts, demo_accounts_file, Accounts};
use crate::config::NodeConfig;
use crate::demo::Demo;
use crate::node::Node;

/// Options of `tpx up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub demo: bool,
    /// Stop after this long (default: run until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    pub listen: SocketAddr,
    /// A node config to start from (its accounts file is replaced by the demo accounts).
    pub config: Option<PathBuf>,
    pub makers: usize,
    pub takers: usize,
}

/// Installs SIGINT/SIGTERM handlers that set the returned flag.
pub fn termination_flag() -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    Ok(flag)
}

fn fmt_price(ticks: i64, tick_size: u64) -> String {
    // Quote minor units are 1e-6 USDT; display only.
    let v = ticks as f64 * tick_size as f64 / 1e6;
    if tick_size >= 1_000_000 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn tops_line(node: &Node, cfg: &NodeConfig) -> String {
    let shared = node.shared();
    let instruments = cfg.instruments();
    let mut parts = Vec::new();
    for (k, (_, symbol)) in shared.instruments.iter().enumerate() {
        let tick = instruments.get(k).map_or(1_000_000, |i| i.tick_size);
        let (bid, ask) = shared.top(k);
        let side = |s: Option<(i64, u64)>| {
            s.map_or("-".to_string(), |(p, q)| {
                format!("{}x{q}", fmt_price(p, tick))
            })
        };
        parts.push(format!("{symbol} {}/{}", side(bid), side(ask)));
    }
    parts.join("  ")
}

/// Runs `tpx node --config PATH` until SIGINT/SIGTERM. Prints `tpx node: listening on ADDR`
/// first (scripts and the e2e bench read it to learn an ephemeral port).
pub fn serve(config: &std::path::Path) -> Result<(), String> {
    let term = termination_flag()?;
    let cfg = NodeConfig::load(config)?;
    let accounts = Accounts::load(&cfg.accounts_file)?;
    let n_accounts = accounts.len();
    let mut node = Node::start(&cfg, accounts)?;
    println!("tpx node: listening on {}", node.addr());
    println!(
        "tpx node: {} accounts, {} cores, {:?} idle",
        n_accounts,
        node.plan().cores.len(),
        cfg.idle
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = &node.shared().stats;
    let (seq, trades) = (
        st.sequenced.load(Ordering::Relaxed),
        st.trades.load(Ordering::Relaxed),
    );
    node.stop();
    println!("tpx node: stopped after {seq} orders sequenced, {trades} trades");
    Ok(())
}

/// Runs `tpx up`.
pub fn run(opts: UpOptions) -> Result<(), String> {
    let term = termination_flag()?;
    let mut cfg = match &opts.config {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::default(),
    };
    if opts.config.is_none() {
        cfg.listen = opts.listen;
    }
    let demo_accts = demo_accounts(8);
    let dir = std::env::temp_dir().join(format!("tpx-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let file = demo_accounts_file(&demo_accts, 1_000_000);
    let path = dir.join("accounts.toml");
    let text = toml::to_string(&file).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    cfg.accounts_file = path.clone();
    let accounts = Accounts::load(&path)?;

    let node = Node::start(&cfg, accounts)?;
    let plan = node.plan().clone();
    println!(
        "tpx up: order entry on {} ({:?} idle)",
        node.addr(),
        cfg.idle
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
        path.display()
    );

    if let Some(p) = node.stats_path() {
        println!(
            "  stats: {} (tpx stat --port {})",
            p.display(),
            node.addr().port()
        );
    }

    let instrument_ids: Vec<u32> = node.shared().instruments.iter().map(|(i, _)| *i).collect();
    let demo = opts.demo.then(|| {
        Demo::start(
            node.addr(),
            &demo_accts,
            opts.makers,
            opts.takers,
            instrument_ids,
            node.shared().clone(),
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
        let lat = demo.as_ref().map_or(String::new(), |d| {
            let mut h = d.stats.interval.lock().unwrap_or_else(|e| e.into_inner());
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
        });
        println!(
            "[{secs:>4}s] {rate:>9.0} orders/s | {lat} | trades {trades} | {}",
            tops_line(&node, &cfg)
        );
    }

    let demo_result = demo.map(|d| {
        let stats = d.stats.clone();
        let errs = d.stop();
        (stats, errs)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let st = &node.shared().stats;
    let seq = st.sequenced.load(Ordering::Relaxed);
    let trades = st.trades.load(Ordering::Relaxed);
    println!("---- summary ----");
    println!(
        "ran {elapsed:.1}s: {seq} orders sequenced ({:.0}/s), {trades} trades",
        seq as f64 / elapsed.max(1e-9)
    );
    if let Some((stats, errs)) = &demo_result {
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
        println!(
            "demo clients: {} requests sent, {} rejected, {} errors",
            stats.sent.load(Ordering::Relaxed),
            stats.rejected.load(Ordering::Relaxed),
            errs.len()
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
    println!("books: {}", tops_line(&node, &cfg));
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    println!("tpx up: stopped");
    Ok(())
}
