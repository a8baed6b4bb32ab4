//! `engine-bench`: the matching engine against the reference book and peer crates on one
//! generated stream.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin engine-bench -- --workload exchange-core-mix --json
//! cargo run --release -p tpx-benches --bin engine-bench -- --workload perp-risk --peers none --json
//! ```
//!
//! `triggers` (20% of the resting orders are stops on the last or mark price, the mark moving
//! every 50 operations) reports the engine's ops/s, marks counted as operations, and the
//! reference book's if asked (`--peers reference`; other peers have no trigger orders).
//!
//! `spot-risk` and `perp-risk` time the stream with risk on (`Engine::with_risk`) and off
//! (`Engine::new`) side by side, in alternating blocks, `--rounds` times, and report what risk
//! costs (`risk_off_ops_per_sec`, `risk_overhead`; see `run::risk_comparison`).

use std::time::{Duration, Instant};

use clap::Parser;
use tpx_benches::peers::lobster::Lobster;
use tpx_benches::peers::orderbook_rs::OrderbookRs;
use tpx_benches::peers::PeerBook;
use tpx_benches::report::Report;
use tpx_benches::run::{
    latency, peer_throughput, risk_comparison, throughput, throughput_runs, throughput_with_marks,
    RiskEngine, Throughput,
};
use tpx_benches::timer::Timer;
use tpx_benches::workload::{generate, Workload};
use tpx_engine::reference::ReferenceBook;
use tpx_engine::Engine;

#[derive(Debug, Parser)]
#[command(
    about = "Throughput and latency of the tpx matching engine, the reference book and peer crates"
)]
struct Args {
    /// exchange-core-mix, heavy, deep, spot-risk, perp-risk, triggers.
    #[arg(long, default_value = "exchange-core-mix", value_parser = parse_workload)]
    workload: Workload,
    /// Operations in the timed stream (after the untimed setup that fills the book).
    #[arg(long, default_value_t = 10_000_000)]
    ops: usize,
    /// Seed of the stream.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Comma-separated books to compare with: reference, lobster, orderbook-rs; `all` or `none`.
    #[arg(long, default_value = "all")]
    peers: String,
    /// Risk workloads: timed rounds of both engines (risk on, risk off), interleaved by
    /// blocks; each block's best time counts.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Apply each command with `Engine::process` only, not telling the engine the commands
    /// that follow (`Engine::process_ahead`, which prefetches for them on large books).
    #[arg(long)]
    no_lookahead: bool,
    /// Timed runs of the engine (each on a fresh book after the untimed setup); the report's
    /// `ops_per_sec` is their median, and each is printed.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    Workload::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        format!("unknown workload {s:?}; one of {}", names.join(", "))
    })
}

const PEERS: [&str; 3] = ["reference", "lobster", "orderbook-rs"];

fn selected_peers(spec: &str) -> Result<Vec<&'static str>, String> {
    match spec {
        "all" => Ok(PEERS.to_vec()),
        "none" | "" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|name| {
                PEERS
                    .iter()
                    .find(|p| **p == name.trim())
                    .copied()
                    .ok_or_else(|| format!("unknown peer {name:?}; one of {}", PEERS.join(", ")))
            })
            .collect(),
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("engine-bench: {e}");
        std::process::exit(2);
    }
}

fn check_hash_of(name: &str, t: &Throughput) {
    if t.hash_matches == Some(false) {
        eprintln!(
            "engine-bench: warning: {name}'s final state hash differs from the shadow book's"
        );
    }
}

fn progress(args: &Args, msg: &str) {
    if args.json {
        eprintln!("engine-bench: {msg}");
    } else {
        println!("{msg}");
    }
}

