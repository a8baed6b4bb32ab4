//! `md-bench`: market-data latency from the shard's event to the feed handler's book update,
//! against the Aeron floor on the same path, and the feed handler's decode + apply rate.
//!
//! ```sh
//! cargo run --release -p tpx-benches --bin md-bench -- --json              # multicast, in a netns
//! cargo run --release -p tpx-benches --bin md-bench -- --path udp --json   # UDP, 127.0.0.1
//! cargo run --release -p tpx-benches --bin md-bench -- --path ipc --json   # aeron:ipc
//! ```
//!
//! The default path is the production one, UDP multicast: the bench re-runs itself inside a
//! private network namespace (`unshare -rn`, loopback only), so multicast never leaves the
//! machine. Where namespaces are unavailable it says so and measures UDP unicast on 127.0.0.1.
//!
//! Two threads spin: the feed thread, and the embedded driver on UDP paths (the publisher
//! sleeps between commands) or the publisher on IPC (the driver backs off). The measurement lives in
//! `tpx_feed::bench`; this is the command line.

use std::process::ExitCode;

use clap::Parser;
use tpx_feed::bench::{netns, run, BenchOptions, BenchPath};

#[derive(Parser, Debug)]
#[command(name = "md-bench", about = "tpx market-data latency and apply rate")]
struct Args {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// multicast (the default, production path: re-runs itself in a private network
    /// namespace), udp (127.0.0.1 unicast) or ipc (shared memory).
    #[arg(long, default_value = "multicast")]
    path: String,
    /// Latency samples per run.
    #[arg(long, default_value_t = 50_000)]
    samples: usize,
    /// Samples discarded before measuring.
    #[arg(long, default_value_t = 5_000)]
    warmup: usize,
    /// Microseconds the publisher thread sleeps between commands.
    #[arg(long, default_value_t = 10)]
    interval_us: u64,
    /// Commands in the recorded stream for the apply rate.
    #[arg(long, default_value_t = 2_000_000)]
    apply_commands: usize,
    /// Apply runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    apply_runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Let the driver back off instead of spinning on UDP paths.
    #[arg(long)]
    no_spin_driver: bool,
    /// Only the apply rate.
    #[arg(long)]
    apply_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(mut path) = BenchPath::from_name(&args.path) else {
        eprintln!("md-bench: --path must be ipc, udp or multicast");
        return ExitCode::FAILURE;
    };
    let namespaces = || {
        std::process::Command::new("unshare")
            .args(["-rn", "true"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if path == BenchPath::Multicast && !args.apply_only && !netns::in_child() && !namespaces() {
        eprintln!(
            "md-bench: no network namespace (`unshare -rn` failed): measuring UDP unicast on \
             127.0.0.1 instead of multicast"
        );
        path = BenchPath::Udp;
    }
    if path == BenchPath::Multicast && !args.apply_only && !netns::in_child() {
        // Multicast never runs in the root namespace: its multicast interface leads off the
        // machine. Run the same command in a private namespace with only a loopback.
        let argv: Vec<String> = std::env::args().skip(1).collect();
        return match netns::run_self(&argv) {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(s) => {
                eprintln!("md-bench: in the network namespace: {s}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("md-bench: unshare: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = BenchOptions {
        path,
        samples: args.samples,
        warmup: args.warmup,
        interval_us: args.interval_us,
        apply_commands: args.apply_commands,
        apply_runs: args.apply_runs,
        seed: args.seed,
        spin_driver: !args.no_spin_driver,
        apply_only: args.apply_only,
    };
    match run(&opts) {
        Ok(r) => {
            if args.json {
                println!("{}", r.to_json());
            } else {
                println!(
                    "path {}\nmd    p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us ({} samples)\n\
                     floor p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us ({} samples)\n\
                     ratio p50 {:.2}\napply {:.1} M msgs/s ({:.1} ns/msg; {:.1} M msgs per CPU second; \
                     {} messages in {} packets)",
                    r.path,
                    r.md.p50_us,
                    r.md.p99_us,
                    r.md.p999_us,
                    r.md.max_us,
                    r.md.samples,
                    r.floor.p50_us,
                    r.floor.p99_us,
                    r.floor.p999_us,
                    r.floor.max_us,
                    r.floor.samples,
                    r.ratio_p50,
                    r.apply_msgs_per_sec / 1e6,
                    r.apply_ns_per_msg,
                    r.apply_cpu_msgs_per_sec / 1e6,
                    r.apply_messages,
                    r.apply_packets,
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("md-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
