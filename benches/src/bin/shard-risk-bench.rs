//! `shard-risk-bench`: the cost of risk on the node's shard stage, in one thread, same run.
//!
//! The node's shard (`tpx_node::shard::apply::Shard`: the engine plus the mapping of its events to
//! per-account reports, with the request as the rings carry it: a log input, converted to the
//! engine's form by the shard) applies the
//! `engine-bench` risk workload (`spot-risk` or `perp-risk`: the exchange-core mix over 4
//! instruments, 1,000 funded accounts) risk on (`Engine::with_risk`) and risk off
//! (`Engine::new`), fed in alternating blocks of 65,536 requests for several rounds: odd rounds
//! time each block (throughput: the sum of each block's best time), even rounds each request
//! (`Instant`, about 20 ns of each latency is the timer). The rings, sockets and the log are
//! left out: they do not change with risk (see `e2e-bench --risk` for the whole path).
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin shard-risk-bench -- --workload perp-risk --json
//! ```
//!
//! Prints p50/p99/p99.9/max per request for both, requests/s (sum of each block's best time),
//! and `risk_overhead` = on time / off time - 1. One thread, no spinning on anything but work.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use tpx_benches::replay::log_input_of;
use tpx_benches::workload::{generate, Stream, Workload};
use tpx_engine::EngineInput;
use tpx_node::msg::{Request, Sequenced, NO_SESSION};
use tpx_node::shard::apply::Shard;
use tpx_wire::log_record::Input;

const BLOCK: usize = 65_536;

#[derive(Parser, Debug)]
#[command(
    name = "shard-risk-bench",
    about = "risk on vs off through the node's shard"
)]
struct Args {
    /// `spot-risk` or `perp-risk`.
    #[arg(long, default_value = "perp-risk")]
    workload: String,
    #[arg(long, default_value_t = 2_000_000)]
    ops: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timed rounds after the warm-up: odd ones time blocks (throughput), even ones each
    /// request (latency); at least 2.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    #[arg(long)]
    json: bool,
}

fn entry(seq: u64, (account, input): (u32, Input)) -> Sequenced {
    Sequenced {
        seq,
        ts_ns: seq,
        req: Request::new(0, 0, account, input),
    }
}

/// A shard with the stream's setup applied (untimed).
fn prepared(stream: &Stream, risk: bool) -> Result<Shard, String> {
    let rc = stream.risk.as_ref().filter(|_| risk);
    let mut shard = Shard::new(0, stream.config.clone(), rc.map(|r| r.config.clone()))?;
    let mut seq = 0;
    let mut sink = 0u64;
    if let Some(r) = rc {
        for c in &r.setup {
            seq += 1;
            let Some(input) = log_input_of(&EngineInput::Risk(*c)) else {
                continue;
            };
            let mut e = entry(seq, input);
            e.req.session = NO_SESSION;
            shard.apply(&e, |_| sink += 1);
        }
    }
    for c in &stream.setup {
        seq += 1;
        // The mixes are plain orders, which the log carries; anything else is skipped.
        if let Some(input) = log_input_of(&EngineInput::Command(*c)) {
            shard.apply(&entry(seq, input), |_| sink += 1);
        }
    }
    black_box(sink);
    Ok(shard)
}

struct Side {
    best: Vec<f64>,
    h: Histogram<u64>,
    /// Reports of each block (the same every round: the run is deterministic).
    reports: Vec<u64>,
}

impl Side {
    fn new(blocks: usize) -> Side {
        Side {
            best: vec![f64::MAX; blocks],
            h: Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("valid bounds"),
            reports: vec![0; blocks],
        }
    }
}

/// What a round records: nothing (warm-up), each request's latency, or the block's time
/// (without per-request timer reads, so that they do not dilute the throughput ratio).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    Nothing,
    Latency,
    Throughput,
}

fn run_block(
    shard: &mut Shard,
    ops: &[(u32, Input)],
    base: u64,
    side: &mut Side,
    b: usize,
    record: Record,
) {
    let mut reports = 0u64;
    let start = Instant::now();
    for (i, input) in ops.iter().enumerate() {
        let e = entry(base + i as u64, *input);
        if record == Record::Latency {
            let t0 = Instant::now();
            shard.apply(&e, |r| {
                black_box(&r);
                reports += 1;
            });
            let _ = side.h.record((t0.elapsed().as_nanos() as u64).max(1));
        } else {
            shard.apply(&e, |r| {
                black_box(&r);
                reports += 1;
            });
        }
    }
    let s = start.elapsed().as_secs_f64();
    if record == Record::Throughput {
        side.best[b] = side.best[b].min(s);
        side.reports[b] = reports;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(w) = Workload::from_name(&args.workload).filter(|w| w.risk()) else {
        eprintln!("shard-risk-bench: --workload spot-risk | perp-risk");
        return ExitCode::FAILURE;
    };
    let stream = match generate(w, args.seed, args.ops) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shard-risk-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // In the log's form, as the rings carry requests (converted before the timing).
    let ops: Vec<(u32, Input)> = stream
        .ops
        .iter()
        .filter_map(|c| log_input_of(&EngineInput::Command(*c)))
        .collect();
    let blocks = ops.len().div_ceil(BLOCK);
    let (mut on, mut off) = (Side::new(blocks), Side::new(blocks));
    let base = stream.setup.len() as u64 + 1_000_000;
    // Round 0 warms up (untimed), then `rounds` timed rounds, alternating the order per block.
    for round in 0..=args.rounds.max(2) {
        let (mut s_on, mut s_off) = match (prepared(&stream, true), prepared(&stream, false)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("shard-risk-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Odd rounds time blocks, even ones (after the warm-up) each request.
        let record = match round {
            0 => Record::Nothing,
            r if r % 2 == 1 => Record::Throughput,
            _ => Record::Latency,
        };
        for (b, chunk) in ops.chunks(BLOCK).enumerate() {
            let at = base + (b * BLOCK) as u64;
            if b % 2 == 0 {
                run_block(&mut s_off, chunk, at, &mut off, b, record);
                run_block(&mut s_on, chunk, at, &mut on, b, record);
            } else {
                run_block(&mut s_on, chunk, at, &mut on, b, record);
                run_block(&mut s_off, chunk, at, &mut off, b, record);
            }
        }
    }
    let t = |s: &Side| s.best.iter().sum::<f64>();
    let (t_on, t_off) = (t(&on), t(&off));
    let q = |s: &Side| {
        format!(
            "{{\"p50_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}, \"max_ns\": {}, \"requests_per_sec\": {:.0}, \"reports\": {}}}",
            s.h.value_at_quantile(0.5),
            s.h.value_at_quantile(0.99),
            s.h.value_at_quantile(0.999),
            s.h.max(),
            ops.len() as f64 / t(s),
            s.reports.iter().sum::<u64>()
        )
    };
    let json = format!(
        "{{\"workload\": \"{}\", \"ops\": {}, \"rounds\": {}, \"risk_on\": {}, \"risk_off\": {}, \"risk_overhead\": {:.3}}}",
        w.name(),
        ops.len(),
        args.rounds.max(2),
        q(&on),
        q(&off),
        t_on / t_off - 1.0
    );
    if args.json {
        println!("{json}");
    } else {
        println!("{json}");
        eprintln!(
            "risk on {:.2} M/s, off {:.2} M/s through the node's shard (engine + report mapping)",
            ops.len() as f64 / t_on / 1e6,
            ops.len() as f64 / t_off / 1e6
        );
    }
    ExitCode::SUCCESS
}
