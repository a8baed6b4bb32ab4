//! `stamp-cost`: what the latency lab's stage stamps cost the node's hot path, per order,
//! measured on this core without a node: the four raw-TSC reads (`quanta`) an order can take
//! (rx per read, sequenced per batch, matched per request, written per cycle: at most four,
//! fewer when batched) and the gateway's bookkeeping per answer ([`Tracer::on_report`] +
//! [`Tracer::on_flushed`]: five histogram increments and one 64-byte trace record into the
//! shared-memory stats file). Batches of `--batch` answers per cycle, as the gateway delivers
//! them; the result is ns per order over `--orders`, as JSON.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin stamp-cost
//! ```

use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use tpx_node::msg::{Report, ReportKind, Stamps};
use tpx_node::observe::stats::StatsMap;
use tpx_node::observe::trace::Tracer;
use tpx_node::runtime::clock::tsc;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    orders: u64,
    /// Answers per gateway cycle.
    #[arg(long, default_value_t = 16)]
    batch: u64,
}

fn main() {
    let a = Args::parse();
    let dir = std::env::temp_dir().join(format!("tpx-stamp-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let map = std::sync::Arc::new(
        StatsMap::create(&dir.join("s.stats"), 1, 1 << 16, 1).expect("stats file"),
    );
    let mut tracer = Tracer::new(map.core_writer(0));
    // 1. Raw TSC reads.
    let n = a.orders;
    let t0 = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        acc = acc.wrapping_add(tsc());
    }
    let tsc_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    // For comparison: the vDSO clock the node's duty cycle already reads once per cycle.
    let t0 = Instant::now();
    for _ in 0..n {
        acc = acc.wrapping_add(tpx_node::runtime::clock::now_ns());
    }
    let clock_gettime_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    // 2. Per-answer bookkeeping, in cycles of `batch` answers; per-cycle cost in a histogram.
    let mut per_cycle = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("bounds");
    let kind = ReportKind::Accepted {
        cl_ord_id: 0,
        order_id: 1,
        instrument: 1,
        side: tpx_wire::enums::Side::Buy,
        price: 1,
        qty: 1,
    };
    let t0 = Instant::now();
    let cycles = n / a.batch.max(1);
    for c in 0..cycles {
        let start = tsc();
        for k in 0..a.batch {
            let now = start;
            let mut r = Report {
                account: 1,
                session: 0,
                seq: 1,
                ts_ns: 0,
                kind,
                stamps: Stamps {
                    rx: now - 4000,
                    seq: now - 3000,
                    durable: 0,
                    matched: now - 1000 - k,
                },
            };
            if let ReportKind::Accepted { cl_ord_id, .. } = &mut r.kind {
                *cl_ord_id = c * a.batch + k + 1;
            }
            tracer.on_report(&r);
        }
        tracer.on_flushed(1);
        let end = tsc();
        let _ = per_cycle.record(end.saturating_sub(start).max(1));
    }
    let total = t0.elapsed().as_nanos() as f64;
    let per_answer_ns = total / (cycles * a.batch) as f64;
    let hz = map.tsc_hz();
    let ns = |t: u64| (t as f64 * 1e9 / hz * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "stamp-cost",
            "orders": cycles * a.batch,
            "batch": a.batch,
            "tsc_read_ns": (tsc_ns * 100.0).round() / 100.0,
            "clock_gettime_ns": (clock_gettime_ns * 100.0).round() / 100.0,
            "per_answer_bookkeeping_ns": (per_answer_ns * 100.0).round() / 100.0,
            "per_order_upper_bound_ns": ((4.0 * tsc_ns + per_answer_ns) * 100.0).round() / 100.0,
            "per_cycle_ns": {
                "p50": ns(per_cycle.value_at_quantile(0.5)),
                "p99": ns(per_cycle.value_at_quantile(0.99)),
                "p999": ns(per_cycle.value_at_quantile(0.999)),
                "max": ns(per_cycle.max()),
            },
            "checksum": acc & 1,
        })
    );
    drop(tracer);
    drop(map);
    let _ = std::fs::remove_dir_all(&dir);
}
