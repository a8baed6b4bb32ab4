//! `tpx stat`: prints a running node's counters and per-stage latencies, read from its
//! shared-memory stats file (see `tpx_node::observe::stats`), once per interval; `--json` prints one JSON
//! object per line instead.

use std::path::PathBuf;
use std::time::Duration;

use tpx_node::observe::stats::{default_path, Snapshot, StatsMap};

/// Options of `tpx stat`.
#[derive(Clone, Debug)]
pub struct StatOptions {
    pub path: Option<PathBuf>,
    pub port: u16,
    pub interval: Duration,
    pub count: Option<u64>,
    pub json: bool,
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// The text `tpx stat` prints for one snapshot (`prev` for rates).
pub fn format_text(s: &Snapshot, prev: Option<&Snapshot>, secs: f64) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let rate = |now: u64, before: Option<u64>| {
        before.map_or("-".to_string(), |b| {
            format!("{:.0}", now.saturating_sub(b) as f64 / secs)
        })
    };
    let _ = writeln!(
        o,
        "node pid {}  sequenced {} ({}/s)  applied {}  trades {} ({}/s)",
        s.pid,
        s.sequenced,
        rate(s.sequenced, prev.map(|p| p.sequenced)),
        s.applied,
        s.trades,
        rate(s.trades, prev.map(|p| p.trades)),
    );
    for c in &s.cores {
        let pc = prev.and_then(|p| p.cores.iter().find(|x| x.core == c.core));
        let counters: Vec<String> = c
            .counters
            .iter()
            .map(|(n, v)| {
                let before = pc.and_then(|p| p.counters.iter().find(|x| x.0 == *n).map(|x| x.1));
                format!("{n} {v} ({}/s)", rate(*v, before))
            })
            .collect();
        let _ = writeln!(o, "core {}: {}", c.core, counters.join("  "));
        let _ = writeln!(
            o,
            "  {:<22} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "stage (us, since start)", "count", "mean", "p50", "p99", "p99.9", "max"
        );
        for st in &c.stages {
            let _ = writeln!(
                o,
                "  {:<22} {:>12} {:>9.1} {:>9} {:>9} {:>9} {:>9}",
                st.stage,
                st.count,
                st.mean_ns / 1e3,
                us(st.p50_ns),
                us(st.p99_ns),
                us(st.p999_ns),
                us(st.max_ns)
            );
        }
    }
    o
}

/// Runs `tpx stat`.
pub fn run(opts: StatOptions) -> Result<(), String> {
    let path = opts.path.clone().unwrap_or_else(|| default_path(opts.port));
    let map = StatsMap::open(&path)?;
    let mut prev: Option<Snapshot> = None;
    let mut n = 0u64;
    loop {
        let s = map.snapshot();
        if opts.json {
            let v = serde_json::json!({
                "path": path.display().to_string(),
                "interval_s": opts.interval.as_secs_f64(),
                "snapshot": s,
            });
            println!("{v}");
        } else {
            print!(
                "{}",
                format_text(&s, prev.as_ref(), opts.interval.as_secs_f64())
            );
            println!();
        }
        n += 1;
        if opts.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        prev = Some(s);
        std::thread::sleep(opts.interval);
        if std::fs::metadata(&path).is_err() {
            return Err(format!("{}: the node is gone", path.display()));
        }
    }
}
