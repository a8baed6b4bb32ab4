//! The `tpx node` process: starts one node from its config and accounts file, prints its status
//! lines, and stops it on SIGINT/SIGTERM or when the node stops itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::appliance::start::Node;
use crate::appliance::systemd;
use crate::config::NodeConfig;
use crate::gateway::accounts::Accounts;
use crate::runtime::lines::say;
use crate::runtime::{clock, memory_lock};
use crate::sequencing::stage::StartRole;

/// Installs SIGINT/SIGTERM handlers that set the returned flag.
pub fn termination_flag() -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    Ok(flag)
}

pub fn fmt_price(ticks: i64, tick_size: u64) -> String {
    // Quote minor units are 1e-6 USDT (display only).
    let v = ticks as f64 * tick_size as f64 / 1e6;
    if tick_size >= 1_000_000 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn tops_line(node: &Node, cfg: &NodeConfig) -> String {
    let shared = node.shared();
    tops_of(cfg, |k| shared.top(k))
}

/// `BTC-USDT 60001x5/60003x2  ETH-USDT ...` for the config's instruments, from `top(index)`.
pub fn tops_of(
    cfg: &NodeConfig,
    top: impl Fn(usize) -> (Option<(i64, u64)>, Option<(i64, u64)>),
) -> String {
    let mut parts = Vec::new();
    for (k, i) in cfg.instruments().iter().enumerate() {
        let (bid, ask) = top(k);
        let side = |s: Option<(i64, u64)>| {
            s.map_or("-".to_string(), |(p, q)| {
                format!("{}x{q}", fmt_price(p, i.tick_size))
            })
        };
        parts.push(format!("{} {}/{}", i.symbol, side(bid), side(ask)));
    }
    parts.join("  ")
}

/// Set by `tpx up` on its node children: print `tpx node: TOPS ...` once a second (the parent
/// shows the primary's next to its feed handler's).
pub const PRINT_TOPS_ENV: &str = "TPX_PRINT_TOPS";

/// Runs `tpx node --config PATH --role primary|standby` until SIGINT/SIGTERM, or until the
/// node stops itself. Prints `tpx node: listening on ADDR` first (scripts and the e2e bench read
/// it to learn an ephemeral port), `tpx node: READY` (and systemd's `READY=1`) once the
/// recovered log is in the shards, then `tpx node: ROLE ...` lines on every role change. Returns
/// the exit status: 0, or [`crate::sequencing::feed::EXIT_REJOIN`] when the node cut its log's tail
/// and must be restarted (as standby) to rebuild its shards.
pub fn serve(config: &std::path::Path, role: StartRole) -> Result<u8, String> {
    let term = termination_flag()?;
    let cfg = NodeConfig::load(config)?;
    let accounts = Accounts::load(&cfg.accounts_file)?;
    let n_accounts = accounts.len();
    let mut node = Node::start_as(&cfg, accounts, role)?;
    say(format_args!("tpx node: listening on {}", node.addr()));
    say(format_args!(
        "tpx node: {} accounts, {} cores, {:?} idle, {} log, risk {}",
        n_accounts,
        node.plan().cores.len(),
        cfg.idle,
        match cfg.log {
            crate::config::LogMode::Durable => "durable",
            crate::config::LogMode::InProcess => "in-process",
        },
        if cfg.risk.is_some() { "on" } else { "off" }
    ));
    let print_tops = std::env::var_os(PRINT_TOPS_ENV).is_some();
    let mut last_tops_ns = clock::now_ns();
    let mut last_status_ns = 0;
    let mut ready = false;
    let mut watchdog = systemd::Watchdog::from_env(clock::now_ns());
    while !term.load(Ordering::Relaxed) && !node.shared().shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let now_ns = clock::now_ns();
        if !ready && node.shared().replay_done.load(Ordering::Acquire) {
            ready = true;
            if cfg.lock_memory {
                // After the replay: the shards' tables, the rings and the log buffers exist.
                match memory_lock::lock_all() {
                    Ok(()) => say(format_args!(
                        "tpx node: LOCKED memory: mlockall(current, future), VmLck {} KiB",
                        memory_lock::locked_kib().unwrap_or(0)
                    )),
                    Err(e) => say(format_args!("tpx node: WARNING memory not locked: {e}")),
                }
            }
            systemd::ready(node.shared());
            say(format_args!("tpx node: READY"));
        }
        if now_ns.saturating_sub(last_status_ns) >= 1_000_000_000 {
            last_status_ns = now_ns;
            systemd::status(node.shared());
        }
        if let Some(w) = watchdog.as_mut() {
            if w.due(now_ns, node.shared().core_cycles()) {
                systemd::ping();
            }
        }
        if print_tops && now_ns.saturating_sub(last_tops_ns) >= 1_000_000_000 {
            last_tops_ns = now_ns;
            say(format_args!("tpx node: TOPS {}", tops_line(&node, &cfg)));
        }
    }
    systemd::stopping();
    let st = &node.shared().stats;
    let (seq, trades) = (
        st.sequenced.load(Ordering::Relaxed),
        st.trades.load(Ordering::Relaxed),
    );
    let code = node.shared().exit_code.load(Ordering::Relaxed) as u8;
    let acked = node.shared().acked_seq.load(Ordering::Relaxed);
    node.stop();
    say(format_args!(
        "tpx node: stopped after {seq} orders sequenced, {trades} trades, acknowledged up to seq {acked}"
    ));
    Ok(code)
}
