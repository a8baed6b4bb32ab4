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

/// A stats file whose heartbeat is older than this is stale (the publisher writes it every
/// 100 ms): the node is gone or wedged.
pub const STALE_AFTER_NS: u64 = 1_000_000_000;

/// The text `tpx stat` prints for one snapshot (`prev` for rates), in AeronStat's layout: a
/// header (the time, the node's pid, the heartbeat's age, a warning when the file is stale),
/// then one `id: value - label` line per counter, numbered in a fixed order (node-wide first,
/// then each gateway core's), then each core's stage table.
pub fn format_text(s: &Snapshot, prev: Option<&Snapshot>, secs: f64, now_unix_ns: u64) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let rate = |now: u64, before: Option<u64>| {
        before.map_or(String::new(), |b| {
            format!(" ({:.0}/s)", now.saturating_sub(b) as f64 / secs)
        })
    };
    let age_ns = now_unix_ns.saturating_sub(s.heartbeat_unix_ns);
    let secs_of_day = now_unix_ns / 1_000_000_000 % 86_400;
    let _ = writeln!(
        o,
        "{:02}:{:02}:{:02} UTC - tpx stat {} - pid {} - heartbeat age {} ms",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        env!("CARGO_PKG_VERSION"),
        s.pid,
        age_ns / 1_000_000
    );
    if s.heartbeat_unix_ns == 0 || age_ns > STALE_AFTER_NS {
        let _ = writeln!(
            o,
            "WARNING: the stats file is stale (no heartbeat for {:.1} s): the node is not running or not publishing",
            age_ns as f64 / 1e9
        );
    }
    let _ = writeln!(o, "{}", "=".repeat(72));
    let mut id = 0;
    let mut line = |o: &mut String, v: u64, before: Option<u64>, label: &str| {
        let _ = writeln!(o, "{id:3}: {v:>20} - {label}{}", rate(v, before));
        id += 1;
    };
    line(&mut o, s.sequenced, prev.map(|p| p.sequenced), "sequenced");
    line(&mut o, s.applied, prev.map(|p| p.applied), "applied");
    line(&mut o, s.trades, prev.map(|p| p.trades), "trades");
    line(&mut o, s.checkpoint_seq, None, "last checkpoint seq");
    line(
        &mut o,
        s.checkpoints_matched,
        prev.map(|p| p.checkpoints_matched),
        "checkpoints matched",
    );
    line(
        &mut o,
        s.checkpoint_mismatches,
        prev.map(|p| p.checkpoint_mismatches),
        "checkpoint mismatches (DIVERGED: never promoted)",
    );
    for c in &s.cores {
        let pc = prev.and_then(|p| p.cores.iter().find(|x| x.core == c.core));
        for (n, v) in &c.counters {
            let before = pc.and_then(|p| p.counters.iter().find(|x| x.0 == *n).map(|x| x.1));
            line(&mut o, *v, before, &format!("core {} {n}", c.core));
        }
    }
    for c in &s.cores {
        let _ = writeln!(
            o,
            "core {} {:<22} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            c.core, "stage (us, since start)", "count", "mean", "p50", "p99", "p99.9", "max"
        );
        for st in &c.stages {
            let _ = writeln!(
                o,
                "       {:<22} {:>12} {:>9.1} {:>9} {:>9} {:>9} {:>9}",
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
                format_text(
                    &s,
                    prev.as_ref(),
                    opts.interval.as_secs_f64(),
                    tpx_node::runtime::clock::unix_ns()
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(heartbeat_unix_ns: u64, sequenced: u64) -> Snapshot {
        Snapshot {
            pid: 42,
            tsc_hz: 1e9,
            sequenced,
            applied: 7,
            trades: 3,
            heartbeat_unix_ns,
            checkpoint_seq: 200_001,
            checkpoints_matched: 2,
            checkpoint_mismatches: 0,
            cores: Vec::new(),
        }
    }

    #[test]
    fn aeronstat_layout_with_a_stale_warning() {
        let now = (19_700 * 86_400 + 3_723) * 1_000_000_000; // 01:02:03 UTC
        let fresh = format_text(&snap(now - 50_000_000, 20), Some(&snap(0, 10)), 1.0, now);
        let lines: Vec<&str> = fresh.lines().collect();
        assert!(lines[0].starts_with("01:02:03 UTC - tpx stat"), "{fresh}");
        assert!(
            lines[0].ends_with("pid 42 - heartbeat age 50 ms"),
            "{fresh}"
        );
        assert!(!fresh.contains("WARNING"), "{fresh}");
        assert_eq!(lines[2], format!("  0: {:>20} - sequenced (10/s)", 20));
        assert_eq!(lines[4], format!("  2: {:>20} - trades (0/s)", 3));
        assert!(
            lines[5].starts_with(&format!("  3: {:>20} - last checkpoint seq", 200_001)),
            "{fresh}"
        );
        assert!(lines[7].contains("checkpoint mismatches"), "{fresh}");
        let stale = format_text(&snap(now - 5_000_000_000, 20), None, 1.0, now);
        assert!(
            stale
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("WARNING: the stats file is stale (no heartbeat for 5.0 s)"),
            "{stale}"
        );
    }
}
