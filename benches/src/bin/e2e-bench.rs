//! `e2e-bench`: the floor (busy-polled TCP ping-pong), the order → ack round trip through a
//! running node, and throughput with 8 pipelined sessions, on the same two cores.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin e2e-bench -- --json
//! ```
//!
//! It spins two threads (the node's core and the client's): run it only when measuring. The
//! measurement lives in `tpx_benches::e2e`; this is the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tpx_benches::e2e::{run, serve_node, Options, NODE_MODE_ARG};

#[derive(Parser, Debug)]
#[command(name = "e2e-bench", about = "tpx end-to-end latency and throughput")]
struct Args {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Round trips measured for the floor.
    #[arg(long, default_value_t = 100_000)]
    floor_samples: usize,
    /// Orders measured for the ack round trip.
    #[arg(long, default_value_t = 100_000)]
    ack_samples: usize,
    /// Unmeasured round trips before each latency run.
    #[arg(long, default_value_t = 20_000)]
    warmup: usize,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 3.0)]
    throughput_secs: f64,
    /// Pipelined sessions in the throughput run.
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// Orders in flight per session in the throughput run.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// CPU of the node (and of the floor's server side).
    #[arg(long)]
    node_cpu: Option<usize>,
    /// CPU of the client.
    #[arg(long)]
    client_cpu: Option<usize>,
    /// The `tpx` binary to run the node with (default: next to this one, else this binary).
    #[arg(long)]
    tpx: Option<PathBuf>,
    /// The node's input log: `durable` (O_DIRECT, acks wait for the commit) or `in-process`
    /// (the same path over an in-memory log: nothing stored, for comparison).
    #[arg(long, default_value = "durable")]
    log: String,
    /// Run the node with accounts and pre-trade risk (`[risk]`, built-in parameters; the
    /// accounts funded by admin deposits first). Default: risk off.
    #[arg(long)]
    risk: bool,
    /// The node's `[replication] log_writer`: `thread` or `uring` (default: not set, the
    /// node's own default; leave it unset to run an older `tpx`).
    #[arg(long)]
    log_writer: Option<String>,
    /// The node's `[replication] uring_depth` (commits in flight with `--log-writer uring`).
    #[arg(long)]
    uring_depth: Option<usize>,
    /// The node's `[replication] writer_rt_priority` (SCHED_FIFO priority of the log writer
    /// thread; 0: normal scheduling; default: not set, the node's own default).
    #[arg(long)]
    writer_rt_priority: Option<u8>,
    /// The node's `[replication] writer_commits_in_flight` (default: not set, the node's own).
    #[arg(long)]
    writer_commits_in_flight: Option<usize>,
    /// The node's `[replication] segment_bytes`, in MiB (default: not set, the node's own).
    #[arg(long)]
    segment_mib: Option<u64>,
    /// 4 KiB O_DIRECT | O_DSYNC writes measured for the disk floor (`--log durable`).
    #[arg(long, default_value_t = 20_000)]
    disk_samples: usize,
    /// Also measure queries' cost to the order path: throughput runs alternated without and
    /// with a `QueryOpenOrders` per session after every N orders (0: none).
    #[arg(long, default_value_t = 0)]
    query_every: usize,
    /// Matching shards: more than 1 puts each shard on a CPU of its own (`--shard-cpus`, default
    /// the CPUs after the node's and the client's) with one instrument each, and spreads the
    /// throughput run's sessions over them (`scripts/scale-check.sh`).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    #[arg(long, value_delimiter = ',')]
    shard_cpus: Vec<usize>,
    /// The node's idle mode: `spin` (measuring) or `park`.
    #[arg(long, default_value = "spin")]
    idle: String,
    /// Write the node's `node.toml` and `accounts.toml` (demo accounts 1..=64, tokens
    /// `demo-token-<id>`, what `tpx-load` logs in with) into this folder, print the config's
    /// path and exit: the node `scripts/scale-check.sh` runs `tpx-load` against.
    #[arg(long)]
    write_node: Option<PathBuf>,
    /// Internal: run a node from this config (the bench's child process).
    #[arg(long = "serve-node", hide = true)]
    serve_node: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    debug_assert_eq!(NODE_MODE_ARG, "--serve-node");
    if let Some(config) = args.serve_node {
        return match serve_node(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("e2e-bench node: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = Options {
        floor_samples: args.floor_samples,
        ack_samples: args.ack_samples,
        warmup: args.warmup,
        throughput_secs: args.throughput_secs,
        sessions: args.sessions,
        window: args.window,
        node_cpu: args.node_cpu,
        client_cpu: args.client_cpu,
        tpx: args.tpx,
        log: args.log,
        risk: args.risk,
        log_writer: args.log_writer,
        uring_depth: args.uring_depth,
        writer_rt_priority: args.writer_rt_priority,
        writer_commits_in_flight: args.writer_commits_in_flight,
        segment_mib: args.segment_mib,
        disk_samples: args.disk_samples,
        query_every: args.query_every,
        shards: args.shards,
        shard_cpus: args.shard_cpus,
        idle: args.idle,
    };
    if let Some(dir) = &args.write_node {
        return match tpx_benches::e2e::write_demo_node(dir, &opts) {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("e2e-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&opts) {
        Ok(r) => {
            if args.json {
                println!("{}", r.to_json());
            } else {
                let q =
                    |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
                println!(
                    "floor  p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us",
                    q(&r.floor, 0.5),
                    q(&r.floor, 0.99),
                    q(&r.floor, 0.999)
                );
                println!(
                    "ack    p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us",
                    q(&r.ack, 0.5),
                    q(&r.ack, 0.99),
                    q(&r.ack, 0.999),
                    r.ack.max() as f64 / 1e3
                );
                println!(
                    "disk   p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us",
                    q(&r.disk, 0.5),
                    q(&r.disk, 0.99),
                    q(&r.disk, 0.999),
                    r.disk.max() as f64 / 1e3
                );
                println!(
                    "ratio  p50 x{:.2}  p99 x{:.2}; durable p50 x{:.2}  p99 x{:.2}; throughput {:.0} orders/s ({}, log_writer {}, load {:.2})",
                    r.ratio_p50(),
                    r.ratio_p99(),
                    r.ratio_durable_p50(),
                    r.ratio_durable_p99(),
                    r.throughput_orders_per_sec,
                    r.node,
                    r.log_writer,
                    r.load_avg_1m
                );
                if let Some((plain, with, cost)) = r.query_cost() {
                    for (k, (p, w, q)) in r.query_runs.iter().enumerate() {
                        println!(
                            "query  round {}: plain {p:.0} orders/s, with queries {w:.0} orders/s + {q:.0} queries/s",
                            k + 1
                        );
                    }
                    println!(
                        "query  every {} orders: plain {plain:.0}, with {with:.0} orders/s (mean); cost {:.2}%",
                        r.query_every,
                        cost * 100.0
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
