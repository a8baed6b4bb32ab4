//! `tpx-sim --seeds N` / `tpx-sim --seed S`: runs seeds, prints failures, exits non-zero on any.

use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};

use tpx_sim::{run_seed, Outcome, SimConfig};

#[derive(Parser, Debug)]
#[command(about = "tpx deterministic cluster simulator")]
struct Args {
    /// Runs seeds `start..start+N`.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of `--seeds`.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replays one seed (overrides `--seeds`).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated steps per seed.
    #[arg(long)]
    steps: Option<u64>,
    /// Chance per step, in millionths, that a node's disk fails its next 1-3 writes (default
    /// 500; 0 turns write faults off).
    #[arg(long)]
    disk_fault_ppm: Option<u32>,
    /// Chance per step, in millionths, that a running node crashes.
    #[arg(long)]
    crash_ppm: Option<u32>,
    /// Lets a node crash only while the other holds the acknowledged records by content (the
    /// default guard compares seqs only, letting a divergent older-term tail count).
    #[arg(long)]
    content_crash_guard: bool,
    /// Lets a node crash also while it alone holds the acknowledged records on its disk (the
    /// other node running): a crash keeps what was flushed, so no one may take over until it
    /// is back.
    #[arg(long)]
    holder_may_crash: bool,
    /// The fault model before the client view (no pauses, power loss, witness state loss,
    /// lagging log or client resets); the flags below still apply on top.
    #[arg(long)]
    classic: bool,
    /// Chance per step, in millionths, that a running node is paused for 0.5-10 timeouts.
    #[arg(long)]
    pause_ppm: Option<u32>,
    /// Chance per step, in millionths, that both nodes lose power (fsync modes only).
    #[arg(long)]
    power_loss_ppm: Option<u32>,
    /// Percent of witness crashes that lose the witness's state file.
    #[arg(long)]
    witness_loss_pct: Option<u32>,
    /// Chance per step, in millionths, per client, that its connection resets.
    #[arg(long)]
    client_reset_ppm: Option<u32>,
    /// Percent of a client's logins that ask for no replay (`requested_next_seq` 0).
    #[arg(long)]
    fresh_login_pct: Option<u32>,
    /// The log commits every 1..=N polls (1: every poll).
    #[arg(long)]
    max_lag_polls: Option<u32>,
    /// Percent of crashes that find the log writer inside a commit (torn write).
    #[arg(long)]
    torn_pct: Option<u32>,
    /// Chance per step, in millionths, that the witness crashes.
    #[arg(long)]
    witness_crash_ppm: Option<u32>,
    /// A crashed node restarts after at most this many steps (default 320).
    #[arg(long)]
    max_restart_steps: Option<u64>,
    /// Matching shards (0: 1-3 from the seed).
    #[arg(long)]
    shards: Option<u32>,
    /// The standby runs another shard map (a configuration mismatch).
    #[arg(long)]
    shard_map_mismatch: bool,
    /// Which client acknowledgements are checked against the surviving logs: all | replies |
    /// duplicates | none (only `acknowledgeable_seq`; `--classic` implies none).
    #[arg(long)]
    client_acks: Option<tpx_sim::AckCheck>,
    /// The default now (kept so older reproduction commands run).
    #[arg(long, hide = true)]
    loose_crash_guard: bool,
    /// Prints one line per seed, not only failures.
    #[arg(long, short)]
    verbose: bool,
    /// Worker threads (seeds are independent; each runs on one thread, single-threaded and
    /// deterministic). Default: the machine's cores.
    #[arg(long)]
    jobs: Option<usize>,
}

/// Runs every seed on `jobs` threads; the outcomes come back in seed order.
fn run_all(seeds: &[u64], cfg: SimConfig, jobs: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Outcome>> = vec![None; seeds.len()];
    let slots: Vec<std::sync::Mutex<Option<Outcome>>> =
        seeds.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= seeds.len() {
                    break;
                }
                let o = run_seed(seeds[k], cfg);
                if let Ok(mut g) = slots[k].lock() {
                    *g = Some(o);
                }
            });
        }
    });
    for (k, m) in slots.into_iter().enumerate() {
        out[k] = m.into_inner().ok().flatten();
    }
    out.into_iter().flatten().collect()
}

