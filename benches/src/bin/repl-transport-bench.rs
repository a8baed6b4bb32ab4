//! `repl-transport-bench`: replication over TCP against Aeron UDP unicast, the same
//! `tpx_sequencer::Replica` pair over both (see `tpx_benches::xport`).
//!
//! Each case runs a witness thread here and the primary and the standby as two child
//! processes (this executable, `node ...`) on 127.0.0.1. The primary offers an open-loop load
//! (records due every `1 / rate` s, each stamped with when it was due) and records, per record,
//! due time → the standby's ack seen on the primary (HdrHistogram). Rate 0 is the idle case:
//! heartbeats only, where the CPU the two processes burn per second is the cost of an idle pair.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin repl-transport-bench -- --json
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use tpx_benches::xport::case::{loadavg, result_json, run_case, Case};
use tpx_benches::xport::node::{run_node, Idle, NodeArgs, Xport};

#[derive(Parser, Debug)]
#[command(about = "replication transport bench: TCP vs Aeron UDP unicast")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Record rates per second (open loop); the idle case (0) is always run too.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,500000")]
    rates: Vec<u64>,
    /// Cases as transport:idle (tcp:park, tcp:spin, aeron:park, aeron:spin, aeron:driver-spin).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcp:park,aeron:park,tcp:spin,aeron:spin,aeron:driver-spin"
    )]
    modes: Vec<String>,
    /// Measured window of each case.
    #[arg(long, default_value_t = 2000)]
    duration_ms: u64,
    /// Skip the idle (heartbeat only) case.
    #[arg(long)]
    no_idle: bool,
    /// Print one JSON object (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One replica process of a case (run by the bench itself).
    Node {
        #[arg(long)]
        role: String,
        #[arg(long)]
        xport: String,
        #[arg(long)]
        idle: String,
        #[arg(long)]
        rate: u64,
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        peer: std::net::SocketAddr,
        #[arg(long)]
        witness: std::net::SocketAddr,
        #[arg(long)]
        aeron_dir: Option<String>,
    },
}

fn us(v: &serde_json::Value, k: &str) -> String {
    v["primary"]["latency"][k]
        .as_u64()
        .map_or("-".into(), |n| format!("{:.1}", n as f64 / 1e3))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Node {
        role,
        xport,
        idle,
        rate,
        listen,
        peer,
        witness,
        aeron_dir,
    }) = cli.cmd
    {
        let (Some(xport), Some(idle)) = (Xport::parse(&xport), Idle::parse(&idle)) else {
            eprintln!("bad --xport or --idle");
            return ExitCode::from(2);
        };
        let a = NodeArgs {
            primary: role == "primary",
            xport,
            idle,
            rate,
            listen,
            peer,
            witness,
            aeron_dir,
        };
        let r = run_node(&a);
        println!("RESULT {}", result_json(&r));
        return ExitCode::SUCCESS;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("current_exe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cases = Vec::new();
    for m in &cli.modes {
        let (x, i) = m.split_once(':').unwrap_or((m, "park"));
        let (Some(xport), Some(idle)) = (Xport::parse(x), Idle::parse(i)) else {
            eprintln!("bad mode {m:?}");
            return ExitCode::from(2);
        };
        if idle == Idle::DriverSpin && xport != Xport::Aeron {
            eprintln!("driver-spin is an Aeron mode");
            return ExitCode::from(2);
        }
        let rates = (!cli.no_idle)
            .then_some(0)
            .into_iter()
            .chain(cli.rates.iter().copied());
        for rate in rates {
            cases.push(Case {
                xport,
                idle,
                rate,
                duration_ms: cli.duration_ms,
            });
        }
    }
    let load_before = loadavg();
    let mut out = Vec::new();
    let mut failed = 0;
    eprintln!(
        "{:<6} {:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8}",
        "xport",
        "idle",
        "rate/s",
        "records",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "unacked",
        "cpu P",
        "cpu S"
    );
    for c in cases {
        match run_case(&exe, c) {
            Ok(v) => {
                eprintln!(
                    "{:<6} {:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8.3} {:>8.3}",
                    c.xport.name(),
                    c.idle.name(),
                    c.rate,
                    v["primary"]["records"],
                    us(&v, "p50_ns"),
                    us(&v, "p99_ns"),
                    us(&v, "p999_ns"),
                    us(&v, "max_ns"),
                    v["primary"]["unacked"],
                    v["primary"]["cpu_per_s"].as_f64().unwrap_or(f64::NAN),
                    v["standby"]["cpu_per_s"].as_f64().unwrap_or(f64::NAN),
                );
                out.push(v);
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "{} {} {}: FAILED: {e}",
                    c.xport.name(),
                    c.idle.name(),
                    c.rate
                );
                out.push(json!({
                    "transport": c.xport.name(),
                    "idle": c.idle.name(),
                    "rate_per_s": c.rate,
                    "error": e,
                }));
            }
        }
    }
    let report = json!({
        "bench": "repl-transport",
        "what": "per record: due time (open loop) -> standby ack seen on the primary; cpu_per_s: CPU seconds per second of each process (all its threads)",
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "cases": out,
    });
    if cli.json {
        println!("{report}");
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
