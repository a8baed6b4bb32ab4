//! The bench's report: one JSON object (`--json`) or a human-readable table with the same
//! numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::run::{Latency, RiskComparison, Throughput};
use crate::workload::Stream;

/// Throughput below this is reported as not meeting the engine's target.
pub const TARGET_OPS_PER_SEC: f64 = 20e6;
/// Risk may cost at most this share of the risk-off throughput (issue #4).
pub const MAX_RISK_OVERHEAD: f64 = 0.30;

#[derive(Clone, Debug, Serialize)]
pub struct LatencyNs {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
}

impl From<Latency> for LatencyNs {
    fn from(l: Latency) -> Self {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        LatencyNs {
            p50: r(l.p50),
            p99: r(l.p99),
            p999: r(l.p999),
            p9999: r(l.p9999),
            max: r(l.max),
            mean: r(l.mean),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerReport {
    pub ops_per_sec: f64,
    pub seconds: f64,
    pub trades: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_hash_ok: Option<bool>,
}

impl From<Throughput> for PeerReport {
    fn from(t: Throughput) -> Self {
        PeerReport {
            ops_per_sec: t.ops_per_sec.round(),
            seconds: t.seconds,
            trades: t.trades,
            rejects: t.rejects,
            state_hash_ok: t.hash_matches,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Mix {
    pub moves: u64,
    pub places: u64,
    pub cancels: u64,
    pub iocs: u64,
}

/// The whole report. The first fields are the ones the README documents; the rest describe
/// the stream and the machine so that a number can be checked.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub workload: String,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub latency_ns: LatencyNs,
    pub timer_overhead_ns: f64,
    pub trades: u64,
    pub peers: BTreeMap<String, PeerReport>,
    pub seed: u64,
    pub seconds: f64,
    pub rejects: u64,
    pub state_hash_ok: bool,
    pub setup_ops: u64,
    pub resting_orders_start: u64,
    pub resting_orders_end: u64,
    pub instruments: u64,
    pub accounts: u64,
    pub mix: Mix,
    pub timer: String,
    pub meets_target_ops_per_sec: bool,
    /// Risk workloads only: the same stream through `Engine::new` (risk off), alternating with
    /// the risk-on runs; `ops_per_sec` and `latency_ns` above are risk on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_off_ops_per_sec: Option<f64>,
    /// `1 - ops_per_sec / risk_off_ops_per_sec`: the share of the risk-off throughput that
    /// risk costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_overhead: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meets_risk_overhead: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_off_latency_ns: Option<LatencyNs>,
    /// Every timed round's ops/s over the whole stream, risk on and off, in the order they ran
    /// (`ops_per_sec` and `risk_off_ops_per_sec` sum each block's best time instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_runs: Option<RiskRuns>,
    /// The risk-on engine's final state hash (hex), the same in every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_state_hash: Option<String>,
    /// How the two were timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_method: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RiskRuns {
    pub on_ops_per_sec: Vec<f64>,
    pub off_ops_per_sec: Vec<f64>,
}

impl Report {
    pub fn new(
        stream: &Stream,
        engine: Throughput,
        latency: Latency,
        timer_source: &str,
        timer_overhead_ns: f64,
    ) -> Report {
        Report {
            workload: stream.workload.name().to_string(),
            ops: engine.ops,
            ops_per_sec: engine.ops_per_sec.round(),
            latency_ns: latency.into(),
            timer_overhead_ns: (timer_overhead_ns * 10.0).round() / 10.0,
            trades: engine.trades,
            peers: BTreeMap::new(),
            seed: stream.seed,
            seconds: engine.seconds,
            rejects: engine.rejects.unwrap_or(0),
            state_hash_ok: engine.hash_matches.unwrap_or(false),
            setup_ops: stream.setup.len() as u64,
            resting_orders_start: stream.resting_after_setup as u64,
            resting_orders_end: stream.resting_at_end as u64,
            instruments: stream.config.instruments.len() as u64,
            accounts: u64::from(stream.config.max_accounts),
            mix: Mix {
                moves: stream.mix.moves,
                places: stream.mix.places,
                cancels: stream.mix.cancels,
                iocs: stream.mix.iocs,
            },
            timer: timer_source.to_string(),
            meets_target_ops_per_sec: engine.ops_per_sec >= TARGET_OPS_PER_SEC,
            risk_off_ops_per_sec: None,
            risk_overhead: None,
            meets_risk_overhead: None,
            risk_off_latency_ns: None,
            risk_runs: None,
            risk_state_hash: None,
            risk_method: None,
        }
    }

    /// A risk workload's report: `ops_per_sec`, `latency_ns`, `trades` and `rejects` are risk
    /// on; `state_hash_ok` says the risk-off engine reached the shadow book's hash, every
    /// risk-on run the same hash and trades, and the risk invariants hold at the end.
    pub fn with_risk(
        stream: &Stream,
        cmp: &RiskComparison,
        latency_on: Latency,
        latency_off: Latency,
        timer_source: &str,
        timer_overhead_ns: f64,
    ) -> Report {
        let mut r = Report::new(stream, cmp.on, latency_on, timer_source, timer_overhead_ns);
        r.state_hash_ok = cmp.off.hash_matches == Some(true)
            && cmp.deterministic
            && cmp.invariants.is_ok()
            && cmp.on.trades == cmp.off.trades;
        let overhead = 1.0 - cmp.on.ops_per_sec / cmp.off.ops_per_sec;
        r.risk_off_ops_per_sec = Some(cmp.off.ops_per_sec.round());
        r.risk_overhead = Some((overhead * 1e4).round() / 1e4);
        r.meets_risk_overhead = Some(overhead <= MAX_RISK_OVERHEAD);
        r.risk_off_latency_ns = Some(latency_off.into());
        r.risk_runs = Some(RiskRuns {
            on_ops_per_sec: cmp.on_runs.iter().map(|v| v.round()).collect(),
            off_ops_per_sec: cmp.off_runs.iter().map(|v| v.round()).collect(),
        });
        r.risk_state_hash = Some(format!("{:016x}", cmp.on.hash));
        r.risk_method = Some(format!(
            "both engines fed the stream in alternating blocks of {} commands, {} rounds; each \
             engine's time is the sum of its best time per block",
            crate::run::RISK_BLOCK,
            cmp.on_runs.len()
        ));
        r
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serialises")
    }

    /// A human-readable table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let pct = |n: u64| 100.0 * n as f64 / self.ops.max(1) as f64;
        let _ = writeln!(
            s,
            "workload {} (seed {}): {} ops after {} setup orders; {} instrument(s), {} accounts",
            self.workload, self.seed, self.ops, self.setup_ops, self.instruments, self.accounts
        );
        let _ = writeln!(
            s,
            "mix: {:.1}% move, {:.1}% GTC place, {:.1}% cancel, {:.1}% IOC; resting orders {} -> {}; rejects {}",
            pct(self.mix.moves),
            pct(self.mix.places),
            pct(self.mix.cancels),
            pct(self.mix.iocs),
            self.resting_orders_start,
            self.resting_orders_end,
            self.rejects
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<14} {:>14} {:>10} {:>12} {:>10}",
            "book", "ops/s", "seconds", "trades", "hash ok"
        );
        let row =
            |s: &mut String, name: &str, ops: f64, secs: f64, trades: u64, ok: Option<bool>| {
                let ok = ok.map_or("-".to_string(), |b| b.to_string());
                let _ = writeln!(
                    s,
                    "{name:<14} {ops:>14.0} {secs:>10.3} {trades:>12} {ok:>10}"
                );
            };
        row(
            &mut s,
            "tpx",
            self.ops_per_sec,
            self.seconds,
            self.trades,
            Some(self.state_hash_ok),
        );
        for (name, p) in &self.peers {
            row(
                &mut s,
                name,
                p.ops_per_sec,
                p.seconds,
                p.trades,
                p.state_hash_ok,
            );
        }
        let l = &self.latency_ns;
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "tpx latency per command (ns, {} timer, overhead {:.1} ns included): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}  mean {:.1}",
            self.timer, self.timer_overhead_ns, l.p50, l.p99, l.p999, l.p9999, l.max, l.mean
        );
        if let (Some(off), Some(overhead)) = (self.risk_off_ops_per_sec, self.risk_overhead) {
            let _ = writeln!(
                s,
                "risk off: {off:.0} ops/s; risk costs {:.1}% of it (at most {:.0}%: {})",
                overhead * 100.0,
                MAX_RISK_OVERHEAD * 100.0,
                if overhead <= MAX_RISK_OVERHEAD {
                    "met"
                } else {
                    "NOT met"
                }
            );
            if let Some(l) = &self.risk_off_latency_ns {
                let _ = writeln!(
                    s,
                    "tpx latency per command, risk off (ns): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}  mean {:.1}",
                    l.p50, l.p99, l.p999, l.p9999, l.max, l.mean
                );
            }
        }
        let _ = writeln!(
            s,
            "target {:.0} M ops/s: {}",
            TARGET_OPS_PER_SEC / 1e6,
            if self.meets_target_ops_per_sec {
                "met"
            } else {
                "NOT met"
            }
        );
        s
    }
}