fn main() {
    let a = Args::parse();
    let mut cfg = if a.classic {
        SimConfig::classic()
    } else {
        SimConfig::default()
    };
    for (v, f) in [
        (a.pause_ppm, &mut cfg.pause_ppm),
        (a.power_loss_ppm, &mut cfg.power_loss_ppm),
        (a.witness_loss_pct, &mut cfg.witness_loss_pct),
        (a.client_reset_ppm, &mut cfg.client_reset_ppm),
        (a.fresh_login_pct, &mut cfg.fresh_login_pct),
        (a.max_lag_polls, &mut cfg.max_lag_polls),
        (a.torn_pct, &mut cfg.torn_pct),
        (a.witness_crash_ppm, &mut cfg.witness_crash_ppm),
        (a.shards, &mut cfg.shards),
    ] {
        if let Some(v) = v {
            *f = v;
        }
    }
    if let Some(m) = a.max_restart_steps {
        cfg.max_restart_steps = m;
    }
    cfg.shard_map_mismatch = a.shard_map_mismatch;
    if let Some(c) = a.client_acks {
        cfg.client_acks = c;
    }
    if let Some(s) = a.steps {
        cfg.steps = s;
    }
    if let Some(p) = a.disk_fault_ppm {
        cfg.disk_fault_ppm = p;
    }
    if let Some(p) = a.crash_ppm {
        cfg.crash_ppm = p;
    }
    cfg.content_crash_guard = a.content_crash_guard && !a.loose_crash_guard;
    cfg.holder_may_crash = a.holder_may_crash;
    let seeds: Vec<u64> = match a.seed {
        Some(s) => vec![s],
        None => (a.start..a.start.saturating_add(a.seeds)).collect(),
    };
    let t0 = std::time::Instant::now();
    let mut failures = 0u64;
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    for o in run_all(&seeds, cfg, jobs) {
        let line = format!(
            "seed={} trace={:016x} mode={:?} shards={} steps={} submitted={} acked={} \
             client_acks={} duplicate_acks={} client_failovers={} session_replies={} \
             sessions_checked={} deposed_logins={} fresh_logins={} standby_replies={} fills={} books_checked={} fills_replayed={} md_replayed={} state_replayed={} promotions={} \
             crashes={} power_losses={} pauses={} rejoins={} torn={} witness_crashes={} \
             witness_losses={} witness_refusals={} final_checked={} partitions={} disk_faults={} net_resets={} \
             stale_msgs={} failed_restarts={} acked_truncations={}",
            o.seed,
            o.trace_hash,
            o.durability,
            o.shards,
            o.steps,
            o.submitted,
            o.acked,
            o.client_acks,
            o.duplicate_acks,
            o.client_failovers,
            o.session_replies,
            o.sessions_checked,
            o.deposed_logins,
            o.fresh_logins,
            o.standby_replies,
            o.fills,
            o.books_checked,
            o.fills_replayed,
            o.md_replayed,
            o.state_replayed,
            o.promotions,
            o.crashes,
            o.power_losses,
            o.pauses,
            o.rejoins,
            o.torn_tails,
            o.witness_crashes,
            o.witness_losses,
            o.witness_refusals,
            o.final_checked,
            o.partitions,
            o.disk_faults,
            o.net_resets,
            o.stale_msgs,
            o.failed_restarts,
            o.acked_truncations
        );
        match &o.violation {
            Some(v) => {
                failures += 1;
                println!("FAIL {line} {v}");
            }
            None if a.verbose || a.seed.is_some() => println!("ok {line}"),
            None => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "ran seeds {}..={} in {secs:.1}s ({:.0} seeds/min, {jobs} threads)",
        seeds.first().copied().unwrap_or(0),
        seeds.last().copied().unwrap_or(0),
        seeds.len() as f64 * 60.0 / secs.max(1e-9)
    );
    println!("seeds={} failures={failures}", seeds.len());
    if failures > 0 {
        std::process::exit(1);
    }
}
