//! `tpx`: the appliance command line.
//!
//! - `tpx node --config node.toml`: one node (order entry, sequencer, shards) per the config.
//! - `tpx up [--demo] [--duration SECS]`: the whole appliance on this machine with built-in
//!   instruments and demo accounts; `--demo` adds simulated traders and live numbers.
//!
//! - `tpx stat [--port 9100 | --path FILE] [--json]`: a running node's counters and per-stage
//!   latencies, live, from its shared-memory stats file.
//!
//! Reserved for later issues: `tpx witness` (failover tie-breaker).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tpx_node::up::{run, serve, UpOptions};

#[derive(Parser, Debug)]
#[command(name = "tpx", version, about = "tpx: a low-latency exchange appliance")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node: order-entry gateway, sequencer and matching shards on pinned cores.
    Node {
        /// The node config (TOML); see docs/ARCHITECTURE.md, "The node".
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the whole appliance on this machine with built-in instruments and demo accounts.
    Up {
        /// Also run simulated market makers and takers and print live numbers each second.
        #[arg(long)]
        demo: bool,
        /// Stop after this many seconds (default: until SIGINT/SIGTERM).
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
        /// Order-entry address.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Start from this node config instead of the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Simulated market makers.
        #[arg(long, default_value_t = 2)]
        makers: usize,
        /// Simulated takers.
        #[arg(long, default_value_t = 2)]
        takers: usize,
    },
    /// Show a running node's counters and per-stage latencies, live (its stats file in /dev/shm).
    Stat {
        /// The stats file (default: /dev/shm/tpx-node-<port>.stats).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The node's order-entry port (names the default stats file).
        #[arg(long, default_value_t = 9100)]
        port: u16,
        /// Seconds between prints.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Print this many times, then exit (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Node { config } => serve(&config),
        Cmd::Up {
            demo,
            duration,
            listen,
            config,
            makers,
            takers,
        } => run(UpOptions {
            demo,
            duration: duration.map(Duration::from_secs),
            listen,
            config,
            makers,
            takers,
        }),
        Cmd::Stat {
            path,
            port,
            interval,
            count,
            json,
        } => tpx_node::stat::run(tpx_node::stat::StatOptions {
            path,
            port,
            interval: Duration::from_secs_f64(interval.max(0.01)),
            count,
            json,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tpx: {e}");
            ExitCode::FAILURE
        }
    }
}