fn run(args: &Args) -> Result<(), String> {
    let peers = selected_peers(&args.peers)?;
    tpx_benches::run::set_lookahead(!args.no_lookahead);
    let started = Instant::now();
    let stream = generate(args.workload, args.seed, args.ops)?;
    progress(
        args,
        &format!(
            "generated {} + {} setup commands in {:.1} s ({} rejects, {} fills in the shadow book)",
            stream.ops.len(),
            stream.setup.len(),
            started.elapsed().as_secs_f64(),
            stream.rejects,
            stream.fills
        ),
    );

    if args.workload == Workload::Triggers {
        return run_triggers(args, &stream, &peers);
    }
    let timer = Timer::calibrate(Duration::from_millis(200));
    let (engine, mut report) = if args.workload.risk() {
        let cmp = risk_comparison(&stream, args.rounds);
        progress(
            args,
            &format!(
                "tpx: risk on {:.0} ops/s, risk off {:.0} ops/s (best per block of {} rounds)",
                cmp.on.ops_per_sec, cmp.off.ops_per_sec, args.rounds
            ),
        );
        if let Err(e) = &cmp.invariants {
            eprintln!("engine-bench: warning: risk invariants broken at the end: {e}");
        }
        if !cmp.deterministic {
            eprintln!("engine-bench: warning: risk-on runs ended in different states");
        }
        let lat_on = latency::<RiskEngine>(&stream, &timer);
        let lat_off = latency::<Engine>(&stream, &timer);
        let report = Report::with_risk(
            &stream,
            &cmp,
            lat_on,
            lat_off,
            timer.source(),
            timer.overhead_ns(),
        );
        check_hash_of("tpx (risk off)", &cmp.off);
        (cmp.on, report)
    } else {
        let mut runs = throughput_runs::<Engine>(&stream, args.repeat);
        for r in &runs {
            progress(args, &format!("tpx: {:.0} ops/s", r.ops_per_sec));
        }
        runs.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        let engine = runs[runs.len() / 2];
        progress(args, &memory_note(&stream));
        let lat = latency::<Engine>(&stream, &timer);
        let report = Report::new(&stream, engine, lat, timer.source(), timer.overhead_ns());
        (engine, report)
    };
    let check = |name: &str, t: &Throughput| {
        if t.trades != stream.fills {
            eprintln!(
                "engine-bench: warning: {name} made {} trades, the shadow book {}",
                t.trades, stream.fills
            );
        }
        if t.hash_matches == Some(false) {
            eprintln!(
                "engine-bench: warning: {name}'s final state hash differs from the shadow book's"
            );
        }
    };
    check("tpx", &engine);

    for name in peers {
        let t = match name {
            "reference" => throughput::<ReferenceBook>(&stream),
            Lobster::NAME => peer_throughput::<Lobster>(&stream),
            OrderbookRs::NAME => peer_throughput::<OrderbookRs>(&stream),
            _ => unreachable!("checked by selected_peers"),
        };
        progress(args, &format!("{name}: {:.0} ops/s", t.ops_per_sec));
        check(name, &t);
        report.peers.insert(name.to_string(), t.into());
    }

    if args.json {
        println!("{}", report.to_json());
    } else {
        println!();
        print!("{}", report.to_table());
    }
    Ok(())
}

/// Where an engine for the stream puts its tables: bytes mapped with explicit huge pages, advised
/// transparent huge pages, plain pages and on the heap, and the process's `AnonHugePages` while
/// it lives (Linux: how much of the advised memory the kernel did back with 2 MiB pages).
fn memory_note(stream: &tpx_benches::workload::Stream) -> String {
    let before = tpx_engine::table_bytes_by_backing();
    let engine = Engine::new(stream.config.clone()).expect("the workload's configuration is valid");
    let after = tpx_engine::table_bytes_by_backing();
    let anon_huge_kib = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    drop(engine);
    let mib = |i: usize| (after[i] - before[i]) as f64 / f64::from(1 << 20);
    format!(
        "engine tables: {:.1} MiB hugetlb, {:.1} MiB THP-advised, {:.1} MiB plain, {:.1} MiB heap; AnonHugePages {}",
        mib(0),
        mib(1),
        mib(2),
        mib(3),
        anon_huge_kib.map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    )
}

/// The `triggers` workload: throughput only (marks between the commands), the engine and
/// (if selected) the reference book.
fn run_triggers(
    args: &Args,
    stream: &tpx_benches::workload::Stream,
    peers: &[&str],
) -> Result<(), String> {
    let mut results = vec![("tpx", throughput_with_marks::<Engine>(stream))];
    if peers.contains(&"reference") {
        results.push(("reference", throughput_with_marks::<ReferenceBook>(stream)));
    }
    for (name, t) in &results {
        if t.hash_matches == Some(false) {
            eprintln!(
                "engine-bench: warning: {name}'s final state hash differs from the shadow book's"
            );
        }
        if t.trades != stream.fills {
            eprintln!(
                "engine-bench: warning: {name} made {} trades, the shadow book {}",
                t.trades, stream.fills
            );
        }
    }
    if args.json {
        let books: Vec<String> = results
            .iter()
            .map(|(name, t)| {
                format!(
                    "\"{name}\": {{\"ops\": {}, \"ops_per_sec\": {:.0}, \"trades\": {}, \"rejects\": {}, \"hash_matches\": {}}}",
                    t.ops,
                    t.ops_per_sec,
                    t.trades,
                    t.rejects.unwrap_or(0),
                    t.hash_matches.unwrap_or(false)
                )
            })
            .collect();
        println!(
            "{{\"workload\": \"triggers\", \"seed\": {}, \"commands\": {}, \"marks\": {}, \"stops_placed\": {}, \"stops_fired\": {}, \"resting_after_setup\": {}, \"setup_commands\": {}, {}}}",
            stream.seed,
            stream.ops.len(),
            stream.marks.len(),
            stream.stops_placed,
            stream.stops_fired,
            stream.resting_after_setup,
            stream.setup.len(),
            books.join(", ")
        );
    } else {
        println!(
            "stops placed {} and fired {} during the stream ({} pending after setup)",
            stream.stops_placed,
            stream.stops_fired,
            stream.setup.len() - stream.resting_after_setup
        );
        for (name, t) in &results {
            println!(
                "{name}: {:.0} ops/s ({} ops incl. {} marks, {} trades, {} rejects)",
                t.ops_per_sec,
                t.ops,
                stream.marks.len(),
                t.trades,
                t.rejects.unwrap_or(0)
            );
        }
    }
    Ok(())
}
