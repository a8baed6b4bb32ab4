//! The per-stage breakdown: the node's per-order stamps (its shared-memory trace ring, read
//! while the step runs) joined by `(account, request kind, cl_ord_id)` with the load
//! generator's own stamps of the same order. Every stamp is the host's raw TSC, so the stages
//! are measured, not derived:
//!
//! `sent → rx` (client write to gateway read: the wire in), `rx → sequenced`, `sequenced →
//! durable` (with `log = "in-process"`: the in-memory log's acknowledgement), `→ matched` (first report out of the engine),
//! `matched → written` (reply `write(2)` done), `written → received` (the wire out: client
//! read). They add up to the service time of each joined order; the check is that their means
//! add up to the mean round trip of *all* orders the load generator measured (within 10 %).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tpx_node::observe::stats::StatsMap;
use tpx_node::observe::trace::{TraceKind, TraceReader, TraceRecord};

use super::load::{new_hist, Sample, MAX_NS};

/// Reads the node's trace rings on a parked thread (every 2 ms) while a step runs.
#[derive(Debug)]
pub struct Collector {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(Vec<TraceRecord>, u64)>>,
}

impl Collector {
    pub fn start(path: &Path) -> Result<Collector, String> {
        let map = StatsMap::open(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tpx-load-trace".into())
            .spawn(move || {
                let mut readers: Vec<TraceReader> = (0..map.cores())
                    .map(|c| {
                        let mut r = TraceReader::new(&map, c);
                        r.skip_to_head(&map);
                        r
                    })
                    .collect();
                let mut out = Vec::new();
                loop {
                    let last = stop2.load(Ordering::Acquire);
                    for r in readers.iter_mut() {
                        out.extend(r.poll(&map));
                    }
                    if last {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                let lost = readers.iter().map(|r| r.lost).sum();
                (out, lost)
            })
            .map_err(|e| format!("trace thread: {e}"))?;
        Ok(Collector {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops and returns the records read and how many were lost (overwritten unread).
    pub fn finish(mut self) -> (Vec<TraceRecord>, u64) {
        self.stop.store(true, Ordering::Release);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One stage's distribution (ns).
#[derive(Clone, Debug, Serialize)]
pub struct StageStats {
    pub stage: &'static str,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// The breakdown of one step.
#[derive(Clone, Debug, Serialize)]
pub struct Breakdown {
    /// Orders the load generator sampled / the node traced / found in both.
    pub samples: usize,
    pub traced: usize,
    pub joined: usize,
    /// Trace records overwritten before they were read.
    pub trace_lost: u64,
    /// Stamps out of order (a later stage stamped before an earlier one), counted as 0.
    pub negative: u64,
    /// Schedule lag: intended → actual send (the coordinated-omission part; not in the sum).
    pub client_lag: StageStats,
    pub stages: Vec<StageStats>,
    /// Sum of the stage means (joined orders).
    pub sum_of_stage_means_ns: f64,
    /// Mean service time over every order of the step that went through the node's stages
    /// (all but the gateway's own rejects), from the load generator's histogram.
    pub round_trip_mean_ns: f64,
    /// `sum_of_stage_means_ns / round_trip_mean_ns`.
    pub ratio: f64,
    pub within_10pct: bool,
}

pub const STAGES: [&str; 7] = [
    "wire_in (client write -> gateway read)",
    "rx -> sequenced",
    "sequenced -> durable",
    "-> matched",
    "matched -> written",
    "wire_out (written -> client read)",
    "round trip (joined)",
];

fn stats(stage: &'static str, h: &Histogram<u64>) -> StageStats {
    StageStats {
        stage,
        mean_ns: (h.mean() * 10.0).round() / 10.0,
        p50_ns: h.value_at_quantile(0.5),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns: h.max(),
    }
}

/// Joins samples with trace records; `round_trip` is the step's service-time histogram.
pub fn join(
    samples: &[Sample],
    traces: &[TraceRecord],
    trace_lost: u64,
    tsc_hz: f64,
    round_trip: &Histogram<u64>,
) -> Breakdown {
    let by_key: HashMap<(u32, TraceKind, u64), &TraceRecord> = traces
        .iter()
        .map(|t| ((t.account, t.kind, t.cl_ord_id), t))
        .collect();
    let ns_per_tick = 1e9 / tsc_hz;
    let mut negative = 0u64;
    let mut d = |a: u64, b: u64| -> u64 {
        if b < a {
            negative += 1;
            return 0;
        }
        (((b - a) as f64 * ns_per_tick) as u64).min(MAX_NS)
    };
    let mut hs: Vec<Histogram<u64>> = (0..STAGES.len()).map(|_| new_hist()).collect();
    let mut lag = new_hist();
    let mut sums = [0f64; 7];
    let mut joined = 0usize;
    for s in samples {
        let Some(t) = by_key.get(&(s.account, s.kind, s.cl_ord_id)) else {
            continue;
        };
        joined += 1;
        let st = t.stamps;
        let before_match = if st.durable != 0 { st.durable } else { st.seq };
        let v = [
            d(s.sent, st.rx),
            d(st.rx, st.seq),
            if st.durable != 0 {
                d(st.seq, st.durable)
            } else {
                0
            },
            d(before_match, st.matched),
            d(st.matched, t.written),
            d(t.written, s.received),
            d(s.sent, s.received),
        ];
        for (k, x) in v.iter().enumerate() {
            let _ = hs[k].record((*x).max(1));
            sums[k] += *x as f64;
        }
        let _ = lag.record(d(s.intended, s.sent).max(1));
    }
    // Means from exact sums (the histograms' means are at bucket resolution).
    let stages: Vec<StageStats> = STAGES
        .iter()
        .zip(hs.iter())
        .zip(sums.iter())
        .map(|((n, h), sum)| {
            let mut x = stats(n, h);
            if joined > 0 {
                x.mean_ns = (sum / joined as f64 * 10.0).round() / 10.0;
            }
            x
        })
        .collect();
    let sum: f64 = stages[..6].iter().map(|s| s.mean_ns).sum();
    let rt = round_trip.mean();
    let ratio = if rt > 0.0 { sum / rt } else { 0.0 };
    Breakdown {
        samples: samples.len(),
        traced: traces.len(),
        joined,
        trace_lost,
        negative,
        client_lag: stats("client lag (intended -> sent)", &lag),
        stages,
        sum_of_stage_means_ns: (sum * 10.0).round() / 10.0,
        round_trip_mean_ns: (rt * 10.0).round() / 10.0,
        ratio: (ratio * 1000.0).round() / 1000.0,
        within_10pct: joined > 0 && (ratio - 1.0).abs() <= 0.10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_node::msg::Stamps;

    #[test]
    fn stages_add_up_to_the_round_trip() {
        let s = Sample {
            account: 3,
            kind: TraceKind::Replace,
            cl_ord_id: 9,
            intended: 900,
            sent: 1000,
            received: 9000,
        };
        let t = TraceRecord {
            account: 3,
            kind: TraceKind::Replace,
            cl_ord_id: 9,
            stamps: Stamps {
                rx: 2000,
                seq: 2500,
                durable: 0,
                matched: 4000,
            },
            written: 6000,
        };
        let other = TraceRecord { cl_ord_id: 10, ..t };
        let mut rt = new_hist();
        rt.record(8000).unwrap();
        // 1 tick = 1 ns.
        let b = join(&[s], &[t, other], 0, 1e9, &rt);
        assert_eq!(b.joined, 1);
        let means: Vec<f64> = b.stages.iter().map(|x| x.mean_ns).collect();
        assert_eq!(
            means,
            vec![1000.0, 500.0, 0.0, 1500.0, 2000.0, 3000.0, 8000.0]
        );
        assert!((b.sum_of_stage_means_ns - 8000.0).abs() < 1e-9);
        assert!(b.within_10pct);
        assert_eq!(b.client_lag.max_ns, 100);
    }
}
